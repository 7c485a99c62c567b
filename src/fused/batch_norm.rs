//! N_B of Algorithm 1 as one fused operation: each group of consecutive rows normalised by
//! its own per-unit mean and biased variance, with the corrupted pass's noise added in the
//! same sweep.
//!
//! As tensor operations this is a mean, a centring, a square, a second mean, an addition of
//! ε, a square root and a division forward (seven allocating passes), and about twenty
//! backward. Here the forward pass reads x three times (mean, variance, output) and the
//! backward pass reads it twice, using dx = r·(g − mean(g) − y·mean(g·y)) with
//! y = (x − μ)·r and r = 1/√(σ² + ε), per group and unit.
//!
//! A convolutional layer's `[rows, C·S]` activation (S positions per channel) is normalised
//! per channel over the group's rows and every position (Ioffe and Szegedy's convolutional
//! batch normalisation): its moments and gradient sums are taken per channel, each channel's
//! S values of a row being contiguous, and then spread over the channel's units, so that the
//! row passes are the same as for fully connected layers.

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
use crate::fused::{column_moments, dims, per_column_block, row_chunk, tensor, values, widest};

#[backend_extension(Flex, Autodiff)]
pub trait BatchNormKernel: burn::backend::Backend {
    /// `x` (`[rows, units]`, units = channels × `spatial`) normalised per group of `group`
    /// consecutive rows and per channel, plus `noise` (`[k, units]`, k ≤ rows) added to the
    /// first k rows.
    fn batch_norm_groups(
        x: FloatTensor<Self>,
        noise: FloatTensor<Self>,
        group: usize,
        spatial: usize,
    ) -> FloatTensor<Self>;
}

/// Each group of `group` consecutive rows of `x` normalised with its own moments, per channel
/// of `spatial` positions (1 for fully connected layers), then `noise` (if any, `[k, units]`
/// with k ≤ rows) added to the first k rows. Only for `f32` tensors on the Flex backend (the
/// operation of `crate::ops` chooses).
pub fn normalize_groups(
    x: Tensor<2>,
    group: usize,
    spatial: usize,
    noise: Option<Tensor<2>>,
) -> Tensor<2> {
    let [rows, units] = x.dims();
    assert!(
        group > 0 && rows % group == 0,
        "{rows} rows in groups of {group}"
    );
    assert!(
        spatial > 0 && units % spatial == 0,
        "{units} units in channels of {spatial}"
    );
    let noise = noise.unwrap_or_else(|| Tensor::zeros([0, units], &x.device()));
    assert!(noise.dims()[0] <= rows && noise.dims()[1] == units);
    Tensor::from_dispatch(<Dispatch as BatchNormKernel>::batch_norm_groups(
        x.into_dispatch(),
        noise.into_dispatch(),
        group,
        spatial,
    ))
}

impl BatchNormKernel for Flex {
    fn batch_norm_groups(
        x: FlexTensor,
        noise: FlexTensor,
        group: usize,
        spatial: usize,
    ) -> FlexTensor {
        forward(&x, &noise, Groups { group, spatial }).0
    }
}

impl<C: CheckpointStrategy> BatchNormKernel for Autodiff<Flex, C> {
    fn batch_norm_groups(
        x: FloatTensor<Self>,
        noise: FloatTensor<Self>,
        group: usize,
        spatial: usize,
    ) -> FloatTensor<Self> {
        let groups = Groups { group, spatial };
        // The noise is a constant: only x has a gradient.
        match BatchNormBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let xp = x.primitive().clone();
                let (out, moments) = forward(&xp, noise.primitive(), groups);
                prep.finish((xp, moments, groups), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(forward(x.primitive(), noise.primitive(), groups).0)
            }
        }
    }
}

/// Rows per group, and positions per channel.
#[derive(Debug, Clone, Copy)]
struct Groups {
    group: usize,
    spatial: usize,
}

/// Per group, each unit's mean and reciprocal standard deviation: `mean[g·units + j]` (for
/// convolutional layers its channel's).
#[derive(Debug, Clone)]
struct GroupMoments {
    mean: Vec<f32>,
    inv_std: Vec<f32>,
}

