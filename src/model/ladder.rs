//! The Ladder network: encoder + decoder, and its cost (Algorithm 1, eq. 3).
//!
//! C = −(1/N) Σ log P(ỹ = t | x) + Σ_l λ_l · (1/(N·d_l)) Σ ‖z^(l) − ẑ_BN^(l)‖²,
//! where ẑ_BN^(l) is the reconstruction normalised with the clean pass's batch mean and
//! variance of layer l (none for the input layer). Nothing is detached: the gradient flows
//! through the clean pass as well as the corrupted one, as in the authors' code.
//!
//! The variants of the paper are settings of the same network: the full Ladder (λ at every
//! layer), bottom-only (λ at the input only), the Γ-model (λ at the top only, so the decoder is
//! the top combinator alone) and the supervised baseline (no λ, no decoder, no unlabelled
//! rows).

use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};

use crate::model::consistency::squared_difference;
use crate::model::decoder::Decoder;
use crate::model::encoder::Encoder;
use crate::model::spec::LadderSpec;
use crate::model::vat::{entropy, joint_directions, kl_divergence};
use crate::noise::{
    Adversarial, CorruptionNoise, InputPerturbation, RngStream, input_gradient, stream_rng,
};
use crate::ops::batch_norm::Moments;
use crate::ops::denoising::denoising_cost;

/// The trainable parameters of a Ladder network.
#[derive(Module, Debug)]
pub struct LadderNetwork {
    pub encoder: Encoder,
    pub decoder: Option<Decoder>,
    /// Mean Teacher's teacher: the moving average of the encoder, without gradients.
    pub teacher: Option<Encoder>,
    /// The Π-model's (or the teacher's) second noisy pass doubles the corrupted rows.
    #[module(skip)]
    pub two_passes: bool,
}

/// What one step adds to a batch and its noise: VAT's perturbation of the unlabelled rows
/// ([`LadderNetwork::virtual_adversarial`]) and the Π-model's weight w(t) at this step.
#[derive(Debug, Clone, Default)]
pub struct StepInputs {
    pub r_vadv: Option<Tensor<2>>,
    pub consistency_weight: f64,
}

/// One training batch: labelled examples with their classes and unlabelled examples.
#[derive(Debug, Clone)]
pub struct LadderBatch {
    pub x_labeled: Tensor<2>,
    pub y_labeled: Tensor<1, Int>,
    pub x_unlabeled: Tensor<2>,
}

/// The cost of one step and its terms.
#[derive(Debug, Clone)]
pub struct CostTerms {
    /// Supervised cross-entropy + Σ λ_l × denoising cost.
    pub total: Tensor<1>,
    /// Cross-entropy of the corrupted output on the labelled rows.
    pub supervised: Tensor<1>,
    /// Unweighted denoising cost of each layer 0..=L; `None` where λ_l = 0.
    pub denoising: Vec<Option<Tensor<1>>>,
    /// Unweighted virtual adversarial loss of the unlabelled rows (VAT), when it is on.
    pub virtual_adversarial: Option<Tensor<1>>,
    /// Entropy of the unlabelled rows' clean predictions (VAT+EntMin).
    pub entropy: Option<Tensor<1>>,
    /// The Π-model's unweighted consistency cost.
    pub consistency: Option<Tensor<1>>,
}

/// −mean log softmax(logits)\[label\].
pub fn cross_entropy(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    let n = labels.dims()[0];
    log_softmax(logits, 1)
        .gather(1, labels.reshape([n, 1]))
        .mean()
        .neg()
}

/// Mean Teacher's decay after `t` optimiser steps: min(1 − 1/(t + 1), α).
pub fn teacher_alpha(alpha: f64, t: usize) -> f64 {
    alpha.min(1.0 - 1.0 / (t as f64 + 1.0))
}

impl LadderNetwork {
    /// A network of `spec`'s shape with the authors' initialisation, drawn from `seed`.
    pub fn new(spec: &LadderSpec, seed: u64, device: &Device) -> Self {
        let mut rng = stream_rng(seed, RngStream::Init, 0, 0);
        let encoder = Encoder::new(spec, &mut rng, device);
        let decoder = Decoder::new(spec, &mut rng, device);
        let teacher = spec
            .consistency
            .and_then(|c| c.teacher_decay)
            .map(|_| encoder.frozen_copy());
        LadderNetwork {
            encoder,
            decoder,
            teacher,
            two_passes: spec.consistency.is_some(),
        }
    }

    /// How many rows the corrupted pass sees for a batch: the labelled ones, and the
    /// unlabelled ones when a decoder needs them; the Π-model's two passes over all of them.
    pub fn corrupted_rows(&self, n_labeled: usize, n_unlabeled: usize) -> usize {
        if self.two_passes {
            return 2 * (n_labeled + n_unlabeled);
        }
        n_labeled
            + if self.decoder.is_some() {
                n_unlabeled
            } else {
                0
            }
    }

    /// The cost of `batch` with the corrupted pass perturbed by `noise` (drawn for
    /// [`Self::corrupted_rows`] rows, labelled rows first).
    pub fn cost(
        &self,
        spec: &LadderSpec,
        batch: &LadderBatch,
        noise: &CorruptionNoise,
    ) -> CostTerms {
        self.cost_with(spec, batch, noise, &StepInputs::default())
    }

    /// [`Self::cost`] plus, with `r_vadv` (the unlabelled rows' virtual adversarial
    /// perturbation, [`Self::virtual_adversarial`]), α·KL(p(y|x) ‖ p(y|x + r_vadv)) with the
    /// clean prediction held constant (Miyato et al. 2018 eq. 11), and the entropy of the
    /// clean prediction for VAT+EntMin (eq. 13).
    pub fn cost_with(
        &self,
        spec: &LadderSpec,
        batch: &LadderBatch,
        noise: &CorruptionNoise,
        inputs: &StepInputs,
    ) -> CostTerms {
        let (mut terms, clean_unlabeled) = match spec.consistency {
            Some(_) => (
                self.consistency_cost(spec, batch, noise, inputs.consistency_weight),
                None,
            ),
            None => self.ladder_cost(spec, batch, noise),
        };
        let (Some(vat), Some(r)) = (spec.vat, inputs.r_vadv.clone()) else {
            return terms;
        };
        let n_u = batch.x_unlabeled.dims()[0];
        let clean = CorruptionNoise::none(spec.depth());
        let clean_logits = clean_unlabeled.unwrap_or_else(|| {
            self.encoder
                .forward(batch.x_unlabeled.clone(), &[n_u], &clean)
                .logits
        });
        if vat.weight > 0.0 {
            let perturbed = self
                .encoder
                .forward(batch.x_unlabeled.clone() + r, &[n_u], &clean)
                .logits;
            let lds = kl_divergence(clean_logits.clone().detach(), perturbed);
            terms.total = terms.total + lds.clone() * vat.weight;
            terms.virtual_adversarial = Some(lds);
        }
        if vat.entmin {
            let h = entropy(clean_logits);
            terms.total = terms.total + h.clone();
            terms.entropy = Some(h);
        }
        terms
    }

