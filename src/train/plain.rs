//! Training of the plain classifier of the adversarial-training thesis (004, Sec. 3.4, 4.3):
//! model A (ordinary cross-entropy), model B (adversarial cost, eq. 3.2) and model C (inputs
//! with fresh Gaussian noise every step), and the stronger adversarial training of today: PGD
//! training (Madry et al. 2018) and TRADES (Zhang et al. 2019), with SGD whose momentum grows over the first epochs
//! (pylearn2's `MomentumAdjustor`) or Adam, and early stopping on a validation set that keeps
//! the best model.

use std::fmt;
use std::str::FromStr;

use burn::module::Module;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, ModuleOptimizer, OptimizerRecord, SgdConfig};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::attack::input_box;
use crate::data::preprocess::Preprocessing;
use crate::data::{Dataset, SplitSpec, TrainTest, semi_supervised_split};
use crate::error::{LadderError, Result};
use crate::eval::{Classifier, batch_tensors, error_percent_of};
use crate::model::ladder::cross_entropy;
use crate::model::mlp::{Mlp, MlpInit};
use crate::model::spec::{EncoderLayers, Written, widths};
use crate::noise::{RngStream, fgsm, gaussian_vec, pgd_linf, stream_rng};
use crate::ops::adam::FusedAdam;
use crate::train::epochs::{EpochMethod, EpochOutcome, train_unsaved};

/// The three models of 004 Sec. 3.4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum PlainModel {
    /// Ordinary training: C(x, y).
    #[value(alias = "standard")]
    A,
    /// Adversarial training: α·C(x, y) + (1 − α)·C(x + ε·sgn ∇ₓC(x, y), y).
    #[value(alias = "adversarial")]
    B,
    /// Training on x + ε·N(0, 1), drawn afresh every step.
    #[value(alias = "noisy")]
    C,
    /// PGD adversarial training (Madry et al. 2018): C(x', y) with x' the PGD point of the L∞
    /// ball of radius ε (clipped to the inputs' box), from a random start.
    Pgd,
    /// TRADES (Zhang et al. 2019, eq. 5): C(x, y) + β·KL(p(·|x) ‖ p(·|x')), x' maximising the
    /// KL term in the ball by PGD from x + 0.001·N(0, 1).
    Trades,
}

impl FromStr for PlainModel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        crate::choice::parse(s, "model")
    }
}

/// The thesis's name: A, B or C (summaries and the command's output).
impl fmt::Display for PlainModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PlainModel::A => "A",
            PlainModel::B => "B",
            PlainModel::C => "C",
            PlainModel::Pgd => "PGD",
            PlainModel::Trades => "TRADES",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum PlainOptimizer {
    /// SGD with momentum growing linearly from `momentum_start` to `momentum_final`.
    Sgd,
    Adam,
}

crate::named_choice!(PlainOptimizer, "optimizer");

/// Everything that decides a plain run; the defaults are 004's MNIST settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlainConfig {
    /// Hidden widths, `-`-separated (the classes are added on top).
    pub hidden_layers: EncoderLayers,
    pub model: PlainModel,
    /// ε: the FGSM step of model B, the noise std of model C, the L∞ radius of PGD and TRADES.
    pub epsilon: f64,
    /// α of model B's cost (1 = ordinary training).
    pub alpha: f64,
    pub optimizer: PlainOptimizer,
    pub lr: f64,
    /// Momentum of the first epoch.
    pub momentum_start: f64,
    /// Momentum reached at epoch `momentum_saturate` and kept.
    pub momentum_final: f64,
    pub momentum_saturate: usize,
    pub batch_size: usize,
    pub max_epochs: usize,
    /// Stop when the validation error has not improved for this many epochs.
    pub patience: usize,
    /// Training examples held out for early stopping.
    pub validation_samples: usize,
    /// Training examples used (balanced over classes); 0 = all not held out.
    pub labeled_samples: usize,
    /// Non-zero incoming weights per hidden unit at the start (pylearn2 `sparse_init`); 0 =
    /// dense N(0, 1)/√fan_in.
    pub sparse_init: usize,
    pub seed: u64,
    pub num_classes: usize,
    /// Convert colour images to grey first (004 trained its plain networks on grey CIFAR-10).
    pub grey: bool,
    /// PGD steps of the inner maximisation of PGD training and TRADES.
    #[serde(skip_serializing_if = "is_default_attack_steps")]
    pub attack_steps: usize,
    /// Their step size; `None`: 2.5 ε / steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attack_step_size: Option<f64>,
    /// β of TRADES: the weight of the robustness term.
    #[serde(skip_serializing_if = "is_default_trades_beta")]
    pub trades_beta: f64,
    /// Attack the model's own predictions rather than the true labels (FGSM of model B, PGD
    /// training), which avoids the label leaking of FGSM training (Kurakin et al. 2017).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub attack_predicted: bool,
}

