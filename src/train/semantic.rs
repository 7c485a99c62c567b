//! Training of the semantic-noise-modeling networks (003 Sec. 4.2): Adam, the learning rate
//! divided by 5 every 40 epochs up to the 120th, mini-batches of 100, training sets of k
//! examples per class drawn by the seed, inputs mean-subtracted with the training set's mean,
//! random crops and flips for CIFAR-10, and the network with the best validation error kept.

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer, OptimizerRecord};
use burn::prelude::*;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::data::preprocess::{augment_rows, centre_crop, cropped_shape};
use crate::data::{Dataset, SemiSupervisedSplit, SplitSpec, TrainTest, semi_supervised_split};
use crate::error::{LadderError, Result};
use crate::eval::{Classifier, batch_tensors, error_percent_of};
use crate::model::layers::{LayerGeom, LayerKind, plan};
use crate::model::semantic::{CostWeights, SemanticCost, SemanticModel, SemanticNet, check_layers};
use crate::model::spec::{EncoderLayers, Written};
use crate::noise::{RngStream, gaussian_vec, stream_rng};
use crate::ops::Shape;
use crate::ops::adam::FusedAdam;
use crate::train::epochs::{EpochMethod, EpochOutcome, train_unsaved};
use crate::train::schedule::step_decay;

/// The encoder below the output layer of 003 Fig. 4 for 28×28 digits.
pub const MNIST_LAYERS: &str = "convs:32:3:2:2-convs:64:3:2:2-convs:96:3:2:2-fc:128";
/// … and for 32×32×3 CIFAR-10 images (cropped to 24×24).
pub const CIFAR_LAYERS: &str =
    "convs:64:5:1:1-convs:64:3:2:2-convs:64:3:2:2-convs:96:3:2:2-fc:128-fc:128";

/// The settings of 003 Sec. 4.2, by data set.
pub const SEMANTIC_PRESETS: [&str; 2] = ["mnist", "cifar"];

/// Everything that decides a semantic-noise run; the defaults are the MNIST settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SemanticConfig {
    pub model: SemanticModel,
    /// Layers below the output (the layer grammar of `--encoder-layers`); the last one is the
    /// latent z, and a fully connected output of `num_classes` units goes on top.
    pub layers: EncoderLayers,
    pub num_classes: usize,
    /// λ₁ (eq. 5, 7), λ (eq. 11), λ₀ (eq. 12).
    pub lambda_input: f64,
    /// λ₂ (eq. 5, 7).
    pub lambda_latent: f64,
    /// λᵢ of the hidden layers (eq. 12).
    pub lambda_hidden: f64,
    /// λ₃ (eq. 5, 7).
    pub lambda_supervised: f64,
    /// Std of the Gaussian noise on the [0, 1]-scaled z or y.
    pub noise_std: f64,
    pub lr: f64,
    /// The learning rate is divided by this …
    pub lr_decay_factor: f64,
    /// … every this many epochs …
    pub lr_decay_every: usize,
    /// … up to this epoch.
    pub lr_decay_until: usize,
    pub epochs: usize,
    pub batch_size: usize,
    /// Training examples per class (k of Table 1); 0 = every example not held out.
    pub per_class: usize,
    /// Training examples held out to choose the best epoch.
    pub validation_samples: usize,
    /// Subtract the training set's mean image from every input (Sec. 4.2's whitening "by the
    /// average across all the training examples").
    pub mean_subtraction: bool,
    /// Random `crop × crop` training windows, centre windows for testing (0 = none).
    pub crop: usize,
    /// Random left–right mirroring of training images.
    pub flip: bool,
    pub seed: u64,
}

impl Default for SemanticConfig {
    /// 003 Sec. 4.2 for MNIST: λ = 0.03, λ₃ = 1, noise std 0.2, Adam lr 0.005 ÷ 5 every 40
    /// epochs to the 120th, batch 100, 10 examples per class.
    fn default() -> Self {
        SemanticConfig {
            model: SemanticModel::PerturbClass,
            layers: Written::known(MNIST_LAYERS),
            num_classes: 10,
            lambda_input: 0.03,
            lambda_latent: 0.03,
            lambda_hidden: 0.03,
            lambda_supervised: 1.0,
            noise_std: 0.2,
            lr: 0.005,
            lr_decay_factor: 5.0,
            lr_decay_every: 40,
            lr_decay_until: 120,
            epochs: 120,
            batch_size: 100,
            per_class: 10,
            validation_samples: 1000,
            mean_subtraction: true,
            crop: 0,
            flip: false,
            seed: 1,
        }
    }
}

