//! One layer's denoising cost (paper 001, eq. 3) as one fused operation.
//!
//! The cost compares the reconstruction ẑ, normalised with the clean pass's batch moments
//! (μ, σ²) of z_pre, against the clean z = (z_pre − μ)/σ. The means cancel:
//!
//! ‖(ẑ − μ)/σ − (z_pre − μ)/σ‖² = (ẑ − z_pre)²/σ²,
//!
//! so the operation takes ẑ and the clean z_pre and computes
//! C = (1/(N·d)) Σ_n Σ_i (ẑ_ni − z_pre,ni)² / (σ_i² + ε), with σ² the batch variance of
//! z_pre, which carries gradient as in the authors' code:
//!
//! ∂C/∂ẑ = 2e·w/(N·d) with e = ẑ − z_pre and w = 1/(σ² + ε);
//! ∂C/∂z_pre = −∂C/∂ẑ + (∂C/∂σ²)·2(z_pre − μ)/N, ∂C/∂σ²_i = −w_i² Σ_n e_ni² /(N·d).
//!
//! The input layer is not normalised: C = (1/(N·d)) Σ (ẑ − x)², w = 1.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Dispatch, Flex, backend_extension};
use burn::prelude::*;
use rayon::prelude::*;

use crate::fused::BN_EPSILON;
use crate::fused::{column_moments, dims, per_column_block, row_chunk, values, widest};

#[backend_extension(Flex, Autodiff)]
pub trait DenoisingKernel: burn::backend::Backend {
    /// The cost of `z_hat` against `z_pre` (both `[rows, units]`), `[1]`; normalised by
    /// z_pre's batch variance when `normalised`.
    fn denoising_cost(
        z_hat: FloatTensor<Self>,
        z_pre: FloatTensor<Self>,
        normalised: bool,
    ) -> FloatTensor<Self>;
}

/// Eq. (3) for one layer: `z_hat` against the clean pass's `z_pre`, normalised by its batch
/// variance (`normalised`, every layer but the input) or not (the input layer, whose clean
/// value is the input itself). Only for `f32` tensors on the Flex backend (the operation of `crate::ops` chooses).
pub fn denoising_cost(z_hat: Tensor<2>, z_pre: Tensor<2>, normalised: bool) -> Tensor<1> {
    assert_eq!(z_hat.dims(), z_pre.dims());
    Tensor::from_dispatch(<Dispatch as DenoisingKernel>::denoising_cost(
        z_hat.into_dispatch(),
        z_pre.into_dispatch(),
        normalised,
    ))
}

impl DenoisingKernel for Flex {
    fn denoising_cost(z_hat: FlexTensor, z_pre: FlexTensor, normalised: bool) -> FlexTensor {
        forward(&z_hat, &z_pre, normalised).0
    }
}

impl<C: CheckpointStrategy> DenoisingKernel for Autodiff<Flex, C> {
    fn denoising_cost(
        z_hat: FloatTensor<Self>,
        z_pre: FloatTensor<Self>,
        normalised: bool,
    ) -> FloatTensor<Self> {
        match DenoisingBackward
            .prepare::<C>([z_hat.node(), z_pre.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (zh, zp) = (z_hat.primitive().clone(), z_pre.primitive().clone());
                let (cost, sums) = forward(&zh, &zp, normalised);
                prep.finish(Saved { zh, zp, sums }, cost)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(forward(z_hat.primitive(), z_pre.primitive(), normalised).0)
            }
        }
    }
}

/// Per unit: z_pre's mean μ, the weight w = 1/(σ² + ε) (1 unnormalised) and Σ_n e² · w².
#[derive(Debug, Clone)]
struct UnitSums {
    mean: Vec<f32>,
    weight: Vec<f32>,
    /// ∂C/∂σ² per unit, before the factor of the incoming gradient; 0 unnormalised.
    d_var: Vec<f32>,
}

#[derive(Debug, Clone)]
struct Saved {
    zh: FlexTensor,
    zp: FlexTensor,
    sums: UnitSums,
}

#[derive(Debug)]
struct DenoisingBackward;

impl Backward<Flex, 2> for DenoisingBackward {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<Flex>(&ops.node);
        let g = values(&grad)[0];
        let (d_hat, d_pre) = backward(&ops.state, g);
        let [node_hat, node_pre] = ops.parents;
        if let Some(node) = node_hat {
            grads.register::<Flex>(node.id, d_hat);
        }
        if let Some(node) = node_pre {
            grads.register::<Flex>(node.id, d_pre);
        }
    }
}

widest!(unit_sums_block, unit_sums_block_body, (zh: &[f32], zp: &[f32], units: usize, rows: usize, cols: std::ops::Range<usize>, normalised: bool) -> [Vec<f32>; 4]);
widest!(gradient_rows, gradient_rows_body, (zh: &[f32], zp: &[f32], sums: &UnitSums, scale: f32, rows_n: f32, out: (&mut [f32], &mut [f32])));

