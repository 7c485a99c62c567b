//! Virtual adversarial training (Miyato et al. 2018, "Virtual Adversarial Training: a
//! Regularization Method for Supervised and Semi-Supervised Learning"), and its union with the
//! Ladder (Shinoda, Worrall and Brostow 2017, "Virtual Adversarial Ladder Networks").
//!
//! The virtual adversarial loss of an example x is
//!
//!   LDS(x) = KL(p(y | x, θ̂) ‖ p(y | x + r_vadv, θ)),   r_vadv = argmax_{‖r‖₂ ≤ ε} KL(…)   (eq. 4–5)
//!
//! with θ̂ the current weights held constant. r_vadv is approximated by K steps of power
//! iteration on the Hessian of the KL at r = 0 (eq. 8–10): from a random unit d,
//! d ← ∇_r KL(p(y|x) ‖ p(y|x + r)) at r = ξ d, normalised; then r_vadv = ε d. The cost adds
//! α·mean LDS over the unlabelled batch to the supervised cost (eq. 11; the unlabelled set
//! holds every training example by default, the labelled ones too, so this is the paper's LDS
//! over D_l ∪ D_ul as the authors' code computes it), and VAT+EntMin adds the entropy of
//! p(y | x) as well (eq. 13). Norms are per example (per row), L2 as in the
//! authors' MNIST experiments.
//!
//! The virtual adversarial Ladder ([`Lvan`], Shinoda et al. 2017, Sec. 3) adds such a
//! perturbation to the Gaussian corruption of the Ladder's corrupted path instead of adding a
//! loss: of the input only (LVAN) or of every layer's z̃ (LVAN-LW), each layer with its own
//! ε_l, on the unlabelled rows.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use serde::{Deserialize, Serialize};

pub use crate::noise::adversarial::unit_rows;
use crate::noise::input_gradient;

/// One setting of the virtual adversarial loss.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Vat {
    /// ε, the L2 radius of r_vadv per example.
    pub epsilon: f64,
    /// ξ, the length of the finite difference of the power iteration.
    pub xi: f64,
    /// K, the power-iteration steps (the authors use 1).
    pub iterations: usize,
    /// α, the weight of the virtual adversarial loss (0: only the perturbation is used, as a
    /// Ladder's corruption).
    pub weight: f64,
    /// Add the entropy of the predictions on the unlabelled rows (VAT+EntMin, eq. 13).
    pub entmin: bool,
}

/// mean over rows of KL(softmax(p) ‖ softmax(q)) = Σ_y p_y (log p_y − log q_y).
pub fn kl_divergence(p_logits: Tensor<2>, q_logits: Tensor<2>) -> Tensor<1> {
    let log_p = log_softmax(p_logits, 1);
    let log_q = log_softmax(q_logits, 1);
    (log_p.clone().exp() * (log_p - log_q)).sum_dim(1).mean()
}

/// mean over rows of the entropy −Σ_y p_y log p_y of softmax(logits).
pub fn entropy(logits: Tensor<2>) -> Tensor<1> {
    let log_p = log_softmax(logits, 1);
    (log_p.clone().exp() * log_p).sum_dim(1).mean().neg()
}

/// Each row of `v` scaled to unit L2 norm, robust to rows whose squares underflow: the row is
/// first divided by its largest magnitude (as the authors' `get_normalized_vector` does), so a
/// gradient of 1e-25 per entry gives a unit direction instead of 0 or 1e13. A zero row stays
/// zero.
pub fn unit_direction(v: Tensor<2>) -> Tensor<2> {
    let largest = v.clone().abs().max_dim(1).clamp_min(f32::MIN_POSITIVE);
    unit_rows(v / largest)
}

/// The power iteration of eq. 8–10: the unit direction d (per row) in which the KL of the
/// predictions `forward(x + r)` from the held-constant `clean_logits` grows fastest, from the
/// random start `d0`. `forward` should use frozen weights (`no_grad`): only ∂KL/∂r is wanted.
pub fn virtual_adversarial_direction(
    x: Tensor<2>,
    clean_logits: Tensor<2>,
    d0: Tensor<2>,
    (xi, iterations): (f64, usize),
    forward: impl Fn(Tensor<2>) -> Tensor<2>,
) -> Tensor<2> {
    let x = x.detach();
    let mut parts = joint_directions(vec![d0], clean_logits, (xi, iterations), |r| {
        forward(x.clone() + r[0].clone())
    });
    parts.remove(0)
}