const DEFAULT_ATTACK_STEPS: usize = 10;
const DEFAULT_TRADES_BETA: f64 = 6.0;

// Settings at their defaults are left out of the written configuration, so that runs of
// versions without them compare equal and resume.
fn is_default_attack_steps(v: &usize) -> bool {
    *v == DEFAULT_ATTACK_STEPS
}

fn is_default_trades_beta(v: &f64) -> bool {
    *v == DEFAULT_TRADES_BETA
}

impl Default for PlainConfig {
    /// Model A of 004: 800 ReLU units, SGD lr 0.01, batch 200, momentum 0.5 → 0.99 over 10
    /// epochs, patience 100, sparse init 15; ε 0.25 and α 0.5 for the other models.
    fn default() -> Self {
        PlainConfig {
            hidden_layers: Written::known("800"),
            model: PlainModel::A,
            epsilon: 0.25,
            alpha: 0.5,
            optimizer: PlainOptimizer::Sgd,
            lr: 0.01,
            momentum_start: 0.5,
            momentum_final: 0.99,
            momentum_saturate: 10,
            batch_size: 200,
            max_epochs: 1500,
            patience: 100,
            validation_samples: 1000,
            labeled_samples: 0,
            sparse_init: 15,
            seed: 1,
            num_classes: 10,
            grey: false,
            attack_steps: DEFAULT_ATTACK_STEPS,
            attack_step_size: None,
            trades_beta: DEFAULT_TRADES_BETA,
            attack_predicted: false,
        }
    }
}

impl PlainConfig {
    /// This configuration trained with seed `seed`.
    pub fn with_seed(&self, seed: u64) -> PlainConfig {
        PlainConfig {
            seed,
            ..self.clone()
        }
    }

    /// The input preprocessing of a plain run: grey conversion or nothing.
    pub fn preprocessing(&self) -> Preprocessing {
        Preprocessing {
            grey: self.grey,
            contrast_norm: 0.0,
            zca_bias: None,
            crop: 0,
        }
    }

    pub fn from_toml_str(text: &str) -> Result<PlainConfig> {
        toml::from_str(text).map_err(|e| LadderError::Setting(format!("bad configuration: {e}")))
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a PlainConfig always serialises")
    }

    /// Layer widths for `input_dim`-dimensional inputs.
    pub fn dims(&self, input_dim: usize) -> Result<Vec<usize>> {
        let mut dims = vec![input_dim];
        dims.extend(widths(&self.hidden_layers)?);
        dims.push(self.num_classes);
        Ok(dims)
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(LadderError::Setting(m));
        if self.batch_size == 0 || self.max_epochs == 0 {
            return bad("batch size and max epochs must be positive".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!("learning rate {} must be positive", self.lr));
        }
        if !(self.epsilon.is_finite() && self.epsilon >= 0.0) {
            return bad(format!("epsilon {} must be ≥ 0", self.epsilon));
        }
        if !(0.0..=1.0).contains(&self.alpha) {
            return bad(format!("alpha {} must lie in [0, 1]", self.alpha));
        }
        for m in [self.momentum_start, self.momentum_final] {
            if !(0.0..1.0).contains(&m) {
                return bad(format!("momentum {m} must lie in [0, 1)"));
            }
        }
        if self.num_classes < 2 {
            return bad("there must be at least 2 classes".into());
        }
        if self.validation_samples == 0 {
            return bad("early stopping needs validation samples (validation-samples > 0)".into());
        }
        if self.attack_steps == 0 {
            return bad("attack-steps must be at least 1".into());
        }
        if self
            .attack_step_size
            .is_some_and(|a| !(a.is_finite() && a > 0.0))
        {
            return bad("attack-step-size must be a finite number > 0".into());
        }
        if !(self.trades_beta.is_finite() && self.trades_beta >= 0.0) {
            return bad(format!("trades-beta {} must be ≥ 0", self.trades_beta));
        }
        self.dims(1).map(|_| ())
    }

