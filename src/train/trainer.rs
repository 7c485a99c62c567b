//! The training loop: Adam on the Ladder cost, one epoch being one pass over the unlabelled
//! set in mini-batches of `batch_size` labelled plus `batch_size` unlabelled examples.
//!
//! Every random choice (data order, noise) is drawn from a stream keyed by (seed, epoch,
//! step), so a run restarted from the checkpoint of epoch k continues exactly as if it had
//! never stopped.

use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer, OptimizerRecord};
use burn::prelude::*;
use burn::store::ModuleRecord;
use rand::seq::SliceRandom;

use crate::data::preprocess::{augment_rows, centre_crop, cropped_shape};
use crate::data::{Dataset, SemiSupervisedSplit, SplitSpec, TrainTest, semi_supervised_split};
use crate::error::{LadderError, Result};
use crate::eval;
use crate::model::ladder::{CostTerms, StepInputs};
use crate::model::{LadderBatch, LadderNetwork, LadderSpec};
use crate::noise::{CorruptionNoise, HostNoise, RngStream, gaussian_vec, stream_rng};
use crate::ops::adam::FusedAdam;
use crate::ops::batch_norm::Moments;
use crate::train::checkpoint::{Checkpoint, CheckpointHeader, ExactCost, StoredMoments};
use crate::train::config::TrainConfig;
use crate::train::epochs::{AfterStep, Control, Method, Snapshot, StepDone};
use crate::train::schedule::learning_rate;

/// The data of one run, split as the configuration asks.
#[derive(Debug, Clone)]
pub struct PreparedData {
    /// Full-size images: training batches take their random crops from them.
    pub labeled: Dataset,
    pub unlabeled: Dataset,
    /// Shaped as the network's input (centre crops when the run crops).
    pub validation: Option<Dataset>,
    pub test: Dataset,
    /// The unlabelled set as the network sees it at test time (centre crops), for the
    /// population moments; `None` when it is `unlabeled` itself.
    pub unlabeled_centre: Option<Dataset>,
    /// The evenly spaced part of it whose moments normalise per-epoch evaluations; `None`
    /// when they use the whole set.
    pub monitor_sample: Option<Dataset>,
    /// The indices into the training set each part was taken from.
    pub split: SemiSupervisedSplit,
}

impl PreparedData {
    /// Splits `data.train` into labelled, unlabelled and validation parts (seeded by the run's
    /// seed); the test set is kept whole.
    pub fn new(data: &TrainTest, config: &TrainConfig) -> Result<Self> {
        let spec = SplitSpec {
            labeled: config.labeled_samples,
            unlabeled: config.unlabeled_samples,
            validation: config.validation_samples,
        };
        let split =
            semi_supervised_split(&data.train.labels, config.num_classes, &spec, config.seed)?;
        Self::with_split(data, config, &split)
    }

    /// `data.train` split as `split` says (labelled examples a caller chose, the Python
    /// package's `-1` labels); the test set is kept whole.
    pub fn with_split(
        data: &TrainTest,
        config: &TrainConfig,
        split: &SemiSupervisedSplit,
    ) -> Result<Self> {
        if split.unlabeled.len() < config.batch_size {
            return Err(LadderError::Setting(format!(
                "{} unlabelled examples cannot fill one batch of {}",
                split.unlabeled.len(),
                config.batch_size
            )));
        }
        let crop = |d: Dataset| match config.crop {
            0 => Ok(d),
            side => centre_crop(&d, side),
        };
        let validation = (!split.validation.is_empty())
            .then(|| crop(data.train.subset(&split.validation)))
            .transpose()?;
        let unlabeled = data.train.subset(&split.unlabeled);
        let unlabeled_centre = (config.crop > 0)
            .then(|| crop(unlabeled.clone()))
            .transpose()?;
        let input = network_input_shape(&data.train.image_shape, config);
        if data.test.image_shape != input {
            return Err(LadderError::Setting(format!(
                "the test images have shape {:?} but the network takes {input:?}{}",
                data.test.image_shape,
                if config.crop > 0 {
                    " (the test set must be centre-cropped as the preprocessing does)"
                } else {
                    ""
                }
            )));
        }
        let moments_set = unlabeled_centre.as_ref().unwrap_or(&unlabeled);
        let monitor_sample = evenly_spaced(moments_set.len(), config.monitor_moments)
            .map(|idx| moments_set.subset(&idx));
        Ok(PreparedData {
            labeled: data.train.subset(&split.labeled),
            unlabeled,
            validation,
            test: data.test.clone(),
            unlabeled_centre,
            monitor_sample,
            split: split.clone(),
        })
    }
}