impl SemanticConfig {
    /// `mnist` (the defaults) or `cifar`: Fig. 4's CIFAR-10 network, λ = 0.01, lr 0.002, 24×24
    /// random crops and flips.
    pub fn preset(name: &str) -> Result<Self> {
        match name {
            "mnist" => Ok(SemanticConfig::default()),
            "cifar" => Ok(SemanticConfig {
                layers: Written::known(CIFAR_LAYERS),
                lambda_input: 0.01,
                lambda_latent: 0.01,
                lambda_hidden: 0.01,
                lr: 0.002,
                crop: 24,
                flip: true,
                ..SemanticConfig::default()
            }),
            other => Err(LadderError::Setting(format!(
                "unknown semantic preset '{other}': one of {}",
                SEMANTIC_PRESETS.join(", ")
            ))),
        }
    }

    pub fn from_toml_str(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| LadderError::Setting(format!("bad configuration: {e}")))
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a SemanticConfig always serialises")
    }

    pub fn weights(&self) -> CostWeights {
        CostWeights {
            input: self.lambda_input,
            latent: self.lambda_latent,
            hidden: self.lambda_hidden,
            supervised: self.lambda_supervised,
        }
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(LadderError::Setting(m));
        if self.batch_size == 0 || self.epochs == 0 {
            return bad("batch size and epochs must be positive".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!("learning rate {} must be positive", self.lr));
        }
        if !(self.lr_decay_factor.is_finite() && self.lr_decay_factor >= 1.0) {
            return bad(format!(
                "lr decay factor {} must be at least 1 (the rate is divided by it)",
                self.lr_decay_factor
            ));
        }
        let lambdas = [
            ("lambda-input", self.lambda_input),
            ("lambda-latent", self.lambda_latent),
            ("lambda-hidden", self.lambda_hidden),
            ("lambda-supervised", self.lambda_supervised),
            ("noise-std", self.noise_std),
        ];
        if let Some((name, v)) = lambdas.iter().find(|(_, v)| !(v.is_finite() && *v >= 0.0)) {
            return bad(format!("{name} {v} must be a finite number ≥ 0"));
        }
        if self.num_classes < 2 {
            return bad("there must be at least 2 classes".into());
        }
        if self.validation_samples == 0 {
            return bad(
                "choosing the best network needs validation samples (validation-samples > 0)"
                    .into(),
            );
        }
        Ok(())
    }

    /// The input shape the network sees for images of `image_shape`.
    pub fn network_input_shape(&self, image_shape: &[usize]) -> Vec<usize> {
        match self.crop {
            0 => image_shape.to_vec(),
            side => cropped_shape(image_shape, side),
        }
    }

    /// Every layer's geometry for images of `image_shape` (before cropping), output included.
    pub fn plan(&self, image_shape: &[usize]) -> Result<Vec<LayerGeom>> {
        let mut kinds = self.layers.value().clone();
        kinds.push(LayerKind::Fc {
            units: self.num_classes,
        });
        let full = Shape::of_input(image_shape)?;
        if self.crop > full.height.min(full.width) || (self.crop > 0 && full.spatial() == 1) {
            return Err(LadderError::Setting(format!(
                "a {0}×{0} crop does not fit inputs of shape {image_shape:?}",
                self.crop
            )));
        }
        let input = Shape::of_input(&self.network_input_shape(image_shape))?;
        let layers = plan(input, &kinds)?;
        check_layers(&layers)?;
        Ok(layers)
    }
}

/// The training, validation and test sets of a run, mean-subtracted as configured.
#[derive(Debug, Clone)]
pub struct SemanticData {
    /// Full-size images: training batches take their random crops from them.
    pub train: Dataset,
    /// Centre-cropped like the network's input.
    pub validation: Dataset,
    pub test: Dataset,
    /// Training examples of the pool that are neither trained on nor held out (the unseen
    /// examples of Fig. 6), centre-cropped.
    pub unseen: Dataset,
    /// The mean image subtracted from every input (zeros without mean subtraction), full size.
    pub mean: Vec<f32>,
}

