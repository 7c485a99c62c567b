//! Batch normalisation without learnable parameters (N_B in Algorithm 1).
//!
//! A training batch holds a labelled and an unlabelled part; as in the authors' code each part
//! is normalised with its own statistics, so the two never mix.

use burn::prelude::*;

use crate::fused::batch_norm as kernel;
use crate::ops::{Shape, add_to_leading_rows, fusable};

pub use crate::fused::BN_EPSILON;

/// Per-unit mean and (biased) variance, each `[1, units]`.
#[derive(Debug, Clone)]
pub struct Moments {
    pub mean: Tensor<2>,
    pub var: Tensor<2>,
}

/// (x − mean) / √(var + ε).
pub fn normalize_with(x: Tensor<2>, m: &Moments) -> Tensor<2> {
    (x - m.mean.clone()) / (m.var.clone() + BN_EPSILON).sqrt()
}

/// [`normalize_with`] for a layer of `shape`: moments are per channel, `[1, channels]`,
/// shared by every position of the map.
pub fn normalize_with_shaped(x: Tensor<2>, m: &Moments, shape: Shape) -> Tensor<2> {
    if shape.spatial() == 1 {
        return normalize_with(x, m);
    }
    let [n, units] = x.dims();
    let c = shape.channels;
    let x3 = x.reshape([n, c, shape.spatial()]);
    let mean = m.mean.clone().reshape([1, c, 1]);
    let var = m.var.clone().reshape([1, c, 1]);
    ((x3 - mean) / (var + BN_EPSILON).sqrt()).reshape([n, units])
}

/// N_B of a training pass: consecutive row groups (sizes `groups`) of a layer of `shape`,
/// each normalised by its own moments, then `noise` (the corrupted pass's, covering the
/// first rows) added. One fused operation on the CPU for groups of equal size, the tensor form
/// otherwise.
pub fn normalize_batch(
    x: Tensor<2>,
    groups: &[usize],
    shape: Shape,
    noise: Option<Tensor<2>>,
) -> Tensor<2> {
    let equal = groups.iter().all(|&g| g == groups[0]);
    if fusable(&x) && equal {
        let s = shape.spatial();
        // The fused operation holds the noise constant; a noise that needs its gradient
        // (LVAN-LW's power iteration) is added outside it.
        return match noise {
            Some(n) if n.is_tracked() => {
                add_to_leading_rows(kernel::normalize_groups(x, groups[0], s, None), n)
            }
            noise => kernel::normalize_groups(x, groups[0], s, noise),
        };
    }
    let (y, _) = normalize_groups_shaped(x, groups, shape);
    match noise {
        Some(n) => add_to_leading_rows(y, n),
        None => y,
    }
}

/// Per-channel mean and biased variance of a layer of `shape` over all rows and positions.
pub fn moments_shaped(x: Tensor<2>, shape: Shape) -> Moments {
    let n = x.dims()[0];
    let (c, s) = (shape.channels, shape.spatial());
    let x3 = x.reshape([n, c, s]).swap_dims(1, 2).reshape([n * s, c]);
    let (var, mean) = x3.var_mean_bias(0);
    Moments { mean, var }
}

/// [`normalize_groups`] for a layer of `shape`: per-channel statistics over the rows of a
/// group and every position of the map (Ioffe and Szegedy's convolutional batch
/// normalisation, paper 001 Sec. 4.2).
pub fn normalize_groups_shaped(
    x: Tensor<2>,
    groups: &[usize],
    shape: Shape,
) -> (Tensor<2>, Vec<Moments>) {
    if shape.spatial() == 1 {
        return normalize_groups(x, groups);
    }
    let [rows, units] = x.dims();
    let (c, s) = (shape.channels, shape.spatial());
    let per_group = |x4: Tensor<4>| {
        let mean = x4.clone().mean_dim(1).mean_dim(3);
        let centred = x4 - mean.clone();
        let var = centred.clone().square().mean_dim(1).mean_dim(3);
        let y = centred / (var.clone() + BN_EPSILON).sqrt();
        (y, split_moments(mean, var, c))
    };
    match groups {
        [first, ..] if groups.iter().all(|g| g == first) => {
            let (y, m) = per_group(x.reshape([groups.len(), *first, c, s]));
            (y.reshape([rows, units]), m)
        }
        _ => each_group(x, groups, |part| {
            let n = part.dims()[0];
            let (y, m) = per_group(part.reshape([1, n, c, s]));
            (
                y.reshape([n, units]),
                m.into_iter().next().expect("one group"),
            )
        }),
    }
}

/// The moments of `g` stacked groups (`mean` and `var` of shape `[g, 1, …]` holding `width`
/// values each), one `[1, width]` pair per group.
fn split_moments<const D: usize>(mean: Tensor<D>, var: Tensor<D>, width: usize) -> Vec<Moments> {
    (0..mean.dims()[0])
        .map(|i| Moments {
            mean: mean.clone().slice(i..i + 1).reshape([1, width]),
            var: var.clone().slice(i..i + 1).reshape([1, width]),
        })
        .collect()
}

/// `normalize_one` applied to each of the consecutive row groups of `x` (sizes `groups`), the
/// results joined back in order.
fn each_group(
    x: Tensor<2>,
    groups: &[usize],
    normalize_one: impl Fn(Tensor<2>) -> (Tensor<2>, Moments),
) -> (Tensor<2>, Vec<Moments>) {
    let mut start = 0;
    let (parts, moments): (Vec<_>, Vec<_>) = groups
        .iter()
        .map(|&n| {
            let part = x.clone().narrow(0, start, n);
            start += n;
            normalize_one(part)
        })
        .unzip();
    (Tensor::cat(parts, 0), moments)
}