    /// The step size of PGD training and TRADES.
    fn attack_alpha(&self) -> f64 {
        self.attack_step_size
            .unwrap_or(2.5 * self.epsilon / self.attack_steps as f64)
    }

    /// pylearn2's `MomentumAdjustor(start=1, saturate)`: linear from the first epoch's
    /// `momentum_start` to `momentum_final` at epoch `momentum_saturate` (1-based).
    pub fn momentum(&self, epoch: usize) -> f64 {
        let span = self.momentum_saturate.saturating_sub(1).max(1) as f64;
        let t = ((epoch.saturating_sub(1)) as f64 / span).min(1.0);
        self.momentum_start + (self.momentum_final - self.momentum_start) * t
    }
}

/// One line of a plain run's `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlainEpoch {
    pub epoch: usize,
    pub momentum: Option<f64>,
    pub train_cost: f64,
    pub validation_error_percent: f64,
    /// Whether this epoch's model is the best so far (and kept).
    pub best: bool,
}

/// The training, validation and test parts of a plain run.
#[derive(Debug, Clone)]
pub struct PlainData {
    pub train: Dataset,
    pub validation: Dataset,
    pub test: Dataset,
    /// The box the training attacks clip to (`eval::robustness::input_box` of the training
    /// set: [0, 1] for pixels).
    pub bounds: (f32, f32),
}

impl PlainData {
    pub fn new(data: &TrainTest, config: &PlainConfig) -> Result<Self> {
        let spec = SplitSpec {
            labeled: config.labeled_samples,
            unlabeled: Some(0),
            validation: config.validation_samples,
        };
        let split =
            semi_supervised_split(&data.train.labels, config.num_classes, &spec, config.seed)?;
        let train = data.train.subset(&split.labeled);
        Ok(PlainData {
            bounds: input_box(&train),
            train,
            validation: data.train.subset(&split.validation),
            test: data.test.clone(),
        })
    }
}

impl Classifier for Mlp {
    fn logits(&self, x: Tensor<2>) -> Tensor<2> {
        Mlp::logits(self, x)
    }
    fn device(&self) -> Device {
        self.weights[0].val().device()
    }
}

/// The labels the training attacks aim at: the true ones, or the model's predictions.
fn attack_labels(
    frozen: &Mlp,
    config: &PlainConfig,
    x: &Tensor<2>,
    y: &Tensor<1, Int>,
) -> Tensor<1, Int> {
    match config.attack_predicted {
        false => y.clone(),
        true => {
            let n = y.dims()[0];
            frozen.logits(x.clone().detach()).argmax(1).reshape([n])
        }
    }
}

/// KL(p ‖ q) of the softmax distributions of two logit batches, averaged over the rows.
fn kl_divergence(p_logits: Tensor<2>, q_logits: Tensor<2>) -> Tensor<1> {
    let log_p = log_softmax(p_logits, 1);
    let log_q = log_softmax(q_logits, 1);
    (log_p.clone().exp() * (log_p - log_q)).sum_dim(1).mean()
}

