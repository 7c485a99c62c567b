//! Square Attack (Andriushchenko et al. 2020, Algorithm 1, L∞): a random search that never
//! reads the model's gradients, only its scores. Where it fools a model that the white-box
//! attacks could not, the model's gradients are misleading (gradient masking).

use rand::Rng;

use crate::attack::{AttackSettings, Inputs, Oracle, Outcome, Threat};
use crate::eval::Classifier;
use crate::noise::{RngStream, stream_rng};

/// The fraction of the image a square covers at query `i` of `queries`: `p_init` halved at
/// the iterations of the paper's schedule, rescaled to the number of queries as AutoAttack
/// does.
fn p_selection(p_init: f64, i: usize, queries: usize) -> f64 {
    let it = (i as f64 / queries as f64 * 10000.0) as usize;
    let halvings = match it {
        0..=10 => 0,
        11..=50 => 1,
        51..=200 => 2,
        201..=500 => 3,
        501..=1000 => 4,
        1001..=2000 => 5,
        2001..=4000 => 6,
        4001..=6000 => 7,
        6001..=8000 => 8,
        _ => 9,
    };
    p_init / f64::from(1u32 << halvings)
}

/// The margin logit_y − max_{k≠y} logit_k of each row: the example is misclassified when it
/// is not positive.
fn margins(logits: &[f32], classes: usize, y: &[u32]) -> Vec<f32> {
    logits
        .chunks(classes)
        .zip(y)
        .map(|(l, &c)| {
            let c = c as usize;
            let other = l
                .iter()
                .enumerate()
                .filter(|&(k, _)| k != c)
                .map(|(_, &v)| v)
                .fold(f32::NEG_INFINITY, f32::max);
            l[c] - other
        })
        .collect()
}

/// Square Attack, L∞: starts from vertical stripes of ±ε and, for each example not yet fooled,
/// tries one random square of ±ε per channel a query, kept when it lowers the margin.
pub fn square<C: Classifier>(
    oracle: &Oracle<'_, C>,
    inputs: Inputs<'_>,
    threat: &Threat,
    settings: &AttackSettings,
) -> Outcome {
    let (dim, y) = (inputs.dim, inputs.y);
    let (c, h, w) = inputs.shape;
    let n = y.len();
    let eps = threat.epsilon as f32;
    let x0 = inputs.x;
    let mut rng = stream_rng(settings.seed, RngStream::Attack, 3, 0);
    let sign = |rng: &mut rand_xoshiro::Xoshiro256PlusPlus| match rng.random::<bool>() {
        true => eps,
        false => -eps,
    };
    // Vertical stripes: one sign per (channel, column), shared by every row of the image.
    let mut best = Vec::with_capacity(x0.len());
    for r in 0..n {
        let stripes: Vec<f32> = (0..c * w).map(|_| sign(&mut rng)).collect();
        for ch in 0..c {
            for row in 0..h {
                for col in 0..w {
                    let k = (ch * h + row) * w + col;
                    best.push(x0[r * dim + k] + stripes[ch * w + col]);
                }
            }
        }
    }
    threat.project(x0, &mut best, dim);
    let (logits, classes) = oracle.logits(&best);
    let mut margin = margins(&logits, classes, y);
    let features = (c * h * w) as f64;
    for i in 0..settings.square_queries {
        let active: Vec<usize> = (0..n).filter(|&r| margin[r] > 0.0).collect();
        if active.is_empty() {
            break;
        }
        let p = p_selection(settings.square_p_init, i, settings.square_queries);
        let side = ((p * features / c as f64).sqrt().round() as usize)
            .max(1)
            .min(h.min(w));
        let mut tried = Vec::with_capacity(active.len() * dim);
        for &r in &active {
            let mut x = best[r * dim..(r + 1) * dim].to_vec();
            let (top, left) = (
                rng.random_range(0..=h - side),
                rng.random_range(0..=w - side),
            );
            for ch in 0..c {
                let s = sign(&mut rng);
                for row in top..top + side {
                    for col in left..left + side {
                        let k = (ch * h + row) * w + col;
                        x[k] = x0[r * dim + k] + s;
                    }
                }
            }
            threat.project(&x0[r * dim..(r + 1) * dim], &mut x, dim);
            tried.extend(x);
        }
        let ys: Vec<u32> = active.iter().map(|&r| y[r]).collect();
        let (logits, _) = oracle.logits(&tried);
        let new = margins(&logits, classes, &ys);
        for (j, &r) in active.iter().enumerate() {
            if new[j] < margin[r] {
                margin[r] = new[j];
                best[r * dim..(r + 1) * dim].copy_from_slice(&tried[j * dim..(j + 1) * dim]);
            }
        }
    }
    Outcome {
        adversarial: best,
        robust: margin.iter().map(|&m| m > 0.0).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_square_size_schedule_halves_as_the_paper_says() {
        assert_eq!(p_selection(0.8, 0, 10000), 0.8);
        assert_eq!(p_selection(0.8, 11, 10000), 0.4);
        assert_eq!(p_selection(0.8, 9000, 10000), 0.8 / 512.0);
        // Rescaled to 1,000 queries: query 100 is iteration 1,000 of the schedule.
        assert_eq!(p_selection(0.8, 100, 1000), 0.8 / 16.0);
    }

    #[test]
    fn margins_by_hand() {
        let m = margins(&[1.0, 3.0, 2.0, 0.5, 0.2, 0.1], 3, &[1, 2]);
        assert_eq!(m, vec![1.0, 0.1 - 0.5]);
    }
}