    /// The Π-model's and Mean Teacher's cost ([`crate::model::consistency`]): two noisy passes over the labelled
    /// and unlabelled rows (four row groups, each normalised by its own statistics, the noise
    /// covering all of them), the first pass's cross-entropy on the labelled rows plus `weight`
    /// × the mean squared difference of the two passes' softmax outputs. With a teacher (Mean
    /// Teacher) the second pass is the teacher's, held constant.
    fn consistency_cost(
        &self,
        spec: &LadderSpec,
        batch: &LadderBatch,
        noise: &CorruptionNoise,
        weight: f64,
    ) -> CostTerms {
        let n_l = batch.x_labeled.dims()[0];
        let n_u = batch.x_unlabeled.dims()[0];
        let n = n_l + n_u;
        let once = [batch.x_labeled.clone(), batch.x_unlabeled.clone()];
        let (first, second) = match &self.teacher {
            // Mean Teacher: the student and the teacher each with half of the noise.
            Some(teacher) => {
                let x = Tensor::cat(once.to_vec(), 0);
                let student = self
                    .encoder
                    .forward(x.clone(), &[n_l, n_u], &noise.rows(0, n));
                let held = teacher.forward(x, &[n_l, n_u], &noise.rows(n, n));
                (student.logits, held.logits.detach())
            }
            None => {
                let x = Tensor::cat([once.clone(), once].concat(), 0);
                let logits = self.encoder.forward(x, &[n_l, n_u, n_l, n_u], noise).logits;
                (logits.clone().narrow(0, 0, n), logits.narrow(0, n, n))
            }
        };
        let supervised = cross_entropy(first.clone().narrow(0, 0, n_l), batch.y_labeled.clone());
        let difference = squared_difference(first, second);
        CostTerms {
            total: supervised.clone() + difference.clone() * weight,
            supervised,
            denoising: vec![None; spec.dims.len()],
            virtual_adversarial: None,
            entropy: None,
            consistency: Some(difference),
        }
    }

    /// The Ladder's own cost (supervised and denoising terms), and the clean pass's logits of
    /// the unlabelled rows when the decoder needed that pass.
    fn ladder_cost(
        &self,
        spec: &LadderSpec,
        batch: &LadderBatch,
        noise: &CorruptionNoise,
    ) -> (CostTerms, Option<Tensor<2>>) {
        let n_l = batch.x_labeled.dims()[0];
        let n_u = batch.x_unlabeled.dims()[0];
        let Some(decoder) = &self.decoder else {
            let corrupted = self.encoder.forward(batch.x_labeled.clone(), &[n_l], noise);
            let supervised = cross_entropy(corrupted.logits, batch.y_labeled.clone());
            let terms = CostTerms {
                total: supervised.clone(),
                supervised,
                denoising: vec![None; spec.dims.len()],
                virtual_adversarial: None,
                entropy: None,
                consistency: None,
            };
            return (terms, None);
        };
        // The corrupted pass over labelled and unlabelled rows and the clean pass over the
        // unlabelled ones run as one pass over [labelled | unlabelled | unlabelled], the
        // noise covering the first two groups. Each group is normalised by its own
        // statistics, so this is exactly the two passes of Algorithm 1 (the clean pass skips
        // the labelled rows, as only the denoising targets need it), with one matrix product
        // per layer instead of two.
        let x = Tensor::cat(
            vec![
                batch.x_labeled.clone(),
                batch.x_unlabeled.clone(),
                batch.x_unlabeled.clone(),
            ],
            0,
        );
        let trace = self.encoder.forward(x, &[n_l, n_u, n_u], noise);
        let supervised = cross_entropy(
            trace.logits.clone().narrow(0, 0, n_l),
            batch.y_labeled.clone(),
        );
        let z_tilde: Vec<Tensor<2>> = trace
            .z
            .iter()
            .map(|z| z.clone().narrow(0, n_l, n_u))
            .collect();
        let clean_unlabeled = trace.logits.clone().narrow(0, n_l + n_u, n_u);
        let y_tilde = softmax(trace.logits.narrow(0, n_l, n_u), 1);
        let estimates = decoder.forward(&z_tilde, y_tilde);

        let mut denoising = vec![None; spec.dims.len()];
        let mut total = supervised.clone();
        for (i, z_hat) in estimates.into_iter().enumerate() {
            let l = decoder.lowest + i;
            let lambda = spec.lambdas[l];
            if lambda <= 0.0 {
                continue;
            }
            // The input layer's clean value is the input; above it, z_pre normalises.
            let clean_value = if l == 0 {
                batch.x_unlabeled.clone()
            } else {
                trace.pre[l - 1].clone().narrow(0, n_l + n_u, n_u)
            };
            let cost = denoising_cost(z_hat, clean_value, l > 0, spec.shape(l));
            total = total + cost.clone() * lambda;
            denoising[l] = Some(cost);
        }
        let terms = CostTerms {
            total,
            supervised,
            denoising,
            virtual_adversarial: None,
            entropy: None,
            consistency: None,
        };
        (terms, Some(clean_unlabeled))
    }

    /// VAT's perturbation r_vadv of the unlabelled rows (Miyato et al. 2018 eq. 8–10,
    /// [`crate::model::vat`]), through the clean encoder with the rows' own batch statistics
    /// and frozen weights, from the random starts `d0`; `None` when VAT is off.
    pub fn virtual_adversarial(
        &self,
        spec: &LadderSpec,
        batch: &LadderBatch,
        d0: Tensor<2>,
    ) -> Option<Tensor<2>> {
        let vat = spec.vat?;
        let n_u = batch.x_unlabeled.dims()[0];
        let encoder = self.encoder.clone().no_grad();
        let clean = CorruptionNoise::none(spec.depth());
        let forward = |v: Tensor<2>| encoder.forward(v, &[n_u], &clean).logits;
        let x = batch.x_unlabeled.clone();
        let clean_logits = forward(x.clone());
        Some(vat.perturbation(x, clean_logits, d0, forward))
    }

    /// `noise` (of the corrupted pass over labelled then unlabelled rows) with LVAN's virtual
    /// adversarial noise added on the unlabelled rows (Shinoda et al. 2017): r_l = ε_l·d_l for
    /// each layer l with ε_l > 0, the directions found jointly
    /// ([`crate::model::vat::joint_directions`]) from the clean prediction of the unlabelled
    /// rows, through the frozen encoder corrupted by `probe` (the power iteration's Gaussian
    /// noise) plus ξ·d_l at the same z̃ as the Ladder's noise. `starts` holds a random start
    /// per such layer. Unchanged when LVAN is off.
    pub fn with_virtual_adversarial_noise(
        &self,
        spec: &LadderSpec,
        batch: &LadderBatch,
        noise: CorruptionNoise,
        (starts, probe): (Vec<Tensor<2>>, &CorruptionNoise),
    ) -> CorruptionNoise {
        let Some(lvan) = &spec.lvan else {
            return noise;
        };
        let layers = lvan.layers();
        let n_l = batch.x_labeled.dims()[0];
        let n_u = batch.x_unlabeled.dims()[0];
        let encoder = self.encoder.clone().no_grad();
        let x = batch.x_unlabeled.clone();
        let clean = CorruptionNoise::none(spec.depth());
        let clean_logits = encoder.forward(x.clone(), &[n_u], &clean).logits;
        let forward = |r: Vec<Tensor<2>>| {
            let perturbed = layers
                .iter()
                .zip(r)
                .fold(probe.clone(), |n, (&l, r)| n.add_to_rows(l, (0, n_u), r));
            encoder.forward(x.clone(), &[n_u], &perturbed).logits
        };
        let directions =
            joint_directions(starts, clean_logits, (lvan.xi, lvan.iterations), forward);
        let rows = n_l + n_u;
        layers.iter().zip(directions).fold(noise, |n, (&l, d)| {
            n.add_to_rows(l, (n_l, rows), (d * lvan.epsilon[l]).detach())
        })
    }