#[derive(Debug)]
struct BatchNormBackward;

impl Backward<Flex, 1> for BatchNormBackward {
    type State = (FlexTensor, GroupMoments, Groups);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<Flex>(&ops.node);
        let (x, moments, group) = ops.state;
        if let [Some(node)] = ops.parents {
            grads.register::<Flex>(node.id, backward(&x, &moments, group, &grad));
        }
    }
}

widest!(moments_block, moments_block_body, (x: &[f32], units: usize, rows: std::ops::Range<usize>, cols: std::ops::Range<usize>) -> [Vec<f32>; 2]);
widest!(channel_moments, channel_moments_body, (x: &[f32], units: usize, rows: std::ops::Range<usize>, at: usize, spatial: usize) -> [f32; 2]);
widest!(channel_gradient_sums, channel_gradient_sums_body, (x: &[f32], g: &[f32], m: (f32, f32), units: usize, rows: std::ops::Range<usize>, at: usize, spatial: usize) -> [f32; 2]);
widest!(gradient_sums_block, gradient_sums_block_body, (x: &[f32], g: &[f32], m: (&[f32], &[f32]), units: usize, rows: std::ops::Range<usize>, cols: std::ops::Range<usize>) -> [Vec<f32>; 2]);
widest!(normalize_row, normalize_row_body, (x: &[f32], mean: &[f32], inv_std: &[f32], noise: Option<&[f32]>, out: &mut [f32]));
widest!(gradient_row, gradient_row_body, (x: &[f32], g: &[f32], m: (&[f32], &[f32]), sums: (&[f32], &[f32]), out: &mut [f32]));

/// Mean and 1/√(σ² + ε) of columns `cols` over rows `rows`.
#[inline(always)]
fn moments_block_body(
    x: &[f32],
    units: usize,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
) -> [Vec<f32>; 2] {
    let [mean, mut var] = column_moments(x, units, rows, cols);
    let eps = BN_EPSILON as f32;
    var.iter_mut().for_each(|v| *v = 1.0 / (*v + eps).sqrt());
    [mean, var]
}

/// Mean and 1/√(σ² + ε) of one channel (values `at..at + spatial` of each row) over rows
/// `rows`: two passes, the variance being that of the centred values.
#[inline(always)]
fn channel_moments_body(
    x: &[f32],
    units: usize,
    rows: std::ops::Range<usize>,
    at: usize,
    spatial: usize,
) -> [f32; 2] {
    let n = (rows.len() * spatial) as f32;
    let channel = |r: usize| &x[r * units + at..][..spatial];
    let mean = rows
        .clone()
        .map(|r| lane_sum(channel(r), |v| v))
        .sum::<f32>()
        / n;
    let var = rows
        .map(|r| lane_sum(channel(r), |v| (v - mean) * (v - mean)))
        .sum::<f32>()
        / n;
    [mean, 1.0 / (var + BN_EPSILON as f32).sqrt()]
}

/// Σ g and Σ g·y over one channel of rows `rows`, divided by their number of values.
#[inline(always)]
fn channel_gradient_sums_body(
    x: &[f32],
    g: &[f32],
    (mean, inv_std): (f32, f32),
    units: usize,
    rows: std::ops::Range<usize>,
    at: usize,
    spatial: usize,
) -> [f32; 2] {
    let n = (rows.len() * spatial) as f32;
    let (mut sum_g, mut sum_gy) = (0f32, 0f32);
    for r in rows {
        let (xr, gr) = (
            &x[r * units + at..][..spatial],
            &g[r * units + at..][..spatial],
        );
        sum_g += lane_sum(gr, |v| v);
        let mut lanes = [0f32; LANES];
        for (xs, gs) in xr.chunks(LANES).zip(gr.chunks(LANES)) {
            for ((l, xv), gv) in lanes.iter_mut().zip(xs).zip(gs) {
                *l += gv * ((xv - mean) * inv_std);
            }
        }
        sum_gy += lanes.iter().sum::<f32>();
    }
    [sum_g / n, sum_gy / n]
}

