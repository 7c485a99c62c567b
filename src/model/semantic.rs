//! The network of semantic noise modeling (paper 003): a feed-forward classifier x → z → y
//! with decoding paths whose weights are tied to the encoder's (Fig. 4), its reconstruction
//! costs, and the random and class-conditional perturbations of the latent z (eq. 6–9).
//!
//! Layers 1..=L map h^(l−1) to h^(l): h^(0) = x, h^(l) = ReLU(W_l ⋆ h^(l−1) + b_l) for l < L,
//! and the output layer gives the logits W_L h^(L−1) + b_L whose softmax is y. The latent z
//! is h^(L−1), the last hidden layer. The decoding map of layer l goes back the other way with
//! the *same* W_l transposed (a transposed convolution for a convolution) and a bias of its
//! own: g_l(a) = φ(W_lᵀ ⋆ a + b′_l), φ being ReLU except down to the input, which is linear
//! (the inputs are mean-subtracted, so they are not positive).
//!
//! The six models of Table 1 differ only in their cost:
//! - `feedforward`, eq. (10): NLL(y, t);
//! - `recon-one`, eq. (11): λ·L2(x, x_R) + NLL(y, t), with x_R decoded from z;
//! - `recon-all`, eq. (12): λ₀·L2(x, x_R) + Σᵢ λᵢ·L2(hᵢ, hᵢ_R) + NLL(y, t), every hidden layer
//!   below z reconstructed on the same decoding path from z;
//! - `proposed-base`, eq. (5): λ₁·L2(x, x_R) + λ₂·L2(z, z_R) + λ₃·NLL(y, t), z_R = g_L(y);
//! - `perturb-random` and `perturb-class`, eq. (7): eq. (5) + NLL(ŷ, t), ŷ = softmax(f_θ2(z′)),
//!   z′ = z + z_e, with z_e random (on z) or class-conditional (on y, eq. 9).
//!
//! L2(a, b) is the squared error summed over an example's units and averaged over the batch.

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::activation::{relu, softmax};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{LadderError, Result};
use crate::model::encoder::scaled_uniform;
use crate::model::ladder::cross_entropy;
use crate::model::layers::{LayerGeom, LayerKind};
use crate::ops::Shape;
use crate::ops::add_per_channel;

/// The models of 003 Table 1.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum SemanticModel {
    /// Eq. (10): the classifier alone.
    Feedforward,
    /// Eq. (11): plus the reconstruction of the input from z.
    ReconOne,
    /// Eq. (12): plus the reconstruction of every layer below z.
    ReconAll,
    /// Eq. (5): the input reconstructed from z and z from y.
    ProposedBase,
    /// Eq. (7) with z_e Gaussian noise on the scaled z.
    PerturbRandom,
    /// Eq. (7) with z_e decoded from Gaussian noise on the scaled y (eq. 9).
    PerturbClass,
}

impl SemanticModel {
    /// All six, in the order of Table 1.
    pub fn all() -> Vec<SemanticModel> {
        crate::choice::all()
    }

    /// The row label of Table 1.
    pub fn table_label(self) -> &'static str {
        match self {
            SemanticModel::Feedforward => "feed-forward model; Fig. 2(a)",
            SemanticModel::ReconOne => "joint learning model with recon-one; Fig. 2(b)",
            SemanticModel::ReconAll => "joint learning model with recon-all; Fig. 2(b)",
            SemanticModel::ProposedBase => "proposed-base; Fig. 1(b)",
            SemanticModel::PerturbRandom => "proposed-perturb (random); Fig. 1(c)",
            SemanticModel::PerturbClass => "proposed-perturb (class-conditional); Fig. 1(c)",
        }
    }

    /// Which latent perturbation the model trains with.
    pub fn perturbation(self) -> Option<Perturbation> {
        match self {
            SemanticModel::PerturbRandom => Some(Perturbation::Random),
            SemanticModel::PerturbClass => Some(Perturbation::ClassConditional),
            _ => None,
        }
    }
}

crate::named_choice!(SemanticModel, "model");

/// The two ways of drawing z_e (eq. 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perturbation {
    /// Gaussian noise on z scaled to [0, 1], de-scaled with z's own range.
    Random,
    /// Gaussian noise on y scaled to [0, 1], de-scaled, decoded: g_L(y′) − g_L(y) (eq. 9).
    ClassConditional,
}

