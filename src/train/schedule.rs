//! Learning-rate schedules: the Ladder authors' constant-then-linear decay, and the step decay
//! of semantic noise modeling (003 Sec. 4.2).

/// Learning rate during epoch `epoch` (0-based) of `epochs`: `lr0` until `decay_fraction` ×
/// `epochs` epochs have passed, then falling linearly so that it would reach 0 after the last
/// epoch (the original's `LRDecay`, applied after each epoch).
pub fn learning_rate(lr0: f64, epoch: usize, epochs: usize, decay_fraction: f64) -> f64 {
    let start = decay_fraction * epochs as f64;
    let e = epoch as f64;
    if e <= start || epochs as f64 <= start {
        lr0
    } else {
        lr0 * (1.0 - (e - start) / (epochs as f64 - start))
    }
}

/// Learning rate during epoch `epoch` (1-based): `lr0` divided by `factor` after every `every`
/// epochs, the last division after epoch `until` − 1 at the latest (003 Sec. 4.2: ÷5 every 40
/// epochs up to the 120th gives lr0 for epochs 1–40, lr0/5 for 41–80, lr0/25 for 81–120).
pub fn step_decay(lr0: f64, epoch: usize, factor: f64, every: usize, until: usize) -> f64 {
    if every == 0 {
        return lr0;
    }
    let steps = (epoch.max(1) - 1).min(until.saturating_sub(1)) / every;
    lr0 / factor.powi(steps as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_decay_divides_every_forty_epochs_until_the_120th() {
        let lr = |e| step_decay(0.005, e, 5.0, 40, 120);
        assert_eq!(lr(1), 0.005);
        assert_eq!(lr(40), 0.005);
        assert!((lr(41) - 0.001).abs() < 1e-15);
        assert!((lr(80) - 0.001).abs() < 1e-15);
        assert!((lr(81) - 0.0002).abs() < 1e-15);
        assert!((lr(120) - 0.0002).abs() < 1e-15);
        // No further division after the 120th epoch.
        assert!((lr(200) - 0.0002).abs() < 1e-15);
        assert_eq!(step_decay(0.1, 99, 5.0, 0, 120), 0.1);
    }

    #[test]
    fn constant_then_linear_to_zero() {
        assert_eq!(learning_rate(0.002, 0, 150, 0.67), 0.002);
        assert_eq!(learning_rate(0.002, 100, 150, 0.67), 0.002);
        // start = 100.5: epoch 125 is (125 − 100.5)/49.5 of the way down.
        let lr = learning_rate(0.002, 125, 150, 0.67);
        assert!((lr - 0.002 * (1.0 - 24.5 / 49.5)).abs() < 1e-12);
        let last = learning_rate(0.002, 149, 150, 0.67);
        assert!(last > 0.0 && last < 0.0001);
        // Decay from the start when the fraction is 0.
        assert!((learning_rate(1.0, 5, 10, 0.0) - 0.5).abs() < 1e-12);
        // No decay when the fraction is 1.
        assert_eq!(learning_rate(1.0, 9, 10, 1.0), 1.0);
    }
}