/// Accumulators of the per-channel sums: one per SIMD lane, so the sums vectorise.
const LANES: usize = 16;

/// Σ f(v) over `v`, in [`LANES`] interleaved partial sums added at the end.
#[inline(always)]
fn lane_sum(v: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0f32; LANES];
    for chunk in v.chunks(LANES) {
        for (l, &x) in lanes.iter_mut().zip(chunk) {
            *l += f(x);
        }
    }
    lanes.iter().sum()
}

/// Runs `f(g, c)` for every group and channel in parallel and spreads each of its two results
/// over the channel's `spatial` units: two `[groups, units]` arrays.
fn per_channel(
    groups: usize,
    units: usize,
    spatial: usize,
    f: impl Fn(usize, usize) -> [f32; 2] + Sync,
) -> [Vec<f32>; 2] {
    let channels = units / spatial;
    let results: Vec<[f32; 2]> = (0..groups * channels)
        .into_par_iter()
        .map(|i| f(i / channels, i % channels))
        .collect();
    let spread = |k: usize| {
        results
            .iter()
            .flat_map(|r| std::iter::repeat_n(r[k], spatial))
            .collect()
    };
    [spread(0), spread(1)]
}

/// (x − μ)·r (+ noise) for one row.
#[inline(always)]
fn normalize_row_body(
    x: &[f32],
    mean: &[f32],
    inv_std: &[f32],
    noise: Option<&[f32]>,
    out: &mut [f32],
) {
    let n = out.len();
    let (x, mean, inv_std) = (&x[..n], &mean[..n], &inv_std[..n]);
    match noise {
        Some(noise) => {
            let noise = &noise[..n];
            for j in 0..n {
                out[j] = (x[j] - mean[j]) * inv_std[j] + noise[j];
            }
        }
        None => {
            for j in 0..n {
                out[j] = (x[j] - mean[j]) * inv_std[j];
            }
        }
    }
}

/// Σ g and Σ g·y over rows `rows`, columns `cols`, divided by the row count.
#[inline(always)]
fn gradient_sums_block_body(
    x: &[f32],
    g: &[f32],
    (mean, inv_std): (&[f32], &[f32]),
    units: usize,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
) -> [Vec<f32>; 2] {
    let width = cols.len();
    let n = rows.len() as f32;
    let (mean, inv_std) = (&mean[cols.clone()], &inv_std[cols.clone()]);
    let (mut sum_g, mut sum_gy) = (vec![0f32; width], vec![0f32; width]);
    for r in rows {
        let at = r * units + cols.start;
        let (xr, gr) = (&x[at..][..width], &g[at..][..width]);
        for j in 0..width {
            let y = (xr[j] - mean[j]) * inv_std[j];
            sum_g[j] += gr[j];
            sum_gy[j] += gr[j] * y;
        }
    }
    sum_g.iter_mut().for_each(|s| *s /= n);
    sum_gy.iter_mut().for_each(|s| *s /= n);
    [sum_g, sum_gy]
}

/// dx = r·(g − mean(g) − y·mean(g·y)) for one row.
#[inline(always)]
fn gradient_row_body(
    x: &[f32],
    g: &[f32],
    (mean, inv_std): (&[f32], &[f32]),
    (mean_g, mean_gy): (&[f32], &[f32]),
    out: &mut [f32],
) {
    let n = out.len();
    let (x, g, mean, inv_std) = (&x[..n], &g[..n], &mean[..n], &inv_std[..n]);
    let (mean_g, mean_gy) = (&mean_g[..n], &mean_gy[..n]);
    for j in 0..n {
        let y = (x[j] - mean[j]) * inv_std[j];
        out[j] = inv_std[j] * (g[j] - mean_g[j] - y * mean_gy[j]);
    }
}