/// For columns `cols`: μ, w, Σ_n e² (the cost's share before 1/(N·d)) and ∂C/∂σ² (before
/// the factor 1/(N·d)).
#[inline(always)]
fn unit_sums_block_body(
    zh: &[f32],
    zp: &[f32],
    units: usize,
    rows: usize,
    cols: std::ops::Range<usize>,
    normalised: bool,
) -> [Vec<f32>; 4] {
    let width = cols.len();
    let row = |r: usize| r * units + cols.start..r * units + cols.start + width;
    let (mean, weight) = if normalised {
        let [mean, var] = column_moments(zp, units, 0..rows, cols.clone());
        let eps = BN_EPSILON as f32;
        (mean, var.iter().map(|v| 1.0 / (v + eps)).collect())
    } else {
        (vec![0f32; width], vec![1f32; width])
    };
    let mut sq = vec![0f32; width];
    for r in 0..rows {
        let (h, p) = (&zh[row(r)], &zp[row(r)]);
        for j in 0..width {
            let e = h[j] - p[j];
            sq[j] += e * e;
        }
    }
    let cost: Vec<f32> = sq.iter().zip(&weight).map(|(s, w)| s * w).collect();
    let d_var = if normalised {
        sq.iter().zip(&weight).map(|(s, w)| -s * w * w).collect()
    } else {
        vec![0f32; width]
    };
    [mean, weight, cost, d_var]
}

/// Both gradients for whole rows: `scale` = G/(N·d), `rows_n` = N.
#[inline(always)]
fn gradient_rows_body(
    zh: &[f32],
    zp: &[f32],
    sums: &UnitSums,
    scale: f32,
    rows_n: f32,
    (d_hat, d_pre): (&mut [f32], &mut [f32]),
) {
    let units = sums.mean.len();
    let (mean, weight, d_var) = (&sums.mean[..], &sums.weight[..units], &sums.d_var[..units]);
    let rows = zh.chunks_exact(units).zip(zp.chunks_exact(units));
    let outs = d_hat
        .chunks_exact_mut(units)
        .zip(d_pre.chunks_exact_mut(units));
    for ((h, p), (dh, dp)) in rows.zip(outs) {
        for j in 0..units {
            let g = 2.0 * scale * (h[j] - p[j]) * weight[j];
            dh[j] = g;
            dp[j] = -g + scale * d_var[j] * 2.0 * (p[j] - mean[j]) / rows_n;
        }
    }
}

/// The cost `[1]` and the per-unit sums its gradient needs. The per-unit shares are added in
/// unit order in f64.
fn forward(zh: &FlexTensor, zp: &FlexTensor, normalised: bool) -> (FlexTensor, UnitSums) {
    let [rows, units] = dims(zh);
    let (hv, pv) = (values(zh), values(zp));
    let [mean, weight, cost, d_var] = per_column_block(1, rows, units, |_, cols| {
        unit_sums_block(&hv, &pv, units, rows, cols, normalised)
    });
    let total: f64 = cost.iter().map(|&c| c as f64).sum();
    let sums = UnitSums {
        mean,
        weight,
        d_var,
    };
    let cost = (total / (rows * units) as f64) as f32;
    (
        FlexTensor::from_data(TensorData::new(vec![cost], [1])),
        sums,
    )
}

/// (∂C/∂ẑ, ∂C/∂z_pre) times the incoming gradient `g`.
fn backward(s: &Saved, g: f32) -> (FlexTensor, FlexTensor) {
    let [rows, units] = dims(&s.zh);
    let (hv, pv) = (values(&s.zh), values(&s.zp));
    let (mut d_hat, mut d_pre) = (vec![0f32; rows * units], vec![0f32; rows * units]);
    let scale = g / (rows * units) as f32;
    let chunk = row_chunk(rows, units);
    d_hat
        .par_chunks_mut(chunk)
        .zip(d_pre.par_chunks_mut(chunk))
        .zip(hv.par_chunks(chunk).zip(pv.par_chunks(chunk)))
        .for_each(|((dh, dp), (h, p))| {
            gradient_rows(h, p, &s.sums, scale, rows as f32, (dh, dp));
        });
    let tensor = |v: Vec<f32>| FlexTensor::from_data(TensorData::new(v, [rows, units]));
    (tensor(d_hat), tensor(d_pre))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::test_support::{assert_close, vals};

    /// By hand: z_pre = [1, 3] (μ 2, σ² 1) and ẑ = [2, 2] give e = [1, −1], so
    /// C = (1 + 1)/2 = 1; unnormalised the same here. ∂C/∂ẑ = e = [1, −1].
    #[test]
    fn fused_denoising_cost_by_hand() {
        let device = Device::flex().autodiff();
        let col = |v: Vec<f32>| {
            Tensor::<2>::from_data(TensorData::new(v, [2, 1]), &device).require_grad()
        };
        let (z_hat, z_pre) = (col(vec![2.0, 2.0]), col(vec![1.0, 3.0]));
        let c = denoising_cost(z_hat.clone(), z_pre.clone(), true);
        assert_close(&vals(c.clone()), &[1.0], 1e-6, "C");
        let g = c.backward();
        assert_close(&vals(z_hat.grad(&g).unwrap()), &[1.0, -1.0], 1e-6, "dẑ");
    }
}
