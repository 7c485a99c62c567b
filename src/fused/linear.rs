//! The matrix product of a fully connected layer, y = x·W, with its two gradients computed
//! side by side.
//!
//! Flex's own product runs the gemm crate, whose kernel and depth blocking depend on the CPU
//! (so its last bits do too). This operation runs the products of [`crate::fused::matmul`],
//! summed in an order fixed by the shape, into a buffer they fill directly, and runs the two
//! gradients ∂x = g·Wᵀ and ∂W = xᵀ·g (the same number of multiply-adds each) at once on the
//! two halves of the thread pool, each single-threaded, which spares the per-block
//! synchronisation of a split product.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Dispatch, Flex, backend_extension};
use burn::prelude::*;

use crate::fused::matmul::{PARALLEL_MACS, View, product_into};
use crate::fused::{dims, tensor, values};

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

/// Whether a product of m×n×k multiply-adds may be split over the threads.
type Threads = fn(usize, usize, usize) -> bool;

/// On the calling thread alone.
fn one_thread(_: usize, _: usize, _: usize) -> bool {
    false
}

/// Products of at least [`PARALLEL_MACS`] multiply-adds use every thread.
fn threads_for(m: usize, n: usize, k: usize) -> bool {
    m.saturating_mul(n).saturating_mul(k) >= PARALLEL_MACS
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

    fn view(&self) -> View<'_> {
        (&self.values, self.row_stride, self.col_stride)
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
    let mut out = vec![0f32; m * n];
    let (av, bv) = (a.view(), b.view());
    product_into(&mut out, [n, 1], av, bv, [m, n, k], threads(m, n, k));
    tensor(out, [m, n])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::test_support::{assert_close, vals};
    use burn::tensor::Distribution;

    /// The product and both gradients agree with Flex's matmul and its autodiff to rounding
    /// (other kernels, another order of the sums), for small and split products, an empty
    /// inner dimension, and either operand untracked; a transposed view gives the same bits
    /// as its copy to rows (the layout moves no term).
    #[test]
    fn fused_linear_matches_flex_matmul_and_its_gradients() {
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
                let what = format!("{m}x{k}x{n}");
                assert_close(&vals(fused.clone()), &vals(plain.clone()), 1e-5, &what);
                let gf = (fused * g.clone()).sum().backward();
                let gp = (plain * g.clone()).sum().backward();
                for (t, tracked) in [(&x, track_x), (&w, track_w)] {
                    if tracked {
                        let (a, b) = (vals(t.grad(&gf).unwrap()), vals(t.grad(&gp).unwrap()));
                        assert_close(&a, &b, 1e-5, &what);
                    } else {
                        assert!(t.grad(&gf).is_none());
                    }
                }
            }
        }
        let w = Tensor::<2>::random([60, 40], Distribution::Normal(0.0, 1.0), &device);
        let x = Tensor::<2>::random([30, 40], Distribution::Normal(0.0, 1.0), &device);
        let strided = vals(matmul(x.clone(), w.clone().transpose()));
        let rows = Tensor::<2>::from_data(w.transpose().into_data(), &device);
        assert_eq!(strided, vals(matmul(x, rows)));
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
