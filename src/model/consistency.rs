//! Consistency regularisation between two noisy passes: the Π-model (Laine and Aila 2017,
//! "Temporal Ensembling for Semi-Supervised Learning", Sec. 2.1) and Mean Teacher (Tarvainen
//! and Valpola 2017, "Mean teachers are better role models").
//!
//! Every example of a batch, labelled or not, passes the encoder twice with independent
//! corruption noise; the cost is the cross-entropy of the first pass on the labelled rows plus
//!
//!   w(t) · (1/C) · mean_i ‖z_i − z̃_i‖²,
//!
//! z and z̃ the two passes' softmax outputs (neither held constant), w(t) ramping up from 0
//! along the Gaussian curve w_max · exp(−5 (1 − T)²), T = t / ramp-up in [0, 1] (Sec. 3.1).
//!
//! Mean Teacher takes z̃ from a teacher instead, held constant: an encoder whose weights are the
//! exponential moving average θ′ ← α θ′ + (1 − α) θ of the student's after every step (eq. 1),
//! with noise of its own; the cost and its ramp-up are the Π-model's.

use burn::prelude::*;
use burn::tensor::activation::softmax;
use serde::{Deserialize, Serialize};

/// The Π-model's settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Consistency {
    /// w_max, the weight of the consistency cost after the ramp-up.
    pub weight: f64,
    /// Epochs of the ramp-up (0: w_max from the start).
    pub rampup_epochs: f64,
    /// α of Mean Teacher's moving average; `None`: the Π-model.
    #[serde(default)]
    pub teacher_decay: Option<f64>,
}

/// The ramp-up factor exp(−5 (1 − T)²) at `t` epochs (fractional) of a `rampup`-epoch ramp.
pub fn rampup(t: f64, rampup: f64) -> f64 {
    if rampup <= 0.0 {
        return 1.0;
    }
    let phase = 1.0 - (t / rampup).clamp(0.0, 1.0);
    (-5.0 * phase * phase).exp()
}

impl Consistency {
    /// w(t) at `t` epochs into training.
    pub fn weight_at(&self, t: f64) -> f64 {
        self.weight * rampup(t, self.rampup_epochs)
    }
}

/// (1/C) · mean over rows of ‖softmax(a) − softmax(b)‖²: the mean over every element.
pub fn squared_difference(a_logits: Tensor<2>, b_logits: Tensor<2>) -> Tensor<1> {
    (softmax(a_logits, 1) - softmax(b_logits, 1))
        .square()
        .mean()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ramp_up_follows_the_gaussian_curve() {
        assert!((rampup(0.0, 80.0) - (-5.0f64).exp()).abs() < 1e-12);
        assert!((rampup(40.0, 80.0) - (-1.25f64).exp()).abs() < 1e-12);
        assert_eq!(rampup(80.0, 80.0), 1.0);
        assert_eq!(rampup(200.0, 80.0), 1.0);
        assert_eq!(rampup(0.0, 0.0), 1.0);
        let c = Consistency {
            weight: 10.0,
            rampup_epochs: 10.0,
            teacher_decay: None,
        };
        let w: Vec<f64> = (0..=12).map(|t| c.weight_at(t as f64)).collect();
        assert!(w.windows(2).all(|p| p[0] <= p[1]), "{w:?}");
        assert_eq!(w[12], 10.0);
    }

    /// softmax(0, 0) = (½, ½) and softmax(ln 3, 0) = (¾, ¼): ((¼)² + (¼)²)/2 = 1/16.
    #[test]
    fn squared_difference_by_hand_and_its_gradient() {
        let device = Device::flex().autodiff();
        let t = |v: Vec<f32>| Tensor::<2>::from_data(TensorData::new(v, [1, 2]), &device);
        let d = squared_difference(t(vec![0.0, 0.0]), t(vec![3f32.ln(), 0.0]));
        assert!((d.into_scalar::<f32>() - 1.0 / 16.0).abs() < 1e-7);
        // ((σ − ¾)² + (¾ − σ)²)/2 = (σ − ¾)² with σ = σ(a₀ − a₁), so ∂/∂a₀ = 2(σ − ¾)σ(1 − σ)
        // = −⅛ at σ = ½, and ∂/∂a₁ = +⅛.
        let g = crate::noise::input_gradient(t(vec![0.0, 0.0]), |a| {
            squared_difference(a, t(vec![3f32.ln(), 0.0]))
        });
        let g = g.into_data().try_to_vec::<f32>().unwrap();
        assert!(
            (g[0] + 0.125).abs() < 1e-6 && (g[1] - 0.125).abs() < 1e-6,
            "{g:?}"
        );
    }
}
