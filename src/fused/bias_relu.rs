//! The encoder's activation h = φ(z + β) (Algorithm 1) as one fused operation, φ being ReLU
//! or leaky ReLU.
//!
//! As tensor operations it is a broadcast addition and an activation forward, and a mask, a
//! multiplication and a row sum for β backward. Here each direction is one sweep: the
//! backward pass writes dz and accumulates dβ in the same loop.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Dispatch, Flex, backend_extension};
use burn::prelude::*;
use rayon::prelude::*;

use crate::fused::{dims, row_chunk, tensor, values, widest};

#[backend_extension(Flex, Autodiff)]
pub trait BiasReluKernel: burn::backend::Backend {
    /// φ(z + β) for `z` `[rows, units]` and `beta` `[1, units]`; φ(x) = x for x > 0 and
    /// `slope`·x otherwise.
    fn bias_relu(z: FloatTensor<Self>, beta: FloatTensor<Self>, slope: f32) -> FloatTensor<Self>;
}

/// φ(z + β) with φ(x) = max(x, slope·x) (`slope` 0 for ReLU, 0.1 for the leaky ReLU). Only
/// for `f32` tensors on the Flex backend (the operation of `crate::ops` chooses).
pub fn bias_relu(z: Tensor<2>, beta: Tensor<2>, slope: f32) -> Tensor<2> {
    assert_eq!(beta.dims(), [1, z.dims()[1]]);
    Tensor::from_dispatch(<Dispatch as BiasReluKernel>::bias_relu(
        z.into_dispatch(),
        beta.into_dispatch(),
        slope,
    ))
}

impl BiasReluKernel for Flex {
    fn bias_relu(z: FlexTensor, beta: FlexTensor, slope: f32) -> FlexTensor {
        forward(&z, &beta, slope)
    }
}

impl<C: CheckpointStrategy> BiasReluKernel for Autodiff<Flex, C> {
    fn bias_relu(z: FloatTensor<Self>, beta: FloatTensor<Self>, slope: f32) -> FloatTensor<Self> {
        match BiasReluBackward
            .prepare::<C>([z.node(), beta.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let out = forward(z.primitive(), beta.primitive(), slope);
                prep.finish((out.clone(), slope), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(forward(z.primitive(), beta.primitive(), slope))
            }
        }
    }
}

#[derive(Debug)]
struct BiasReluBackward;

impl Backward<Flex, 2> for BiasReluBackward {
    /// The output (its sign tells where the slope was 1) and the negative slope.
    type State = (FlexTensor, f32);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<Flex>(&ops.node);
        let (out, slope) = ops.state;
        let (dz, dbeta) = backward(&out, slope, &grad);
        let [node_z, node_beta] = ops.parents;
        if let Some(node) = node_z {
            grads.register::<Flex>(node.id, dz);
        }
        if let Some(node) = node_beta {
            grads.register::<Flex>(node.id, dbeta);
        }
    }
}

widest!(forward_rows, forward_rows_body, (z: &[f32], beta: &[f32], slope: f32, out: &mut [f32]));
widest!(backward_rows, backward_rows_body, (out: &[f32], g: &[f32], slope: f32, dz: &mut [f32], dbeta: &mut [f32]));

/// φ(z + β) over whole rows (`beta` is one row).
#[inline(always)]
fn forward_rows_body(z: &[f32], beta: &[f32], slope: f32, out: &mut [f32]) {
    let units = beta.len();
    for (z, out) in z.chunks_exact(units).zip(out.chunks_exact_mut(units)) {
        for j in 0..units {
            let x = z[j] + beta[j];
            out[j] = if x > 0.0 { x } else { slope * x };
        }
    }
}

/// dz = g·φ′ over whole rows, with φ′ read off the output's sign; adds each row's dz to
/// `dbeta`.
#[inline(always)]
fn backward_rows_body(out: &[f32], g: &[f32], slope: f32, dz: &mut [f32], dbeta: &mut [f32]) {
    let units = dbeta.len();
    let rows = out.chunks_exact(units).zip(g.chunks_exact(units));
    for ((out, g), dz) in rows.zip(dz.chunks_exact_mut(units)) {
        for j in 0..units {
            let d = if out[j] > 0.0 { g[j] } else { slope * g[j] };
            dz[j] = d;
            dbeta[j] += d;
        }
    }
}

