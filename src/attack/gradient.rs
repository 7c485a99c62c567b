//! The white-box attacks: they follow the gradient of the cross-entropy with respect to the
//! input, and every point they step to is projected back into the threat set.

use rand::Rng;

use crate::attack::{AttackSettings, Inputs, Norm, Oracle, Outcome, Threat, normalised};
use crate::eval::Classifier;
use crate::noise::{RngStream, gaussian_vec, stream_rng};

/// The fast gradient method: x' = P(x + ε·d(∇ₓC)), with d = sgn for L∞ (FGSM, Goodfellow et
/// al. 2015) and d = ∇/‖∇‖₂ for L2 (the fast gradient method of Miyato et al.).
pub fn fgm<C: Classifier>(oracle: &Oracle<'_, C>, inputs: Inputs<'_>, threat: &Threat) -> Outcome {
    let a = oracle.answer(inputs.x, inputs.y);
    let adversarial = step(
        inputs.x,
        inputs.x,
        &a.grad,
        threat.epsilon as f32,
        threat,
        inputs.dim,
    );
    let robust = oracle.correct(&adversarial, inputs.y);
    Outcome {
        adversarial,
        robust,
    }
}

/// P(x + size·d(g)) around `x0`.
fn step(x0: &[f32], x: &[f32], g: &[f32], size: f32, threat: &Threat, dim: usize) -> Vec<f32> {
    let d = threat.direction(g, dim);
    let mut next: Vec<f32> = x.iter().zip(&d).map(|(v, d)| v + size * d).collect();
    threat.project(x0, &mut next, dim);
    next
}

/// A random point of the threat set around each row of `x0`: uniform in the L∞ ball, on the
/// sphere of radius ε for L2 (as AutoAttack starts).
fn random_start(x0: &[f32], threat: &Threat, dim: usize, rng: &mut impl Rng) -> Vec<f32> {
    let eps = threat.epsilon as f32;
    let mut x: Vec<f32> = match threat.norm {
        Norm::Linf => x0
            .iter()
            .map(|&v| v + eps * rng.random_range(-1.0f32..=1.0))
            .collect(),
        Norm::L2 => {
            let noise = gaussian_vec(rng, x0.len(), 1.0);
            let dirs: Vec<f32> = noise.chunks(dim).flat_map(normalised).collect();
            x0.iter().zip(dirs).map(|(v, d)| v + eps * d).collect()
        }
    };
    threat.project(x0, &mut x, dim);
    x
}

/// Rows `rows` of `x` (of `dim` values).
fn pick(x: &[f32], rows: &[usize], dim: usize) -> Vec<f32> {
    rows.iter()
        .flat_map(|&r| x[r * dim..(r + 1) * dim].iter().copied())
        .collect()
}

/// Projected gradient descent (Madry et al. 2018): from a random point of the ball (or the
/// clean input), `steps` steps x ← P(x + α·d(∇ₓC)), α = 2.5 ε / steps unless set; each restart
/// attacks the examples no earlier one has fooled. An example is fooled as soon as any iterate
/// is misclassified (every iterate lies in the threat set), so more iterations never fool fewer
/// examples.
pub fn pgd<C: Classifier>(
    oracle: &Oracle<'_, C>,
    inputs: Inputs<'_>,
    threat: &Threat,
    settings: &AttackSettings,
) -> Outcome {
    let dim = inputs.dim;
    let n = inputs.y.len();
    let eps = threat.epsilon as f32;
    let alpha = settings
        .pgd_step_size
        .map_or(2.5 * eps / settings.pgd_steps as f32, |a| a as f32);
    let mut adversarial = inputs.x.to_vec();
    let mut robust = vec![true; n];
    for restart in 0..settings.pgd_restarts {
        let rows: Vec<usize> = (0..n).filter(|&i| robust[i]).collect();
        if rows.is_empty() {
            break;
        }
        let x0 = pick(inputs.x, &rows, dim);
        let y: Vec<u32> = rows.iter().map(|&r| inputs.y[r]).collect();
        let mut rng = stream_rng(settings.seed, RngStream::Attack, 1, restart as u64);
        let mut x = match settings.pgd_random_start {
            true => random_start(&x0, threat, dim, &mut rng),
            false => x0.clone(),
        };
        let mut fooled = vec![false; rows.len()];
        for it in 0..=settings.pgd_steps {
            let last = it == settings.pgd_steps;
            let (correct, grad) = match last {
                true => (oracle.correct(&x, &y), Vec::new()),
                false => {
                    let a = oracle.answer(&x, &y);
                    (a.correct, a.grad)
                }
            };
            for (j, ok) in correct.iter().enumerate() {
                if !ok && !fooled[j] {
                    fooled[j] = true;
                    let r = rows[j];
                    adversarial[r * dim..(r + 1) * dim].copy_from_slice(&x[j * dim..(j + 1) * dim]);
                }
            }
            if !last {
                x = step(&x0, &x, &grad, alpha, threat, dim);
            }
        }
        for (j, &r) in rows.iter().enumerate() {
            if fooled[j] {
                robust[r] = false;
            } else if restart == 0 {
                adversarial[r * dim..(r + 1) * dim].copy_from_slice(&x[j * dim..(j + 1) * dim]);
            }
        }
    }
    Outcome {
        adversarial,
        robust,
    }
}