/// Writes `row(r, out_row)` for every row, rows split over the thread pool.
fn write_rows(rows: usize, units: usize, row: impl Fn(usize, &mut [f32]) + Sync) -> Vec<f32> {
    let mut out = vec![0f32; rows * units];
    if units == 0 {
        return out;
    }
    let chunk = row_chunk(rows, units);
    out.par_chunks_mut(chunk)
        .enumerate()
        .for_each(|(task, block)| {
            let first = task * chunk / units;
            for (i, out_row) in block.chunks_mut(units).enumerate() {
                row(first + i, out_row);
            }
        });
    out
}

/// Group `g`'s row of a `[groups, units]` array.
fn group_row(v: &[f32], g: usize, units: usize) -> &[f32] {
    &v[g * units..(g + 1) * units]
}

/// The normalised output and the moments it used.
fn forward(x: &FlexTensor, noise: &FlexTensor, shape: Groups) -> (FlexTensor, GroupMoments) {
    let [rows, units] = dims(x);
    let [noise_rows, _] = dims(noise);
    let Groups { group, spatial } = shape;
    let groups = rows / group;
    let (xv, nv) = (values(x), values(noise));
    let [mean, inv_std] = if spatial == 1 {
        per_column_block(groups, rows, units, |g, cols| {
            moments_block(&xv, units, g * group..(g + 1) * group, cols)
        })
    } else {
        per_channel(groups, units, spatial, |g, c| {
            channel_moments(&xv, units, g * group..(g + 1) * group, c * spatial, spatial)
        })
    };
    let out = write_rows(rows, units, |r, out| {
        let g = r / group;
        let at = |v| group_row(v, g, units);
        let noise = (r < noise_rows).then(|| &nv[r * units..(r + 1) * units]);
        let x = &xv[r * units..(r + 1) * units];
        normalize_row(x, at(&mean), at(&inv_std), noise, out);
    });
    (tensor(out, [rows, units]), GroupMoments { mean, inv_std })
}

/// dx from the gradient of the output.
fn backward(x: &FlexTensor, m: &GroupMoments, shape: Groups, grad: &FlexTensor) -> FlexTensor {
    let [rows, units] = dims(x);
    let Groups { group, spatial } = shape;
    let groups = rows / group;
    let (xv, gv) = (values(x), values(grad));
    let [mean_g, mean_gy] = if spatial == 1 {
        per_column_block(groups, rows, units, |g, cols| {
            let moments = (&m.mean[g * units..], &m.inv_std[g * units..]);
            let rows = g * group..(g + 1) * group;
            gradient_sums_block(&xv, &gv, moments, units, rows, cols)
        })
    } else {
        per_channel(groups, units, spatial, |g, c| {
            let at = g * units + c * spatial;
            let moments = (m.mean[at], m.inv_std[at]);
            let rows = g * group..(g + 1) * group;
            channel_gradient_sums(&xv, &gv, moments, units, rows, c * spatial, spatial)
        })
    };
    let out = write_rows(rows, units, |r, out| {
        let g = r / group;
        let at = |v| group_row(v, g, units);
        let row = r * units..(r + 1) * units;
        let moments = (at(&m.mean), at(&m.inv_std));
        let sums = (at(&mean_g), at(&mean_gy));
        gradient_row(&xv[row.clone()], &gv[row], moments, sums, out);
    });
    tensor(out, [rows, units])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::test_support::{assert_close, vals};

    /// A hand-computed case: the groups [1, 3] and [10, 30] both become [−1, 1]. Σ y is zero
    /// whatever x is, so its gradient is zero too.
    #[test]
    fn fused_batch_norm_by_hand() {
        let device = Device::flex().autodiff();
        let x =
            Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 3., 10., 30.], [4, 1]), &device)
                .require_grad();
        let y = normalize_groups(x.clone(), 2, 1, None);
        assert_close(&vals(y.clone()), &[-1.0, 1.0, -1.0, 1.0], 1e-6, "y");
        let g = y.sum().backward();
        assert_close(&vals(x.grad(&g).unwrap()), &[0.0; 4], 1e-6, "dx");
    }
}
