//! Fused operations for the CPU (Flex) backend.
//!
//! Written with tensor operations, each step of the Ladder's cost is a chain of elementwise
//! passes, each allocating its result and each recorded by autodiff; on the CPU that chain,
//! not the matrix products, was half of a training step. Each operation here does one such
//! chain in one sweep over memory forward and one backward, with a hand-written gradient,
//! registered as a burn backend extension on Flex. Model code calls them through the
//! operations of [`crate::ops`], which fall back to the tensor form on every other backend, so
//! it stays backend-independent; the tests hold each fused operation to its tensor form.
//!
//! - [`adam`]: Adam's update of every parameter in one pass;
//! - [`gauss`]: the combinator g of eq. (2);
//! - [`batch_norm`]: normalisation of row groups by their own moments (N_B of Algorithm 1);
//! - [`bias_relu`]: φ(z + β), the encoder's activation;
//! - [`conv`]: convolutions and transposed convolutions as products ([`matmul`]);
//! - [`denoising`]: the per-layer denoising cost of eq. (3) with the clean batch moments;
//! - [`isa`]: the kernel builds (AVX-512, AVX2, baseline) and which one runs;
//! - [`linear`]: the matrix products of fully connected layers;
//! - [`matmul`]: matrix products in a summation order fixed by the shape alone;
//! - [`pool`]: max-pooling with non-overlapping windows;
//! - [`winograd`]: the 3×3 stride-1 convolutions and their input gradients by Winograd's
//!   F(2×2, 3×3), on the same products;
//! - [`math`]: branch-free eˣ, ln x, sin and cos that vectorise, for these kernels and the
//!   noise sampler.

/// The ε of batch normalisation in the authors' code, added to the variance before the
/// square root, by the kernels here and the tensor forms of `ops::batch_norm` alike.
pub const BN_EPSILON: f64 = 1e-10;

pub mod adam;
pub mod batch_norm;
pub mod bias_relu;
pub mod conv;
pub mod denoising;
pub mod gauss;
pub mod isa;
pub mod linear;
pub mod math;
pub mod matmul;
pub mod pool;
pub mod winograd;

use std::borrow::Cow;

use burn::backend::flex::FlexTensor;
use burn::prelude::*;
use rayon::prelude::*;

/// Elements below which a pass runs on the calling thread alone.
const PARALLEL_ELEMENTS: usize = 1 << 15;

/// Rows of one parallel task in passes that go row by row.
const ROWS_PER_TASK: usize = 16;

/// Columns of one parallel task in passes that sum over rows.
const COLUMNS_PER_TASK: usize = 128;

/// Values of one task of a row-by-row pass over a `[rows, units]` matrix: whole rows, all of
/// them for small matrices. The split depends on the shape alone, never on the number of
/// threads, so sums taken per task and then across tasks do not either.
pub(crate) fn row_chunk(rows: usize, units: usize) -> usize {
    let rows_per_task = if rows * units < PARALLEL_ELEMENTS {
        rows.max(1)
    } else {
        ROWS_PER_TASK
    };
    rows_per_task * units.max(1)
}

/// Runs `block(g, columns)` over every group `g` (of `groups` equal row groups) and block of
/// columns in parallel, and stacks each of its `K` results (one value per column of the
/// block) into a `[groups, units]` array. Each column's sums run over its rows in order
/// within one block, so the results do not depend on the split.
pub(crate) fn per_column_block<const K: usize>(
    groups: usize,
    rows: usize,
    units: usize,
    block: impl Fn(usize, std::ops::Range<usize>) -> [Vec<f32>; K] + Sync,
) -> [Vec<f32>; K] {
    let width = if rows * units < PARALLEL_ELEMENTS {
        units.max(1)
    } else {
        COLUMNS_PER_TASK
    };
    let blocks: Vec<(usize, usize)> = (0..groups)
        .flat_map(|g| (0..units).step_by(width).map(move |c| (g, c)))
        .collect();
    let results: Vec<[Vec<f32>; K]> = blocks
        .par_iter()
        .map(|&(g, c)| block(g, c..(c + width).min(units)))
        .collect();
    let mut out: [Vec<f32>; K] = std::array::from_fn(|_| vec![0f32; groups * units]);
    for (&(g, c), result) in blocks.iter().zip(results) {
        for (dst, src) in out.iter_mut().zip(result) {
            let at = g * units + c;
            dst[at..at + src.len()].copy_from_slice(&src);
        }
    }
    out
}

/// A contiguous `f32` view of a tensor, copied only where its layout is not contiguous.
pub(crate) fn values(t: &FlexTensor) -> Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(v) => Cow::Borrowed(v),
        None => Cow::Owned(t.to_contiguous().storage::<f32>().to_vec()),
    }
}

/// A tensor owning `values`, without a copy.
pub(crate) fn tensor(values: Vec<f32>, shape: [usize; 2]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// The two dimensions of a matrix.
pub(crate) fn dims(t: &FlexTensor) -> [usize; 2] {
    let shape = t.layout().shape();
    [shape[0], shape[1]]
}

/// Mean and biased variance of columns `cols` of a row-major matrix with `units` columns,
/// over rows `rows`: two passes, so that the variance is that of the centred values. Every
/// column's sums run over its rows in order, whatever block the columns come in.
#[inline(always)]
pub(crate) fn column_moments(
    x: &[f32],
    units: usize,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
) -> [Vec<f32>; 2] {
    let width = cols.len();
    let n = rows.len() as f32;
    let row = |r: usize| &x[r * units + cols.start..][..width];
    let mut mean = vec![0f32; width];
    for r in rows.clone() {
        mean.iter_mut().zip(row(r)).for_each(|(s, v)| *s += v);
    }
    mean.iter_mut().for_each(|s| *s /= n);
    let mut var = vec![0f32; width];
    for r in rows {
        for ((s, v), m) in var.iter_mut().zip(row(r)).zip(&mean) {
            let d = v - m;
            *s += d * d;
        }
    }
    var.iter_mut().for_each(|s| *s /= n);
    [mean, var]
}

pub(crate) use isa::widest;

/// What the fused operations' tests share.
#[cfg(test)]
pub(crate) mod test_support {
    use burn::prelude::*;

    /// `len` deterministic values in [−1, 1) from an xorshift generator started at `seed`.
    pub fn uniform(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    pub fn vals<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    /// Agreement of the fused result with the tensor form to `tol`, relative to 1 + |want|.
    pub fn assert_close(got: &[f32], want: &[f32], tol: f32, what: &str) {
        assert_eq!(got.len(), want.len(), "{what}");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= tol * (1.0 + w.abs()),
                "{what}[{i}]: fused {g}, tensor form {w}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Moments of a block of columns by hand: columns [1, 3] and [2, 2] over two rows.
    #[test]
    fn column_moments_by_hand() {
        let x = [9.0, 1.0, 2.0, 9.0, 3.0, 2.0];
        let [mean, var] = column_moments(&x, 3, 0..2, 1..3);
        assert_eq!((mean, var), (vec![2.0, 2.0], vec![1.0, 0.0]));
    }
}
