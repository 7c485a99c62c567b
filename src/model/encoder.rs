//! The encoder f of Algorithm 1, used twice per step: clean and corrupted, sharing weights.
//!
//! z_pre^(l) = W^(l) h^(l−1) (no bias), z^(l) = N_B(z_pre^(l)) (+ noise in the corrupted pass),
//! h^(l) = φ(γ^(l) ⊙ (z^(l) + β^(l))). β is learnt at every layer but pooling ones (linear, as
//! the thesis 000 Sec. 5.3.4 notes), γ only at the softmax top and only with `top_c`: for ReLU a
//! scale is redundant with the next layer's weights. W^(l) h is a matrix product, a convolution
//! or a pooling (see [`crate::model::layers`]); convolutional layers are normalised per channel.

use burn::module::Param;
use burn::prelude::*;
use rand::Rng;

use crate::data::Pixels;
use crate::model::layers::{LayerGeom, LayerKind};
use crate::model::spec::{Activation, LadderSpec};
use crate::noise::{CorruptionNoise, gaussian_vec};
use crate::ops::activation::bias_activation;
use crate::ops::batch_norm::{Moments, normalize_batch, normalize_with_shaped};
use crate::ops::{Shape, add_per_channel, add_to_leading_rows};

/// Bytes of one layer's outputs over a whole data set that [`Encoder::population_moments`]
/// keeps for the next layer rather than recomputing them chunk by chunk: small enough that the
/// pass adds little to a large data set's own memory (60,000 MNIST images' first layer would
/// take 240 MB), large enough to keep MNIST-10k's layers.
const KEPT_BYTES: usize = 64 << 20;

/// The inputs of a pass over a whole data set, made one chunk at a time, so that the set is
/// never on the device at once.
pub struct ChunkInputs<'a> {
    /// Rows of each chunk.
    pub sizes: Vec<usize>,
    make: Box<dyn Fn(usize) -> Tensor<2> + 'a>,
}

impl<'a> ChunkInputs<'a> {
    /// Chunks already made.
    pub fn of_tensors(chunks: &'a [Tensor<2>]) -> Self {
        ChunkInputs {
            sizes: chunks.iter().map(|c| c.dims()[0]).collect(),
            make: Box::new(|i| chunks[i].clone()),
        }
    }

    /// `rows` (row-major, `dim` wide) in chunks of `per` rows on `device`, each read as floats
    /// when it is made.
    pub fn of_rows(rows: &'a Pixels, dim: usize, per: usize, device: &Device) -> Self {
        let n = rows.len() / dim;
        let device = device.clone();
        ChunkInputs {
            sizes: (0..n.div_ceil(per)).map(|i| per.min(n - i * per)).collect(),
            make: Box::new(move |i| {
                let part = rows.values(i * per * dim..((i + 1) * per).min(n) * dim);
                let shape = [part.len() / dim, dim];
                Tensor::from_data(TensorData::new(part.into_owned(), shape), &device)
            }),
        }
    }

    /// Chunk `i`.
    pub fn chunk(&self, i: usize) -> Tensor<2> {
        (self.make)(i)
    }

    /// Every chunk in order, each made as it is reached.
    pub fn iter(&self) -> impl Iterator<Item = Tensor<2>> + '_ {
        (0..self.sizes.len()).map(|i| self.chunk(i))
    }
}

/// Weights W^(l), biases β^(l) and the optional top scale γ^(L).
#[derive(Module, Debug)]
pub struct Encoder {
    /// W^(l) of the layers that have weights (fully connected and convolution), bottom first:
    /// `[d_{l−1}, d_l]` or `[filters, channels·K·K]`.
    pub weights: Vec<Param<Tensor<2>>>,
    /// β^(l) of the layers that have one (all but pooling), bottom first: `[1, channels_l]`.
    pub betas: Vec<Param<Tensor<2>>>,
    /// γ^(L), shape `[1, d_L]`.
    pub gamma: Option<Param<Tensor<2>>>,
    #[module(skip)]
    pub activation: Activation,
    /// Layers 1..=L with where their weight and β sit in `weights` and `betas`.
    #[module(skip)]
    pub plan: Vec<PlannedLayer>,
}