/// The cost of one step of `model` (eq. 3.2 of 004 for B), on an autodiff device. `noise` is
/// the step's draw: model C's Gaussian noise, PGD's random start offset, TRADES' small start
/// noise; `bounds` the box the PGD points are clipped to.
pub fn plain_cost(
    mlp: &Mlp,
    config: &PlainConfig,
    x: Tensor<2>,
    y: Tensor<1, Int>,
    noise: Option<Tensor<2>>,
    bounds: (f32, f32),
) -> Tensor<1> {
    let eps = config.epsilon;
    let inner = (eps, config.attack_alpha(), config.attack_steps);
    let start = |x: &Tensor<2>| match &noise {
        Some(n) => x.clone() + n.clone(),
        None => x.clone(),
    };
    match config.model {
        PlainModel::A => cross_entropy(mlp.logits(x), y),
        PlainModel::Pgd => {
            let frozen = mlp.clone().no_grad();
            let target = attack_labels(&frozen, config, &x, &y);
            let x_adv = pgd_linf(x.clone(), start(&x), inner, bounds, |v| {
                cross_entropy(frozen.logits(v), target.clone())
            });
            cross_entropy(mlp.logits(x_adv), y)
        }
        PlainModel::Trades => {
            let frozen = mlp.clone().no_grad();
            let clean = frozen.logits(x.clone()).detach();
            let x_adv = pgd_linf(x.clone(), start(&x), inner, bounds, |v| {
                kl_divergence(clean.clone(), frozen.logits(v))
            });
            let logits = mlp.logits(x);
            let natural = cross_entropy(logits.clone(), y);
            natural + kl_divergence(logits, mlp.logits(x_adv)) * config.trades_beta
        }
        PlainModel::B => {
            let clean = cross_entropy(mlp.logits(x.clone()), y.clone());
            if config.alpha >= 1.0 {
                return clean;
            }
            let frozen = mlp.clone().no_grad();
            let target = attack_labels(&frozen, config, &x, &y);
            let x_adv = fgsm(x, config.epsilon, |x| {
                cross_entropy(frozen.logits(x), target)
            });
            let adv = cross_entropy(mlp.logits(x_adv), y);
            clean * config.alpha + adv * (1.0 - config.alpha)
        }
        PlainModel::C => {
            let x = match noise {
                Some(n) => x + n,
                None => x,
            };
            cross_entropy(mlp.logits(x), y)
        }
    }
}

/// The outcome of a plain run: the best model (by validation error) and its history.
pub type PlainOutcome<'a> = EpochOutcome<PlainMethod<'a>>;

fn optimizer(config: &PlainConfig, epoch: usize) -> ModuleOptimizer {
    match config.optimizer {
        PlainOptimizer::Adam => FusedAdam::new(0.9, 0.999, 1e-8).init(),
        PlainOptimizer::Sgd => SgdConfig::new()
            .with_momentum(Some(
                MomentumConfig::new()
                    .with_momentum(config.momentum(epoch))
                    .with_dampening(0.0),
            ))
            .init(),
    }
}

/// A plain network trained with early stopping (004 Sec. 3.4), as a method of the one epoch
/// loop ([`crate::train::epochs::BestOf`]).
pub struct PlainMethod<'a> {
    pub config: &'a PlainConfig,
    pub data: &'a PlainData,
    pub device: Device,
}

impl EpochMethod for PlainMethod<'_> {
    type Model = Mlp;
    type Cost = f64;
    type Epoch = PlainEpoch;

    fn max_epochs(&self) -> usize {
        self.config.max_epochs
    }
    fn patience(&self) -> Option<usize> {
        Some(self.config.patience)
    }
    fn optimizer(&self) -> ModuleOptimizer {
        optimizer(self.config, 1)
    }
    fn next_optimizer(&self, epoch: usize, optim: ModuleOptimizer) -> ModuleOptimizer {
        match self.config.optimizer {
            // The velocity carries over; only the momentum factor changes.
            PlainOptimizer::Sgd => optimizer(self.config, epoch).load_record(optim.to_record()),
            PlainOptimizer::Adam => optim,
        }
    }
    fn resumed_optimizer(&self, epoch: usize, record: OptimizerRecord) -> ModuleOptimizer {
        optimizer(self.config, epoch).load_record(record)
    }
    fn train_epoch(
        &self,
        model: Mlp,
        optim: &mut ModuleOptimizer,
        epoch: usize,
    ) -> Result<(Mlp, f64)> {
        train_epoch(model, optim, self.config, self.data, epoch, &self.device)
    }
    fn validation_error(&self, model: &Mlp) -> f64 {
        error_percent_of(&model.valid(), &self.data.validation)
    }
    fn record(&self, epoch: usize, cost: f64, val: f64, best: bool, _seconds: f64) -> PlainEpoch {
        let sgd = self.config.optimizer == PlainOptimizer::Sgd;
        PlainEpoch {
            epoch,
            momentum: sgd.then(|| self.config.momentum(epoch)),
            train_cost: cost,
            validation_error_percent: val,
            best,
        }
    }
}