impl Perturbation {
    /// Units of the noise this perturbation draws for a network: z's or y's.
    pub fn noise_units(self, net: &SemanticNet) -> usize {
        match self {
            Perturbation::Random => net.latent_shape().units(),
            Perturbation::ClassConditional => net.num_classes(),
        }
    }
}

/// The weighting factors of eqs. (5), (7), (11) and (12).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CostWeights {
    /// λ₁ of eq. (5)/(7), λ of eq. (11), λ₀ of eq. (12): the input's reconstruction.
    pub input: f64,
    /// λ₂ of eq. (5)/(7): z's reconstruction from y.
    pub latent: f64,
    /// λᵢ of eq. (12): each hidden layer's reconstruction.
    pub hidden: f64,
    /// λ₃ of eq. (5)/(7): the supervised NLL of the clean output.
    pub supervised: f64,
}

/// The terms of one batch's cost; the unused ones are `None`.
#[derive(Debug, Clone)]
pub struct SemanticCost {
    pub total: Tensor<1>,
    /// NLL(y, t) of the unperturbed output.
    pub supervised: Tensor<1>,
    /// L2(x, x_R).
    pub input_reconstruction: Option<Tensor<1>>,
    /// L2(z, z_R).
    pub latent_reconstruction: Option<Tensor<1>>,
    /// Σᵢ L2(hᵢ, hᵢ_R) over the hidden layers below z (recon-all).
    pub hidden_reconstruction: Option<Tensor<1>>,
    /// NLL(ŷ, t) of the perturbed output.
    pub perturbed: Option<Tensor<1>>,
}

/// Tied weights W_l, encoder biases b_l and decoder biases b′_l.
#[derive(Module, Debug)]
pub struct SemanticNet {
    /// W_l of every layer, bottom first: `[d_{l−1}, d_l]` (fully connected) or
    /// `[filters, channels·K·K]` (convolution). The decoding path uses the same tensors.
    pub weights: Vec<Param<Tensor<2>>>,
    /// b_l: `[1, channels_l]`.
    pub biases: Vec<Param<Tensor<2>>>,
    /// b′_l of the decoding map from layer l back to layer l − 1: `[1, channels_{l−1}]`.
    pub decoder_biases: Vec<Param<Tensor<2>>>,
    #[module(skip)]
    pub layers: Vec<LayerGeom>,
}

/// What one clean pass leaves for the costs.
#[derive(Debug, Clone)]
pub struct SemanticTrace {
    /// h^(0) = x, h^(1), …, h^(L−1) = z.
    pub hidden: Vec<Tensor<2>>,
    /// The output layer's pre-softmax values.
    pub logits: Tensor<2>,
}

impl SemanticTrace {
    pub fn latent(&self) -> Tensor<2> {
        self.hidden.last().expect("a trace holds the input").clone()
    }
}

/// Checks that `layers` can form a semantic-noise network: at least a hidden layer and an
/// output layer, and only layers with weights to tie.
pub fn check_layers(layers: &[LayerGeom]) -> Result<()> {
    if layers.len() < 2 {
        return Err(LadderError::Spec(
            "a semantic-noise network needs a hidden layer (the latent z) below its output".into(),
        ));
    }
    if let Some((i, _)) = layers
        .iter()
        .enumerate()
        .find(|(_, g)| !g.kind.has_weights())
    {
        return Err(LadderError::Spec(format!(
            "layer {} is a pooling layer: semantic-noise networks tie every decoding map to \
             an encoder weight, so they take only fc and conv layers",
            i + 1
        )));
    }
    let top = layers.last().expect("checked above");
    if top.kind.is_spatial() {
        return Err(LadderError::Spec(
            "the output layer of a semantic-noise network must be fully connected".into(),
        ));
    }
    Ok(())
}

impl SemanticNet {
    /// He initialisation U(±√(6/fan_in)) for the ReLU layers' weights; zero biases.
    pub fn new(layers: Vec<LayerGeom>, rng: &mut impl Rng, device: &Device) -> Result<Self> {
        check_layers(&layers)?;
        let mut weights = Vec::with_capacity(layers.len());
        let mut biases = Vec::with_capacity(layers.len());
        let mut decoder_biases = Vec::with_capacity(layers.len());
        for g in &layers {
            let shape = g
                .kind
                .weight_shape(g.input)
                .expect("checked: every layer has weights");
            let fan_in = g.kind.fan_in(g.input);
            weights.push(Param::from_tensor(scaled_uniform(
                shape,
                fan_in.div_ceil(2).max(1),
                rng,
                device,
            )));
            biases.push(Param::from_tensor(Tensor::zeros(
                [1, g.output.channels],
                device,
            )));
            decoder_biases.push(Param::from_tensor(Tensor::zeros(
                [1, g.input.channels],
                device,
            )));
        }
        Ok(SemanticNet {
            weights,
            biases,
            decoder_biases,
            layers,
        })
    }

