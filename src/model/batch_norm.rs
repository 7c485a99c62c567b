//! Batch normalisation without learnable parameters (N_B in Algorithm 1).
//!
//! A training batch holds a labelled and an unlabelled part; as in the authors' code each part
//! is normalised with its own statistics, so the two never mix.

use burn::prelude::*;

/// The ε of the authors' code, added to the variance before the square root.
pub const BN_EPSILON: f64 = 1e-10;

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
            let moments = (0..g)
                .map(|i| Moments {
                    mean: mean.clone().slice(i..i + 1).reshape([1, units]),
                    var: var.clone().slice(i..i + 1).reshape([1, units]),
                })
                .collect();
            (y.reshape([rows, units]), moments)
        }
        _ => {
            let mut start = 0;
            let (parts, moments): (Vec<_>, Vec<_>) = groups
                .iter()
                .map(|&n| {
                    let part = x.clone().narrow(0, start, n);
                    start += n;
                    normalize(part)
                })
                .unzip();
            (Tensor::cat(parts, 0), moments)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
