//! Adversarial corruption: perturbations along the gradient of a cost with respect to the
//! input (Goodfellow et al. 2014; thesis 000, Sec. 5.4 and 6.2).
//!
//! With U = ∂C/∂x at the clean input, the thesis's kinds of noise u = τ·d(U) are
//! - `sign`  (u_SGN, eq. 56): d = sgn U, so ‖u‖∞ = τ;
//! - `grad`  (u_UDG, eq. 57): d = U itself;
//! - `unit`  (u_1N,  eq. 58): d = U/‖U‖₂, so ‖u‖₂ = τ;
//! - `sqrtk` (u_qN,  eq. 59): d = √k·U/‖U‖₂ for x ∈ R^k, the power of the sign noise.
//!
//! Norms are taken per example (per row). U is the gradient of the batch-mean cost, so the raw
//! `grad` kind scales with 1/batch; the normalised kinds do not depend on it.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// How the gradient becomes a direction: eq. 56–59 of the thesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum AdvKind {
    Sign,
    Grad,
    Unit,
    Sqrtk,
}

impl AdvKind {
    /// The four of 000 eq. 56–59.
    pub fn all() -> Vec<AdvKind> {
        crate::choice::all()
    }

    /// d(U), row by row.
    pub fn direction(self, grad: Tensor<2>) -> Tensor<2> {
        let k = grad.dims()[1] as f64;
        match self {
            AdvKind::Sign => grad.sign(),
            AdvKind::Grad => grad,
            AdvKind::Unit => unit_rows(grad),
            AdvKind::Sqrtk => unit_rows(grad) * k.sqrt(),
        }
    }
}

/// U/‖U‖₂ per row; a zero row stays zero instead of becoming NaN.
pub fn unit_rows(u: Tensor<2>) -> Tensor<2> {
    let norm = u
        .clone()
        .square()
        .sum_dim(1)
        .sqrt()
        .clamp_min(f32::MIN_POSITIVE);
    u / norm
}

crate::named_choice!(AdvKind, "adversarial noise kind");

/// One adversarial corruption setting: u = τ·d(U), with or without the Gaussian noise n on the
/// same rows (x̃ = x + u or x̃ = x + u + n).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Adversarial {
    pub kind: AdvKind,
    pub tau: f64,
    pub with_gaussian: bool,
}

impl Adversarial {
    /// u = τ·d(U), detached from the graph: the perturbation is an input, not a function of
    /// the weights.
    pub fn perturbation(&self, grad: Tensor<2>) -> Tensor<2> {
        (self.kind.direction(grad.detach()) * self.tau).detach()
    }
}

/// ∂cost/∂x at `x`. `cost` must build its graph on an autodiff device; only the path to x
/// is needed, so callers pass modules with `no_grad()` parameters to skip weight gradients.
pub fn input_gradient(x: Tensor<2>, cost: impl FnOnce(Tensor<2>) -> Tensor<1>) -> Tensor<2> {
    // `x` may come from an earlier gradient, which lives off the autodiff graph.
    let x = x.detach().autodiff().require_grad();
    let grads = cost(x.clone()).backward();
    x.grad(&grads)
        .expect("the input requires a gradient")
        .detach()
}

/// x + ε·sgn ∂C/∂x: the fast gradient sign method (Goodfellow et al. 2014, 004 Sec. 3.2).
pub fn fgsm(x: Tensor<2>, epsilon: f64, cost: impl FnOnce(Tensor<2>) -> Tensor<1>) -> Tensor<2> {
    if epsilon == 0.0 {
        return x;
    }
    let g = input_gradient(x.clone(), cost);
    x.detach() + g.sign() * epsilon
}