/// The checkpoints of APGD's step-size schedule (Croce and Hein 2020, Sec. 3.2) as AutoAttack
/// counts them: the first after 22 % of the iterations, then shorter periods, down to 6 %.
struct Schedule {
    period: usize,
    min_period: usize,
    decrease: usize,
}

impl Schedule {
    fn new(steps: usize) -> Self {
        let at_least_one = |f: f64| ((f * steps as f64) as usize).max(1);
        Schedule {
            period: at_least_one(0.22),
            min_period: at_least_one(0.06),
            decrease: at_least_one(0.03),
        }
    }
}

/// APGD-CE (Croce and Hein 2020, Algorithm 1), as AutoAttack runs it: from a random point of
/// the ball, steps with momentum 0.75 and a per-example step size that starts at 2ε and halves
/// at a checkpoint when the loss rose in fewer than 75 % of the period's steps or neither the
/// step nor the best loss changed since the last one, the run then continuing from the best
/// point. No step size to tune.
pub fn apgd<C: Classifier>(
    oracle: &Oracle<'_, C>,
    inputs: Inputs<'_>,
    threat: &Threat,
    settings: &AttackSettings,
) -> Outcome {
    let (dim, y) = (inputs.dim, inputs.y);
    let n = y.len();
    let steps = settings.apgd_steps;
    let x0 = inputs.x;
    let mut rng = stream_rng(settings.seed, RngStream::Attack, 2, 0);
    let mut x = random_start(x0, threat, dim, &mut rng);
    let a = oracle.answer(&x, y);
    let mut robust = a.correct.clone();
    let mut adversarial = x.clone();
    let (mut grad, mut best_loss) = (a.grad, a.loss);
    let (mut x_best, mut grad_best) = (x.clone(), grad.clone());
    let mut step_size = vec![2.0 * threat.epsilon as f32; n];
    let mut x_old = x.clone();
    let mut losses: Vec<Vec<f32>> = Vec::with_capacity(steps);
    let mut schedule = Schedule::new(steps);
    let mut since_check = 0;
    let mut best_at_check = best_loss.clone();
    let mut reduced_at_check = vec![true; n];
    for i in 0..steps {
        let momentum = if i > 0 { 0.75 } else { 1.0 };
        let mut next = Vec::with_capacity(x.len());
        let d = threat.direction(&grad, dim);
        for r in 0..n {
            let rows = r * dim..(r + 1) * dim;
            let mut z: Vec<f32> = x[rows.clone()]
                .iter()
                .zip(&d[rows.clone()])
                .map(|(v, d)| v + step_size[r] * d)
                .collect();
            threat.project(&x0[rows.clone()], &mut z, dim);
            let mut moved: Vec<f32> = (0..dim)
                .map(|k| {
                    let (xk, zk, ok) = (x[r * dim + k], z[k], x_old[r * dim + k]);
                    xk + momentum * (zk - xk) + (1.0 - momentum) * (xk - ok)
                })
                .collect();
            threat.project(&x0[rows], &mut moved, dim);
            next.extend(moved);
        }
        x_old = std::mem::replace(&mut x, next);
        let a = oracle.answer(&x, y);
        for r in 0..n {
            let rows = r * dim..(r + 1) * dim;
            if !a.correct[r] {
                robust[r] = false;
                adversarial[rows.clone()].copy_from_slice(&x[rows.clone()]);
            }
            if a.loss[r] > best_loss[r] {
                best_loss[r] = a.loss[r];
                x_best[rows.clone()].copy_from_slice(&x[rows.clone()]);
                grad_best[rows.clone()].copy_from_slice(&a.grad[rows]);
            }
        }
        grad = a.grad;
        losses.push(a.loss);
        since_check += 1;
        if since_check == schedule.period {
            for r in 0..n {
                let rises = (0..schedule.period)
                    .filter(|&c| i > c && losses[i - c][r] > losses[i - c - 1][r])
                    .count();
                let oscillating = rises as f64 <= schedule.period as f64 * 0.75;
                let stuck = !reduced_at_check[r] && best_at_check[r] >= best_loss[r];
                let reduce = oscillating || stuck;
                reduced_at_check[r] = reduce;
                best_at_check[r] = best_loss[r];
                if reduce {
                    step_size[r] /= 2.0;
                    let rows = r * dim..(r + 1) * dim;
                    x[rows.clone()].copy_from_slice(&x_best[rows.clone()]);
                    grad[rows.clone()].copy_from_slice(&grad_best[rows]);
                }
            }
            schedule.period = schedule
                .period
                .saturating_sub(schedule.decrease)
                .max(schedule.min_period);
            since_check = 0;
        }
    }
    for (r, _) in robust.iter().enumerate().filter(|(_, ok)| **ok) {
        let rows = r * dim..(r + 1) * dim;
        adversarial[rows.clone()].copy_from_slice(&x_best[rows]);
    }
    Outcome {
        adversarial,
        robust,
    }
}