    /// `noise` with the adversarial perturbations of the spec added to the corrupted input
    /// (thesis 000 Sec. 6.2): u = τ·d(∂C/∂x) at the clean input, through the clean encoder
    /// with its batch statistics. The labelled rows use their classes; the unlabelled rows use
    /// the network's own argmax as virtual labels. Unchanged when both are off.
    pub fn with_adversarial_noise(
        &self,
        spec: &LadderSpec,
        batch: &LadderBatch,
        noise: CorruptionNoise,
    ) -> CorruptionNoise {
        let sup = spec.adv_sup;
        let unsup = spec.adv_unsup.filter(|_| self.decoder.is_some());
        if sup.is_none() && unsup.is_none() {
            return noise;
        }
        let n_l = batch.x_labeled.dims()[0];
        let n_u = batch.x_unlabeled.dims()[0];
        let (u_l, u_u) = self.adversarial_perturbations(spec, batch, sup, unsup);
        let mut groups = vec![InputPerturbation {
            rows: n_l,
            u: u_l,
            keep_gaussian: sup.is_none_or(|a| a.with_gaussian),
        }];
        if self.decoder.is_some() {
            groups.push(InputPerturbation {
                rows: n_u,
                u: u_u,
                keep_gaussian: unsup.is_none_or(|a| a.with_gaussian),
            });
        }
        let device = batch.x_labeled.device();
        noise.perturb_input(&groups, spec.dims[0], &device)
    }

    /// u for the labelled and the unlabelled rows; one clean pass and one backward serve
    /// both, as batch normalisation keeps the two groups apart.
    fn adversarial_perturbations(
        &self,
        spec: &LadderSpec,
        batch: &LadderBatch,
        sup: Option<Adversarial>,
        unsup: Option<Adversarial>,
    ) -> (Option<Tensor<2>>, Option<Tensor<2>>) {
        let n_l = batch.x_labeled.dims()[0];
        let n_u = batch.x_unlabeled.dims()[0];
        let mut parts = Vec::new();
        let mut groups = Vec::new();
        if sup.is_some() {
            parts.push(batch.x_labeled.clone());
            groups.push(n_l);
        }
        if unsup.is_some() {
            parts.push(batch.x_unlabeled.clone());
            groups.push(n_u);
        }
        // Only ∂C/∂x is wanted: frozen weights spare the weight gradients.
        let encoder = self.encoder.clone().no_grad();
        let clean = CorruptionNoise::none(spec.depth());
        let grad = input_gradient(Tensor::cat(parts, 0), |x| {
            let logits = encoder.forward(x, &groups, &clean).logits;
            let mut cost: Option<Tensor<1>> = None;
            let mut add = |c: Tensor<1>| cost = Some(cost.take().map_or(c.clone(), |a| a + c));
            if sup.is_some() {
                add(cross_entropy(
                    logits.clone().narrow(0, 0, n_l),
                    batch.y_labeled.clone(),
                ));
            }
            if unsup.is_some() {
                let start = if sup.is_some() { n_l } else { 0 };
                let own = logits.narrow(0, start, n_u);
                let virtual_labels = own.clone().detach().argmax(1).reshape([n_u]);
                add(cross_entropy(own, virtual_labels));
            }
            cost.expect("at least one adversarial part")
        });
        let u_l = sup.map(|a| a.perturbation(grad.clone().narrow(0, 0, n_l)));
        let u_u = unsup.map(|a| {
            let start = if sup.is_some() { n_l } else { 0 };
            a.perturbation(grad.narrow(0, start, n_u))
        });
        (u_l, u_u)
    }

    /// After optimiser step `t` (1 for the first): Mean Teacher's teacher moves towards the
    /// encoder (eq. 1) with α_t = min(1 − 1/(t + 1), α), so that early on it is the plain mean
    /// of the student's iterates rather than mostly its random start (the authors' code,
    /// `update_ema_variables`).
    pub fn update_teacher(mut self, spec: &LadderSpec, t: usize) -> Self {
        let alpha = spec.consistency.and_then(|c| c.teacher_decay);
        if let (Some(alpha), Some(teacher)) = (alpha, self.teacher.take()) {
            let alpha = teacher_alpha(alpha, t);
            self.teacher = Some(teacher.moving_average(&self.encoder, alpha));
        }
        self
    }

    /// The network that classifies: Mean Teacher's teacher, the model its authors report and
    /// choose on (Tarvainen and Valpola 2017; their code validates the EMA model), otherwise
    /// the encoder.
    pub fn classifier(&self) -> &Encoder {
        self.teacher.as_ref().unwrap_or(&self.encoder)
    }