/// `count` indices spread evenly over `0..n`; `None` when `count` is 0 or covers them all.
fn evenly_spaced(n: usize, count: usize) -> Option<Vec<usize>> {
    (count > 0 && count < n).then(|| (0..count).map(|i| i * n / count).collect())
}

/// The input shape the network sees for training images of `image_shape`: the crop's when the
/// run crops.
pub fn network_input_shape(image_shape: &[usize], config: &TrainConfig) -> Vec<usize> {
    match config.crop {
        0 => image_shape.to_vec(),
        side => cropped_shape(image_shape, side),
    }
}

pub use crate::train::metrics::{CostSummary, EpochMetrics};

/// A Ladder network being trained, with its optimizer and position.
pub struct Trainer {
    pub config: TrainConfig,
    pub spec: LadderSpec,
    /// Shape of one input example, as the data set gives it.
    pub input_shape: Vec<usize>,
    pub device: Device,
    model: Option<LadderNetwork>,
    optimizer: ModuleOptimizer,
    /// Epochs completed.
    pub epochs_done: usize,
    /// Steps completed in the current epoch.
    pub steps_done: usize,
    /// Sum of the current epoch's step costs so far.
    partial: Option<CostSummary>,
    /// Training time so far, seconds (evaluation excluded).
    pub train_seconds: f64,
    /// The next step's corruption noise, being drawn on another worker thread.
    prefetch: Option<Prefetch>,
}

/// Noise of the step at `key` = (epoch, step, rows), drawn ahead on the thread pool: drawing
/// is serial work that the second core can do while this step computes. The values are those
/// of the step's own random stream, wherever they are drawn.
struct Prefetch {
    key: (usize, usize, usize),
    noise: std::sync::mpsc::Receiver<HostNoise>,
}

fn new_optimizer() -> ModuleOptimizer {
    // Blocks' (and the authors') Adam: β1 0.9, β2 0.999, ε 1e-8.
    FusedAdam::new(0.9, 0.999, 1e-8).init()
}

impl Trainer {
    /// A fresh network for inputs of `input_shape` (a data set's `image_shape`); `device`
    /// must have autodiff.
    pub fn new(config: TrainConfig, input_shape: &[usize], device: &Device) -> Result<Self> {
        config.validate()?;
        let spec = config.ladder_spec(&network_input_shape(input_shape, &config))?;
        let model = LadderNetwork::new(&spec, config.seed, device);
        Ok(Trainer {
            config,
            spec,
            input_shape: input_shape.to_vec(),
            device: device.clone(),
            model: Some(model),
            optimizer: new_optimizer(),
            epochs_done: 0,
            steps_done: 0,
            partial: None,
            train_seconds: 0.0,
            prefetch: None,
        })
    }