/// Normalises one group of rows with its own statistics.
pub fn normalize(x: Tensor<2>) -> (Tensor<2>, Moments) {
    let (var, mean) = x.clone().var_mean_bias(0);
    let m = Moments { mean, var };
    (normalize_with(x, &m), m)
}

/// Normalises consecutive groups of rows (sizes `groups`) each with its own statistics and
/// returns the moments of every group. Equal groups take one reshaped pass.
pub fn normalize_groups(x: Tensor<2>, groups: &[usize]) -> (Tensor<2>, Vec<Moments>) {
    let [rows, units] = x.dims();
    debug_assert_eq!(groups.iter().sum::<usize>(), rows);
    match groups {
        [_] => {
            let (y, m) = normalize(x);
            (y, vec![m])
        }
        [first, ..] if groups.iter().all(|g| g == first) => {
            let g = groups.len();
            let x3 = x.reshape([g, *first, units]);
            let (var, mean) = x3.clone().var_mean_bias(1);
            let y = (x3 - mean.clone()) / (var.clone() + BN_EPSILON).sqrt();
            (y.reshape([rows, units]), split_moments(mean, var, units))
        }
        _ => each_group(x, groups, normalize),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::test_support::{assert_close, vals};
    use burn::tensor::Distribution;

    #[test]
    fn channels_are_normalised_over_rows_and_positions() {
        let device = Device::flex();
        // Two rows, two channels of two positions: channel 0 holds 1,3 | 5,7; channel 1 0,0 | 0,4.
        let x = Tensor::<2>::from_data(
            TensorData::new(vec![1.0f32, 3., 0., 0., 5., 7., 0., 4.], [2, 4]),
            &device,
        );
        let shape = Shape {
            channels: 2,
            height: 1,
            width: 2,
        };
        let (y, m) = normalize_groups_shaped(x.clone(), &[2], shape);
        assert_eq!(values(m[0].mean.clone()), vec![4.0, 1.0]);
        assert_eq!(values(m[0].var.clone()), vec![5.0, 3.0]);
        let y = values(y);
        let expected = (1.0 - 4.0) / 5.0f32.sqrt();
        assert!((y[0] - expected).abs() < 1e-6, "{y:?}");
        let again = values(normalize_with_shaped(x, &m[0], shape));
        assert_eq!(again, y);
    }

    fn values(x: Tensor<2>) -> Vec<f32> {
        x.into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn groups_are_normalised_separately() {
        let device = Device::flex();
        // Two groups of two rows, one unit: [1, 3] and [10, 30].
        let x = Tensor::<2>::from_data(
            TensorData::new(vec![1.0f32, 3.0, 10.0, 30.0], [4, 1]),
            &device,
        );
        let (y, m) = normalize_groups(x.clone(), &[2, 2]);
        let y = values(y);
        for v in y {
            assert!((v.abs() - 1.0).abs() < 1e-5, "{v}");
        }
        assert_eq!(values(m[0].mean.clone()), vec![2.0]);
        assert_eq!(values(m[1].mean.clone()), vec![20.0]);
        assert_eq!(values(m[1].var.clone()), vec![100.0]);
        // Unequal groups take the general path and agree with per-group normalisation.
        let (y3, m3) = normalize_groups(x, &[1, 3]);
        let y3 = values(y3);
        assert_eq!(y3[0], 0.0);
        assert_eq!(values(m3[1].mean.clone()), vec![(3.0 + 10.0 + 30.0) / 3.0]);
    }

    /// Output and input gradient agree with autodiff through the tensor form, for one and for
    /// two groups, small (one task) and large (split over the pool), with and without noise,
    /// for fully connected layers (one position per channel) and convolutional ones.
    #[test]
    fn fused_batch_norm_matches_the_tensor_form_and_its_gradient() {
        let device = Device::flex().autodiff();
        let cases = [
            (6, 5, 3, 1),
            (6, 5, 6, 1),
            (200, 700, 100, 1),
            (6, 12, 3, 4),
            (8, 30, 8, 15),
            (200, 32 * 49, 100, 49),
        ];
        for (rows, units, group, spatial) in cases {
            let x = Tensor::<2>::random([rows, units], Distribution::Normal(1.0, 3.0), &device)
                .require_grad();
            let noise = Tensor::<2>::random([rows / 2, units], Distribution::Default, &device);
            let groups = vec![group; rows / group];
            let shape = Shape {
                channels: units / spatial,
                height: 1,
                width: spatial,
            };
            let w = Tensor::<2>::random([rows, units], Distribution::Normal(0.0, 1.0), &device);
            for with_noise in [false, true] {
                let noise = with_noise.then(|| noise.clone());
                let fused = kernel::normalize_groups(x.clone(), group, spatial, noise.clone());
                let mut plain = normalize_groups_shaped(x.clone(), &groups, shape).0;
                if let Some(noise) = noise {
                    let pad = Tensor::zeros([rows - rows / 2, units], &device);
                    plain = plain + Tensor::cat(vec![noise, pad], 0);
                }
                let what = format!("{rows}x{units}/{group} spatial {spatial} noise {with_noise}");
                assert_close(&vals(fused.clone()), &vals(plain.clone()), 1e-5, &what);
                let gf = (fused * w.clone()).sum().backward();
                let gp = (plain * w.clone()).sum().backward();
                let (df, dp) = (x.grad(&gf).unwrap(), x.grad(&gp).unwrap());
                assert_close(&vals(df), &vals(dp), 1e-4, &format!("dx {what}"));
            }
        }
    }
}
