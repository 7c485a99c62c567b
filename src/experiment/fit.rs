//! Training on arrays a caller holds, with no run directory (the Python package's `fit`): the
//! one loop of `ladder train`, with its split, its seed and so its numbers, the trained network
//! handed back instead of written.

use serde::{Deserialize, Serialize};

use crate::data::preprocess::preprocess_fitted;
use crate::data::{Dataset, SemiSupervisedSplit, TrainTest};
use crate::error::{LadderError, Result};
use crate::eval::LadderClassifier;
use crate::experiment::host::{self, Host};
use crate::experiment::progress::Progress;
use crate::experiment::run::{device_name, drive, on_cpu};
use crate::experiment::trained::TrainedModel;
use crate::train::epochs::StepDone;
use crate::train::metrics::EpochMetrics;
use crate::train::trainer::{LadderMethod, PreparedData, load_moments, store_moments};
use crate::train::{TrainConfig, Trainer};
use burn::module::Module;
use burn::prelude::Device;

/// What a fit trains on.
#[derive(Debug, Clone)]
pub struct FitData {
    /// The training examples (every one of them is also an unlabelled example).
    pub train: Dataset,
    /// The examples whose labels are known (`-1` labels elsewhere); `None`: every label is,
    /// and the configuration's `labeled_samples` draws the labelled subset as `ladder train`
    /// draws it from its training set.
    pub known: Option<Vec<usize>>,
    /// Examples to report the test error on after each evaluated epoch and at the end.
    pub eval: Option<Dataset>,
}

/// What a fit reports (a run's `summary.json` without a test error when there was no
/// evaluation set).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitSummary {
    /// Error on the evaluation set; `None` without one.
    pub test_error_percent: Option<f64>,
    pub validation_error_percent: Option<f64>,
    pub seed: u64,
    pub epochs: usize,
    pub labeled: usize,
    pub unlabeled: usize,
    pub train_seconds: f64,
    pub final_cost: f64,
    pub device: String,
    pub version: String,
    pub host: Host,
    pub numerics: String,
}

/// A finished fit: the network ready to predict, its summary and every epoch's metrics (the
/// lines `metrics.jsonl` would hold).
pub struct FitOutcome {
    pub model: TrainedModel,
    pub summary: FitSummary,
    pub epochs: Vec<EpochMetrics>,
}

/// The split of [`FitData::known`]: those labels, every example unlabelled, none held out.
fn known_split(known: &[usize], n: usize, config: &TrainConfig) -> Result<SemiSupervisedSplit> {
    if known.is_empty() {
        return Err(LadderError::Setting(
            "no example is labelled (every label is -1)".into(),
        ));
    }
    if config.labeled_samples != 0 && config.labeled_samples != known.len() {
        return Err(LadderError::Setting(format!(
            "labeled_samples = {} but the labels mark {} examples labelled: with -1 labels (or \
             extra unlabelled examples) the labelled examples are those given; set \
             labeled_samples to {} or 0",
            config.labeled_samples,
            known.len(),
            known.len()
        )));
    }
    if config.validation_samples > 0 || config.unlabeled_samples.is_some() {
        return Err(LadderError::Setting(
            "validation_samples and unlabeled_samples draw from a fully labelled training set; \
             with -1 labels (or extra unlabelled examples) leave them unset and pass an \
             evaluation set instead"
                .into(),
        ));
    }
    Ok(SemiSupervisedSplit {
        labeled: known.to_vec(),
        unlabeled: (0..n).collect(),
        validation: Vec::new(),
    })
}

/// An evaluation set of no examples, shaped as `train`'s.
fn no_examples(train: &Dataset) -> Dataset {
    Dataset {
        images: Vec::new().into(),
        labels: Vec::new(),
        n: 0,
        dim: train.dim,
        image_shape: train.image_shape.clone(),
        num_classes: train.num_classes,
    }
}

/// Trains the Ladder of `config` on `data` on `device` (with autodiff). `watch` sees every step
/// and `report` a line per epoch; Ctrl-C (the run's interruption flag) stops it with
/// [`LadderError::Interrupted`], nothing saved.
pub fn fit(
    config: &TrainConfig,
    data: FitData,
    device: &Device,
    watch: &mut dyn FnMut(&StepDone),
    report: &mut dyn FnMut(&str),
) -> Result<FitOutcome> {
    config.validate()?;
    let n = data.train.len();
    let split = data
        .known
        .as_deref()
        .map(|known| known_split(known, n, config))
        .transpose()?;
    let has_eval = data.eval.is_some();
    let test = data.eval.unwrap_or_else(|| no_examples(&data.train));
    let raw = TrainTest {
        train: data.train,
        test,
    };
    let (sets, fitted) = preprocess_fitted(raw, &config.preprocessing())?;
    let trainer = Trainer::new(config.clone(), &sets.train.image_shape, device)?;
    let prepared = match &split {
        Some(split) => PreparedData::with_split(&sets, config, split)?,
        None => PreparedData::new(&sets, config)?,
    };
    drop(sets);
    let method = LadderMethod::new(&prepared, &trainer);
    let label = format!("seed {}", config.seed);
    let mut progress = Progress::new(config.epochs, label, report).watching(watch);
    let Some(done) = drive(&method, trainer, None, &mut progress, None)? else {
        return Err(LadderError::Interrupted("the fit was stopped".into()));
    };
    let trainer = done.state;
    let moments = trainer.population_moments(&prepared);
    let (validation, test) = trainer.errors(&prepared, &moments);
    let final_cost = done.epochs.last().map_or(f64::NAN, |m| m.cost.total);
    let summary = FitSummary {
        test_error_percent: has_eval.then_some(test),
        validation_error_percent: validation,
        seed: config.seed,
        epochs: config.epochs,
        labeled: prepared.labeled.len(),
        unlabeled: prepared.unlabeled.len(),
        train_seconds: trainer.train_seconds,
        final_cost,
        device: device_name(device),
        version: env!("CARGO_PKG_VERSION").into(),
        host: Host::current(),
        numerics: host::numerics(on_cpu(device), config.preprocessing().zca_bias.is_some()),
    };
    let classifier = LadderClassifier {
        net: trainer.model().clone().no_grad(),
        // Onto the training device, as a run read back from its directory has them.
        moments: load_moments(&store_moments(&moments), device),
    };
    Ok(FitOutcome {
        model: TrainedModel::Ladder(classifier, fitted, config.num_classes),
        summary,
        epochs: done.epochs,
    })
}