/// The training (k per class) and validation indices of `config`'s seed in `data.train`.
pub fn semantic_split(data: &TrainTest, config: &SemanticConfig) -> Result<SemiSupervisedSplit> {
    let spec = SplitSpec {
        labeled: config.per_class * config.num_classes,
        unlabeled: Some(0),
        validation: config.validation_samples,
    };
    Ok(semi_supervised_split(
        &data.train.labels,
        config.num_classes,
        &spec,
        config.seed,
    )?)
}

impl SemanticData {
    pub fn new(data: &TrainTest, config: &SemanticConfig) -> Result<Self> {
        let split = semantic_split(data, config)?;
        let mut taken = vec![false; data.train.n];
        for &i in split.labeled.iter().chain(&split.validation) {
            taken[i] = true;
        }
        let unseen: Vec<usize> = (0..data.train.n).filter(|&i| !taken[i]).collect();
        let mut train = data.train.subset(&split.labeled);
        let mean = if config.mean_subtraction {
            mean_image(&train)
        } else {
            vec![0.0; train.dim]
        };
        subtract(&mut train, &mean);
        let shaped = |mut d: Dataset| -> Result<Dataset> {
            if d.image_shape != data.train.image_shape {
                return Err(LadderError::Setting(format!(
                    "the test images have shape {:?} but the training images {:?}",
                    d.image_shape, data.train.image_shape
                )));
            }
            subtract(&mut d, &mean);
            Ok(match config.crop {
                0 => d,
                side => centre_crop(&d, side)?,
            })
        };
        Ok(SemanticData {
            validation: shaped(data.train.subset(&split.validation))?,
            test: shaped(data.test.clone())?,
            unseen: shaped(data.train.subset(&unseen))?,
            train,
            mean,
        })
    }
}

/// The per-pixel mean of `ds`.
pub fn mean_image(ds: &Dataset) -> Vec<f32> {
    let mut sum = vec![0f64; ds.dim];
    for i in 0..ds.n {
        for (s, &v) in sum.iter_mut().zip(ds.row(i).iter()) {
            *s += v as f64;
        }
    }
    sum.into_iter()
        .map(|s| (s / ds.n.max(1) as f64) as f32)
        .collect()
}

fn subtract(ds: &mut Dataset, mean: &[f32]) {
    let dim = ds.dim;
    for row in ds.images.to_mut().chunks_mut(dim) {
        for (v, m) in row.iter_mut().zip(mean) {
            *v -= m;
        }
    }
}

impl Classifier for SemanticNet {
    fn logits(&self, x: Tensor<2>) -> Tensor<2> {
        self.forward(x).logits
    }
    fn device(&self) -> Device {
        self.weights[0].val().device()
    }
}

/// Mean cost terms of an epoch, as `metrics.jsonl` records them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SemanticTerms {
    pub total: f64,
    pub supervised: f64,
    pub input_reconstruction: Option<f64>,
    pub latent_reconstruction: Option<f64>,
    pub hidden_reconstruction: Option<f64>,
    pub perturbed: Option<f64>,
}

impl SemanticTerms {
    fn of(cost: &SemanticCost) -> SemanticTerms {
        let v = |t: &Tensor<1>| t.clone().into_scalar::<f32>() as f64;
        SemanticTerms {
            total: v(&cost.total),
            supervised: v(&cost.supervised),
            input_reconstruction: cost.input_reconstruction.as_ref().map(v),
            latent_reconstruction: cost.latent_reconstruction.as_ref().map(v),
            hidden_reconstruction: cost.hidden_reconstruction.as_ref().map(v),
            perturbed: cost.perturbed.as_ref().map(v),
        }
    }

    fn add(&mut self, o: &SemanticTerms, scale: f64) {
        let acc = |a: &mut Option<f64>, b: Option<f64>| {
            if let Some(b) = b {
                *a = Some(a.unwrap_or(0.0) + b * scale);
            }
        };
        self.total += o.total * scale;
        self.supervised += o.supervised * scale;
        acc(&mut self.input_reconstruction, o.input_reconstruction);
        acc(&mut self.latent_reconstruction, o.latent_reconstruction);
        acc(&mut self.hidden_reconstruction, o.hidden_reconstruction);
        acc(&mut self.perturbed, o.perturbed);
    }
}

