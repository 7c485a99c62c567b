//! The matrix product of a fully connected layer, y = x·W, with its two gradients computed
//! side by side.
//!
//! Flex's own product zero-fills its output and then copies it into an aligned buffer
//! before the product writes it: two wasted passes over every output. Its backward step
//! computes ∂x = g·Wᵀ and then ∂W = xᵀ·g, each split over the threads by the gemm crate.
//! This operation calls the same gemm kernels into a buffer they fill directly, and runs the
//! two gradients (the same number of multiply-adds each) at once on the two halves of the
//! thread pool, each single-threaded, which spares the per-block synchronisation of a
//! split product. The kernels, and so the numbers, are those of Flex's product.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Dispatch, Flex, backend_extension};
use burn::prelude::*;

use crate::fused::{dims, tensor, values};

/// Multiply-adds from which a product is split over the threads (Flex's threshold).
const PARALLEL_MACS: usize = 192 * 192 * 192;

#[backend_extension(Flex, Autodiff)]
pub trait LinearKernel: burn::backend::Backend {
    /// x·W for `x` `[m, k]` and `w` `[k, n]`.
    fn linear(x: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// x·W. Only for `f32` tensors on the Flex backend (`crate::ops::linear::matmul` chooses).
pub fn matmul(x: Tensor<2>, w: Tensor<2>) -> Tensor<2> {
    assert_eq!(x.dims()[1], w.dims()[0], "inner dimensions of x·W");
    Tensor::from_dispatch(<Dispatch as LinearKernel>::linear(
        x.into_dispatch(),
        w.into_dispatch(),
    ))
}

impl LinearKernel for Flex {
    fn linear(x: FlexTensor, w: FlexTensor) -> FlexTensor {
        product(Operand::plain(&x), Operand::plain(&w), threads_for)
    }
}

impl<C: CheckpointStrategy> LinearKernel for Autodiff<Flex, C> {
    fn linear(x: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self> {
        match LinearBackward
            .prepare::<C>([x.node(), w.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (xp, wp) = (x.primitive().clone(), w.primitive().clone());
                let out = product(Operand::plain(&xp), Operand::plain(&wp), threads_for);
                prep.finish((xp, wp), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(product(
                Operand::plain(x.primitive()),
                Operand::plain(w.primitive()),
                threads_for,
            )),
        }
    }
}

#[derive(Debug)]
struct LinearBackward;

impl Backward<Flex, 2> for LinearBackward {
    type State = (FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let g = grads.consume::<Flex>(&ops.node);
        let (x, w) = ops.state;
        let [node_x, node_w] = ops.parents;
        // ∂x = g·Wᵀ and ∂W = xᵀ·g.
        let dx = |threads: Threads| product(Operand::plain(&g), Operand::transposed(&w), threads);
        let dw = |threads: Threads| product(Operand::transposed(&x), Operand::plain(&g), threads);
        match (node_x, node_w) {
            (Some(nx), Some(nw)) => {
                let (dx, dw) = rayon::join(|| dx(one_thread), || dw(one_thread));
                grads.register::<Flex>(nx.id, dx);
                grads.register::<Flex>(nw.id, dw);
            }
            (Some(nx), None) => grads.register::<Flex>(nx.id, dx(threads_for)),
            (None, Some(nw)) => grads.register::<Flex>(nw.id, dw(threads_for)),
            (None, None) => {}
        }
    }
}

/// How a product of m×n×k multiply-adds is split over the threads.
type Threads = fn(usize, usize, usize) -> gemm::Parallelism;

/// On the calling thread alone.
fn one_thread(_: usize, _: usize, _: usize) -> gemm::Parallelism {
    gemm::Parallelism::None
}

/// Flex's rule: products of at least 192³ multiply-adds use every thread.
fn threads_for(m: usize, n: usize, k: usize) -> gemm::Parallelism {
    if m.saturating_mul(n).saturating_mul(k) >= PARALLEL_MACS {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    }
}

/// A row-major matrix's values, read as it is or transposed.
struct Operand<'a> {
    values: std::borrow::Cow<'a, [f32]>,
    rows: usize,
    cols: usize,
    row_stride: isize,
    col_stride: isize,
}

impl<'a> Operand<'a> {
    fn plain(t: &'a FlexTensor) -> Self {
        let [rows, cols] = dims(t);
        Operand {
            values: values(t),
            rows,
            cols,
            row_stride: cols as isize,
            col_stride: 1,
        }
    }

    fn transposed(t: &'a FlexTensor) -> Self {
        let [rows, cols] = dims(t);
        Operand {
            values: values(t),
            rows: cols,
            cols: rows,
            row_stride: 1,
            col_stride: cols as isize,
        }
    }
}

/// a·b into a new row-major `[a.rows, b.cols]` tensor, split over threads as `threads` says.
fn product(a: Operand<'_>, b: Operand<'_>, threads: Threads) -> FlexTensor {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(k, b.rows, "inner dimensions of a product");
    let mut out: Vec<f32> = Vec::with_capacity(m * n);
    // SAFETY: both operands hold rows × cols values at the given strides (checked by the
    // views above), and `out` has room for m × n. With `read_dst` false gemm writes every
    // output (zeros when k = 0) before reading any, so the buffer is initialised when its
    // length is set.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.values.as_ptr(),
            a.col_stride,
            a.row_stride,
            b.values.as_ptr(),
            b.col_stride,
            b.row_stride,
            0.0,
            1.0,
            false,
            false,
            false,
            threads(m, n, k),
        );
        out.set_len(m * n);
    }
    tensor(out, [m, n])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::test_support::vals;
    use burn::tensor::Distribution;

    /// The product and both gradients equal Flex's matmul and its autodiff bit for bit
    /// (same kernels), for small and split products, an empty inner dimension, and either
    /// operand untracked; a transposed view agrees to rounding.
    #[test]
    fn fused_linear_equals_flex_matmul_and_its_gradients() {
        let device = Device::flex().autodiff();
        for (m, k, n) in [(3, 4, 5), (200, 300, 250), (7, 0, 3)] {
            let x = Tensor::<2>::random([m, k], Distribution::Normal(0.0, 1.0), &device);
            let w = Tensor::<2>::random([k, n], Distribution::Normal(0.0, 1.0), &device);
            let g = Tensor::<2>::random([m, n], Distribution::Normal(0.0, 1.0), &device);
            for (track_x, track_w) in [(true, true), (true, false), (false, true)] {
                let x = if track_x {
                    x.clone().require_grad()
                } else {
                    x.clone()
                };
                let w = if track_w {
                    w.clone().require_grad()
                } else {
                    w.clone()
                };
                let fused = matmul(x.clone(), w.clone());
                let plain = x.clone().matmul(w.clone());
                assert_eq!(vals(fused.clone()), vals(plain.clone()), "{m}x{k}x{n}");
                let gf = (fused * g.clone()).sum().backward();
                let gp = (plain * g.clone()).sum().backward();
                for (t, tracked) in [(&x, track_x), (&w, track_w)] {
                    if tracked {
                        assert_eq!(vals(t.grad(&gf).unwrap()), vals(t.grad(&gp).unwrap()));
                    } else {
                        assert!(t.grad(&gf).is_none());
                    }
                }
            }
        }
        // A transposed view as the weight: copied to rows first, so gemm may add in another
        // order than on the strided view.
        let w = Tensor::<2>::random([60, 40], Distribution::Normal(0.0, 1.0), &device);
        let x = Tensor::<2>::random([30, 40], Distribution::Normal(0.0, 1.0), &device);
        let fused = vals(matmul(x.clone(), w.clone().transpose()));
        let plain = vals(x.matmul(w.transpose()));
        for (f, p) in fused.iter().zip(&plain) {
            assert!((f - p).abs() <= 1e-5 * (1.0 + p.abs()), "{f} vs {p}");
        }
    }

    /// By hand: [1 2; 3 4]·[5; 6] = [17; 39], and with g = 1: ∂x = [5 6; 5 6],
    /// ∂W = [1 + 3; 2 + 4] = [4; 6].
    #[test]
    fn fused_linear_by_hand() {
        let device = Device::flex().autodiff();
        let t = |v: Vec<f32>, s: [usize; 2]| {
            Tensor::<2>::from_data(TensorData::new(v, s), &device).require_grad()
        };
        let (x, w) = (t(vec![1., 2., 3., 4.], [2, 2]), t(vec![5., 6.], [2, 1]));
        let y = matmul(x.clone(), w.clone());
        assert_eq!(vals(y.clone()), vec![17.0, 39.0]);
        let g = y.sum().backward();
        assert_eq!(vals(x.grad(&g).unwrap()), vec![5.0, 6.0, 5.0, 6.0]);
        assert_eq!(vals(w.grad(&g).unwrap()), vec![4.0, 6.0]);
    }
}
