//! The learning-rate schedule of the authors' code: constant, then a linear decay to zero.

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

#[cfg(test)]
mod tests {
    use super::*;

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