    /// L: the number of layers, the output layer included.
    pub fn depth(&self) -> usize {
        self.layers.len()
    }

    pub fn num_classes(&self) -> usize {
        self.layers[self.depth() - 1].output.units()
    }

    pub fn input_shape(&self) -> Shape {
        self.layers[0].input
    }

    /// z's shape: the output of layer L − 1.
    pub fn latent_shape(&self) -> Shape {
        self.layers[self.depth() - 2].output
    }

    fn geom(&self, l: usize) -> &LayerGeom {
        &self.layers[l - 1]
    }

    /// W_l ⋆ h + b_l for layer l (1-based).
    fn pre_activation(&self, l: usize, h: Tensor<2>) -> Tensor<2> {
        let g = self.geom(l);
        let z = g.encode(h, Some(self.weights[l - 1].val()));
        add_per_channel(z, self.biases[l - 1].val(), g.output)
    }

    /// The clean pass x → z → logits.
    pub fn forward(&self, x: Tensor<2>) -> SemanticTrace {
        let top = self.depth();
        let mut hidden = vec![x];
        for l in 1..top {
            let h = relu(self.pre_activation(l, hidden[l - 1].clone()));
            hidden.push(h);
        }
        let logits = self.pre_activation(top, hidden[top - 1].clone());
        SemanticTrace { hidden, logits }
    }

    /// f_θ2: the output layer's logits for a latent z (eq. 6's ŷ before the softmax).
    pub fn classify_latent(&self, z: Tensor<2>) -> Tensor<2> {
        self.pre_activation(self.depth(), z)
    }

    /// g_l: layer l's decoding map, from an activation of layer l's shape to layer l − 1's,
    /// with W_l tied (eq. 4's g_θ′).
    pub fn decode_layer(&self, l: usize, a: Tensor<2>) -> Tensor<2> {
        let g = self.geom(l);
        let w = self.weights[l - 1].val();
        let tied = match g.kind {
            LayerKind::Fc { .. } => w.transpose(),
            _ => w,
        };
        let pre = add_per_channel(
            g.decode(a, Some(tied)),
            self.decoder_biases[l - 1].val(),
            g.input,
        );
        if l == 1 { pre } else { relu(pre) }
    }

    /// The decoding path from z down to the input: [h^(L−2)_R, …, h^(1)_R, x_R] (eq. 4's
    /// x_R = g_θ′1(z) and, for recon-all, every hidden layer on the way).
    pub fn decode_latent(&self, z: Tensor<2>) -> Vec<Tensor<2>> {
        let mut out: Vec<Tensor<2>> = Vec::with_capacity(self.depth() - 1);
        let mut a = z;
        for l in (1..self.depth()).rev() {
            a = self.decode_layer(l, a);
            out.push(a.clone());
        }
        out
    }

    /// x_R = g_θ′1(z): the input decoded from a latent z.
    pub fn reconstruct_input(&self, z: Tensor<2>) -> Tensor<2> {
        self.decode_latent(z).pop().expect("at least one layer")
    }

    /// z_R = g_θ′2(y): the latent decoded from the output probabilities y.
    pub fn reconstruct_latent(&self, y: Tensor<2>) -> Tensor<2> {
        self.decode_layer(self.depth(), y)
    }

    /// z_e for the noise `e` (eq. 6), detached: it is noise added to z, not a path for the
    /// gradient. `e` is N(0, σ²) shaped as z (random) or as y (class-conditional).
    pub fn latent_noise(
        &self,
        kind: Perturbation,
        trace: &SemanticTrace,
        e: Tensor<2>,
    ) -> Tensor<2> {
        match kind {
            Perturbation::Random => random_perturbation(trace.latent().detach(), e),
            Perturbation::ClassConditional => {
                let y = softmax(trace.logits.clone().detach(), 1);
                self.class_conditional_perturbation(y, e).detach()
            }
        }
    }