impl Encoder {
    /// Values per row of the widest layer output.
    pub fn widest_units(&self) -> usize {
        self.plan
            .iter()
            .map(|l| l.geom.output.units())
            .max()
            .unwrap_or(0)
    }
}

/// One encoder layer's geometry and the indices of its parameters.
#[derive(Debug, Clone, Copy)]
pub struct PlannedLayer {
    pub geom: LayerGeom,
    pub weight: Option<usize>,
    pub beta: Option<usize>,
}

/// What one encoder pass leaves for the decoder and the costs.
#[derive(Debug, Clone)]
pub struct EncoderTrace {
    /// z^(0..=L): the (corrupted) input, then each layer's normalised (corrupted) value.
    pub z: Vec<Tensor<2>>,
    /// z_pre^(l), l = 1..=L: each layer's value before normalisation (the clean pass's
    /// batch moments of it normalise the denoising cost).
    pub pre: Vec<Tensor<2>>,
    /// γ ⊙ (z^(L) + β^(L)): the softmax's input.
    pub logits: Tensor<2>,
}

/// N(0, 1)/√fan_in, the authors' initialisation of linear maps.
pub fn scaled_normal(rows: usize, cols: usize, rng: &mut impl Rng, device: &Device) -> Tensor<2> {
    let data = gaussian_vec(rng, rows * cols, 1.0 / (rows as f32).sqrt());
    Tensor::from_data(TensorData::new(data, [rows, cols]), device)
}

/// U(−√(3/fan_in), √(3/fan_in)), the authors' initialisation of convolution filters (unit
/// variance of the output for unit-variance inputs).
pub fn scaled_uniform(
    shape: [usize; 2],
    fan_in: usize,
    rng: &mut impl Rng,
    device: &Device,
) -> Tensor<2> {
    let bound = (3.0 / fan_in as f32).sqrt();
    let data: Vec<f32> = (0..shape[0] * shape[1])
        .map(|_| rng.random_range(-bound..bound))
        .collect();
    Tensor::from_data(TensorData::new(data, shape), device)
}

/// Layer l's initial weights: fully connected maps as [`scaled_normal`], filters as
/// [`scaled_uniform`]; `None` for pooling.
fn initial_weights(geom: &LayerGeom, rng: &mut impl Rng, device: &Device) -> Option<Tensor<2>> {
    let [rows, cols] = geom.kind.weight_shape(geom.input)?;
    Some(match geom.kind {
        LayerKind::Fc { .. } => scaled_normal(rows, cols, rng, device),
        _ => scaled_uniform([rows, cols], geom.kind.fan_in(geom.input), rng, device),
    })
}

impl Encoder {
    pub fn new(spec: &LadderSpec, rng: &mut impl Rng, device: &Device) -> Self {
        let top = spec.depth();
        let mut weights = Vec::new();
        let mut betas = Vec::new();
        let mut plan = Vec::with_capacity(top);
        for (i, geom) in spec.layers.iter().enumerate() {
            let weight = initial_weights(geom, rng, device).map(|w| {
                weights.push(Param::from_tensor(w));
                weights.len() - 1
            });
            let beta = (i + 1 == top || !geom.kind.is_linear()).then(|| {
                let c = geom.output.channels;
                betas.push(Param::from_tensor(Tensor::zeros([1, c], device)));
                betas.len() - 1
            });
            plan.push(PlannedLayer {
                geom: *geom,
                weight,
                beta,
            });
        }
        let gamma = spec
            .top_c
            .then(|| Param::from_tensor(Tensor::ones([1, spec.num_classes()], device)));
        Encoder {
            weights,
            betas,
            gamma,
            activation: spec.activation,
            plan,
        }
    }

    pub fn depth(&self) -> usize {
        self.plan.len()
    }