impl PlainMethod<'_> {
    /// The network a run starts from, initialised from the seed.
    pub fn initial_model(&self) -> Result<Mlp> {
        let dims = self.config.dims(self.data.train.dim)?;
        let init = match self.config.sparse_init {
            0 => MlpInit::Scaled,
            k => MlpInit::Sparse(k),
        };
        let mut rng = stream_rng(self.config.seed, RngStream::Init, 0, 0);
        Ok(Mlp::new(&dims, init, &mut rng, &self.device))
    }
}

/// Trains a plain network with early stopping from the start; `on_epoch` sees every epoch's
/// metrics and may stop the run with an error.
pub fn train_plain<'a>(
    config: &'a PlainConfig,
    data: &'a PlainData,
    device: &Device,
    on_epoch: &mut dyn FnMut(&PlainEpoch) -> Result<()>,
) -> Result<PlainOutcome<'a>> {
    config.validate()?;
    let method = PlainMethod {
        config,
        data,
        device: device.clone(),
    };
    train_unsaved(&method, method.initial_model()?, on_epoch)
}

/// One pass over the training set in shuffled mini-batches; returns the mean cost.
/// The random draw of step (`epoch`, `step`) for `n` input values: model C's N(0, ε²) noise,
/// PGD's uniform start in the ball, TRADES' 0.001·N(0, 1); `None` for the other models.
fn step_noise(config: &PlainConfig, n: usize, (epoch, step): (usize, usize)) -> Option<Vec<f32>> {
    let eps = config.epsilon as f32;
    let stream = match config.model {
        PlainModel::C => RngStream::Corruption,
        PlainModel::Pgd | PlainModel::Trades => RngStream::Adversarial,
        PlainModel::A | PlainModel::B => return None,
    };
    let mut rng = stream_rng(config.seed, stream, epoch as u64, step as u64);
    match config.model {
        PlainModel::C if eps > 0.0 => Some(gaussian_vec(&mut rng, n, eps)),
        PlainModel::Pgd => Some(
            (0..n)
                .map(|_| eps * rng.random_range(-1.0f32..=1.0))
                .collect(),
        ),
        PlainModel::Trades => Some(gaussian_vec(&mut rng, n, 0.001)),
        _ => None,
    }
}