fn forward(z: &FlexTensor, beta: &FlexTensor, slope: f32) -> FlexTensor {
    let [rows, units] = dims(z);
    let (zv, bv) = (values(z), values(beta));
    let mut out = vec![0f32; rows * units];
    let chunk = row_chunk(rows, units);
    out.par_chunks_mut(chunk)
        .zip(zv.par_chunks(chunk))
        .for_each(|(out, z)| forward_rows(z, &bv, slope, out));
    tensor(out, [rows, units])
}

/// (dz, dβ); dβ sums each task's rows in order, then the tasks in order, so it does not
/// depend on the number of threads.
fn backward(out: &FlexTensor, slope: f32, grad: &FlexTensor) -> (FlexTensor, FlexTensor) {
    let [rows, units] = dims(out);
    let (ov, gv) = (values(out), values(grad));
    let mut dz = vec![0f32; rows * units];
    let chunk = row_chunk(rows, units);
    let partial: Vec<Vec<f32>> = dz
        .par_chunks_mut(chunk)
        .zip(ov.par_chunks(chunk).zip(gv.par_chunks(chunk)))
        .map(|(dz, (out, g))| {
            let mut dbeta = vec![0f32; units];
            backward_rows(out, g, slope, dz, &mut dbeta);
            dbeta
        })
        .collect();
    let mut dbeta = vec![0f32; units];
    for part in partial {
        dbeta.iter_mut().zip(part).for_each(|(a, p)| *a += p);
    }
    (tensor(dz, [rows, units]), tensor(dbeta, [1, units]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::test_support::vals;
    use burn::tensor::Distribution;
    use burn::tensor::activation::{leaky_relu, relu};

    /// Values and gradients equal those of the tensor form exactly for the input, and up to
    /// summation order for β, for ReLU and the leaky ReLU, on one task and split over tasks.
    #[test]
    fn fused_bias_relu_matches_the_tensor_form() {
        let device = Device::flex().autodiff();
        for (rows, units) in [(3, 4), (100, 500)] {
            let z = Tensor::<2>::random([rows, units], Distribution::Normal(0.0, 1.0), &device)
                .require_grad();
            let beta = Tensor::<2>::random([1, units], Distribution::Normal(0.0, 1.0), &device)
                .require_grad();
            let w = Tensor::<2>::random([rows, units], Distribution::Normal(0.0, 1.0), &device);
            for slope in [0.0f32, 0.1] {
                let fused = bias_relu(z.clone(), beta.clone(), slope);
                let x = z.clone() + beta.clone();
                let plain = if slope == 0.0 {
                    relu(x)
                } else {
                    leaky_relu(x, slope as f64)
                };
                assert_eq!(vals(fused.clone()), vals(plain.clone()));
                let gf = (fused * w.clone()).sum().backward();
                let gp = (plain * w.clone()).sum().backward();
                assert_eq!(vals(z.grad(&gf).unwrap()), vals(z.grad(&gp).unwrap()));
                let (bf, bp) = (vals(beta.grad(&gf).unwrap()), vals(beta.grad(&gp).unwrap()));
                for (f, p) in bf.iter().zip(&bp) {
                    assert!((f - p).abs() <= 1e-4 * (1.0 + p.abs()), "dβ {f} vs {p}");
                }
            }
        }
    }

    /// By hand: z = [[−1, 2], [3, −4]], β = [1.5, 1]: z + β = [[0.5, 3], [4.5, −3]], so
    /// h = [[0.5, 3], [4.5, 0]] (ReLU); with g = 1 everywhere dz = [[1, 1], [1, 0]] and
    /// dβ = [2, 1].
    #[test]
    fn fused_bias_relu_by_hand() {
        let device = Device::flex().autodiff();
        let z =
            Tensor::<2>::from_data(TensorData::new(vec![-1.0f32, 2., 3., -4.], [2, 2]), &device)
                .require_grad();
        let beta = Tensor::<2>::from_data(TensorData::new(vec![1.5f32, 1.], [1, 2]), &device)
            .require_grad();
        let h = bias_relu(z.clone(), beta.clone(), 0.0);
        assert_eq!(vals(h.clone()), vec![0.5, 3.0, 4.5, 0.0]);
        let g = h.sum().backward();
        assert_eq!(vals(z.grad(&g).unwrap()), vec![1.0, 1.0, 1.0, 0.0]);
        assert_eq!(vals(beta.grad(&g).unwrap()), vec![2.0, 1.0]);
    }
}