/// One line of a semantic run's `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SemanticEpoch {
    pub epoch: usize,
    pub lr: f64,
    pub cost: SemanticTerms,
    pub validation_error_percent: f64,
    /// Whether this epoch's network is the best so far (and kept).
    pub best: bool,
    pub seconds: f64,
}

/// The best network by validation error and the history that led to it.
pub type SemanticOutcome<'a> = EpochOutcome<SemanticMethod<'a>>;

/// A fresh network for `config` and images of `image_shape`, initialised from the seed.
pub fn new_network(
    config: &SemanticConfig,
    image_shape: &[usize],
    device: &Device,
) -> Result<SemanticNet> {
    let layers = config.plan(image_shape)?;
    let mut rng = stream_rng(config.seed, RngStream::Init, 0, 0);
    SemanticNet::new(layers, &mut rng, device)
}

/// Semantic noise modeling (003 Sec. 4.2) as a method of the one epoch loop
/// ([`crate::train::epochs::BestOf`]): Adam with the step-decayed learning rate, the network of the best
/// validation error kept.
pub struct SemanticMethod<'a> {
    pub config: &'a SemanticConfig,
    pub data: &'a SemanticData,
    pub device: Device,
}

fn adam() -> ModuleOptimizer {
    FusedAdam::new(0.9, 0.999, 1e-8).init()
}

impl SemanticMethod<'_> {
    fn lr(&self, epoch: usize) -> f64 {
        let c = self.config;
        step_decay(
            c.lr,
            epoch,
            c.lr_decay_factor,
            c.lr_decay_every,
            c.lr_decay_until,
        )
    }

    /// The network a run starts from, initialised from the seed.
    pub fn initial_model(&self) -> Result<SemanticNet> {
        new_network(self.config, &self.data.train.image_shape, &self.device)
    }
}

impl EpochMethod for SemanticMethod<'_> {
    type Model = SemanticNet;
    type Cost = SemanticTerms;
    type Epoch = SemanticEpoch;

    fn max_epochs(&self) -> usize {
        self.config.epochs
    }
    fn patience(&self) -> Option<usize> {
        None
    }
    fn optimizer(&self) -> ModuleOptimizer {
        adam()
    }
    fn resumed_optimizer(&self, _epoch: usize, record: OptimizerRecord) -> ModuleOptimizer {
        adam().load_record(record)
    }
    fn train_epoch(
        &self,
        model: SemanticNet,
        optim: &mut ModuleOptimizer,
        epoch: usize,
    ) -> Result<(SemanticNet, SemanticTerms)> {
        let lr = self.lr(epoch);
        train_epoch(
            model,
            optim,
            self.config,
            self.data,
            epoch,
            lr,
            &self.device,
        )
    }
    fn validation_error(&self, model: &SemanticNet) -> f64 {
        error_percent_of(&model.valid(), &self.data.validation)
    }
    fn record(
        &self,
        epoch: usize,
        cost: SemanticTerms,
        val: f64,
        best: bool,
        seconds: f64,
    ) -> SemanticEpoch {
        SemanticEpoch {
            epoch,
            lr: self.lr(epoch),
            cost,
            validation_error_percent: val,
            best,
            seconds,
        }
    }
}

/// Trains a semantic network from the start; `on_epoch` sees every epoch's metrics and may
/// stop the run with an error.
pub fn train_semantic<'a>(
    config: &'a SemanticConfig,
    data: &'a SemanticData,
    device: &Device,
    on_epoch: &mut dyn FnMut(&SemanticEpoch) -> Result<()>,
) -> Result<SemanticOutcome<'a>> {
    config.validate()?;
    let method = SemanticMethod {
        config,
        data,
        device: device.clone(),
    };
    train_unsaved(&method, method.initial_model()?, on_epoch)
}

/// The inputs and classes of one training step, randomly cropped and flipped when configured.
fn batch(
    config: &SemanticConfig,
    train: &Dataset,
    idx: &[usize],
    (epoch, step): (usize, usize),
    device: &Device,
) -> Result<(Tensor<2>, Tensor<1, Int>)> {
    if config.crop == 0 && !config.flip {
        return Ok(batch_tensors(train, idx, device));
    }
    let mut rng = stream_rng(
        config.seed,
        RngStream::Augmentation,
        epoch as u64,
        step as u64,
    );
    let (x, dim) = augment_rows(train, idx, config.crop, config.flip, &mut rng)?;
    let t: Vec<i64> = idx.iter().map(|&i| train.labels[i] as i64).collect();
    Ok((
        Tensor::from_data(TensorData::new(x, [idx.len(), dim]), device),
        Tensor::from_data(TensorData::new(t, [idx.len()]), device),
    ))
}

