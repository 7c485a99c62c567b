//! Robustness of trained classifiers. [`RobustnessTable`] is the thesis 004's measurement (Sec.
//! 3.4.3): accuracy on the test set perturbed by FGSM, x + ε·sgn ∇ₓC(x, y) with the gradient of
//! the model under test (white box), and by Gaussian noise, x + σ·N(0, 1), pixels not clipped
//! as in 004. `crate::attack::table` holds today's standard: the attacks within a stated threat
//! model, inputs clipped, and the worst case over the attacks per example.

use burn::prelude::*;

use crate::data::Dataset;
use crate::eval::{Classifier, argmax_classes, batch_tensors, error_of};
use crate::model::ladder::cross_entropy;
use crate::noise::{RngStream, fgsm, gaussian_vec, stream_rng};

/// Rows per FGSM pass (each needs a backward pass through the model).
const CHUNK: usize = 1000;

/// A way to perturb the test set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Perturbation {
    /// FGSM with step ε.
    Fgsm(f64),
    /// Additive N(0, σ²) noise.
    Gaussian(f64),
}

/// Accuracy (%) of `clf` on `data` under `p`; the Gaussian noise is drawn from `seed`, so every
/// model sees the same noisy test set. `clf` must live on an autodiff device for FGSM.
pub fn accuracy_under(clf: &impl Classifier, data: &Dataset, p: Perturbation, seed: u64) -> f64 {
    let device = clf.device();
    let all: Vec<usize> = (0..data.len()).collect();
    let mut predicted = Vec::with_capacity(data.len());
    for (c, idx) in all.chunks(CHUNK).enumerate() {
        let (x, y) = batch_tensors(data, idx, &device);
        let x = match p {
            Perturbation::Fgsm(eps) => fgsm(x, eps, |x| cross_entropy(clf.logits(x), y)),
            Perturbation::Gaussian(0.0) => x,
            Perturbation::Gaussian(sigma) => {
                let mut rng = stream_rng(seed, RngStream::Evaluation, c as u64, sigma.to_bits());
                let n = gaussian_vec(&mut rng, idx.len() * data.dim, sigma as f32);
                x + Tensor::from_data(TensorData::new(n, [idx.len(), data.dim]), &device)
            }
        };
        predicted.extend(argmax_classes(clf.logits(x.detach())));
    }
    100.0 - error_of(&predicted, &data.labels)
}

/// Accuracy (%) per model and perturbation level.
#[derive(Debug, Clone, PartialEq)]
pub struct RobustnessTable {
    pub models: Vec<String>,
    pub epsilons: Vec<f64>,
    pub sigmas: Vec<f64>,
    /// `fgsm[m][i]`: model m at `epsilons[i]`.
    pub fgsm: Vec<Vec<f64>>,
    /// `gaussian[m][i]`: model m at `sigmas[i]`.
    pub gaussian: Vec<Vec<f64>>,
}

impl RobustnessTable {
    /// Measures every model at every level.
    pub fn measure<C: Classifier>(
        models: &[(String, C)],
        data: &Dataset,
        epsilons: &[f64],
        sigmas: &[f64],
        seed: u64,
    ) -> Self {
        let sweep = |clf: &C, levels: &[f64], make: fn(f64) -> Perturbation| {
            levels
                .iter()
                .map(|&v| accuracy_under(clf, data, make(v), seed))
                .collect()
        };
        RobustnessTable {
            models: models.iter().map(|(n, _)| n.clone()).collect(),
            epsilons: epsilons.to_vec(),
            sigmas: sigmas.to_vec(),
            fgsm: models
                .iter()
                .map(|(_, c)| sweep(c, epsilons, Perturbation::Fgsm))
                .collect(),
            gaussian: models
                .iter()
                .map(|(_, c)| sweep(c, sigmas, Perturbation::Gaussian))
                .collect(),
        }
    }

    /// `model,perturbation,level,accuracy_percent`, one line per measurement.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("model,perturbation,level,accuracy_percent\n");
        for (m, name) in self.models.iter().enumerate() {
            for (kind, levels, acc) in [
                ("fgsm", &self.epsilons, &self.fgsm[m]),
                ("gaussian", &self.sigmas, &self.gaussian[m]),
            ] {
                for (l, a) in levels.iter().zip(acc) {
                    out.push_str(&format!("{},{kind},{l},{a:.2}\n", csv_field(name)));
                }
            }
        }
        out
    }

    /// Two Markdown tables (FGSM, Gaussian), a row per model and a column per level.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        for (title, symbol, levels, acc) in [
            ("FGSM test set", "ε", &self.epsilons, &self.fgsm),
            ("Gaussian-noise test set", "σ", &self.sigmas, &self.gaussian),
        ] {
            out.push_str(&format!("### Accuracy (%) on the {title}\n\n| model |"));
            for l in levels.iter() {
                out.push_str(&format!(" {symbol} = {l} |"));
            }
            out.push_str("\n| --- |");
            out.push_str(&" ---: |".repeat(levels.len()));
            out.push('\n');
            for (name, row) in self.models.iter().zip(acc.iter()) {
                out.push_str(&format!("| {name} |"));
                for a in row {
                    out.push_str(&format!(" {a:.2} |"));
                }
                out.push('\n');
            }
            out.push('\n');
        }
        out
    }
}

/// A CSV field, quoted when it holds a comma or a quote.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