    /// A copy with parameters of their own (new ids) that take no gradient: Mean Teacher's
    /// teacher at the start.
    pub fn frozen_copy(&self) -> Encoder {
        let copy = |p: &Param<Tensor<2>>| Param::from_tensor(p.val().detach());
        Encoder {
            weights: self.weights.iter().map(copy).collect(),
            betas: self.betas.iter().map(copy).collect(),
            gamma: self.gamma.as_ref().map(copy),
            activation: self.activation,
            plan: self.plan.clone(),
        }
        .no_grad()
    }

    /// θ′ ← α θ′ + (1 − α) θ for every parameter θ′ of `self` and θ of `student` (Mean
    /// Teacher, Tarvainen and Valpola 2017 eq. 1); the result takes no gradient.
    pub fn moving_average(self, student: &Encoder, alpha: f64) -> Encoder {
        let mix = |t: Param<Tensor<2>>, s: &Param<Tensor<2>>| {
            let v = t.val() * alpha + s.val().detach() * (1.0 - alpha);
            Param::from_tensor(v.detach())
        };
        let pairs = |t: Vec<Param<Tensor<2>>>, s: &[Param<Tensor<2>>]| -> Vec<_> {
            t.into_iter().zip(s).map(|(t, s)| mix(t, s)).collect()
        };
        Encoder {
            weights: pairs(self.weights, &student.weights),
            betas: pairs(self.betas, &student.betas),
            gamma: self
                .gamma
                .zip(student.gamma.as_ref())
                .map(|(t, s)| mix(t, s)),
            activation: self.activation,
            plan: self.plan,
        }
        .no_grad()
    }

    /// Shape of layer l's output (l ≥ 1).
    fn shape(&self, l: usize) -> Shape {
        self.plan[l - 1].geom.output
    }

    /// z_pre^(l) from h^(l−1).
    pub(crate) fn pre_activation(&self, l: usize, h: Tensor<2>) -> Tensor<2> {
        let layer = &self.plan[l - 1];
        layer
            .geom
            .encode(h, layer.weight.map(|i| self.weights[i].val()))
    }

    /// h^(l) from z^(l): the hidden activation, or at the top the softmax's input. Pooling
    /// layers are linear and have no β.
    fn activate(&self, l: usize, z: Tensor<2>) -> Tensor<2> {
        let layer = &self.plan[l - 1];
        let Some(beta) = layer.beta.map(|i| self.betas[i].val()) else {
            return z;
        };
        let shape = layer.geom.output;
        if l < self.depth() {
            return bias_activation(z, beta, self.activation.negative_slope(), shape);
        }
        let shifted = add_per_channel(z, beta, shape);
        match &self.gamma {
            Some(g) => shifted * g.val(),
            None => shifted,
        }
    }

    /// One training pass over rows made of consecutive `groups` (e.g. labelled then
    /// unlabelled), each normalised with its own batch statistics, corrupted by `noise`,
    /// which may cover only the first rows: the rows past it pass clean.
    pub fn forward(&self, x: Tensor<2>, groups: &[usize], noise: &CorruptionNoise) -> EncoderTrace {
        let mut z0 = x;
        if let Some(n) = &noise.input {
            z0 = add_to_leading_rows(z0, n.clone());
        }
        let mut h = z0.clone();
        let mut z = vec![z0];
        let mut pres = Vec::with_capacity(self.depth());
        for l in 1..=self.depth() {
            let pre = self.pre_activation(l, h);
            let zl = normalize_batch(
                pre.clone(),
                groups,
                self.shape(l),
                noise.layers[l - 1].clone(),
            );
            h = self.activate(l, zl.clone());
            z.push(zl);
            pres.push(pre);
        }
        EncoderTrace {
            z,
            pre: pres,
            logits: h,
        }
    }

    /// Inference: the clean encoder with fixed per-layer moments (those of the training set).
    pub fn forward_with_moments(&self, x: Tensor<2>, moments: &[Moments]) -> Tensor<2> {
        let mut h = x;
        for l in 1..=self.depth() {
            h = self.activate_with(l, self.pre_activation(l, h), &moments[l - 1]);
        }
        h
    }