/// The power iteration over several perturbations at once (LVAN-LW's layers): `forward` maps
/// the perturbations r_k (one per part, rows as in `clean_logits`) to logits; each step sets
/// r_k = ξ·d_k and d_k ← ∂KL/∂r_k, each part normalised per row on its own. One backward pass
/// serves every part; the parts' cross terms are those of the joint Hessian.
pub fn joint_directions(
    starts: Vec<Tensor<2>>,
    clean_logits: Tensor<2>,
    (xi, iterations): (f64, usize),
    forward: impl Fn(Vec<Tensor<2>>) -> Tensor<2>,
) -> Vec<Tensor<2>> {
    let p = clean_logits.detach();
    let widths: Vec<usize> = starts.iter().map(|d| d.dims()[1]).collect();
    let split = |joined: Tensor<2>| {
        let mut at = 0;
        let mut parts = Vec::with_capacity(widths.len());
        for &w in &widths {
            parts.push(joined.clone().narrow(1, at, w));
            at += w;
        }
        parts
    };
    let mut d: Vec<Tensor<2>> = starts.into_iter().map(unit_direction).collect();
    for _ in 0..iterations {
        let joined = Tensor::cat(d.into_iter().map(|d| d * xi).collect(), 1);
        let g = input_gradient(joined, |r| kl_divergence(p.clone(), forward(split(r))));
        d = split(g).into_iter().map(unit_direction).collect();
    }
    d.into_iter().map(|d| d.detach()).collect()
}

/// The virtual adversarial Ladder's corruption (Shinoda et al. 2017): r_l = ε_l·d_l added to
/// the Gaussian noise of layer l's z̃ on the unlabelled rows of the corrupted pass, d_l from
/// [`joint_directions`] through the clean encoder with Gaussian noise of
/// `probe_noise_std` on every layer (the authors' `vadv_sd`, "for stability"). The labelled
/// rows keep their Gaussian noise only, as in the authors' code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lvan {
    /// ε_l per layer 0..=L, input first (L2 per example); 0 leaves a layer Gaussian.
    pub epsilon: Vec<f64>,
    /// ξ of the power iteration.
    pub xi: f64,
    /// Power-iteration steps (the authors use 3).
    pub iterations: usize,
    /// σ of the Gaussian noise of the power iteration's passes.
    pub probe_noise_std: f64,
}

impl Lvan {
    /// The layers that get virtual adversarial noise.
    pub fn layers(&self) -> Vec<usize> {
        (0..self.epsilon.len())
            .filter(|&l| self.epsilon[l] > 0.0)
            .collect()
    }

    /// Checks the settings: finite, non-negative, a direction to find, one ε per layer.
    pub fn validate(&self, layers: usize) -> Result<(), String> {
        let fine = |v: f64| v.is_finite() && v >= 0.0;
        if self.epsilon.len() != layers {
            return Err(format!(
                "LVAN needs one ε per layer, input first: {} given for {layers} layers",
                self.epsilon.len()
            ));
        }
        if !(self.epsilon.iter().all(|&e| fine(e)) && fine(self.xi) && fine(self.probe_noise_std)) {
            return Err(format!(
                "LVAN ε {:?}, ξ {} and probe noise {} must be finite and ≥ 0",
                self.epsilon, self.xi, self.probe_noise_std
            ));
        }
        if self.xi == 0.0 || self.iterations == 0 {
            return Err(
                "LVAN needs ξ > 0 and at least one power iteration to find its directions".into(),
            );
        }
        Ok(())
    }
}

impl Vat {
    /// r_vadv = ε·d for the direction of [`virtual_adversarial_direction`], detached: the
    /// perturbation is an input, not a function of the weights.
    pub fn perturbation(
        &self,
        x: Tensor<2>,
        clean_logits: Tensor<2>,
        d0: Tensor<2>,
        forward: impl Fn(Tensor<2>) -> Tensor<2>,
    ) -> Tensor<2> {
        let d =
            virtual_adversarial_direction(x, clean_logits, d0, (self.xi, self.iterations), forward);
        (d * self.epsilon).detach()
    }

