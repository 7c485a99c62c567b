//! Adversarial attacks on a trained classifier, for robustness evaluation to today's standard.
//!
//! The threat model ([`Threat`]) is stated and enforced: an adversarial input lies within an L∞
//! or L2 ball of radius ε around the clean input, in the model's input space, and inside the
//! valid box of inputs (the pixel range [0, 1] of images; the range of the data after
//! preprocessing otherwise). The thesis 004's unclipped FGSM has no box and stays available
//! (`eval::robustness`), labelled as such.
//!
//! The attacks, always on the deterministic inference network (population batch-norm
//! statistics, no noise), each batched over examples:
//! - [`gradient::fgm`]: the fast gradient (sign) method, one step of size ε (Goodfellow et al.
//!   2015; Miyato et al.'s L2 form);
//! - [`gradient::pgd`]: projected gradient descent with a random start and restarts (Madry et
//!   al. 2018);
//! - [`gradient::apgd`]: APGD-CE, step-size-free (Croce and Hein 2020, Algorithm 1), the default
//!   strong white-box attack;
//! - [`square::square`]: Square Attack (Andriushchenko et al. 2020, L∞), gradient-free, to expose
//!   gradient masking.
//!
//! [`table::AttackTable`] measures models under every attack and radius.
//!
//! An example counts as robust to an attack when the model classifies it correctly both clean
//! and at every point the attack tried (as AutoAttack and RobustBench count); the worst case
//! over attacks is then the conjunction, per example.

pub mod gradient;
pub mod square;
pub mod table;

pub use table::{AttackTable, image_layout, input_box};

use burn::prelude::*;
use burn::tensor::activation::log_softmax;

use crate::error::{LadderError, Result};
use crate::eval::{Classifier, argmax};

/// The norm of the threat model's ball.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Norm {
    /// max_i |δ_i| ≤ ε.
    Linf,
    /// ‖δ‖₂ ≤ ε.
    L2,
}

crate::named_choice!(Norm, "norm");

/// Which attack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AttackKind {
    /// One step of size ε along the gradient's sign (L∞) or direction (L2), clipped.
    Fgsm,
    /// Projected gradient descent (Madry et al. 2018).
    Pgd,
    /// APGD-CE (Croce and Hein 2020).
    Apgd,
    /// Square Attack (Andriushchenko et al. 2020), gradient-free; L∞ only.
    Square,
}

crate::named_choice!(AttackKind, "attack");

impl AttackKind {
    /// Whether the attack follows the model's gradients.
    pub fn is_white_box(self) -> bool {
        self != AttackKind::Square
    }
}

/// Perturbations of norm at most `epsilon` around the clean input, the result inside `bounds`
/// (`None`: unclipped, as in the thesis 004).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threat {
    pub norm: Norm,
    pub epsilon: f64,
    pub bounds: Option<(f32, f32)>,
}

impl Threat {
    pub fn validate(&self) -> Result<()> {
        if !(self.epsilon.is_finite() && self.epsilon >= 0.0) {
            return Err(LadderError::Setting(format!(
                "the attack radius ε = {} must be a finite number ≥ 0",
                self.epsilon
            )));
        }
        if let Some((lo, hi)) = self.bounds
            && !(lo.is_finite() && hi.is_finite() && lo <= hi)
        {
            return Err(LadderError::Setting(format!(
                "the input box [{lo}, {hi}] is empty or not finite"
            )));
        }
        Ok(())
    }

    /// Moves each row of `x` (rows of `dim` values) into the ball around the same row of `x0`,
    /// then into the box. Clipping to the box only moves values towards `x0` (which lies in
    /// it), so the result stays in the ball.
    pub fn project(&self, x0: &[f32], x: &mut [f32], dim: usize) {
        let eps = self.epsilon as f32;
        for (r0, r) in x0.chunks(dim).zip(x.chunks_mut(dim)) {
            match self.norm {
                Norm::Linf => {
                    for (v, &c) in r.iter_mut().zip(r0) {
                        *v = v.clamp(c - eps, c + eps);
                    }
                }
                Norm::L2 => {
                    let norm = r
                        .iter()
                        .zip(r0)
                        .map(|(v, c)| (v - c) * (v - c))
                        .sum::<f32>();
                    let norm = norm.sqrt();
                    if norm > eps {
                        let k = eps / norm;
                        for (v, &c) in r.iter_mut().zip(r0) {
                            *v = c + (*v - c) * k;
                        }
                    }
                }
            }
            if let Some((lo, hi)) = self.bounds {
                for v in r.iter_mut() {
                    *v = v.clamp(lo, hi);
                }
            }
        }
    }

