//! The denoising cost of one layer, eq. (3) of paper 001.

use burn::prelude::*;

use crate::fused::denoising as kernel;
use crate::ops::batch_norm::{Moments, moments_shaped, normalize_with_shaped};
use crate::ops::{Shape, fusable};

/// Eq. (3) for one layer: ‖z − (ẑ − μ)/σ‖² summed over units, averaged over the batch and
/// divided by the layer's width, with z = (z_pre − μ)/σ the clean value and μ, σ² the clean
/// pass's batch moments of z_pre (per channel in convolutional layers of `shape`). The means
/// cancel, so this is (ẑ − z_pre)²/σ², computed from `clean` = z_pre when `normalised`. The
/// input layer is not normalised: `clean` is the clean input and the cost (ẑ − x)². One
/// fused operation on the CPU for fully connected layers.
pub fn denoising_cost(
    z_hat: Tensor<2>,
    clean: Tensor<2>,
    normalised: bool,
    shape: Shape,
) -> Tensor<1> {
    if fusable(&z_hat) && shape.spatial() == 1 {
        return kernel::denoising_cost(z_hat, clean, normalised);
    }
    tensor_form(z_hat, clean, normalised, shape)
}

/// [`denoising_cost`] written with tensor operations, for every backend.
fn tensor_form(z_hat: Tensor<2>, clean: Tensor<2>, normalised: bool, shape: Shape) -> Tensor<1> {
    let error = z_hat - clean.clone();
    let error = if normalised {
        // (ẑ − z_pre)/σ: normalising with a zero mean divides by σ alone.
        let m = moments_shaped(clean, shape);
        let zero = Moments {
            mean: m.mean.zeros_like(),
            var: m.var,
        };
        normalize_with_shaped(error, &zero, shape)
    } else {
        error
    };
    // The mean over batch × units is (1/N) Σ_n (1/d) Σ_i.
    error.square().mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::test_support::{assert_close, vals};
    use crate::ops::batch_norm::{normalize, normalize_with};
    use burn::tensor::Distribution;

    #[test]
    fn denoising_cost_normalises_with_the_clean_moments() {
        let device = Device::flex();
        let t = |v: Vec<f32>| Tensor::<2>::from_data(TensorData::new(v, [2, 2]), &device);
        // Clean z_pre with moments mean (1, 2), variance (4, 1), so z = [−1, −1; 1, 1].
        let z_pre = t(vec![-1.0, 1.0, 3.0, 3.0]);
        let z_hat = t(vec![3.0, 2.0, 1.0, 4.0]);
        // ẑ_BN = [(3−1)/2, (2−2)/1; (1−1)/2, (4−2)/1] = [1, 0; 0, 2]; errors against z
        // [2, 1; −1, 1], squared [4, 1; 1, 1]: 7 over 2 examples × 2 units.
        let shape = Shape::vector(2);
        let fused = denoising_cost(z_hat.clone(), z_pre.clone(), true, shape);
        let tensor = tensor_form(z_hat.clone(), z_pre.clone(), true, shape);
        for c in [fused, tensor] {
            let c = c.into_scalar::<f32>();
            assert!((c - 1.75).abs() < 1e-6, "{c}");
        }
        // The input layer is not normalised: errors [16, 1; 4, 1] → 22 / 4.
        let fused = denoising_cost(z_hat.clone(), z_pre.clone(), false, shape);
        let tensor = tensor_form(z_hat, z_pre, false, shape);
        for c in [fused, tensor] {
            let c = c.into_scalar::<f32>();
            assert!((c - 5.5).abs() < 1e-6, "{c}");
        }
    }

    /// The fused cost and both its gradients equal eq. (3) written with tensor operations
    /// (ẑ normalised by the clean moments, against the normalised clean z_pre), normalised
    /// and not, on one task and split over the pool.
    #[test]
    fn fused_denoising_cost_matches_eq_3_and_its_gradients() {
        let device = Device::flex().autodiff();
        for (rows, units) in [(5, 3), (100, 1000)] {
            let draw = |mean, std| {
                Tensor::<2>::random([rows, units], Distribution::Normal(mean, std), &device)
                    .require_grad()
            };
            let (z_hat, z_pre) = (draw(0.5, 2.0), draw(-1.0, 3.0));
            for normalised in [true, false] {
                let fused = kernel::denoising_cost(z_hat.clone(), z_pre.clone(), normalised);
                let plain = if normalised {
                    let (z_clean, m) = normalize(z_pre.clone());
                    (normalize_with(z_hat.clone(), &m) - z_clean)
                        .square()
                        .mean()
                } else {
                    (z_hat.clone() - z_pre.clone()).square().mean()
                };
                let what = format!("{rows}x{units} normalised {normalised}");
                assert_close(&vals(fused.clone()), &vals(plain.clone()), 1e-4, &what);
                let (gf, gp) = ((fused * 3.0).backward(), (plain * 3.0).backward());
                for (t, name) in [(&z_hat, "dẑ"), (&z_pre, "dz_pre")] {
                    let (f, p) = (vals(t.grad(&gf).unwrap()), vals(t.grad(&gp).unwrap()));
                    let scale = p.iter().fold(0f32, |a, v| a.max(v.abs()));
                    let rel: Vec<f32> = f.iter().map(|v| v / scale).collect();
                    let want: Vec<f32> = p.iter().map(|v| v / scale).collect();
                    assert_close(&rel, &want, 1e-4, &format!("{name} {what}"));
                }
            }
        }
    }
}