    /// Continues from a checkpoint written by [`Self::checkpoint`].
    pub fn from_checkpoint(
        ck: Checkpoint,
        path: &std::path::Path,
        device: &Device,
    ) -> Result<Self> {
        let bad = |reason: String| LadderError::Checkpoint {
            path: path.to_path_buf(),
            reason,
        };
        let h = ck.header;
        let input_shape = match h.input_shape.as_slice() {
            [] => vec![h.dims[0]],
            shape => shape.to_vec(),
        };
        let mut trainer = Trainer::new(h.config, &input_shape, device)?;
        if trainer.spec.dims != h.dims {
            return Err(bad(format!(
                "model shape {:?} does not match its configuration {:?}",
                h.dims, trainer.spec.dims
            )));
        }
        let record = ModuleRecord::from_bytes(ck.model).map_err(|e| bad(e.to_string()))?;
        let model = trainer
            .take_model()
            .try_load_record(record)
            .map_err(|e| bad(e.to_string()))?;
        trainer.model = Some(model);
        let optim = OptimizerRecord::from_bytes(ck.optimizer).map_err(|e| bad(e.to_string()))?;
        trainer.optimizer = new_optimizer().load_record(optim);
        trainer.epochs_done = h.epochs_done;
        trainer.steps_done = h.steps_done;
        trainer.partial = h.partial_cost.as_ref().map(CostSummary::from);
        trainer.train_seconds = h.train_seconds;
        Ok(trainer)
    }

    fn take_model(&mut self) -> LadderNetwork {
        self.model.take().expect("the model is always put back")
    }

    pub fn model(&self) -> &LadderNetwork {
        self.model.as_ref().expect("the model is always put back")
    }

    /// Steps per epoch: the unlabelled set in whole batches (a last partial batch is dropped, as
    /// its batch statistics would be unreliable).
    pub fn steps_per_epoch(&self, data: &PreparedData) -> usize {
        data.unlabeled.len() / self.config.batch_size
    }

    pub fn is_finished(&self) -> bool {
        self.epochs_done >= self.config.epochs
    }

    /// The data order of an epoch: a shuffle of the unlabelled set, and enough labelled
    /// indices (concatenated shuffles) for every step.
    pub(crate) fn epoch_order(
        &self,
        data: &PreparedData,
        epoch: usize,
    ) -> (Vec<usize>, Vec<usize>) {
        let seed = self.config.seed;
        let mut unlabeled: Vec<usize> = (0..data.unlabeled.len()).collect();
        unlabeled.shuffle(&mut stream_rng(
            seed,
            RngStream::EpochOrder,
            epoch as u64,
            0,
        ));
        let need = self.steps_per_epoch(data) * self.config.batch_size;
        let mut labeled = Vec::with_capacity(need + data.labeled.len());
        let mut pass = 1;
        while labeled.len() < need {
            let mut p: Vec<usize> = (0..data.labeled.len()).collect();
            p.shuffle(&mut stream_rng(
                seed,
                RngStream::EpochOrder,
                epoch as u64,
                pass,
            ));
            labeled.extend(p);
            pass += 1;
        }
        (unlabeled, labeled)
    }

    /// The batch of step `step` of `epoch`: rows `lab` and `unl`, randomly cropped and flipped
    /// (from that step's own random stream) when the run augments.
    pub(crate) fn batch(
        &self,
        data: &PreparedData,
        unl: &[usize],
        lab: &[usize],
        (epoch, step): (usize, usize),
    ) -> Result<LadderBatch> {
        let c = &self.config;
        if c.crop == 0 && !c.flip {
            let (x_labeled, y_labeled) = eval::batch_tensors(&data.labeled, lab, &self.device);
            let (x_unlabeled, _) = eval::batch_tensors(&data.unlabeled, unl, &self.device);
            return Ok(LadderBatch {
                x_labeled,
                y_labeled,
                x_unlabeled,
            });
        }
        let mut rng = stream_rng(c.seed, RngStream::Augmentation, epoch as u64, step as u64);
        let mut augmented = |ds: &Dataset, idx: &[usize]| -> Result<Tensor<2>> {
            let (v, dim) = augment_rows(ds, idx, c.crop, c.flip, &mut rng)?;
            Ok(Tensor::from_data(
                TensorData::new(v, [idx.len(), dim]),
                &self.device,
            ))
        };
        let x_labeled = augmented(&data.labeled, lab)?;
        let x_unlabeled = augmented(&data.unlabeled, unl)?;
        let labels: Vec<i64> = lab.iter().map(|&i| data.labeled.labels[i] as i64).collect();
        Ok(LadderBatch {
            x_labeled,
            y_labeled: Tensor::from_data(TensorData::new(labels, [lab.len()]), &self.device),
            x_unlabeled,
        })
    }