    /// Eq. (9): z_e = g_θ′2(y + y_e) − g_θ′2(y), y_e being the scaled noise `e` on y.
    pub fn class_conditional_perturbation(&self, y: Tensor<2>, e: Tensor<2>) -> Tensor<2> {
        let y_perturbed = perturb_scaled(y.clone(), e);
        self.reconstruct_latent(y_perturbed) - self.reconstruct_latent(y)
    }

    /// The cost of `model` on a batch (see the module docs); `noise` is the perturbation's
    /// N(0, σ²) draw, needed only by the perturbing models.
    pub fn cost(
        &self,
        model: SemanticModel,
        weights: &CostWeights,
        x: Tensor<2>,
        t: Tensor<1, Int>,
        noise: Option<Tensor<2>>,
    ) -> Result<SemanticCost> {
        let trace = self.forward(x);
        let supervised = cross_entropy(trace.logits.clone(), t.clone());
        let z = trace.latent();
        let mut cost = SemanticCost {
            total: supervised.clone(),
            supervised: supervised.clone(),
            input_reconstruction: None,
            latent_reconstruction: None,
            hidden_reconstruction: None,
            perturbed: None,
        };
        let x = &trace.hidden[0];
        match model {
            SemanticModel::Feedforward => {}
            SemanticModel::ReconOne => {
                let rec = l2(x.clone(), self.reconstruct_input(z));
                cost.total = supervised + rec.clone() * weights.input;
                cost.input_reconstruction = Some(rec);
            }
            SemanticModel::ReconAll => {
                let mut path = self.decode_latent(z);
                let rec = l2(x.clone(), path.pop().expect("the input's reconstruction"));
                // path holds h^(L−2)_R … h^(1)_R.
                let depth = self.depth();
                let hidden = path
                    .into_iter()
                    .enumerate()
                    .map(|(i, h_r)| l2(trace.hidden[depth - 2 - i].clone(), h_r))
                    .reduce(|a, b| a + b);
                cost.total = supervised + rec.clone() * weights.input;
                if let Some(h) = &hidden {
                    cost.total = cost.total + h.clone() * weights.hidden;
                }
                cost.input_reconstruction = Some(rec);
                cost.hidden_reconstruction = hidden;
            }
            SemanticModel::ProposedBase
            | SemanticModel::PerturbRandom
            | SemanticModel::PerturbClass => {
                let rec_x = l2(x.clone(), self.reconstruct_input(z.clone()));
                let y = softmax(trace.logits.clone(), 1);
                let rec_z = l2(z.clone(), self.reconstruct_latent(y));
                cost.total = rec_x.clone() * weights.input
                    + rec_z.clone() * weights.latent
                    + supervised * weights.supervised;
                cost.input_reconstruction = Some(rec_x);
                cost.latent_reconstruction = Some(rec_z);
                if let Some(kind) = model.perturbation() {
                    let e = noise.ok_or_else(|| {
                        LadderError::Setting(format!("model {model} needs perturbation noise"))
                    })?;
                    let z_e = self.latent_noise(kind, &trace, e);
                    let perturbed = cross_entropy(self.classify_latent(z + z_e), t);
                    cost.total = cost.total + perturbed.clone();
                    cost.perturbed = Some(perturbed);
                }
            }
        }
        Ok(cost)
    }
}

/// L2(a, b) = (1/N) Σₙ ‖aₙ − bₙ‖²: summed over an example's units, averaged over the batch.
pub fn l2(a: Tensor<2>, b: Tensor<2>) -> Tensor<1> {
    let n = a.dims()[0] as f64;
    (a - b).square().sum() / n
}

/// Each row's minimum and maximum, `[n, 1]` each: the range a perturbation is scaled by.
pub fn row_range(v: &Tensor<2>) -> (Tensor<2>, Tensor<2>) {
    (v.clone().min_dim(1), v.clone().max_dim(1))
}

/// Scales every row to [0, 1] by its own min and max (Sec. 4.2); a constant row becomes 0.
pub fn scale_unit(v: Tensor<2>) -> (Tensor<2>, Tensor<2>, Tensor<2>) {
    let (lo, hi) = row_range(&v);
    let span = (hi.clone() - lo.clone()).clamp_min(f32::MIN_POSITIVE);
    ((v - lo.clone()) / span, lo, hi)
}

/// The inverse of [`scale_unit`]: back to the range [`lo`, `hi`] of each row.
pub fn descale(s: Tensor<2>, lo: Tensor<2>, hi: Tensor<2>) -> Tensor<2> {
    s * (hi - lo.clone()) + lo
}