/// Projected gradient ascent on `cost` for training (Madry et al. 2018; TRADES' inner
/// maximisation): from `start`, `steps` steps x ← P(x + α·sgn ∂cost/∂x), P the projection onto
/// the L∞ ball of radius ε around `x` within `bounds`. Returns the last iterate, detached.
pub fn pgd_linf(
    x: Tensor<2>,
    start: Tensor<2>,
    (epsilon, alpha, steps): (f64, f64, usize),
    bounds: (f32, f32),
    cost: impl Fn(Tensor<2>) -> Tensor<1>,
) -> Tensor<2> {
    let x = x.detach();
    let lower = (x.clone() - epsilon).clamp_min(bounds.0);
    let upper = (x + epsilon).clamp_max(bounds.1);
    let project = |v: Tensor<2>| v.max_pair(lower.clone()).min_pair(upper.clone());
    let mut v = project(start.detach());
    for _ in 0..steps {
        let g = input_gradient(v.clone(), &cost);
        v = project(v + g.sign() * alpha);
    }
    v.detach()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> Device {
        Device::flex().autodiff()
    }

    fn rows(t: Tensor<2>) -> Vec<Vec<f32>> {
        let [_, k] = t.dims();
        t.into_data()
            .try_to_vec::<f32>()
            .unwrap()
            .chunks(k)
            .map(|r| r.to_vec())
            .collect()
    }

    #[test]
    fn directions_have_the_defining_norms() {
        let g = Tensor::<2>::from_data([[3.0, -4.0, 0.0, 0.0], [0.5, 0.0, -0.5, 2.0]], &device());
        let tau = 0.1;
        for kind in AdvKind::all() {
            let adv = Adversarial {
                kind,
                tau,
                with_gaussian: false,
            };
            for (r, grow) in rows(adv.perturbation(g.clone()))
                .iter()
                .zip(rows(g.clone()))
            {
                let l2 = r.iter().map(|v| v * v).sum::<f32>().sqrt() as f64;
                let linf = r.iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
                match kind {
                    AdvKind::Sign => {
                        assert!((linf - tau).abs() < 1e-7, "{kind}: {r:?}");
                        for (a, b) in r.iter().zip(&grow) {
                            let expected = if *b == 0.0 {
                                0.0
                            } else {
                                b.signum() * tau as f32
                            };
                            assert_eq!(*a, expected);
                        }
                    }
                    AdvKind::Grad => {
                        for (a, b) in r.iter().zip(&grow) {
                            assert!((*a as f64 - tau * *b as f64).abs() < 1e-7);
                        }
                    }
                    AdvKind::Unit => assert!((l2 - tau).abs() < 1e-6, "{kind}: {l2}"),
                    AdvKind::Sqrtk => assert!((l2 - tau * 2.0).abs() < 1e-6, "{kind}: {l2}"),
                }
            }
        }
    }

    #[test]
    fn a_zero_gradient_gives_no_perturbation() {
        let g = Tensor::<2>::zeros([2, 3], &device());
        for kind in AdvKind::all() {
            let adv = Adversarial {
                kind,
                tau: 1.0,
                with_gaussian: false,
            };
            let u = rows(adv.perturbation(g.clone()));
            assert!(u.iter().flatten().all(|&v| v == 0.0), "{kind}: {u:?}");
        }
    }

    #[test]
    fn input_gradient_of_a_quadratic() {
        // C = mean over rows of Σ_j c_j x_j², so ∂C/∂x = 2 c x / rows.
        let dev = device();
        let x = Tensor::<2>::from_data([[1.0, -2.0], [0.5, 3.0]], &dev);
        let c = Tensor::<2>::from_data([[1.0, 0.5]], &dev);
        let g = input_gradient(x, |x| (x.square() * c).sum_dim(1).mean());
        assert_eq!(rows(g), vec![vec![1.0, -1.0], vec![0.5, 1.5]]);
    }

    #[test]
    fn fgsm_at_zero_epsilon_changes_nothing() {
        let dev = device();
        let x = Tensor::<2>::from_data([[0.2, 0.4]], &dev);
        let same = fgsm(x.clone(), 0.0, |x| x.sum());
        assert_eq!(rows(same), rows(x.clone()));
        let moved = fgsm(x, 0.1, |x| {
            (x * Tensor::from_data([[1.0, -1.0]], &dev)).sum()
        });
        let m = &rows(moved)[0];
        assert!(
            (m[0] - 0.3).abs() < 1e-6 && (m[1] - 0.3).abs() < 1e-6,
            "{m:?}"
        );
    }

    /// By hand: a linear cost Σ c·x has gradient sign sgn c everywhere, so PGD walks each
    /// value to x₀ + ε·sgn c in steps of α, clipped to the box: from [0.2, 0.4, 0.95] with
    /// c = [1, −1, 1], ε 0.1, α 0.04 and 5 steps, [0.3, 0.3, 1.0] (the box caps the last).
    #[test]
    fn pgd_walks_to_the_corner_of_the_ball_inside_the_box() {
        let dev = device();
        let x = Tensor::<2>::from_data([[0.2, 0.4, 0.95]], &dev);
        let c = Tensor::<2>::from_data([[1.0, -1.0, 1.0]], &dev);
        let cost = |v: Tensor<2>| (v * c.clone()).sum();
        let out = pgd_linf(x.clone(), x.clone(), (0.1, 0.04, 5), (0.0, 1.0), cost);
        let v = &rows(out)[0];
        let want = [0.3, 0.3, 1.0];
        assert!(
            v.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6),
            "{v:?}"
        );
        // Two steps of 0.04 are not yet at the corner: 0.28, 0.32, 1.0.
        let out = pgd_linf(x.clone(), x, (0.1, 0.04, 2), (0.0, 1.0), cost);
        let v = &rows(out)[0];
        let want = [0.28, 0.32, 1.0];
        assert!(
            v.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6),
            "{v:?}"
        );
    }

    #[test]
    fn kinds_parse_and_print() {
        for k in AdvKind::all() {
            assert_eq!(k.to_string().parse::<AdvKind>().unwrap(), k);
        }
        assert!("sgn".parse::<AdvKind>().unwrap_err().contains("sign, grad"));
    }
}
