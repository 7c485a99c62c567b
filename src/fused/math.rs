//! Branch-free elementary functions for the fused kernels and the noise sampler.
//!
//! libm's `expf`, `logf` and `sincosf` are called one element at a time; these are written
//! as straight-line arithmetic so that loops over them vectorise (16 lanes under AVX-512).
//! Each is accurate to a few units in the last place over the range it serves; the tests
//! measure them against f64.

/// eˣ without branches, so that loops over it vectorise: x = n·ln 2 + r with |r| ≤ ln 2 / 2,
/// e^r by its degree-6 Taylor polynomial (relative error below 2·10⁻⁷) and 2ⁿ built in the
/// exponent bits. Inputs are clamped to the range where the result is a normal `f32`.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0; // 1.5·2²³: adding it rounds to an integer
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * std::f32::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r / 720.0)))));
    // n sits in the low mantissa bits of `shifted`; moved into the exponent field it is 2ⁿ.
    let two_n = (shifted.to_bits().wrapping_sub(ROUND.to_bits()) + 127) << 23;
    p * f32::from_bits(two_n)
}

/// σ(x) = 1 / (1 + e⁻ˣ), branch-free.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// ln x for positive normal x: x = m·2ᵉ with m in [√½, √2), ln x = e·ln 2 + ln m, ln m by
/// Cephes' degree-9 polynomial in m − 1 (about 1 unit in the last place).
#[inline(always)]
pub fn ln(x: f32) -> f32 {
    let bits = x.to_bits();
    let mut e = ((bits >> 23) & 0xff) as i32 - 127;
    let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    let high = m > std::f32::consts::SQRT_2;
    m = if high { m * 0.5 } else { m };
    e += high as i32;
    let f = m - 1.0;
    let z = f * f;
    let p = 7.037_683_6e-2;
    let p = p * f - 1.151_461_1e-1;
    let p = p * f + 1.167_699_9e-1;
    let p = p * f - 1.242_014_1e-1;
    let p = p * f + 1.424_932_3e-1;
    let p = p * f - 1.666_805_8e-1;
    let p = p * f + 2.000_071_4e-1;
    let p = p * f - 2.499_999_4e-1;
    let p = p * f + 3.333_333e-1;
    let e = e as f32;
    let y = f * z * p - 2.121_944_4e-4 * e - 0.5 * z;
    f + y + 0.693_359_4 * e
}

/// (cos 2πt, sin 2πt) for t in [0, 1): the angle is cut to a quarter turn around the
/// nearest multiple of π/2, where Cephes' polynomials for |φ| ≤ π/4 hold, and the quadrant
/// rotates the pair back.
#[inline(always)]
pub fn cos_sin_turns(t: f32) -> (f32, f32) {
    const ROUND: f32 = 12_582_912.0;
    let quarters = 4.0 * t;
    let shifted = quarters + ROUND;
    let phi = (quarters - (shifted - ROUND)) * std::f32::consts::FRAC_PI_2;
    let z = phi * phi;
    let s = phi + phi * z * (-1.666_665_5e-1 + z * (8.332_161e-3 + z * -1.951_529_6e-4));
    let c = 1.0 - 0.5 * z + z * z * (4.166_664_6e-2 + z * (-1.388_731_6e-3 + z * 2.443_315_7e-5));
    // The quadrant from the low mantissa bits (a float-to-integer cast would not vectorise).
    let q = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    let (a, b) = if q & 1 == 1 { (s, c) } else { (c, s) };
    let cos = if (q + 1) & 2 != 0 { -a } else { a };
    let sin = if q & 2 != 0 { -b } else { b };
    (cos, sin)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exponential against f64 across the range it serves, and at its ends.
    #[test]
    fn fast_exp_is_accurate_to_a_few_ulps() {
        let mut worst = 0f64;
        for i in 0..=200_000 {
            let x = -87.0 + 175.0 * i as f32 / 200_000.0;
            let want = (x as f64).exp();
            worst = worst.max(((exp(x) as f64) - want).abs() / want);
        }
        assert!(worst < 5e-7, "relative error {worst}");
        assert!((0.0..1e-37).contains(&sigmoid(-1000.0)));
        assert_eq!(sigmoid(1000.0), 1.0);
        assert!(sigmoid(f32::NAN).is_nan());
    }

    /// ln against f64 from the smallest normal number to large values, and exactly 0 at 1.
    #[test]
    fn fast_ln_is_accurate_to_a_few_ulps() {
        let mut worst = 0f64;
        let mut x = f32::MIN_POSITIVE;
        while x < 1e30 {
            for k in 0..64 {
                let v = x * (1.0 + k as f32 / 64.0);
                let want = (v as f64).ln();
                let err = ((ln(v) as f64) - want).abs() / want.abs().max(1e-3);
                worst = worst.max(err);
            }
            x *= 1.37;
        }
        assert!(worst < 5e-7, "relative error {worst}");
        assert_eq!(ln(1.0), 0.0);
        assert!((ln(2.0) - std::f32::consts::LN_2).abs() < 1e-7);
    }

    /// cos and sin of 2πt against f64 over a whole turn, and at the quarter turns.
    #[test]
    fn fast_cos_sin_are_accurate_over_a_turn() {
        let mut worst = 0f64;
        for i in 0..(1 << 20) {
            let t = i as f32 / (1 << 20) as f32;
            let angle = std::f64::consts::TAU * t as f64;
            let (c, s) = cos_sin_turns(t);
            worst = worst.max((c as f64 - angle.cos()).abs());
            worst = worst.max((s as f64 - angle.sin()).abs());
        }
        assert!(worst < 3e-7, "absolute error {worst}");
        for (t, want) in [(0.0, (1.0, 0.0)), (0.25, (0.0, 1.0)), (0.5, (-1.0, 0.0))] {
            let (c, s) = cos_sin_turns(t);
            assert!(
                (c - want.0).abs() < 1e-7 && (s - want.1).abs() < 1e-7,
                "{t}"
            );
        }
        let (c, s) = cos_sin_turns(0.75);
        assert!(c.abs() < 1e-7 && (s + 1.0).abs() < 1e-7);
    }
}