    /// One optimisation step on `batch` with the noise of (`epoch`, `step`), after `updates`
    /// earlier steps of the run.
    pub fn step(
        &mut self,
        batch: &LadderBatch,
        (epoch, step): (usize, usize),
        updates: usize,
        lr: f64,
    ) -> Result<CostSummary> {
        let model = self.take_model();
        let terms = self.step_terms(&model, batch, epoch, step);
        let summary = summarize(&terms);
        if !summary.total.is_finite() {
            self.model = Some(model);
            return Err(LadderError::Diverged {
                what: "cost".into(),
                value: summary.total as f32,
                epoch: epoch + 1,
                step: step + 1,
            });
        }
        let grads = GradientsParams::from_grads(terms.total.backward(), &model);
        let model = self.optimizer.step(lr, model, grads);
        self.model = Some(model.update_teacher(&self.spec, updates + 1));
        Ok(summary)
    }

    /// The cost terms of `model` on `batch` at (`epoch`, `step`), all its noise drawn: the
    /// corruption, the adversarial noise along the cost's gradient (000), VAT's perturbation
    /// and LVAN's virtual adversarial noise, and the consistency weight of the epoch.
    pub(crate) fn step_terms(
        &mut self,
        model: &LadderNetwork,
        batch: &LadderBatch,
        epoch: usize,
        step: usize,
    ) -> CostTerms {
        let rows = model.corrupted_rows(batch.x_labeled.dims()[0], batch.x_unlabeled.dims()[0]);
        let host = self.corruption_noise(epoch, step, rows);
        let noise = CorruptionNoise::from_host(host, &self.device);
        let noise = model.with_adversarial_noise(&self.spec, batch, noise);
        let (noise, r_vadv) = self.virtual_adversarial(model, batch, noise, (epoch, step));
        let inputs = StepInputs {
            r_vadv,
            consistency_weight: self.consistency_weight(epoch),
        };
        model.cost_with(&self.spec, batch, &noise, &inputs)
    }

    /// The Π-model's w(t) in `epoch` (0-based; the weight changes once per epoch, as in Laine
    /// and Aila's schedule); 0 without it.
    fn consistency_weight(&self, epoch: usize) -> f64 {
        self.spec
            .consistency
            .map_or(0.0, |c| c.weight_at(epoch as f64))
    }

    /// VAT's perturbation of the unlabelled rows (when its loss is on) and `noise` with LVAN's
    /// virtual adversarial noise, from the random starts of (`epoch`, `step`); `noise`
    /// unchanged when both are off. One stream serves both: VAT's start (drawn for every row,
    /// its unlabelled rows used), then LVAN's start of each perturbed layer and its power
    /// iteration's Gaussian noise.
    fn virtual_adversarial(
        &self,
        model: &LadderNetwork,
        batch: &LadderBatch,
        noise: CorruptionNoise,
        (epoch, step): (usize, usize),
    ) -> (CorruptionNoise, Option<Tensor<2>>) {
        if self.spec.vat.is_none() && self.spec.lvan.is_none() {
            return (noise, None);
        }
        let n_l = batch.x_labeled.dims()[0];
        let n_u = batch.x_unlabeled.dims()[0];
        let mut rng = stream_rng(
            self.config.seed,
            RngStream::VirtualAdversarial,
            epoch as u64,
            step as u64,
        );
        let mut draw = |rows: usize, width: usize| {
            let v = gaussian_vec(&mut rng, rows * width, 1.0);
            Tensor::from_data(TensorData::new(v, [rows, width]), &self.device)
        };
        let r_vadv = self.spec.vat.and_then(|vat| {
            let d0 = draw(n_l + n_u, self.spec.dims[0]).narrow(0, n_l, n_u);
            let r = model.virtual_adversarial(&self.spec, batch, d0);
            r.filter(|_| vat.weight > 0.0)
        });
        let Some(lvan) = &self.spec.lvan else {
            return (noise, r_vadv);
        };
        let starts = lvan
            .layers()
            .into_iter()
            .map(|l| draw(n_u, self.spec.dims[l]))
            .collect();
        let levels: Vec<(usize, f64)> = self
            .spec
            .dims
            .iter()
            .map(|&w| (w, lvan.probe_noise_std))
            .collect();
        let probe = CorruptionNoise::draw(&levels, n_u, &mut rng, &self.device);
        let noise =
            model.with_virtual_adversarial_noise(&self.spec, batch, noise, (starts, &probe));
        (noise, r_vadv)
    }