/// One pass over the training set in shuffled mini-batches; returns the mean cost terms.
fn train_epoch(
    mut model: SemanticNet,
    optim: &mut ModuleOptimizer,
    config: &SemanticConfig,
    data: &SemanticData,
    epoch: usize,
    lr: f64,
    device: &Device,
) -> Result<(SemanticNet, SemanticTerms)> {
    let train = &data.train;
    let mut order: Vec<usize> = (0..train.len()).collect();
    order.shuffle(&mut stream_rng(
        config.seed,
        RngStream::EpochOrder,
        epoch as u64,
        0,
    ));
    let batches: Vec<&[usize]> = order.chunks(config.batch_size).collect();
    let perturbation = config.model.perturbation();
    let weights = config.weights();
    let mut mean = SemanticTerms::default();
    for (step, idx) in batches.iter().enumerate() {
        let (x, t) = batch(config, train, idx, (epoch, step), device)?;
        let noise = perturbation.map(|p| {
            let units = p.noise_units(&model);
            let mut rng = stream_rng(
                config.seed,
                RngStream::Corruption,
                epoch as u64,
                step as u64,
            );
            let v = gaussian_vec(&mut rng, idx.len() * units, config.noise_std as f32);
            Tensor::from_data(TensorData::new(v, [idx.len(), units]), device)
        });
        let cost = model.cost(config.model, &weights, x, t, noise)?;
        let terms = SemanticTerms::of(&cost);
        if !terms.total.is_finite() {
            return Err(LadderError::Diverged {
                what: "cost".into(),
                value: terms.total as f32,
                epoch,
                step: step + 1,
            });
        }
        mean.add(&terms, 1.0 / batches.len() as f64);
        let grads = GradientsParams::from_grads(cost.total.backward(), &model);
        model = optim.step(lr, model, grads);
    }
    Ok((model, mean))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_build_the_networks_of_figure_4() {
        let mnist = SemanticConfig::preset("mnist").unwrap();
        let shapes: Vec<usize> = mnist
            .plan(&[28, 28])
            .unwrap()
            .iter()
            .map(|g| g.output.units())
            .collect();
        assert_eq!(shapes, vec![32 * 14 * 14, 64 * 7 * 7, 96 * 4 * 4, 128, 10]);
        let cifar = SemanticConfig::preset("cifar").unwrap();
        assert_eq!(
            (cifar.lr, cifar.lambda_input, cifar.crop),
            (0.002, 0.01, 24)
        );
        let shapes: Vec<usize> = cifar
            .plan(&[3, 32, 32])
            .unwrap()
            .iter()
            .map(|g| g.output.units())
            .collect();
        assert_eq!(
            shapes,
            vec![
                64 * 24 * 24,
                64 * 12 * 12,
                64 * 6 * 6,
                96 * 3 * 3,
                128,
                128,
                10
            ]
        );
        let back = SemanticConfig::from_toml_str(&cifar.to_toml()).unwrap();
        assert_eq!(back, cifar);
    }

    #[test]
    fn impossible_settings_are_refused() {
        let ok = SemanticConfig::default();
        let cases = [
            (
                SemanticConfig {
                    validation_samples: 0,
                    ..ok.clone()
                },
                "validation samples",
            ),
            (
                SemanticConfig {
                    lambda_latent: f64::NAN,
                    ..ok.clone()
                },
                "lambda-latent",
            ),
            (
                SemanticConfig {
                    batch_size: 0,
                    ..ok.clone()
                },
                "batch size",
            ),
        ];
        for (c, needle) in cases {
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains(needle), "{needle}: {err}");
        }
        let err = EncoderLayers::parse("convs:8:x:1:1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("whole numbers"), "{err}");
        // A crop larger than the images.
        let big = SemanticConfig { crop: 40, ..ok };
        let err = big.plan(&[28, 28]).unwrap_err().to_string();
        assert!(err.contains("a 40×40 crop does not fit"), "{err}");
        assert!(
            SemanticConfig::from_toml_str("lr = 0.1\nbogus = 1")
                .unwrap_err()
                .to_string()
                .contains("bogus")
        );
    }
}
