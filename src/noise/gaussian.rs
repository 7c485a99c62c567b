//! Gaussian corruption noise, drawn in bulk on the host.

use burn::prelude::*;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::fused::math::{cos_sin_turns, ln};
use crate::fused::widest;

/// The purposes random numbers are drawn for; each gets an independent stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum RngStream {
    Init = 1,
    Split = 2,
    EpochOrder = 3,
    Corruption = 4,
    Adversarial = 5,
    /// Noise of perturbed test sets.
    Evaluation = 6,
    /// Random crops and flips of training images.
    Augmentation = 7,
    /// Random starts and squares of adversarial attacks.
    Attack = 8,
    /// Random starts of virtual adversarial training's power iteration.
    VirtualAdversarial = 9,
}

/// SplitMix64 finaliser: spreads nearby integers over the whole 64-bit range.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A generator for `stream` at position (`a`, `b`) of the run seeded by `seed`: for example
/// (epoch, step) for the noise of one training step.
pub fn stream_rng(seed: u64, stream: RngStream, a: u64, b: u64) -> Xoshiro256PlusPlus {
    let key = mix(mix(mix(seed) ^ stream as u64) ^ a.wrapping_mul(0x1000_0000_01B3)) ^ b;
    Xoshiro256PlusPlus::seed_from_u64(mix(key))
}

/// `n` samples of N(0, std²), by the Box–Muller transform: each 64-bit draw of `rng` gives
/// two 24-bit uniforms u ∈ (0, 1] and t ∈ [0, 1), hence r = √(−2 ln u) and the two
/// independent normals r·cos 2πt and r·sin 2πt. The draws are sequential; the transform is
/// one vectorised pass with branch-free ln, cos and sin. (|z| is at most √(2·24 ln 2) ≈ 5.8:
/// the tail beyond, 8·10⁻⁹ of the mass, is not drawn.)
pub fn gaussian_vec(rng: &mut impl Rng, n: usize, std: f32) -> Vec<f32> {
    let pairs = n.div_ceil(2);
    let words: Vec<u64> = (0..pairs).map(|_| rng.next_u64()).collect();
    let mut out = vec![0f32; 2 * pairs];
    let (cosines, sines) = out.split_at_mut(pairs);
    box_muller(&words, std, cosines, sines);
    out.truncate(n);
    out
}

widest!(box_muller, box_muller_body, (words: &[u64], std: f32, cosines: &mut [f32], sines: &mut [f32]));

#[inline(always)]
fn box_muller_body(words: &[u64], std: f32, cosines: &mut [f32], sines: &mut [f32]) {
    const UNIT: f32 = 1.0 / (1u32 << 24) as f32;
    let n = words.len();
    let (cosines, sines) = (&mut cosines[..n], &mut sines[..n]);
    for i in 0..n {
        let u = ((words[i] >> 40) as u32 + 1) as f32 * UNIT;
        let t = ((words[i] >> 8) as u32 & 0x00ff_ffff) as f32 * UNIT;
        let r = std * (-2.0 * ln(u)).sqrt();
        let (c, s) = cos_sin_turns(t);
        cosines[i] = r * c;
        sines[i] = r * s;
    }
}

/// The additive noise of one corrupted encoder pass: on the input and after each layer's
/// normalisation. A zero std gives `None`, so no work is spent adding zeros.
#[derive(Debug, Clone)]
pub struct CorruptionNoise {
    pub input: Option<Tensor<2>>,
    pub layers: Vec<Option<Tensor<2>>>,
}

/// A row group's share of an input perturbation, for [`CorruptionNoise::perturb_input`].
#[derive(Debug, Clone)]
pub struct InputPerturbation {
    pub rows: usize,
    pub u: Option<Tensor<2>>,
    pub keep_gaussian: bool,
}

/// The values of a [`CorruptionNoise`] on the host: the input's, then each layer's; `None`
/// where the std is 0. Drawing them is independent of the device, so it can happen on
/// another thread ahead of the step that needs them.
#[derive(Debug, Clone, PartialEq)]
pub struct HostNoise {
    pub rows: usize,
    /// Each part's width and values.
    pub parts: Vec<(usize, Option<Vec<f32>>)>,
}

impl HostNoise {
    /// Draws the noise for `rows` examples through layers of `levels` (each layer's width and
    /// noise std, input first).
    pub fn draw(levels: &[(usize, f64)], rows: usize, rng: &mut impl Rng) -> Self {
        let parts = levels
            .iter()
            .map(|&(width, std)| {
                let values = (std > 0.0).then(|| gaussian_vec(rng, rows * width, std as f32));
                (width, values)
            })
            .collect();
        HostNoise { rows, parts }
    }
}

impl CorruptionNoise {
    /// Rows `start..start + len` of every part (the parts must cover them).
    pub fn rows(&self, start: usize, len: usize) -> Self {
        let part = |t: &Option<Tensor<2>>| t.as_ref().map(|t| t.clone().narrow(0, start, len));
        CorruptionNoise {
            input: part(&self.input),
            layers: self.layers.iter().map(part).collect(),
        }
    }

    /// Draws the noise for `rows` examples through layers of `levels` (width and std, input
    /// first).
    pub fn draw(levels: &[(usize, f64)], rows: usize, rng: &mut impl Rng, device: &Device) -> Self {
        CorruptionNoise::from_host(HostNoise::draw(levels, rows, rng), device)
    }