    /// The corruption noise of (`epoch`, `step`) for `rows` examples: the prefetched draw if
    /// it is this one, else drawn now. With more than one worker thread, the draw for the
    /// following step starts in the background.
    fn corruption_noise(&mut self, epoch: usize, step: usize, rows: usize) -> HostNoise {
        let draw = |seed: u64, levels: &[(usize, f64)], (epoch, step, rows)| {
            let mut rng = stream_rng(seed, RngStream::Corruption, epoch as u64, step as u64);
            HostNoise::draw(levels, rows, &mut rng)
        };
        let key = (epoch, step, rows);
        let ready = match self.prefetch.take() {
            Some(p) if p.key == key => p.noise.recv().ok(),
            _ => None,
        };
        let levels = self.spec.noise_levels();
        let noise = ready.unwrap_or_else(|| draw(self.config.seed, &levels, key));
        // A lone worker would wait on its own queued job: only prefetch with company.
        if rayon::current_num_threads() > 1 {
            let (tx, rx) = std::sync::mpsc::channel();
            let seed = self.config.seed;
            let next = (epoch, step + 1, rows);
            rayon::spawn(move || {
                let _ = tx.send(draw(seed, &levels, next));
            });
            self.prefetch = Some(Prefetch {
                key: next,
                noise: rx,
            });
        }
        noise
    }

    /// Trains the rest of the current epoch and evaluates if it is due; returns its metrics,
    /// or `None` when `after_step` stopped it partway.
    pub fn train_epoch(
        &mut self,
        data: &PreparedData,
        after_step: &mut AfterStep<'_, Trainer>,
    ) -> Result<Option<EpochMetrics>> {
        let epoch = self.epochs_done;
        let lr = learning_rate(
            self.config.lr,
            epoch,
            self.config.epochs,
            self.config.lrate_decay,
        );
        let (unl, lab) = self.epoch_order(data, epoch);
        let steps = self.steps_per_epoch(data);
        let b = self.config.batch_size;
        while self.steps_done < steps {
            let started = Instant::now();
            let s = self.steps_done;
            let rows = s * b..(s + 1) * b;
            let batch = self.batch(data, &unl[rows.clone()], &lab[rows], (epoch, s))?;
            let c = self.step(&batch, (epoch, s), epoch * steps + s, lr)?;
            self.partial = Some(match self.partial.take() {
                None => c.clone(),
                Some(acc) => add(acc, &c),
            });
            self.steps_done += 1;
            self.train_seconds += started.elapsed().as_secs_f64();
            let done = StepDone {
                epoch: epoch + 1,
                step: s + 1,
                steps,
                message: c.describe(),
            };
            if after_step(self, done)? == Control::Stop && self.steps_done < steps {
                return Ok(None);
            }
        }
        self.epochs_done += 1;
        self.steps_done = 0;
        let sum = self.partial.take().expect("at least one step");
        let cost = scale(sum, 1.0 / steps as f64);
        let due = self.epochs_done.is_multiple_of(self.config.eval_every) || self.is_finished();
        let (validation_error_percent, test_error_percent) = if due {
            let (validation, test) = self.errors(data, &self.monitoring_moments(data));
            // A fit without an evaluation set has no test error (not 0 %).
            (validation, (!data.test.is_empty()).then_some(test))
        } else {
            (None, None)
        };
        Ok(Some(EpochMetrics {
            epoch: self.epochs_done,
            lr,
            cost,
            validation_error_percent,
            test_error_percent,
        }))
    }

