//! The encoder f of Algorithm 1, used twice per step: clean and corrupted, sharing weights.
//!
//! z_pre^(l) = W^(l) h^(l−1) (no bias), z^(l) = N_B(z_pre^(l)) (+ noise in the corrupted pass),
//! h^(l) = φ(γ^(l) ⊙ (z^(l) + β^(l))). β is learnt at every layer, γ only at the softmax top and
//! only with `top_c`: for ReLU a scale is redundant with the next layer's weights.

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::activation::{leaky_relu, relu};
use rand::Rng;

use crate::model::batch_norm::{Moments, normalize_groups, normalize_with};
use crate::model::spec::{Activation, LadderSpec};
use crate::noise::{CorruptionNoise, gaussian_vec};

/// Weights W^(l), biases β^(l) and the optional top scale γ^(L).
#[derive(Module, Debug)]
pub struct Encoder {
    /// W^(l) for l = 1..=L, shape `[d_{l−1}, d_l]`.
    pub weights: Vec<Param<Tensor<2>>>,
    /// β^(l) for l = 1..=L, shape `[1, d_l]`.
    pub betas: Vec<Param<Tensor<2>>>,
    /// γ^(L), shape `[1, d_L]`.
    pub gamma: Option<Param<Tensor<2>>>,
    #[module(skip)]
    pub activation: Activation,
}

/// What one encoder pass leaves for the decoder and the costs.
#[derive(Debug, Clone)]
pub struct EncoderTrace {
    /// z^(0..=L): the (corrupted) input, then each layer's normalised (corrupted) value.
    pub z: Vec<Tensor<2>>,
    /// Batch moments of z_pre^(l), l = 1..=L, one entry per row group.
    pub moments: Vec<Vec<Moments>>,
    /// γ ⊙ (z^(L) + β^(L)): the softmax's input.
    pub logits: Tensor<2>,
}

/// N(0, 1)/√fan_in, the authors' initialisation of linear maps.
pub fn scaled_normal(rows: usize, cols: usize, rng: &mut impl Rng, device: &Device) -> Tensor<2> {
    let data = gaussian_vec(rng, rows * cols, 1.0 / (rows as f32).sqrt());
    Tensor::from_data(TensorData::new(data, [rows, cols]), device)
}

impl Encoder {
    pub fn new(spec: &LadderSpec, rng: &mut impl Rng, device: &Device) -> Self {
        let weights = spec
            .dims
            .windows(2)
            .map(|w| Param::from_tensor(scaled_normal(w[0], w[1], rng, device)))
            .collect();
        let betas = spec.dims[1..]
            .iter()
            .map(|&d| Param::from_tensor(Tensor::zeros([1, d], device)))
            .collect();
        let gamma = spec
            .top_c
            .then(|| Param::from_tensor(Tensor::ones([1, spec.num_classes()], device)));
        Encoder {
            weights,
            betas,
            gamma,
            activation: spec.activation,
        }
    }

    pub fn depth(&self) -> usize {
        self.weights.len()
    }

    /// h^(l) from z^(l): the hidden activation, or at the top the softmax's input.
    fn activate(&self, l: usize, z: Tensor<2>) -> Tensor<2> {
        let shifted = z + self.betas[l - 1].val();
        if l < self.depth() {
            match self.activation {
                Activation::Relu => relu(shifted),
                Activation::Leakyrelu => leaky_relu(shifted, 0.1),
            }
        } else {
            match &self.gamma {
                Some(g) => shifted * g.val(),
                None => shifted,
            }
        }
    }

    /// One training pass over rows made of consecutive `groups` (e.g. labelled then
    /// unlabelled), each normalised with its own batch statistics, corrupted by `noise`.
    pub fn forward(&self, x: Tensor<2>, groups: &[usize], noise: &CorruptionNoise) -> EncoderTrace {
        let mut z0 = x;
        if let Some(n) = &noise.input {
            z0 = z0 + n.clone();
        }
        let mut h = z0.clone();
        let mut z = vec![z0];
        let mut moments = Vec::with_capacity(self.depth());
        for l in 1..=self.depth() {
            let pre = h.matmul(self.weights[l - 1].val());
            let (mut zl, m) = normalize_groups(pre, groups);
            if let Some(n) = &noise.layers[l - 1] {
                zl = zl + n.clone();
            }
            h = self.activate(l, zl.clone());
            z.push(zl);
            moments.push(m);
        }
        EncoderTrace {
            z,
            moments,
            logits: h,
        }
    }

    /// Inference: the clean encoder with fixed per-layer moments (those of the training set).
    pub fn forward_with_moments(&self, x: Tensor<2>, moments: &[Moments]) -> Tensor<2> {
        let mut h = x;
        for l in 1..=self.depth() {
            let z = normalize_with(h.matmul(self.weights[l - 1].val()), &moments[l - 1]);
            h = self.activate(l, z);
        }
        h
    }

    /// Moments of every layer's z_pre over a whole data set, fed in chunks, layer by layer:
    /// layer l's moments are taken after layer l−1 is normalised with the full-set moments, as
    /// the clean encoder at test time sees it.
    pub fn population_moments(&self, chunks: &[Tensor<2>]) -> Vec<Moments> {
        let total: usize = chunks.iter().map(|c| c.dims()[0]).sum();
        let mut h: Vec<Tensor<2>> = chunks.to_vec();
        let mut out = Vec::with_capacity(self.depth());
        for l in 1..=self.depth() {
            let pre: Vec<Tensor<2>> = h
                .into_iter()
                .map(|c| c.matmul(self.weights[l - 1].val()))
                .collect();
            let sum = pre
                .iter()
                .map(|p| p.clone().sum_dim(0))
                .reduce(|a, b| a + b)
                .expect("at least one chunk");
            let mean = sum / total as f64;
            let sq = pre
                .iter()
                .map(|p| (p.clone() - mean.clone()).square().sum_dim(0))
                .reduce(|a, b| a + b)
                .expect("at least one chunk");
            let m = Moments {
                mean,
                var: sq / total as f64,
            };
            h = pre
                .into_iter()
                .map(|p| self.activate(l, normalize_with(p, &m)))
                .collect();
            out.push(m);
        }
        out
    }
}