fn train_epoch(
    mut model: Mlp,
    optim: &mut ModuleOptimizer,
    config: &PlainConfig,
    data: &PlainData,
    epoch: usize,
    device: &Device,
) -> Result<(Mlp, f64)> {
    let train = &data.train;
    let mut order: Vec<usize> = (0..train.len()).collect();
    order.shuffle(&mut stream_rng(
        config.seed,
        RngStream::EpochOrder,
        epoch as u64,
        0,
    ));
    let mut total = 0.0;
    let batches: Vec<&[usize]> = order.chunks(config.batch_size).collect();
    for (step, idx) in batches.iter().enumerate() {
        let (x, y) = batch_tensors(train, idx, device);
        let noise = step_noise(config, idx.len() * train.dim, (epoch, step))
            .map(|v| Tensor::from_data(TensorData::new(v, [idx.len(), train.dim]), device));
        let cost = plain_cost(&model, config, x, y, noise, data.bounds);
        let value = cost.clone().into_scalar::<f32>();
        if !value.is_finite() {
            return Err(LadderError::Diverged {
                what: "cost".into(),
                value,
                epoch,
                step: step + 1,
            });
        }
        total += value as f64;
        let grads = GradientsParams::from_grads(cost.backward(), &model);
        model = optim.step(config.lr, model, grads);
    }
    Ok((model, total / batches.len() as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn momentum_grows_linearly_then_stays() {
        let c = PlainConfig::default();
        assert_eq!(c.momentum(1), 0.5);
        assert!((c.momentum(10) - 0.99).abs() < 1e-12);
        assert!((c.momentum(50) - 0.99).abs() < 1e-12);
        assert!((c.momentum(4) - (0.5 + 0.49 / 3.0)).abs() < 1e-12);
    }

    #[test]
    fn alpha_one_is_the_plain_cost() {
        let device = Device::flex().autodiff();
        let mut rng = stream_rng(2, RngStream::Init, 0, 0);
        let mlp = Mlp::new(&[6, 5, 3], MlpInit::Scaled, &mut rng, &device);
        // A non-zero top so that the cost depends on the input.
        let mlp = Mlp {
            weights: vec![
                mlp.weights[0].clone(),
                burn::module::Param::from_tensor(crate::model::encoder::scaled_normal(
                    5, 3, &mut rng, &device,
                )),
            ],
            biases: mlp.biases,
        };
        let x = Tensor::<2>::from_data(
            TensorData::new(gaussian_vec(&mut rng, 24, 1.0), [4, 6]),
            &device,
        );
        let y = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 1, 2, 1], [4]), &device);
        let value = |model: PlainModel, alpha: f64| {
            let c = PlainConfig {
                model,
                alpha,
                ..PlainConfig::default()
            };
            plain_cost(&mlp, &c, x.clone(), y.clone(), None, (0.0, 1.0)).into_scalar::<f32>()
        };
        assert_eq!(value(PlainModel::B, 1.0), value(PlainModel::A, 1.0));
        // With α < 1 the adversarial term raises the cost.
        assert!(value(PlainModel::B, 0.0) > value(PlainModel::A, 1.0));
        let half = value(PlainModel::B, 0.5);
        let expected = 0.5 * value(PlainModel::A, 1.0) + 0.5 * value(PlainModel::B, 0.0);
        assert!((half - expected).abs() < 1e-5, "{half} vs {expected}");
    }

    /// KL(p ‖ p) = 0; for p = (1/2, 1/2) against q = softmax(0, ln 3) = (1/4, 3/4),
    /// KL = ½ ln 2 + ½ ln(2/3).
    #[test]
    fn kl_divergence_by_hand() {
        let device = Device::flex();
        let t = |v: Vec<f32>| Tensor::<2>::from_data(TensorData::new(v, [1, 2]), &device);
        let same = kl_divergence(t(vec![0.3, -1.0]), t(vec![0.3, -1.0])).into_scalar::<f32>();
        assert!(same.abs() < 1e-7, "{same}");
        let kl = kl_divergence(t(vec![0.0, 0.0]), t(vec![0.0, 3f32.ln()])).into_scalar::<f32>();
        let want = 0.5 * 2f32.ln() + 0.5 * (2.0f32 / 3.0).ln();
        assert!((kl - want).abs() < 1e-6, "{kl} vs {want}");
    }

    /// With `attack_predicted`, the attacks aim at the model's argmax, not the true label.
    #[test]
    fn predicted_labels_are_the_models_argmax() {
        let device = Device::flex().autodiff();
        let mut rng = stream_rng(3, RngStream::Init, 0, 0);
        let mlp = Mlp::new(&[4, 3], MlpInit::Scaled, &mut rng, &device);
        let x = Tensor::<2>::from_data(
            TensorData::new(gaussian_vec(&mut rng, 20, 1.0), [5, 4]),
            &device,
        );
        let y = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64; 5], [5]), &device);
        let want = mlp.logits(x.clone()).argmax(1).reshape([5]);
        let c = PlainConfig {
            attack_predicted: true,
            ..PlainConfig::default()
        };
        let got = attack_labels(&mlp, &c, &x, &y);
        assert_eq!(got.into_data(), want.into_data());
        let got = attack_labels(&mlp, &PlainConfig::default(), &x, &y);
        assert_eq!(got.into_data(), y.into_data());
    }

    #[test]
    fn bad_settings_are_refused() {
        let mut c = PlainConfig {
            alpha: 1.5,
            ..PlainConfig::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("alpha"));
        c.alpha = 0.5;
        c.validation_samples = 0;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("early stopping")
        );
        c.validation_samples = 10;
        c.momentum_final = 1.0;
        assert!(c.validate().unwrap_err().to_string().contains("momentum"));
        assert!("d".parse::<PlainModel>().is_err());
        assert_eq!("adversarial".parse::<PlainModel>().unwrap(), PlainModel::B);
    }
}