    /// Validation error (when `data` has a validation set) and test error, in percent, of the
    /// inference network normalised by `moments`.
    pub fn errors(&self, data: &PreparedData, moments: &[Moments]) -> (Option<f64>, f64) {
        let inference = self.model().valid();
        let validation = data
            .validation
            .as_ref()
            .map(|v| eval::error_percent(&inference, moments, v));
        (
            validation,
            eval::error_percent(&inference, moments, &data.test),
        )
    }

    /// The moments that normalise per-epoch evaluations: those of the monitoring sample.
    /// Moments over the whole training set cost a tenth of an epoch; the run's result takes
    /// them once, from [`Self::population_moments`].
    pub fn monitoring_moments(&self, data: &PreparedData) -> Vec<Moments> {
        match &data.monitor_sample {
            Some(sample) => eval::population_moments(&self.model().valid(), sample),
            None => self.population_moments(data),
        }
    }

    /// Batch-norm moments of the whole unlabelled (= training) set, for inference.
    pub fn population_moments(&self, data: &PreparedData) -> Vec<Moments> {
        let train = data.unlabeled_centre.as_ref().unwrap_or(&data.unlabeled);
        eval::population_moments(&self.model().valid(), train)
    }

    /// Everything needed to continue this run, or with `moments`, to evaluate it.
    pub fn checkpoint(&self, moments: Option<&[Moments]>) -> Result<Checkpoint> {
        let io =
            |e: burn::store::RecordError| LadderError::Setting(format!("cannot serialise: {e}"));
        Ok(Checkpoint {
            header: CheckpointHeader {
                config: self.config.clone(),
                dims: self.spec.dims.clone(),
                input_shape: self.input_shape.clone(),
                epochs_done: self.epochs_done,
                steps_done: self.steps_done,
                partial_cost: self.partial.as_ref().map(ExactCost::from),
                train_seconds: self.train_seconds,
                moments: moments.map(store_moments),
            },
            model: self
                .model()
                .clone()
                .into_record()
                .into_bytes()
                .map_err(io)?,
            optimizer: self.optimizer.to_record().into_bytes().map_err(io)?,
        })
    }
}

/// The Ladder as a method of the one training loop: its state is the [`Trainer`], on the data
/// `data`; the run keeps the network of the last epoch.
pub struct LadderMethod<'a> {
    data: &'a PreparedData,
    epochs: usize,
}

impl<'a> LadderMethod<'a> {
    /// The method that trains `trainer` on `data` to its configured epochs.
    pub fn new(data: &'a PreparedData, trainer: &Trainer) -> Self {
        LadderMethod {
            data,
            epochs: trainer.config.epochs,
        }
    }
}