    /// The tensors of host-drawn noise.
    pub fn from_host(host: HostNoise, device: &Device) -> Self {
        let rows = host.rows;
        let mut tensors = host.parts.into_iter().map(|(width, values)| {
            values.map(|v| Tensor::from_data(TensorData::new(v, [rows, width]), device))
        });
        let input = tensors.next().flatten();
        CorruptionNoise {
            input,
            layers: tensors.collect(),
        }
    }

    /// Adds input perturbations group by group (consecutive rows, e.g. labelled then
    /// unlabelled): each group's perturbation u, if any, and whether the Gaussian input noise
    /// stays on its rows (x̃ = x + u + n) or is dropped (x̃ = x + u).
    pub fn perturb_input(
        mut self,
        groups: &[InputPerturbation],
        width: usize,
        device: &Device,
    ) -> Self {
        if groups.iter().all(|g| g.u.is_none() && g.keep_gaussian) {
            return self;
        }
        let mut start = 0;
        let mut parts = Vec::with_capacity(groups.len());
        for g in groups {
            let gaussian = match (&self.input, g.keep_gaussian) {
                (Some(n), true) => Some(n.clone().narrow(0, start, g.rows)),
                _ => None,
            };
            parts.push(match (gaussian, &g.u) {
                (Some(n), Some(u)) => n + u.clone(),
                (Some(n), None) => n,
                (None, Some(u)) => u.clone(),
                (None, None) => Tensor::zeros([g.rows, width], device),
            });
            start += g.rows;
        }
        self.input = Some(Tensor::cat(parts, 0));
        self
    }

    /// `r` added to layer `l`'s noise (0: the input) on rows `start..start + r.rows` of a
    /// pass whose noise covers `rows` rows; a layer without noise gets zeros elsewhere.
    pub fn add_to_rows(mut self, l: usize, (start, rows): (usize, usize), r: Tensor<2>) -> Self {
        let slot = match l {
            0 => &mut self.input,
            l => &mut self.layers[l - 1],
        };
        let rows = slot.as_ref().map_or(rows, |t| t.dims()[0]);
        let [n, width] = r.dims();
        let device = r.device();
        let mut parts = Vec::with_capacity(3);
        if start > 0 {
            parts.push(Tensor::zeros([start, width], &device));
        }
        parts.push(r);
        if rows > start + n {
            parts.push(Tensor::zeros([rows - start - n, width], &device));
        }
        let padded = Tensor::cat(parts, 0);
        *slot = Some(match slot.take() {
            Some(t) => t + padded,
            None => padded,
        });
        self
    }

    /// No corruption at all: the corrupted pass equals the clean one.
    pub fn none(depth: usize) -> Self {
        CorruptionNoise {
            input: None,
            layers: vec![None; depth],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4)
            .map(|_| stream_rng(7, RngStream::Corruption, 3, 5).random())
            .collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let other = [
            stream_rng(8, RngStream::Corruption, 3, 5).random::<u64>(),
            stream_rng(7, RngStream::Init, 3, 5).random::<u64>(),
            stream_rng(7, RngStream::Corruption, 4, 5).random::<u64>(),
            stream_rng(7, RngStream::Corruption, 3, 6).random::<u64>(),
        ];
        for o in other {
            assert_ne!(o, a[0]);
        }
    }

    #[test]
    fn gaussian_has_the_requested_moments() {
        let mut rng = stream_rng(1, RngStream::Corruption, 0, 0);
        let v = gaussian_vec(&mut rng, 200_001, 0.3);
        assert_eq!(v.len(), 200_001);
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
        let kurtosis = v.iter().map(|&x| (x as f64 - mean).powi(4)).sum::<f64>() / n / var.powi(2);
        assert!(mean.abs() < 0.003, "mean {mean}");
        assert!((var.sqrt() - 0.3).abs() < 0.003, "std {}", var.sqrt());
        assert!((kurtosis - 3.0).abs() < 0.05, "kurtosis {kurtosis}");
    }

    /// The distribution function of the draws against Φ at several points (a Kolmogorov
    /// distance well below what 10⁶ draws allow by chance), and the two halves of each pair
    /// uncorrelated.
    #[test]
    fn gaussian_follows_the_normal_distribution() {
        let mut rng = stream_rng(2, RngStream::Corruption, 1, 1);
        let n = 1_000_000;
        let mut v = gaussian_vec(&mut rng, n, 1.0);
        let pairs = n / 2;
        let corr = (0..pairs)
            .map(|i| (v[i] * v[pairs + i]) as f64)
            .sum::<f64>()
            / pairs as f64;
        assert!(corr.abs() < 0.005, "correlation {corr}");
        v.sort_by(f32::total_cmp);
        // Φ(x) at x = −3, −2, −1, −0.5, 0, 0.5, 1, 2, 3.
        let phi = [
            (-3.0, 0.001_349_9),
            (-2.0, 0.022_750_1),
            (-1.0, 0.158_655_3),
            (-0.5, 0.308_537_5),
            (0.0, 0.5),
            (0.5, 0.691_462_5),
            (1.0, 0.841_344_7),
            (2.0, 0.977_249_9),
            (3.0, 0.998_650_1),
        ];
        for (x, want) in phi {
            let below = v.partition_point(|&z| z < x) as f64 / n as f64;
            assert!((below - want).abs() < 0.002, "F({x}) = {below}, Φ = {want}");
        }
    }
}