    /// Whether every row of `x` lies in the threat set around `x0`, up to `tol`.
    pub fn contains(&self, x0: &[f32], x: &[f32], dim: usize, tol: f32) -> bool {
        let eps = self.epsilon as f32;
        x0.chunks(dim).zip(x.chunks(dim)).all(|(r0, r)| {
            let in_box = self
                .bounds
                .is_none_or(|(lo, hi)| r.iter().all(|&v| v >= lo - tol && v <= hi + tol));
            let d = r.iter().zip(r0).map(|(v, c)| v - c);
            let in_ball = match self.norm {
                Norm::Linf => d.map(f32::abs).fold(0.0, f32::max) <= eps + tol,
                Norm::L2 => d.map(|v| v * v).sum::<f32>().sqrt() <= eps + tol,
            };
            in_box && in_ball
        })
    }

    /// The steepest-ascent direction of `g` for this norm, row by row: sgn g (L∞) or g/‖g‖₂.
    fn direction(&self, g: &[f32], dim: usize) -> Vec<f32> {
        match self.norm {
            Norm::Linf => g.iter().map(|&v| sign(v)).collect(),
            Norm::L2 => g.chunks(dim).flat_map(normalised).collect(),
        }
    }
}

fn sign(v: f32) -> f32 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// `r / (‖r‖₂ + 1e-12)`.
fn normalised(r: &[f32]) -> Vec<f32> {
    let n = r.iter().map(|v| v * v).sum::<f32>().sqrt() + 1e-12;
    r.iter().map(|v| v / n).collect()
}

/// The settings of the attacks (the published defaults where there are any).
#[derive(Debug, Clone, PartialEq)]
pub struct AttackSettings {
    /// PGD's iterations.
    pub pgd_steps: usize,
    /// PGD's random restarts (each from a random point of the ball).
    pub pgd_restarts: usize,
    /// PGD's step size; `None`: 2.5 ε / steps (Madry et al.).
    pub pgd_step_size: Option<f64>,
    /// Start PGD from a random point of the ball rather than the clean input.
    pub pgd_random_start: bool,
    /// APGD's iterations (100 in AutoAttack).
    pub apgd_steps: usize,
    /// Square Attack's queries per example (5,000 in AutoAttack).
    pub square_queries: usize,
    /// Square Attack's initial fraction of the image a square covers (0.8 in AutoAttack).
    pub square_p_init: f64,
    /// Seeds the random starts and the squares.
    pub seed: u64,
}

impl Default for AttackSettings {
    fn default() -> Self {
        AttackSettings {
            pgd_steps: 40,
            pgd_restarts: 1,
            pgd_step_size: None,
            pgd_random_start: true,
            apgd_steps: 100,
            square_queries: 1000,
            square_p_init: 0.8,
            seed: 1,
        }
    }
}

impl AttackSettings {
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(LadderError::Setting(what.into()));
        if self.pgd_steps == 0 || self.apgd_steps == 0 || self.square_queries == 0 {
            return bad("PGD and APGD need at least one step and Square Attack one query");
        }
        if self.pgd_restarts == 0 {
            return bad("PGD needs at least one start (--pgd-restarts ≥ 1)");
        }
        if self
            .pgd_step_size
            .is_some_and(|a| !(a.is_finite() && a > 0.0))
        {
            return bad("PGD's step size must be a finite number > 0");
        }
        if !(self.square_p_init > 0.0 && self.square_p_init <= 1.0) {
            return bad("Square Attack's p_init must lie in (0, 1]");
        }
        Ok(())
    }
}

/// Test inputs to attack: `x` holds `y.len()` rows of `dim` values, each an image of
/// `shape` = (channels, height, width) (a vector of d values is 1 × 1 × d).
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub x: &'a [f32],
    pub y: &'a [u32],
    pub dim: usize,
    pub shape: (usize, usize, usize),
}

/// What an attack found: an input per example (adversarial where it fooled the model) and
/// whether the model still classified the example correctly everywhere the attack looked.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub adversarial: Vec<f32>,
    pub robust: Vec<bool>,
}

/// Runs `kind` on `inputs` within `threat`.
pub fn attack(
    clf: &impl Classifier,
    inputs: Inputs<'_>,
    threat: &Threat,
    kind: AttackKind,
    settings: &AttackSettings,
) -> Result<Outcome> {
    threat.validate()?;
    settings.validate()?;
    if kind == AttackKind::Square && threat.norm != Norm::Linf {
        return Err(LadderError::Setting(
            "Square Attack is implemented for the L∞ norm only".into(),
        ));
    }
    let oracle = Oracle::new(clf, inputs.dim);
    let clean = oracle.correct(inputs.x, inputs.y);
    let mut outcome = match kind {
        AttackKind::Fgsm => gradient::fgm(&oracle, inputs, threat),
        AttackKind::Pgd => gradient::pgd(&oracle, inputs, threat, settings),
        AttackKind::Apgd => gradient::apgd(&oracle, inputs, threat, settings),
        AttackKind::Square => square::square(&oracle, inputs, threat, settings),
    };
    for (r, c) in outcome.robust.iter_mut().zip(clean) {
        *r &= c;
    }
    Ok(outcome)
}

/// Rows per pass through the model (each with a backward pass for the gradient attacks).
const CHUNK: usize = 1000;