/// descale(scale_unit(v) + e) = v + e ⊙ (max − min) per row: noise `e` added on the
/// [0, 1]-scaled v and de-scaled with v's own range (Sec. 4.2). Written in the second form
/// so that zero noise leaves v exactly as it was.
pub fn perturb_scaled(v: Tensor<2>, e: Tensor<2>) -> Tensor<2> {
    let (lo, hi) = row_range(&v);
    v + e * (hi - lo)
}

/// The random z_e of `perturb-random`: perturb_scaled(z, e) − z = e ⊙ (max z − min z).
pub fn random_perturbation(z: Tensor<2>, e: Tensor<2>) -> Tensor<2> {
    let (lo, hi) = row_range(&z);
    e * (hi - lo)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::layers::{dense_plan, parse_layer_kinds, plan};
    use crate::noise::{RngStream, gaussian_vec, stream_rng};
    use burn::optim::{GradientsParams, SgdConfig};

    fn tensor(v: Vec<f32>, rows: usize, cols: usize, device: &Device) -> Tensor<2> {
        Tensor::from_data(TensorData::new(v, [rows, cols]), device)
    }

    fn values(t: Tensor<2>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    fn random(rows: usize, cols: usize, rng: &mut impl Rng, device: &Device) -> Tensor<2> {
        tensor(gaussian_vec(rng, rows * cols, 1.0), rows, cols, device)
    }

    /// A network whose biases are non-zero too, so that every parameter shows in the costs.
    fn randomized(layers: Vec<LayerGeom>, seed: u64, device: &Device) -> SemanticNet {
        let mut rng = stream_rng(seed, RngStream::Init, 0, 0);
        let mut net = SemanticNet::new(layers, &mut rng, device).unwrap();
        for b in net.biases.iter_mut().chain(net.decoder_biases.iter_mut()) {
            let [r, c] = b.val().dims();
            *b = Param::from_tensor(random(r, c, &mut rng, device) * 0.3);
        }
        net
    }

    fn params(net: &mut SemanticNet) -> Vec<&mut Param<Tensor<2>>> {
        net.weights
            .iter_mut()
            .chain(net.biases.iter_mut())
            .chain(net.decoder_biases.iter_mut())
            .collect()
    }

    /// A plain-Rust f64 version of the fully connected network, for hand-checked costs.
    struct Reference {
        w: Vec<Vec<Vec<f64>>>,
        b: Vec<Vec<f64>>,
        c: Vec<Vec<f64>>,
    }

    fn rows_of(t: Tensor<2>) -> Vec<Vec<f64>> {
        let cols = t.dims()[1];
        values(t)
            .chunks(cols)
            .map(|r| r.iter().map(|&v| v as f64).collect())
            .collect()
    }

    impl Reference {
        fn of(net: &SemanticNet) -> Reference {
            let one = |p: &Param<Tensor<2>>| rows_of(p.val());
            Reference {
                w: net.weights.iter().map(one).collect(),
                b: net.biases.iter().map(|p| one(p)[0].clone()).collect(),
                c: net
                    .decoder_biases
                    .iter()
                    .map(|p| one(p)[0].clone())
                    .collect(),
            }
        }

        /// a·W + b (W: [in, out]).
        fn up(&self, l: usize, a: &[f64]) -> Vec<f64> {
            let w = &self.w[l];
            (0..w[0].len())
                .map(|j| self.b[l][j] + a.iter().zip(w).map(|(x, row)| x * row[j]).sum::<f64>())
                .collect()
        }

        /// a·Wᵀ + c, ReLU unless down to the input.
        fn down(&self, l: usize, a: &[f64]) -> Vec<f64> {
            let w = &self.w[l];
            let v: Vec<f64> = w
                .iter()
                .enumerate()
                .map(|(i, row)| {
                    self.c[l][i] + a.iter().zip(row).map(|(x, wij)| x * wij).sum::<f64>()
                })
                .collect();
            if l == 0 {
                v
            } else {
                v.into_iter().map(|x| x.max(0.0)).collect()
            }
        }

        fn relu(v: Vec<f64>) -> Vec<f64> {
            v.into_iter().map(|x| x.max(0.0)).collect()
        }

        fn softmax(v: &[f64]) -> Vec<f64> {
            let m = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = v.iter().map(|x| (x - m).exp()).collect();
            let s: f64 = e.iter().sum();
            e.into_iter().map(|x| x / s).collect()
        }

        fn nll(logits: &[f64], t: usize) -> f64 {
            -Reference::softmax(logits)[t].ln()
        }

        fn sq(a: &[f64], b: &[f64]) -> f64 {
            a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum()
        }

        fn range(v: &[f64]) -> f64 {
            let (lo, hi) = v
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                    (a.min(x), b.max(x))
                });
            hi - lo
        }

        /// The model's cost on one example, by its equation.
        fn cost(
            &self,
            model: SemanticModel,
            k: &CostWeights,
            x: &[f64],
            t: usize,
            e: &[f64],
        ) -> f64 {
            let top = self.w.len();
            let mut h = vec![x.to_vec()];
            for l in 0..top - 1 {
                h.push(Reference::relu(self.up(l, &h[l])));
            }
            let z = h[top - 1].clone();
            let logits = self.up(top - 1, &z);
            let nll = Reference::nll(&logits, t);
            // The decoding path from z: h^(L−2)_R … x_R.
            let mut path = vec![];
            let mut a = z.clone();
            for l in (0..top - 1).rev() {
                a = self.down(l, &a);
                path.push(a.clone());
            }
            let rec_x = Reference::sq(x, path.last().unwrap());
            let y = Reference::softmax(&logits);
            let rec_z = Reference::sq(&z, &self.down(top - 1, &y));
            let base = k.input * rec_x + k.latent * rec_z + k.supervised * nll;
            match model {
                SemanticModel::Feedforward => nll,
                SemanticModel::ReconOne => nll + k.input * rec_x,
                SemanticModel::ReconAll => {
                    let hidden: f64 = (0..top - 2)
                        .map(|i| Reference::sq(&h[top - 2 - i], &path[i]))
                        .sum();
                    nll + k.input * rec_x + k.hidden * hidden
                }
                SemanticModel::ProposedBase => base,
                SemanticModel::PerturbRandom => {
                    let r = Reference::range(&z);
                    let z2: Vec<f64> = z.iter().zip(e).map(|(v, n)| v + n * r).collect();
                    base + Reference::nll(&self.up(top - 1, &z2), t)
                }
                SemanticModel::PerturbClass => {
                    let r = Reference::range(&y);
                    let y2: Vec<f64> = y.iter().zip(e).map(|(v, n)| v + n * r).collect();
                    let z_e: Vec<f64> = self
                        .down(top - 1, &y2)
                        .iter()
                        .zip(self.down(top - 1, &y))
                        .map(|(a, b)| a - b)
                        .collect();
                    let z2: Vec<f64> = z.iter().zip(&z_e).map(|(v, n)| v + n).collect();
                    base + Reference::nll(&self.up(top - 1, &z2), t)
                }
            }
        }
    }

    const WEIGHTS: CostWeights = CostWeights {
        input: 0.3,
        latent: 0.7,
        hidden: 0.2,
        supervised: 1.5,
    };

    /// Every model's cost is its equation (5), (7), (10), (11) or (12), computed by hand in
    /// f64 on a 4-3-3-2 network and averaged over the batch.
    #[test]
    fn each_models_cost_matches_its_equation_by_hand() {
        let device = Device::flex();
        let net = randomized(dense_plan(&[4, 3, 3, 2]), 3, &device);
        let reference = Reference::of(&net);
        let mut rng = stream_rng(4, RngStream::Init, 0, 0);
        let x = random(5, 4, &mut rng, &device);
        let labels = [0usize, 1, 1, 0, 1];
        let t = Tensor::<1, Int>::from_data(
            TensorData::new(labels.iter().map(|&c| c as i64).collect::<Vec<_>>(), [5]),
            &device,
        );
        let xs = rows_of(x.clone());
        for model in SemanticModel::all() {
            let units = model.perturbation().map_or(1, |p| p.noise_units(&net));
            let e = random(5, units, &mut rng, &device) * 0.2;
            let es = rows_of(e.clone());
            let got = net
                .cost(model, &WEIGHTS, x.clone(), t.clone(), Some(e))
                .unwrap()
                .total
                .into_scalar::<f32>() as f64;
            let expected = (0..5)
                .map(|i| reference.cost(model, &WEIGHTS, &xs[i], labels[i], &es[i]))
                .sum::<f64>()
                / 5.0;
            assert!(
                (got - expected).abs() < 1e-4 * expected.abs().max(1.0),
                "{model}: {got} vs {expected}"
            );
        }
    }

    #[test]
    fn perturbing_models_refuse_to_run_without_noise() {
        let device = Device::flex();
        let net = randomized(dense_plan(&[4, 3, 2]), 3, &device);
        let x = Tensor::<2>::zeros([2, 4], &device);
        let t = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 1], [2]), &device);
        let err = net
            .cost(SemanticModel::PerturbClass, &WEIGHTS, x, t, None)
            .unwrap_err();
        assert!(err.to_string().contains("noise"), "{err}");
    }

    /// One tensor per layer serves both directions: a step on a cost of the decoding path
    /// alone moves the encoder, and the decoder computes with the updated tensor.
    #[test]
    fn tied_weights_are_one_parameter_shared_by_both_paths() {
        let device = Device::flex().autodiff();
        let layers = plan(
            Shape {
                channels: 1,
                height: 6,
                width: 6,
            },
            &parse_layer_kinds("convs:2:3:2:2-fc:4-fc:3").unwrap(),
        )
        .unwrap();
        let mut net = randomized(layers, 5, &device);
        let n_params: usize = params(&mut net)
            .iter()
            .map(|p| p.val().dims().iter().product::<usize>())
            .sum();
        assert_eq!(net.num_params(), n_params, "no decoder weights of its own");
        let mut rng = stream_rng(6, RngStream::Init, 0, 0);
        let x = random(3, 36, &mut rng, &device);
        let z = random(3, 4, &mut rng, &device).abs().detach();
        let before = values(net.forward(x.clone()).hidden[1].clone().inner());
        // A cost that only the decoding path from a fixed z sees.
        let cost = l2(x.clone(), net.reconstruct_input(z.clone()));
        let grads = GradientsParams::from_grads(cost.backward(), &net);
        let mut sgd = SgdConfig::new().init();
        let net = sgd.step(0.1, net, grads);
        let after = values(net.forward(x).hidden[1].clone().inner());
        let moved = before
            .iter()
            .zip(&after)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(moved > 1e-4, "the encoder did not move: {moved}");
        // The top decoding map is ReLU(y·W₃ᵀ + b′₃) with the updated W₃.
        let y = random(3, 3, &mut rng, &device);
        let w3 = net.weights[2].val();
        let by_hand = relu(y.clone().matmul(w3.transpose()) + net.decoder_biases[2].val());
        let decoded = net.decode_layer(3, y);
        let diff = values((decoded - by_hand).abs().inner());
        assert!(diff.iter().all(|&d| d < 1e-6), "{diff:?}");
    }

    #[test]
    fn zero_noise_gives_zero_perturbations() {
        let device = Device::flex();
        let net = randomized(dense_plan(&[4, 3, 3]), 7, &device);
        let mut rng = stream_rng(8, RngStream::Init, 0, 0);
        let trace = net.forward(random(4, 4, &mut rng, &device));
        for kind in [Perturbation::Random, Perturbation::ClassConditional] {
            let zeros = Tensor::<2>::zeros([4, kind.noise_units(&net)], &device);
            let z_e = values(net.latent_noise(kind, &trace, zeros));
            assert!(z_e.iter().all(|&v| v == 0.0), "{kind:?}: {z_e:?}");
        }
        // A non-zero noise does perturb.
        let e = random(4, 3, &mut rng, &device);
        let z_e = values(net.latent_noise(Perturbation::ClassConditional, &trace, e));
        assert!(z_e.iter().any(|&v| v != 0.0));
    }

    #[test]
    fn descaling_restores_each_rows_range() {
        let device = Device::flex();
        let v = tensor(
            vec![-2.0, 0.5, 3.0, 1.0, 7.0, 7.0, 4.0, 4.0, 4.0],
            3,
            3,
            &device,
        );
        let (s, lo, hi) = scale_unit(v.clone());
        // [0, 1] per row; a constant row scales to zeros.
        assert_eq!(
            values(s.clone()),
            vec![0.0, 0.5, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0]
        );
        assert_eq!(values(lo.clone()), vec![-2.0, 1.0, 4.0]);
        assert_eq!(values(hi.clone()), vec![3.0, 7.0, 4.0]);
        let back = values(descale(s.clone(), lo.clone(), hi.clone()));
        for (a, b) in back.iter().zip(values(v.clone())) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        // perturb_scaled is descale(scale + e).
        let e = tensor(
            vec![0.1, -0.2, 0.3, 0.0, 0.5, -0.5, 1.0, 1.0, 1.0],
            3,
            3,
            &device,
        );
        let literal = values(descale(s + e.clone(), lo, hi));
        let fused = values(perturb_scaled(v, e));
        for (a, b) in literal.iter().zip(&fused) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        // [−2, 3] has range 5: 0.1 on the scaled row is 0.5 on the original.
        assert!((fused[0] - (-1.5)).abs() < 1e-6);
    }

    /// ∂C/∂θ against finite differences for a conv network with tied transposed
    /// convolutions ('same' and 'valid' borders, strides 2 and 1), for the models whose cost
    /// has no noise term (the perturbation is detached noise by design). Where a step
    /// straddles a ReLU kink the central difference is off, and the analytic gradient must
    /// match the slope on one side; a wrong gradient matches none.
    #[test]
    fn cost_gradient_matches_finite_differences() {
        let device = Device::flex().autodiff();
        let input = Shape {
            channels: 2,
            height: 7,
            width: 7,
        };
        let kinds = parse_layer_kinds("convs:3:3:2:2-convv:2:2:1:1-fc:4-fc:3").unwrap();
        let mut rng = stream_rng(9, RngStream::Init, 0, 0);
        let x = random(4, input.units(), &mut rng, &device);
        let t = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 1, 2, 1], [4]), &device);
        for model in [SemanticModel::ReconAll, SemanticModel::ProposedBase] {
            let mut net = randomized(plan(input, &kinds).unwrap(), 10, &device);
            let total = |n: &SemanticNet| {
                n.cost(model, &WEIGHTS, x.clone(), t.clone(), None)
                    .unwrap()
                    .total
                    .into_scalar::<f32>() as f64
            };
            let grads = net
                .cost(model, &WEIGHTS, x.clone(), t.clone(), None)
                .unwrap()
                .total
                .backward();
            let count = params(&mut net).len();
            assert_eq!(count, 12);
            for i in 0..count {
                let p = params(&mut net)[i].val();
                let [r, c] = p.dims();
                let dir = random(r, c, &mut rng, &device);
                // recon-all never decodes y, so b′ of the top layer gets no gradient (and the
                // differences must find none).
                let analytic = p.grad(&grads).map_or(0.0, |g| {
                    (g * dir.clone().inner()).sum().into_scalar::<f32>() as f64
                });
                let best = [3e-3f32, 1e-3, 3e-4]
                    .iter()
                    .flat_map(|&h| {
                        let at = |s: f32| {
                            let mut m = net.clone();
                            *params(&mut m)[i] =
                                Param::from_tensor((p.clone() + dir.clone() * (s * h)).detach());
                            total(&m)
                        };
                        let (up, here, down) = (at(1.0), total(&net), at(-1.0));
                        let resolution = here.abs() * 1e-5 / h as f64;
                        // At a ReLU kink the gradient is one of the one-sided slopes.
                        let h = h as f64;
                        [(up - down) / (2.0 * h), (up - here) / h, (here - down) / h].map(
                            |numeric| {
                                let scale =
                                    analytic.abs().max(numeric.abs()).max(1e-2).max(resolution);
                                ((analytic - numeric).abs() / scale, numeric)
                            },
                        )
                    })
                    .min_by(|a, b| a.0.total_cmp(&b.0))
                    .unwrap();
                assert!(
                    best.0 < 2e-2,
                    "{model} parameter {i}: {analytic} vs {}",
                    best.1
                );
            }
        }
    }

    #[test]
    fn networks_without_tied_weights_or_a_latent_are_refused() {
        let input = Shape {
            channels: 1,
            height: 8,
            width: 8,
        };
        let pooled = plan(
            input,
            &parse_layer_kinds("convs:2:3:1:1-maxpool:2:2-fc:3").unwrap(),
        );
        let err = check_layers(&pooled.unwrap()).unwrap_err().to_string();
        assert!(err.contains("layer 2 is a pooling layer"), "{err}");
        let err = check_layers(&dense_plan(&[4, 3])).unwrap_err().to_string();
        assert!(err.contains("hidden layer"), "{err}");
    }

    #[test]
    fn models_parse_by_their_table_names() {
        for m in SemanticModel::all() {
            assert_eq!(m.to_string().parse::<SemanticModel>().unwrap(), m);
        }
        let err = "perturb".parse::<SemanticModel>().unwrap_err();
        assert!(err.contains("perturb-class"), "{err}");
    }
}