    /// h^(l) from z_pre^(l) normalised with fixed moments: one layer of the clean encoder at
    /// test time.
    fn activate_with(&self, l: usize, pre: Tensor<2>, moments: &Moments) -> Tensor<2> {
        self.activate(l, normalize_with_shaped(pre, moments, self.shape(l)))
    }

    /// Moments of every layer's z_pre over a whole data set, fed in chunks, layer by layer:
    /// layer l's moments are taken after layer l−1 is normalised with the full-set moments, as
    /// the clean encoder at test time sees it.
    ///
    /// Each layer's outputs for every chunk are kept for the next layer while they take at
    /// most [`KEPT_BYTES`]; a layer whose outputs would take more (a convolutional layer on a
    /// large data set: 20 GB for Conv-Large's first layers on CIFAR-10's 50,000 images) is
    /// recomputed chunk by chunk from the last kept outputs instead, once for the mean and once
    /// for the variance. Either way every chunk's values, and the sums over them, are the same.
    pub fn population_moments(&self, chunks: &ChunkInputs) -> Vec<Moments> {
        self.population_moments_keeping(chunks, KEPT_BYTES)
    }

    /// [`Self::population_moments`], keeping a layer's outputs up to `kept_bytes`.
    pub(crate) fn population_moments_keeping(
        &self,
        chunks: &ChunkInputs,
        kept_bytes: usize,
    ) -> Vec<Moments> {
        let total: usize = chunks.sizes.iter().sum();
        // The outputs of layer `base` for every chunk; the inputs, made on demand, for 0.
        let (mut base, mut kept): (usize, Option<Vec<Tensor<2>>>) = (0, None);
        let below = |kept: &Option<Vec<Tensor<2>>>, i: usize| match kept {
            Some(k) => k[i].clone(),
            None => chunks.chunk(i),
        };
        let mut out: Vec<Moments> = Vec::with_capacity(self.depth());
        for l in 1..=self.depth() {
            let shape = self.shape(l);
            let (c, s) = (shape.channels, shape.spatial());
            let count = (total * s) as f64;
            let per_channel = |x: Tensor<2>| {
                let n = x.dims()[0];
                x.reshape([n, c, s]).sum_dim(0).sum_dim(2).reshape([1, c])
            };
            let centred = |p: Tensor<2>, mean: &Tensor<2>| {
                let n = p.dims()[0];
                (p.reshape([n, c, s]) - mean.clone().reshape([1, c, 1])).reshape([n, c * s])
            };
            let pre_of = |h: &Tensor<2>| {
                let below = (base + 1..l).fold(h.clone(), |h, k| {
                    self.activate_with(k, self.pre_activation(k, h), &out[k - 1])
                });
                self.pre_activation(l, below)
            };
            let sum_over = |f: &dyn Fn(&Tensor<2>) -> Tensor<2>, pre: Option<&[Tensor<2>]>| {
                let each = |i: usize| match pre {
                    Some(pre) => f(&pre[i]),
                    None => f(&pre_of(&below(&kept, i))),
                };
                (0..chunks.sizes.len())
                    .map(each)
                    .reduce(|a, b| a + b)
                    .expect("at least one chunk")
            };
            let keep = total.saturating_mul(c * s).saturating_mul(4) <= kept_bytes;
            let pre: Option<Vec<Tensor<2>>> = keep.then(|| {
                (0..chunks.sizes.len())
                    .map(|i| pre_of(&below(&kept, i)))
                    .collect()
            });
            let mean = sum_over(&|p| per_channel(p.clone()), pre.as_deref()) / count;
            let sq = sum_over(
                &|p| per_channel(centred(p.clone(), &mean).square()),
                pre.as_deref(),
            );
            let m = Moments {
                mean: mean.clone(),
                var: sq / count,
            };
            if let Some(pre) = pre {
                kept = Some(
                    pre.into_iter()
                        .map(|p| self.activate_with(l, p, &m))
                        .collect(),
                );
                base = l;
            }
            out.push(m);
        }
        out
    }
}