impl Method for LadderMethod<'_> {
    type State = Trainer;
    type Epoch = EpochMetrics;

    fn max_epochs(&self) -> usize {
        self.epochs
    }
    fn epochs_done(&self, trainer: &Trainer) -> usize {
        trainer.epochs_done
    }
    fn train_epoch(
        &self,
        mut trainer: Trainer,
        after_step: &mut AfterStep<'_, Trainer>,
    ) -> Result<(Trainer, Option<EpochMetrics>)> {
        let metrics = trainer.train_epoch(self.data, after_step)?;
        Ok((trainer, metrics))
    }
    fn describe(&self, m: &EpochMetrics) -> String {
        let mut line = format!("lr {:.5} {}", m.lr, m.cost.describe());
        if let Some(v) = m.validation_error_percent {
            line.push_str(&format!(" | validation error {v:.2}%"));
        }
        if let Some(t) = m.test_error_percent {
            line.push_str(&format!(" | test error {t:.2}%"));
        }
        line
    }
    fn snapshot(&self, trainer: &Trainer) -> Result<Snapshot> {
        let checkpoint = trainer.checkpoint(None)?;
        Ok(Box::new(move |path: &std::path::Path| {
            checkpoint.save(path)
        }))
    }
}

/// Moments as plain numbers for a checkpoint.
pub fn store_moments(moments: &[Moments]) -> Vec<StoredMoments> {
    let v = |t: &Tensor<2>| {
        t.clone()
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32 moments")
    };
    moments
        .iter()
        .map(|m| StoredMoments {
            mean: v(&m.mean),
            var: v(&m.var),
        })
        .collect()
}

/// Moments from a checkpoint, as tensors on `device`.
pub fn load_moments(stored: &[StoredMoments], device: &Device) -> Vec<Moments> {
    let t = |v: &Vec<f32>| Tensor::from_data(TensorData::new(v.clone(), [1, v.len()]), device);
    stored
        .iter()
        .map(|m| Moments {
            mean: t(&m.mean),
            var: t(&m.var),
        })
        .collect()
}

/// Reads every cost term in one transfer.
fn summarize(terms: &crate::model::CostTerms) -> CostSummary {
    let mut parts = vec![terms.total.clone(), terms.supervised.clone()];
    parts.extend(terms.denoising.iter().flatten().cloned());
    parts.extend(terms.virtual_adversarial.iter().cloned());
    parts.extend(terms.entropy.iter().cloned());
    parts.extend(terms.consistency.iter().cloned());
    let values = Tensor::cat(parts, 0)
        .detach()
        .into_data()
        .try_to_vec::<f32>()
        .expect("f32 costs");
    let mut rest = values[2..].iter();
    CostSummary {
        total: values[0] as f64,
        supervised: values[1] as f64,
        denoising: terms
            .denoising
            .iter()
            .map(|d| {
                d.as_ref()
                    .map(|_| *rest.next().expect("one value per term") as f64)
            })
            .collect(),
        virtual_adversarial: terms
            .virtual_adversarial
            .as_ref()
            .map(|_| *rest.next().expect("the VAT term") as f64),
        entropy: terms
            .entropy
            .as_ref()
            .map(|_| *rest.next().expect("the entropy term") as f64),
        consistency: terms
            .consistency
            .as_ref()
            .map(|_| *rest.next().expect("the consistency term") as f64),
    }
}

fn add(mut a: CostSummary, b: &CostSummary) -> CostSummary {
    a.total += b.total;
    a.supervised += b.supervised;
    let plus = |x: Option<f64>, y: Option<f64>| x.zip(y).map(|(x, y)| x + y);
    a.virtual_adversarial = plus(a.virtual_adversarial, b.virtual_adversarial);
    a.entropy = plus(a.entropy, b.entropy);
    a.consistency = plus(a.consistency, b.consistency);
    for (x, y) in a.denoising.iter_mut().zip(&b.denoising) {
        if let (Some(x), Some(y)) = (x.as_mut(), y) {
            *x += y;
        }
    }
    a
}

fn scale(mut a: CostSummary, k: f64) -> CostSummary {
    a.total *= k;
    a.supervised *= k;
    a.virtual_adversarial = a.virtual_adversarial.map(|v| v * k);
    a.entropy = a.entropy.map(|v| v * k);
    a.consistency = a.consistency.map(|v| v * k);
    for x in a.denoising.iter_mut().flatten() {
        *x *= k;
    }
    a
}