/// The model as the attacks query it: logits, and per-example cross-entropy with its input
/// gradient, on host data.
pub struct Oracle<'a, C> {
    clf: &'a C,
    dim: usize,
    device: Device,
}

/// The model's answer at a batch of points.
pub(crate) struct Answer {
    /// Per-example cross-entropy −log p(y|x).
    pub loss: Vec<f32>,
    /// ∂(Σ loss)/∂x, rows of `dim`.
    pub grad: Vec<f32>,
    /// Whether the argmax class is y.
    pub correct: Vec<bool>,
}

impl<'a, C: Classifier> Oracle<'a, C> {
    pub fn new(clf: &'a C, dim: usize) -> Self {
        Oracle {
            clf,
            dim,
            device: clf.device(),
        }
    }

    fn tensor(&self, x: &[f32]) -> Tensor<2> {
        let n = x.len() / self.dim;
        Tensor::from_data(TensorData::new(x.to_vec(), [n, self.dim]), &self.device)
    }

    /// The logits at `x`, row by row (`classes` per row).
    pub(crate) fn logits(&self, x: &[f32]) -> (Vec<f32>, usize) {
        let mut out = Vec::new();
        let mut classes = 0;
        for rows in x.chunks(CHUNK * self.dim) {
            let logits = self.clf.logits(self.tensor(rows)).detach();
            classes = logits.dims()[1];
            out.extend(host(logits));
        }
        (out, classes)
    }

    /// Whether the model classifies each row of `x` as its `y`.
    pub(crate) fn correct(&self, x: &[f32], y: &[u32]) -> Vec<bool> {
        let (logits, k) = self.logits(x);
        logits
            .chunks(k)
            .zip(y)
            .map(|(l, &c)| argmax(l) == c as usize)
            .collect()
    }

    /// Loss, input gradient and correctness at `x`.
    pub(crate) fn answer(&self, x: &[f32], y: &[u32]) -> Answer {
        let mut a = Answer {
            loss: Vec::with_capacity(y.len()),
            grad: Vec::with_capacity(x.len()),
            correct: Vec::with_capacity(y.len()),
        };
        for (rows, labels) in x.chunks(CHUNK * self.dim).zip(y.chunks(CHUNK)) {
            let xt = self.tensor(rows).require_grad();
            let logits = self.clf.logits(xt.clone());
            let n = labels.len();
            let yt: Vec<i64> = labels.iter().map(|&c| c as i64).collect();
            let yt = Tensor::<1, Int>::from_data(TensorData::new(yt, [n]), &self.device);
            let loss = log_softmax(logits.clone(), 1)
                .gather(1, yt.reshape([n, 1]))
                .neg()
                .reshape([n]);
            let grads = loss.clone().sum().backward();
            a.grad
                .extend(host(xt.grad(&grads).expect("the input is tracked")));
            a.loss.extend(host(loss.detach()));
            let l = host(logits.detach());
            let k = l.len() / n;
            a.correct.extend(
                l.chunks(k)
                    .zip(labels)
                    .map(|(r, &c)| argmax(r) == c as usize),
            );
        }
        a
    }
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32 values")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projection_lands_in_the_ball_and_the_box() {
        let x0 = [0.5f32, 0.0, 1.0, 0.2];
        for norm in [Norm::Linf, Norm::L2] {
            let t = Threat {
                norm,
                epsilon: 0.3,
                bounds: Some((0.0, 1.0)),
            };
            let mut x = [1.5f32, -0.7, 0.4, 0.9];
            t.project(&x0, &mut x, 4);
            assert!(t.contains(&x0, &x, 4, 1e-6), "{norm}: {x:?}");
            assert!(x.iter().all(|v| (0.0..=1.0).contains(v)));
        }
        // By hand, L∞: [0.8, 0, 0.7, 0.5]; L2: δ = [1, −0.7, −0.6, 0.7] of norm √2.34 scaled
        // to 0.3, then clipped.
        let t = Threat {
            norm: Norm::Linf,
            epsilon: 0.3,
            bounds: Some((0.0, 1.0)),
        };
        let mut x = [1.5f32, -0.7, 0.4, 0.9];
        t.project(&x0, &mut x, 4);
        let want = [0.8f32, 0.0, 0.7, 0.5];
        assert!(
            x.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6),
            "{x:?}"
        );
        let unclipped = Threat { bounds: None, ..t };
        let mut x = [1.5f32, -0.7, 0.4, 0.9];
        unclipped.project(&x0, &mut x, 4);
        assert!((x[1] + 0.3).abs() < 1e-6, "{x:?}");
    }

    #[test]
    fn l2_directions_have_unit_norm() {
        let t = Threat {
            norm: Norm::L2,
            epsilon: 1.0,
            bounds: None,
        };
        let d = t.direction(&[3.0, 4.0, 0.0, 0.0, 0.0, 0.0], 3);
        assert!((d[0] - 0.6).abs() < 1e-6 && (d[1] - 0.8).abs() < 1e-6);
        assert_eq!(&d[3..], &[0.0, 0.0, 0.0]);
    }
}