    /// Checks the settings: ε, ξ ≥ 0 finite, α ≥ 0, and a direction to find when ε > 0.
    pub fn validate(&self) -> Result<(), String> {
        let fine = |v: f64| v.is_finite() && v >= 0.0;
        if !(fine(self.epsilon) && fine(self.xi) && fine(self.weight)) {
            return Err(format!(
                "VAT ε {}, ξ {} and weight {} must be finite and ≥ 0",
                self.epsilon, self.xi, self.weight
            ));
        }
        if self.epsilon > 0.0 && (self.xi == 0.0 || self.iterations == 0) {
            return Err(
                "VAT needs ξ > 0 and at least one power iteration to find its direction".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> Device {
        Device::flex().autodiff()
    }

    fn tensor(v: Vec<f32>, rows: usize, cols: usize, device: &Device) -> Tensor<2> {
        Tensor::from_data(TensorData::new(v, [rows, cols]), device)
    }

    fn host(t: Tensor<2>) -> Vec<f32> {
        t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
    }

    fn scalar(t: Tensor<1>) -> f64 {
        t.into_scalar::<f32>() as f64
    }

    /// KL by hand: p = softmax(0, 0) = (½, ½), q = softmax(ln 3, 0) = (¾, ¼):
    /// ½ ln(½/¾) + ½ ln(½/¼) = ½ ln(4/3). Entropy of p is ln 2.
    #[test]
    fn kl_and_entropy_by_hand() {
        let d = device();
        let p = tensor(vec![0.0, 0.0], 1, 2, &d);
        let q = tensor(vec![3f32.ln(), 0.0], 1, 2, &d);
        let kl = scalar(kl_divergence(p.clone(), q));
        assert!((kl - 0.5 * (4.0f64 / 3.0).ln()).abs() < 1e-6, "{kl}");
        assert!(scalar(kl_divergence(p.clone(), p.clone())).abs() < 1e-7);
        assert!((scalar(entropy(p)) - 2f64.ln()).abs() < 1e-6);
    }

    /// ∂KL(p ‖ softmax(q))/∂q against central differences, and ∂H/∂logits likewise.
    #[test]
    fn kl_and_entropy_gradients_match_finite_differences() {
        let d = device();
        let p = vec![0.3f32, -1.2, 0.8, 0.1, 0.5, -0.4];
        let q = vec![-0.2f32, 0.9, 0.4, 1.1, -0.7, 0.2];
        let check = |f: &dyn Fn(Tensor<2>) -> Tensor<1>, at: &[f32]| {
            let g = host(input_gradient(tensor(at.to_vec(), 2, 3, &d), f));
            for i in 0..at.len() {
                let h = 1e-2f32;
                let shifted = |s: f32| {
                    let mut v = at.to_vec();
                    v[i] += s;
                    scalar(f(tensor(v, 2, 3, &d)))
                };
                let fd = (shifted(h) - shifted(-h)) / (2.0 * h as f64);
                assert!((fd - g[i] as f64).abs() < 2e-4, "{i}: {fd} vs {}", g[i]);
            }
        };
        let pt = tensor(p.clone(), 2, 3, &d);
        check(&|x| kl_divergence(pt.clone(), x), &q);
        check(&|x| entropy(x), &p);
    }

    /// For a linear softmax model f(x) = xW the KL's Hessian at r = 0 is W (diag p − p pᵀ) Wᵀ;
    /// power iteration must find its top eigenvector, and r_vadv has norm ε on every row.
    /// Rows far below f32's square range still get a unit direction; zero rows stay zero.
    #[test]
    fn tiny_gradients_give_unit_directions() {
        let d = device();
        let v = tensor(vec![3e-25, -4e-25, 0.0, 0.0, 6.0, 8.0], 3, 2, &d);
        let u = host(unit_direction(v));
        let close = |a: f32, b: f32| (a - b).abs() < 1e-6;
        assert!(close(u[0], 0.6) && close(u[1], -0.8), "{u:?}");
        assert_eq!((u[2], u[3]), (0.0, 0.0));
        assert!(close(u[4], 0.6) && close(u[5], 0.8), "{u:?}");
        // The plain normalisation loses such a row: its squares underflow to 0.
        let plain = host(unit_rows(tensor(vec![3e-25, -4e-25], 1, 2, &d)));
        assert!(plain[0].abs() > 1.0 || plain[0] == 0.0, "{plain:?}");
    }

    /// Two perturbations at once (LVAN-LW's layers): the logits move by r₀W + r₁V, W most
    /// sensitive along e₁ of its space and V along e₂ of its own. The joint iteration must
    /// find each part's own direction, with unit rows in both.
    #[test]
    fn joint_power_iteration_finds_each_parts_direction() {
        let d = device();
        let w = tensor(vec![4.0, -4.0, 0.1, 0.0, 0.0, 0.1], 3, 2, &d);
        let v = tensor(vec![0.0, 0.0, 3.0, -3.0], 2, 2, &d);
        let x = tensor(vec![0.2, -0.1, 0.5, -0.3, 0.4, 0.0], 2, 3, &d);
        let forward = |r: Vec<Tensor<2>>| {
            (x.clone() + r[0].clone()).matmul(w.clone()) + r[1].clone().matmul(v.clone())
        };
        let clean = x.clone().matmul(w.clone());
        let starts = vec![
            tensor(vec![0.1, 1.0, 1.0, -0.2, 0.7, -1.0], 2, 3, &d),
            tensor(vec![1.0, 0.3, -0.8, 0.4], 2, 2, &d),
        ];
        let found = joint_directions(starts, clean, (1e-3, 4), forward);
        let (first, second) = (host(found[0].clone()), host(found[1].clone()));
        for row in first.chunks(3) {
            assert!(row[0].abs() > 0.99, "{row:?}");
        }
        for row in second.chunks(2) {
            assert!(row[1].abs() > 0.99 && row[0].abs() < 0.05, "{row:?}");
        }
    }

    #[test]
    fn power_iteration_finds_the_most_sensitive_direction() {
        let d = device();
        // Inputs in R³, two classes; only the first input moves the logits, strongly.
        let w = tensor(vec![4.0, -4.0, 0.1, 0.0, 0.0, 0.1], 3, 2, &d);
        let x = tensor(vec![0.2, -0.1, 0.5, -0.3, 0.4, 0.0], 2, 3, &d);
        let forward = |x: Tensor<2>| x.matmul(w.clone());
        let clean = forward(x.clone());
        let d0 = tensor(vec![0.1, 1.0, 1.0, -0.2, 0.7, -1.0], 2, 3, &d);
        let vat = Vat {
            epsilon: 0.5,
            xi: 1e-3,
            iterations: 5,
            weight: 1.0,
            entmin: false,
        };
        let r = host(vat.perturbation(x.clone(), clean.clone(), d0.clone(), forward));
        for row in r.chunks(3) {
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            assert!((norm - 0.5).abs() < 1e-4, "{row:?}");
            // W's first row dominates: the direction is ± e₁.
            assert!(row[0].abs() > 0.49, "{row:?}");
        }
        // r_vadv raises the KL more than a random direction of the same length does.
        let kl_at = |r: Vec<f32>| {
            scalar(kl_divergence(
                clean.clone(),
                forward(x.clone() + tensor(r, 2, 3, &d)),
            ))
        };
        let random = host(unit_rows(d0) * 0.5);
        assert!(kl_at(r) > 2.0 * kl_at(random));
        // No direction at ε = 0, and bad settings are refused.
        let zero = Vat {
            epsilon: 0.0,
            ..vat
        };
        assert!(
            host(zero.perturbation(x, clean, tensor(vec![1.0; 6], 2, 3, &d), forward))
                .iter()
                .all(|v| *v == 0.0)
        );
        assert!(Vat { xi: 0.0, ..vat }.validate().is_err());
        assert!(
            Vat {
                epsilon: -1.0,
                ..vat
            }
            .validate()
            .is_err()
        );
        assert!(vat.validate().is_ok());
    }
}