    /// Class scores (softmax inputs) of the clean [`classifier`](Self::classifier) with fixed
    /// per-layer moments.
    pub fn logits(&self, x: Tensor<2>, moments: &[Moments]) -> Tensor<2> {
        self.classifier().forward_with_moments(x, moments)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::combinator::CombinatorKind;
    use crate::model::spec::Activation;
    use crate::noise::AdvKind;
    use burn::module::Param;
    use rand::Rng;

    fn tiny_spec() -> LadderSpec {
        LadderSpec {
            layers: LadderSpec::dense_layers(&[5, 4, 3]),
            dims: vec![5, 4, 3],
            combinators: vec![Some(CombinatorKind::Gauss); 3],
            lambdas: vec![2.0, 0.7, 0.3],
            input_noise_std: 0.3,
            layer_noise_std: vec![0.3, 0.3],
            top_c: true,
            activation: Activation::Relu,
            adv_sup: None,
            adv_unsup: None,
            vat: None,
            lvan: None,
            consistency: None,
        }
    }

    fn random(rows: usize, cols: usize, rng: &mut impl Rng, device: &Device) -> Tensor<2> {
        let v: Vec<f32> = (0..rows * cols)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        Tensor::from_data(TensorData::new(v, [rows, cols]), device)
    }

    /// Every parameter tensor of the network, for perturbation.
    fn params(model: &mut LadderNetwork) -> Vec<&mut Param<Tensor<2>>> {
        let mut out: Vec<&mut Param<Tensor<2>>> = Vec::new();
        let enc = &mut model.encoder;
        out.extend(enc.weights.iter_mut());
        out.extend(enc.betas.iter_mut());
        out.extend(enc.gamma.iter_mut());
        for layer in model.decoder.iter_mut().flat_map(|d| d.layers.iter_mut()) {
            out.extend(layer.vertical.iter_mut());
            out.extend(layer.combinator.a.iter_mut());
        }
        out
    }

    /// A network whose combinator parameters are random too, so that every parameter
    /// influences the cost.
    fn randomized(spec: &LadderSpec, device: &Device, rng: &mut impl Rng) -> LadderNetwork {
        let mut model = LadderNetwork::new(spec, 3, device);
        for p in params(&mut model) {
            let [r, c] = p.val().dims();
            let current = p.val();
            *p = Param::from_tensor((current + random(r, c, rng, device) * 0.5).detach());
        }
        model
    }

    fn batch(device: &Device, rng: &mut impl Rng) -> LadderBatch {
        batch_of(5, device, rng)
    }

    fn batch_of(dim: usize, device: &Device, rng: &mut impl Rng) -> LadderBatch {
        LadderBatch {
            x_labeled: random(6, dim, rng, device),
            y_labeled: Tensor::from_data(TensorData::new(vec![0i64, 1, 2, 1, 0, 2], [6]), device),
            x_unlabeled: random(6, dim, rng, device),
        }
    }

    fn total(
        model: &LadderNetwork,
        spec: &LadderSpec,
        b: &LadderBatch,
        n: &CorruptionNoise,
        r: &Option<Tensor<2>>,
    ) -> f64 {
        model
            .cost_with(spec, b, n, &vat_inputs(r))
            .total
            .into_scalar::<f32>() as f64
    }

    fn vat_inputs(r: &Option<Tensor<2>>) -> StepInputs {
        StepInputs {
            r_vadv: r.clone(),
            consistency_weight: 0.7,
        }
    }

    /// [`total`] with VAT's clean prediction held at `held` (the prediction at the point the
    /// gradient is taken), as the cost holds it: a finite difference of the plain total would
    /// also move p(y|x), which VAT treats as a constant.
    fn total_held(
        model: &LadderNetwork,
        spec: &LadderSpec,
        b: &LadderBatch,
        n: &CorruptionNoise,
        (r, held): (&Option<Tensor<2>>, &Option<Tensor<2>>),
    ) -> f64 {
        let (Some(vat), Some(r), Some(held)) = (spec.vat, r, held) else {
            return total(model, spec, b, n, r);
        };
        let terms = model.cost_with(spec, b, n, &vat_inputs(&Some(r.clone())));
        let clean = CorruptionNoise::none(spec.depth());
        let q = model
            .encoder
            .forward(b.x_unlabeled.clone() + r.clone(), &[6], &clean)
            .logits;
        let moved = terms.virtual_adversarial.expect("VAT is on");
        let fixed = kl_divergence(held.clone(), q);
        (terms.total - moved * vat.weight + fixed * vat.weight).into_scalar::<f32>() as f64
    }

    /// Finite-difference check of ∂C/∂θ for every parameter tensor of `spec`'s network:
    /// the directional derivative along a random direction must match the analytic gradient.
    /// A central difference straddling a ReLU or max-pooling kink is off by O(1); `steps`
    /// lists step sizes of which the best must agree (a wrong gradient agrees at none).
    fn check_cost_gradient(spec: &LadderSpec, expected_params: usize, steps: &[f32]) {
        let device = Device::flex().autodiff();
        let mut rng = stream_rng(11, RngStream::Init, 0, 0);
        let mut model = randomized(spec, &device, &mut rng);
        let b = batch_of(spec.dims[0], &device, &mut rng);
        let rows = model.corrupted_rows(6, 6);
        let noise = CorruptionNoise::draw(&spec.noise_levels(), rows, &mut rng, &device);
        // A fixed virtual adversarial perturbation (an input of the cost, not a function of θ),
        // from a stream of its own so that the directions below are those of the same network
        // without VAT.
        let r_vadv = spec.vat.map(|v| {
            let mut own = stream_rng(12, RngStream::VirtualAdversarial, 0, 0);
            crate::model::vat::unit_rows(random(6, spec.dims[0], &mut own, &device)) * v.epsilon
        });

        let held = r_vadv.as_ref().map(|_| {
            let clean = CorruptionNoise::none(spec.depth());
            let p = model.encoder.forward(b.x_unlabeled.clone(), &[6], &clean);
            p.logits.detach()
        });
        let terms = model.cost_with(spec, &b, &noise, &vat_inputs(&r_vadv));
        for (l, d) in terms.denoising.iter().enumerate() {
            let decoded = model.decoder.as_ref().is_some_and(|d| l >= d.lowest);
            assert_eq!(d.is_some(), decoded && spec.lambdas[l] > 0.0, "layer {l}");
        }
        if let Some(v) = spec.vat {
            assert_eq!(terms.virtual_adversarial.is_some(), v.weight > 0.0);
            assert_eq!(terms.entropy.is_some(), v.entmin);
        }
        let grads = terms.total.backward();
        let count = params(&mut model).len();
        assert_eq!(count, expected_params);
        for i in 0..count {
            let p = params(&mut model)[i].val();
            let [r, c] = p.dims();
            let analytic_grad = p.grad(&grads).expect("every parameter has a gradient");
            let dir = random(r, c, &mut rng, &device);
            let analytic = (analytic_grad * dir.clone().inner())
                .sum()
                .into_scalar::<f32>() as f64;
            let at = |sign: f32, h: f32| {
                let mut m = model.clone();
                let slot = &mut params(&mut m)[i];
                **slot = Param::from_tensor((p.clone() + dir.clone() * (sign * h)).detach());
                total_held(&m, spec, &b, &noise, (&r_vadv, &held))
            };
            let cost = total_held(&model, spec, &b, &noise, (&r_vadv, &held)).abs();
            let relative_error = |h: f32| {
                let numeric = (at(1.0, h) - at(-1.0, h)) / (2.0 * h as f64);
                // The cost's f32 round-off (sums of thousands of terms: ~1e-5 relative),
                // divided by the step, bounds what a difference can resolve.
                let resolution = cost * 1e-5 / h as f64;
                let scale = analytic.abs().max(numeric.abs()).max(1e-2).max(resolution);
                ((analytic - numeric).abs() / scale, numeric)
            };
            let (error, numeric) = steps
                .iter()
                .map(|&h| relative_error(h))
                .min_by(|a, b| a.0.total_cmp(&b.0))
                .expect("at least one step");
            assert!(
                error < 2e-2,
                "parameter {i}: analytic {analytic} vs numeric {numeric}"
            );
        }
    }

    #[test]
    fn full_ladder_cost_gradient_matches_finite_differences() {
        // W, β (2 layers each), γ, two vertical maps, ten gauss parameters per layer.
        check_cost_gradient(&tiny_spec(), 2 + 2 + 1 + 2 + 10 * 3, &[1e-2]);
    }

    fn with_vat(spec: LadderSpec, lambdas: Vec<f64>, entmin: bool) -> LadderSpec {
        LadderSpec {
            lambdas,
            vat: Some(crate::model::vat::Vat {
                epsilon: 0.5,
                xi: 1e-3,
                iterations: 1,
                weight: 0.7,
                entmin,
            }),
            ..spec
        }
    }

    /// The VAT loss and the entropy are differentiated through the perturbed and the clean
    /// pass, with and without a decoder.
    #[test]
    fn vat_and_entmin_cost_gradients_match_finite_differences() {
        // VAT alone: no decoder (λ = 0), so W, β and γ only.
        let vat = with_vat(tiny_spec(), vec![0.0; 3], false);
        check_cost_gradient(&vat, 2 + 2 + 1, &[1e-2]);
        let entmin = with_vat(tiny_spec(), vec![0.0; 3], true);
        check_cost_gradient(&entmin, 2 + 2 + 1, &[1e-2]);
        let ladder = with_vat(tiny_spec(), tiny_spec().lambdas, false);
        check_cost_gradient(&ladder, 2 + 2 + 1 + 2 + 10 * 3, &[1e-2]);
        let ladder = with_vat(tiny_spec(), tiny_spec().lambdas, true);
        check_cost_gradient(&ladder, 2 + 2 + 1 + 2 + 10 * 3, &[1e-2]);
    }

    fn pi_spec(noise: f64) -> LadderSpec {
        LadderSpec {
            lambdas: vec![0.0; 3],
            input_noise_std: noise,
            layer_noise_std: vec![noise; 2],
            consistency: Some(crate::model::consistency::Consistency {
                weight: 0.7,
                rampup_epochs: 0.0,
                teacher_decay: None,
            }),
            ..tiny_spec()
        }
    }

    /// The Π-model's cost is differentiated through both noisy passes; with no noise the two
    /// passes agree and the consistency cost is 0, with noise it is not, and the noise covers
    /// two passes over every row.
    #[test]
    fn pi_model_cost_gradient_and_its_two_passes() {
        check_cost_gradient(&pi_spec(0.3), 2 + 2 + 1, &[1e-2]);
        let device = Device::flex().autodiff();
        let mut rng = stream_rng(3, RngStream::Init, 0, 0);
        let b = batch(&device, &mut rng);
        let inputs = StepInputs {
            r_vadv: None,
            consistency_weight: 2.0,
        };
        for (std, zero) in [(0.0, true), (0.3, false)] {
            let spec = pi_spec(std);
            let model = LadderNetwork::new(&spec, 1, &device);
            assert_eq!(model.corrupted_rows(6, 6), 24);
            let noise = CorruptionNoise::draw(&spec.noise_levels(), 24, &mut rng, &device);
            let terms = model.cost_with(&spec, &b, &noise, &inputs);
            let c = terms.consistency.clone().unwrap().into_scalar::<f32>();
            assert_eq!(c == 0.0, zero, "std {std}: {c}");
            let (total, sup) = (
                terms.total.into_scalar::<f32>(),
                terms.supervised.into_scalar::<f32>(),
            );
            assert!((total - sup - 2.0 * c).abs() < 1e-6);
        }
    }

    fn mean_teacher_spec() -> LadderSpec {
        let mut spec = pi_spec(0.3);
        if let Some(c) = spec.consistency.as_mut() {
            c.teacher_decay = Some(0.9);
        }
        spec
    }

    /// Mean Teacher: the cost's gradient reaches the student only (the teacher is held), and
    /// after a step the teacher is α·teacher + (1 − α)·student, parameter by parameter, with
    /// ids of its own and no gradient.
    #[test]
    fn mean_teacher_gradient_and_moving_average() {
        let spec = mean_teacher_spec();
        check_cost_gradient(&spec, 2 + 2 + 1, &[1e-2]);
        let device = Device::flex().autodiff();
        let mut rng = stream_rng(4, RngStream::Init, 0, 0);
        let model = randomized(&spec, &device, &mut rng);
        let teacher = model.teacher.clone().expect("a teacher");
        assert!(teacher.weights.iter().all(|w| !w.val().is_require_grad()));
        assert_ne!(teacher.weights[0].id, model.encoder.weights[0].id);
        let before: Vec<Vec<f32>> = teacher.weights.iter().map(|w| values(&w.val())).collect();
        let student: Vec<Vec<f32>> = model
            .encoder
            .weights
            .iter()
            .map(|w| values(&w.val()))
            .collect();
        let b = batch(&device, &mut rng);
        let noise = CorruptionNoise::draw(&spec.noise_levels(), 24, &mut rng, &device);
        let inputs = StepInputs {
            r_vadv: None,
            consistency_weight: 1.0,
        };
        let terms = model.cost_with(&spec, &b, &noise, &inputs);
        let grads = terms.total.backward();
        assert!(
            teacher.weights[0].val().grad(&grads).is_none(),
            "the teacher is held"
        );
        // Late in a run the decay is α (0.9); after the first step it is ½ (the authors'
        // min(1 − 1/(t + 1), α)).
        for (t, alpha) in [(100, 0.9f32), (1, 0.5)] {
            let moved = model.clone().update_teacher(&spec, t).teacher.unwrap();
            for ((m, b), s) in moved.weights.iter().zip(&before).zip(&student) {
                for ((m, b), s) in values(&m.val()).iter().zip(b).zip(s) {
                    let want = alpha * b + (1.0 - alpha) * s;
                    assert!((m - want).abs() < 1e-6, "step {t}: {m} vs {b}, {s}");
                }
            }
            assert!(moved.weights.iter().all(|w| !w.val().is_require_grad()));
        }
        assert_eq!(teacher_alpha(0.99, 1), 0.5);
        assert_eq!(teacher_alpha(0.99, 2), 1.0 - 1.0 / 3.0);
        assert_eq!(teacher_alpha(0.99, 99), 0.99);
        assert_eq!(teacher_alpha(0.99, 5000), 0.99);
        // The teacher classifies: its logits, not the student's.
        let chunks = [b.x_unlabeled.clone()];
        let moments = model
            .classifier()
            .population_moments(&crate::model::encoder::ChunkInputs::of_tensors(&chunks));
        let from_teacher = teacher.forward_with_moments(b.x_unlabeled.clone(), &moments);
        let from_student = model
            .encoder
            .forward_with_moments(b.x_unlabeled.clone(), &moments);
        let logits = values(&model.logits(b.x_unlabeled.clone(), &moments));
        assert_eq!(logits, values(&from_teacher));
        assert_ne!(logits, values(&from_student));
    }

    /// VAT's r_vadv: one row per unlabelled example, norm ε on every row.
    #[test]
    fn virtual_adversarial_perturbation_is_on_the_sphere() {
        let device = Device::flex().autodiff();
        let mut rng = stream_rng(5, RngStream::Init, 0, 0);
        let spec = with_vat(tiny_spec(), vec![0.0; 3], false);
        let model = randomized(&spec, &device, &mut rng);
        let b = batch(&device, &mut rng);
        let r = model
            .virtual_adversarial(&spec, &b, random(6, 5, &mut rng, &device))
            .unwrap();
        assert_eq!(r.dims(), [6, 5]);
        for row in values(&r).chunks(5) {
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            assert!((norm - 0.5).abs() < 1e-4, "{row:?}");
        }
        assert!(model.virtual_adversarial(&tiny_spec(), &b, r).is_none());
    }

    /// LVAN-LW's noise: the labelled rows and the layers with ε_l = 0 keep their Gaussian
    /// noise exactly; on the unlabelled rows each perturbed layer gets r_l of norm ε_l per row
    /// on top of it, and the input's r_0 raises the KL of the clean prediction more than a
    /// random direction of the same length does.
    #[test]
    fn virtual_adversarial_noise_adds_r_l_of_norm_epsilon_l_to_the_unlabelled_rows() {
        let device = Device::flex().autodiff();
        let mut rng = stream_rng(5, RngStream::Init, 0, 0);
        let epsilon = [0.5, 0.2, 0.0];
        let spec = LadderSpec {
            lvan: Some(crate::model::vat::Lvan {
                epsilon: epsilon.to_vec(),
                xi: 1e-3,
                iterations: 3,
                probe_noise_std: 0.0,
            }),
            ..tiny_spec()
        };
        spec.validate().unwrap();
        let model = randomized(&spec, &device, &mut rng);
        let b = batch(&device, &mut rng);
        let starts = vec![
            random(6, 5, &mut rng, &device),
            random(6, 4, &mut rng, &device),
        ];
        let noise = CorruptionNoise::draw(&spec.noise_levels(), 12, &mut rng, &device);
        let probe = CorruptionNoise::none(spec.depth());
        let lvan = model.with_virtual_adversarial_noise(
            &spec,
            &b,
            noise.clone(),
            (starts.clone(), &probe),
        );
        let parts = |n: &CorruptionNoise| {
            let mut p = vec![values(n.input.as_ref().unwrap())];
            p.extend(n.layers.iter().map(|t| values(t.as_ref().unwrap())));
            p
        };
        let (before, after) = (parts(&noise), parts(&lvan));
        let widths = [5, 4, 3];
        let mut r_input = vec![];
        for l in 0..3 {
            let w = widths[l];
            assert_eq!(
                before[l][..6 * w],
                after[l][..6 * w],
                "layer {l}: labelled rows"
            );
            let r: Vec<f32> = (6 * w..12 * w)
                .map(|i| after[l][i] - before[l][i])
                .collect();
            for row in r.chunks(w) {
                let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
                assert!(
                    (norm - epsilon[l] as f32).abs() < 1e-4,
                    "layer {l}: {row:?}"
                );
            }
            if l == 0 {
                r_input = r;
            }
        }
        let clean = CorruptionNoise::none(spec.depth());
        let kl = |r: Tensor<2>| {
            let x = b.x_unlabeled.clone();
            let p = model.encoder.forward(x.clone(), &[6], &clean).logits;
            let q = model.encoder.forward(x + r, &[6], &clean).logits;
            kl_divergence(p, q).into_scalar::<f32>()
        };
        let r_input = Tensor::from_data(TensorData::new(r_input, [6, 5]), &device);
        let random_r = crate::model::vat::unit_rows(starts[0].clone()) * 0.5;
        assert!(kl(r_input) > kl(random_r));
        // Off: the noise is untouched; on a network without a decoder: refused.
        let plain =
            model.with_virtual_adversarial_noise(&tiny_spec(), &b, noise.clone(), (vec![], &probe));
        assert_eq!(parts(&plain), before);
        let no_decoder = LadderSpec {
            lambdas: vec![0.0; 3],
            ..spec.clone()
        };
        assert!(no_decoder.validate().is_err());
        let wrong_length = LadderSpec {
            lvan: spec.lvan.clone().map(|l| crate::model::vat::Lvan {
                epsilon: vec![0.1; 2],
                ..l
            }),
            ..spec
        };
        assert!(wrong_length.validate().is_err());
    }

    /// A tiny conv Ladder with every kind of layer ('full' and 'valid' convolutions, max- and
    /// global mean pooling, a fully connected top) and a denoising cost on each.
    fn tiny_conv_spec() -> LadderSpec {
        let config = crate::train::TrainConfig {
            encoder_layers: crate::model::spec::Written::known(
                "convf:2:2:1:1-maxpool:2:2-convv:3:2:1:1-globalmeanpool:0-fc:3",
            ),
            decoder_spec: crate::model::spec::Written::known("gauss"),
            denoising_cost_x: crate::model::spec::Written::known("2,0.7,0.5,0.4,0.3,0.2"),
            num_classes: 3,
            ..Default::default()
        };
        config.ladder_spec(&[5, 5]).unwrap()
    }

    /// [`tiny_conv_spec`]'s Ladder with the weights of seed 1, on the CPU.
    fn tiny_conv_model() -> (Device, LadderSpec, LadderNetwork) {
        let device = Device::flex();
        let spec = tiny_conv_spec();
        let model = LadderNetwork::new(&spec, 1, &device);
        (device, spec, model)
    }

    #[test]
    fn conv_ladder_cost_gradient_matches_finite_differences() {
        let spec = tiny_conv_spec();
        assert_eq!(spec.dims, vec![25, 72, 18, 12, 3, 3]);
        // Weights of the two convolutions and the fc top; β of the same three (pooling has
        // none); γ; vertical maps under the three weighted layers; g on six layers.
        // Max-pooling and ReLU kinks lie closer together here.
        check_cost_gradient(&spec, 3 + 3 + 1 + 3 + 10 * 6, &[3e-3, 1e-3, 3e-4]);
    }

    /// One training step's cost and every parameter's gradient are the same, to rounding,
    /// with the fused CPU kernels and with every operation in its tensor form: for a small
    /// convolutional Ladder with a decoder at every layer (convolutions, their transposes,
    /// pooling and upsampling, per-channel normalisation) and for Conv-Small's Γ-model.
    #[test]
    fn conv_ladders_take_the_same_step_with_kernels_and_tensor_forms() {
        let conv_small = crate::train::TrainConfig::preset("mnist-100-conv-gamma")
            .unwrap()
            .ladder_spec(&[28, 28])
            .unwrap();
        for spec in [tiny_conv_spec(), conv_small] {
            let device = Device::flex().autodiff();
            let mut rng = stream_rng(5, RngStream::Init, 0, 0);
            let mut model = randomized(&spec, &device, &mut rng);
            let b = batch_of(spec.dims[0], &device, &mut rng);
            let rows = model.corrupted_rows(6, 6);
            let noise = CorruptionNoise::draw(&spec.noise_levels(), rows, &mut rng, &device);
            let step = |model: &mut LadderNetwork| {
                let terms = model.cost_with(&spec, &b, &noise, &vat_inputs(&None));
                let cost = terms.total.clone().into_scalar::<f32>();
                let grads = terms.total.backward();
                let g: Vec<Vec<f32>> = params(model)
                    .iter()
                    .map(|p| {
                        let g = p.val().grad(&grads).expect("a gradient");
                        crate::fused::test_support::vals(g)
                    })
                    .collect();
                (cost, g)
            };
            let (cost, grads) = step(&mut model);
            let (cost_t, grads_t) = crate::ops::with_tensor_forms(|| step(&mut model));
            // The kernels add in another order: bit-equal gradients would mean they never ran.
            assert_ne!(grads, grads_t, "the two paths took the same operations");
            assert!(
                (cost - cost_t).abs() <= 1e-5 * cost.abs(),
                "{cost} vs {cost_t}"
            );
            for (i, (g, t)) in grads.iter().zip(&grads_t).enumerate() {
                let scale = t.iter().fold(0f32, |m, v| m.max(v.abs()));
                for (a, b) in g.iter().zip(t) {
                    assert!((a - b).abs() <= 1e-4 * scale, "parameter {i}: {a} vs {b}");
                }
            }
        }
    }

    /// The decoder's reconstruction of every layer has that layer's shape.
    #[test]
    fn conv_decoder_reconstructs_every_layer_shape() {
        let (device, spec, model) = tiny_conv_model();
        let mut rng = stream_rng(2, RngStream::Init, 0, 0);
        let b = batch_of(25, &device, &mut rng);
        let trace = model.encoder.forward(
            b.x_unlabeled.clone(),
            &[6],
            &CorruptionNoise::none(spec.depth()),
        );
        let y = softmax(trace.logits.clone(), 1);
        let estimates = model.decoder.as_ref().unwrap().forward(&trace.z, y);
        let dims: Vec<[usize; 2]> = estimates.iter().map(|e| e.dims()).collect();
        let expected: Vec<[usize; 2]> = spec.dims.iter().map(|&d| [6, d]).collect();
        assert_eq!(dims, expected);
    }

    /// Evaluation streamed over a set a few rows at a time, its pixels kept as bytes, is the
    /// evaluation of one pass over the whole set as floats: the same moments (to rounding:
    /// the chunks' sums are added in another order) and, with those moments, the same logits
    /// for every row to the last bit.
    #[test]
    fn streamed_evaluation_equals_one_pass_over_the_whole_set() {
        use crate::data::Pixels;
        use crate::fused::test_support::vals;
        use crate::model::encoder::ChunkInputs;
        let (device, _, model) = tiny_conv_model();
        let (n, dim) = (23, 25);
        let bytes = Pixels::bytes((0..n * dim).map(|i| (i * 37 % 256) as u8).collect());
        let floats = Pixels::from(bytes.all().into_owned());
        let streamed = ChunkInputs::of_rows(&bytes, dim, 4, &device);
        let whole = ChunkInputs::of_rows(&floats, dim, n, &device);
        assert_eq!(streamed.sizes, vec![4, 4, 4, 4, 4, 3]);
        let m_streamed = model.encoder.population_moments(&streamed);
        let m_whole = model.encoder.population_moments(&whole);
        for (s, w) in m_streamed.iter().zip(&m_whole) {
            for (a, b) in [(&s.mean, &w.mean), (&s.var, &w.var)] {
                for (x, y) in vals(a.clone()).into_iter().zip(vals(b.clone())) {
                    assert!((x - y).abs() <= 1e-5 * (1.0 + y.abs()), "{x} against {y}");
                }
            }
        }
        let logits = |chunks: &ChunkInputs| -> Vec<f32> {
            chunks
                .iter()
                .flat_map(|x| vals(model.logits(x, &m_whole)))
                .collect()
        };
        assert_eq!(logits(&streamed), logits(&whole));
    }

    /// Population moments recomputed chunk by chunk (nothing kept) are the very values of
    /// those computed with every layer's outputs kept, and they are the moments of the whole
    /// set: the mean of layer 1's z_pre over all rows and positions, by hand.
    #[test]
    fn population_moments_are_the_same_kept_or_recomputed() {
        use crate::fused::test_support::vals;
        let (device, spec, model) = tiny_conv_model();
        let mut rng = stream_rng(3, RngStream::Init, 0, 0);
        let chunks: Vec<Tensor<2>> = [7, 5, 9]
            .into_iter()
            .map(|n| random(n, 25, &mut rng, &device))
            .collect();
        let inputs = crate::model::encoder::ChunkInputs::of_tensors(&chunks);
        let kept = model
            .encoder
            .population_moments_keeping(&inputs, usize::MAX);
        let recomputed = model.encoder.population_moments_keeping(&inputs, 0);
        assert_eq!(kept.len(), spec.depth());
        for (k, r) in kept.iter().zip(&recomputed) {
            for (a, b) in [(&k.mean, &r.mean), (&k.var, &r.var)] {
                assert_eq!(vals(a.clone()), vals(b.clone()));
            }
        }
        let all = Tensor::cat(chunks.clone(), 0);
        let pre = model.encoder.pre_activation(1, all);
        let [n, units] = pre.dims();
        let channels = kept[0].mean.dims()[1];
        let values = vals(pre);
        let per = units / channels;
        for ch in 0..channels {
            let sum: f64 = (0..n)
                .flat_map(|r| values[r * units + ch * per..][..per].to_vec())
                .map(f64::from)
                .sum();
            let want = sum / (n * per) as f64;
            let got = f64::from(vals(kept[0].mean.clone())[ch]);
            assert!(
                (got - want).abs() < 1e-5 * (1.0 + want.abs()),
                "channel {ch}: {got} against {want}"
            );
        }
    }

    #[test]
    fn variants_build_the_decoder_they_need() {
        let device = Device::flex();
        let mut spec = tiny_spec();
        spec.lambdas = vec![0.0, 0.0, 1.0];
        let gamma = LadderNetwork::new(&spec, 1, &device);
        let d = gamma.decoder.as_ref().unwrap();
        assert_eq!((d.lowest, d.layers.len()), (2, 1));
        assert!(d.layers[0].vertical.is_none());
        spec.lambdas = vec![5.0, 0.0, 0.0];
        let bottom = LadderNetwork::new(&spec, 1, &device);
        assert_eq!(bottom.decoder.as_ref().unwrap().layers.len(), 3);
        spec.lambdas = vec![0.0; 3];
        let baseline = LadderNetwork::new(&spec, 1, &device);
        assert!(baseline.decoder.is_none());
        assert_eq!(baseline.corrupted_rows(100, 100), 100);
    }

    #[test]
    fn supervised_cost_is_cross_entropy() {
        let device = Device::flex();
        let logits = Tensor::<2>::from_data(
            TensorData::new(vec![0.0f32, 0.0, 2.0, 0.0], [2, 2]),
            &device,
        );
        let labels = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 0], [2]), &device);
        let ce = cross_entropy(logits, labels).into_scalar::<f32>() as f64;
        let expected = (2f64.ln() + (1.0 + (-2f64).exp()).ln()) / 2.0;
        assert!((ce - expected).abs() < 1e-6, "{ce} vs {expected}");
    }

    fn adversarial(kind: AdvKind, tau: f64, with_gaussian: bool) -> Option<Adversarial> {
        Some(Adversarial {
            kind,
            tau,
            with_gaussian,
        })
    }

    fn values(t: &Tensor<2>) -> Vec<f32> {
        t.clone().into_data().try_to_vec::<f32>().unwrap()
    }

    /// The supervised cost of the clean encoder (batch statistics) on the labelled rows.
    fn clean_supervised(model: &LadderNetwork, x: Tensor<2>, y: Tensor<1, Int>) -> f64 {
        let depth = model.encoder.depth();
        let n = x.dims()[0];
        let logits = model
            .encoder
            .forward(x, &[n], &CorruptionNoise::none(depth))
            .logits;
        cross_entropy(logits, y).into_scalar::<f32>() as f64
    }

    /// With τ = 0 the adversarial path adds exact zeros: the plain Ladder's cost, bit for bit.
    #[test]
    fn zero_tau_reproduces_the_plain_ladder() {
        let device = Device::flex().autodiff();
        let mut rng = stream_rng(5, RngStream::Init, 0, 0);
        let plain = tiny_spec();
        let model = randomized(&plain, &device, &mut rng);
        let b = batch(&device, &mut rng);
        let noise = CorruptionNoise::draw(&plain.noise_levels(), 12, &mut rng, &device);
        let reference = total(&model, &plain, &b, &noise, &None);
        assert_eq!(
            total(
                &model,
                &plain,
                &b,
                &model.with_adversarial_noise(&plain, &b, noise.clone()),
                &None,
            ),
            reference
        );
        for kind in AdvKind::all() {
            let mut spec = plain.clone();
            spec.adv_sup = adversarial(kind, 0.0, true);
            spec.adv_unsup = adversarial(kind, 0.0, true);
            let perturbed = model.with_adversarial_noise(&spec, &b, noise.clone());
            assert!(perturbed.input.is_some());
            assert_eq!(
                total(&model, &spec, &b, &perturbed, &None),
                reference,
                "{kind}"
            );
        }
    }

    /// Each kind of u, added to the labelled rows, raises the clean supervised cost by
    /// ≈ ⟨∂C/∂x, u⟩ > 0 (first order), and has its kind's norm.
    #[test]
    fn adversarial_noise_raises_the_supervised_cost_to_first_order() {
        let device = Device::flex().autodiff();
        let mut rng = stream_rng(6, RngStream::Init, 0, 0);
        let mut spec = tiny_spec();
        let model = randomized(&spec, &device, &mut rng);
        let b = batch(&device, &mut rng);
        let c0 = clean_supervised(&model, b.x_labeled.clone(), b.y_labeled.clone());
        let grad = input_gradient(b.x_labeled.clone(), |x| {
            let logits = model
                .encoder
                .forward(x, &[6], &CorruptionNoise::none(2))
                .logits;
            cross_entropy(logits, b.y_labeled.clone())
        });
        let k = 5.0f64;
        for (kind, tau) in [
            (AdvKind::Sign, 1e-3),
            (AdvKind::Grad, 1e-1),
            (AdvKind::Unit, 1e-3),
            (AdvKind::Sqrtk, 1e-3),
        ] {
            spec.adv_sup = adversarial(kind, tau, false);
            let none = CorruptionNoise::none(2);
            let noise = model.with_adversarial_noise(&spec, &b, none);
            // Without Gaussian noise the labelled rows' input noise is u alone.
            let u = noise.input.unwrap().narrow(0, 0, 6);
            let rows: Vec<Vec<f32>> = values(&u).chunks(5).map(<[f32]>::to_vec).collect();
            for r in &rows {
                let l2 = r.iter().map(|v| (v * v) as f64).sum::<f64>().sqrt();
                let linf = r.iter().fold(0f64, |m, v| m.max(v.abs() as f64));
                match kind {
                    AdvKind::Sign => assert!((linf - tau).abs() < 1e-9, "{linf}"),
                    AdvKind::Unit => assert!((l2 - tau).abs() < 1e-8, "{l2}"),
                    AdvKind::Sqrtk => assert!((l2 - tau * k.sqrt()).abs() < 1e-8, "{l2}"),
                    AdvKind::Grad => {}
                }
            }
            let first_order = (grad.clone() * u.clone().inner())
                .sum()
                .into_scalar::<f32>() as f64;
            let c1 = clean_supervised(&model, b.x_labeled.clone() + u, b.y_labeled.clone());
            assert!(first_order > 0.0, "{kind}: ⟨U, u⟩ = {first_order}");
            assert!(c1 > c0, "{kind}: cost {c0} → {c1}");
            assert!(
                ((c1 - c0) - first_order).abs() < 0.1 * first_order,
                "{kind}: rise {} vs first order {first_order}",
                c1 - c0
            );
        }
    }

    /// Adversarial noise works on a conv Ladder as on an MLP: u has the sign kind's norm and
    /// raises the clean supervised cost, and the noisy cost is finite.
    #[test]
    fn adversarial_noise_applies_to_conv_ladders() {
        let device = Device::flex().autodiff();
        let mut rng = stream_rng(8, RngStream::Init, 0, 0);
        let mut spec = tiny_conv_spec();
        let model = randomized(&spec, &device, &mut rng);
        let b = batch_of(25, &device, &mut rng);
        let depth = spec.depth();
        let clean = |x: Tensor<2>| {
            let logits = model
                .encoder
                .forward(x, &[6], &CorruptionNoise::none(depth))
                .logits;
            cross_entropy(logits, b.y_labeled.clone()).into_scalar::<f32>() as f64
        };
        let c0 = clean(b.x_labeled.clone());
        spec.adv_sup = adversarial(AdvKind::Sign, 1e-2, false);
        spec.adv_unsup = adversarial(AdvKind::Unit, 1e-2, true);
        let noise = model.with_adversarial_noise(&spec, &b, CorruptionNoise::none(depth));
        let u = noise.input.clone().unwrap().narrow(0, 0, 6);
        for row in values(&u).chunks(25) {
            let linf = row.iter().fold(0f32, |m, v| m.max(v.abs()));
            assert!((linf - 1e-2).abs() < 1e-7, "{linf}");
        }
        assert!(clean(b.x_labeled.clone() + u) > c0);
        let cost = total(&model, &spec, &b, &noise, &None);
        assert!(cost.is_finite(), "{cost}");
    }

    /// The Gaussian input noise stays or goes per group; the unlabelled rows get their own u.
    #[test]
    fn gaussian_noise_is_kept_or_dropped_per_group() {
        let device = Device::flex().autodiff();
        let mut rng = stream_rng(7, RngStream::Init, 0, 0);
        let mut spec = tiny_spec();
        let model = randomized(&spec, &device, &mut rng);
        let b = batch(&device, &mut rng);
        let noise = CorruptionNoise::draw(&spec.noise_levels(), 12, &mut rng, &device);
        let gaussian = values(noise.input.as_ref().unwrap());
        spec.adv_sup = adversarial(AdvKind::Sign, 0.5, false);
        spec.adv_unsup = adversarial(AdvKind::Unit, 0.5, true);
        let out = values(
            &model
                .with_adversarial_noise(&spec, &b, noise)
                .input
                .unwrap(),
        );
        // Labelled rows: ±0.5 or 0 only (u alone).
        assert!(
            out[..30].iter().all(|v| [0.0, 0.5, -0.5].contains(v)),
            "{:?}",
            &out[..30]
        );
        // Unlabelled rows: n + u with ‖u‖ = 0.5 per row.
        for r in 6..12 {
            let d: f64 = (0..5)
                .map(|j| (out[r * 5 + j] - gaussian[r * 5 + j]) as f64)
                .map(|v| v * v)
                .sum();
            assert!((d.sqrt() - 0.5).abs() < 1e-5, "row {r}: {}", d.sqrt());
        }
    }
}
