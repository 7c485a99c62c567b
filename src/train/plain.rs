//! Training of the plain classifier of the adversarial-training thesis (004, Sec. 3.4, 4.3):
//! model A (ordinary cross-entropy), model B (adversarial cost, eq. 3.2) and model C (inputs
//! with fresh Gaussian noise every step), with SGD whose momentum grows over the first epochs
//! (pylearn2's `MomentumAdjustor`) or Adam, and early stopping on a validation set that keeps
//! the best model.

use std::fmt;
use std::str::FromStr;

use burn::module::Module;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, ModuleOptimizer, OptimizerRecord, SgdConfig};
use burn::prelude::*;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::data::preprocess::Preprocessing;
use crate::data::{Dataset, SplitSpec, TrainTest, semi_supervised_split};
use crate::error::{LadderError, Result};
use crate::eval::{Classifier, batch_tensors, error_percent_of};
use crate::model::ladder::cross_entropy;
use crate::model::mlp::{Mlp, MlpInit};
use crate::model::spec::{EncoderLayers, Written, widths};
use crate::noise::{RngStream, fgsm, gaussian_vec, stream_rng};
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
    /// ε: the FGSM step of model B, the noise std of model C.
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
        }
    }
}

impl PlainConfig {
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
        self.dims(1).map(|_| ())
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
        Ok(PlainData {
            train: data.train.subset(&split.labeled),
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

/// The cost of one step of `model` (eq. 3.2 of 004 for B), on an autodiff device.
pub fn plain_cost(
    mlp: &Mlp,
    config: &PlainConfig,
    x: Tensor<2>,
    y: Tensor<1, Int>,
    noise: Option<Tensor<2>>,
) -> Tensor<1> {
    match config.model {
        PlainModel::A => cross_entropy(mlp.logits(x), y),
        PlainModel::B => {
            let clean = cross_entropy(mlp.logits(x.clone()), y.clone());
            if config.alpha >= 1.0 {
                return clean;
            }
            let frozen = mlp.clone().no_grad();
            let x_adv = fgsm(x, config.epsilon, |x| {
                cross_entropy(frozen.logits(x), y.clone())
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
        let noise = (config.model == PlainModel::C && config.epsilon > 0.0).then(|| {
            let mut rng = stream_rng(
                config.seed,
                RngStream::Corruption,
                epoch as u64,
                step as u64,
            );
            let v = gaussian_vec(&mut rng, idx.len() * train.dim, config.epsilon as f32);
            Tensor::from_data(TensorData::new(v, [idx.len(), train.dim]), device)
        });
        let cost = plain_cost(&model, config, x, y, noise);
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
            plain_cost(&mlp, &c, x.clone(), y.clone(), None).into_scalar::<f32>()
        };
        assert_eq!(value(PlainModel::B, 1.0), value(PlainModel::A, 1.0));
        // With α < 1 the adversarial term raises the cost.
        assert!(value(PlainModel::B, 0.0) > value(PlainModel::A, 1.0));
        let half = value(PlainModel::B, 0.5);
        let expected = 0.5 * value(PlainModel::A, 1.0) + 0.5 * value(PlainModel::B, 0.0);
        assert!((half - expected).abs() < 1e-5, "{half} vs {expected}");
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
