//! The one training loop of every method (the Ladder of 001, plain networks of 004, semantic
//! noise modeling of 003). The loop owns the epochs and when a run stops; a method says how the
//! rest of an epoch trains (calling back after every step, so that a run can be saved and
//! stopped in the middle of one), what its metrics line holds and how its state is copied for
//! saving. The run writer (`experiment::run`) hooks metrics, checkpoints, progress and Ctrl-C
//! into it, the same for all methods.
//!
//! The methods that keep the network of the best validation error (plain, semantic) are
//! [`EpochMethod`]s: [`BestOf`] makes one a [`Method`], owning early stopping, the best network,
//! the history and the exact-resume state.

use std::path::Path;
use std::time::Instant;

use burn::module::Module;
use burn::optim::{ModuleOptimizer, OptimizerRecord};
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{LadderError, Result};
use crate::train::checkpoint::{decode_sections, write_sections_atomic};

/// What the training loop should do after a step or an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Continue,
    /// Stop after this step (the caller has saved what it needs).
    Stop,
}

/// A step just taken, for the progress display.
pub struct StepDone {
    /// 1-based epoch and step, and the steps of the epoch.
    pub epoch: usize,
    pub step: usize,
    pub steps: usize,
    /// The step's cost terms, as the progress bar shows them.
    pub message: String,
}

/// Called after every step with the state consistent (so that it may be saved); `Stop`
/// interrupts the epoch.
pub type AfterStep<'a, S> = dyn FnMut(&S, StepDone) -> Result<Control> + 'a;

/// An [`AfterStep`] that never stops a run.
pub fn never_stop<S>(_: &S, _: StepDone) -> Result<Control> {
    Ok(Control::Continue)
}

/// Writes a copy of a run's state, taken on the training thread, to a file (on another).
pub type Snapshot = Box<dyn FnOnce(&Path) -> Result<()> + Send>;

/// A training method as the one loop drives it.
pub trait Method {
    /// Everything a run continues from: network, optimizer, position, history.
    type State;
    /// One line of `metrics.jsonl`.
    type Epoch: Serialize + DeserializeOwned + Clone;

    /// The most epochs to train.
    fn max_epochs(&self) -> usize;
    fn epochs_done(&self, state: &Self::State) -> usize;
    /// All epochs trained, or the method has stopped early.
    fn is_finished(&self, state: &Self::State) -> bool {
        self.epochs_done(state) >= self.max_epochs()
    }
    /// Trains the rest of the current epoch (all of it, or what a resumed state left of it);
    /// `None` for the metrics when `after_step` stopped it partway. A cost that is not finite
    /// is a divergence error.
    fn train_epoch(
        &self,
        state: Self::State,
        after_step: &mut AfterStep<'_, Self::State>,
    ) -> Result<(Self::State, Option<Self::Epoch>)>;
    /// The progress line of a finished epoch (after "epoch k/n").
    fn describe(&self, epoch: &Self::Epoch) -> String;
    /// A copy of `state` and how to write it, so that the run can continue from it exactly.
    fn snapshot(&self, state: &Self::State) -> Result<Snapshot>;
}

/// What a run's writer does between steps and epochs.
pub trait Hooks<M: Method> {
    fn after_step(&mut self, _state: &M::State, _step: StepDone) -> Result<Control> {
        Ok(Control::Continue)
    }
    /// Sees each epoch's metrics with the state after it; may stop the run.
    fn after_epoch(&mut self, epoch: &M::Epoch, state: &M::State) -> Result<Control>;
}

/// Trains `state` on to the end; `None` when a hook stopped it first (having saved what it
/// needs to continue).
pub fn train<M: Method>(
    method: &M,
    mut state: M::State,
    hooks: &mut dyn Hooks<M>,
) -> Result<Option<M::State>> {
    while !method.is_finished(&state) {
        let (next, epoch) =
            method.train_epoch(state, &mut |s: &M::State, step| hooks.after_step(s, step))?;
        state = next;
        let Some(epoch) = epoch else { return Ok(None) };
        if hooks.after_epoch(&epoch, &state)? == Control::Stop && !method.is_finished(&state) {
            return Ok(None);
        }
    }
    Ok(Some(state))
}

/// One epoch of a method that keeps the network of the best validation error.
pub trait EpochMethod {
    type Model: Module + Clone;
    /// The epoch's training cost (terms).
    type Cost;
    /// One line of `metrics.jsonl`.
    type Epoch: Serialize + DeserializeOwned + Clone;

    /// The most epochs to train.
    fn max_epochs(&self) -> usize;
    /// Epochs without a better validation error after which training stops (`None`: never).
    fn patience(&self) -> Option<usize>;
    /// The optimizer of the first epoch.
    fn optimizer(&self) -> ModuleOptimizer;
    /// The optimizer of `epoch` (> 1), given the one that trained the epoch before; the same
    /// one unless the method's optimizer changes with the epoch.
    fn next_optimizer(&self, _epoch: usize, optim: ModuleOptimizer) -> ModuleOptimizer {
        optim
    }
    /// The optimizer of `epoch` (≥ 1) holding the stored state `record` (a resumed run).
    fn resumed_optimizer(&self, epoch: usize, record: OptimizerRecord) -> ModuleOptimizer;
    /// One pass over the training data; a cost that is not finite is a divergence error.
    fn train_epoch(
        &self,
        model: Self::Model,
        optim: &mut ModuleOptimizer,
        epoch: usize,
    ) -> Result<(Self::Model, Self::Cost)>;
    fn validation_error(&self, model: &Self::Model) -> f64;
    /// The metrics line of `epoch`.
    fn record(
        &self,
        epoch: usize,
        cost: Self::Cost,
        validation_error_percent: f64,
        best: bool,
        seconds: f64,
    ) -> Self::Epoch;
}

/// Where a run of an [`EpochMethod`] stands: everything it continues from.
pub struct EpochState<M: EpochMethod> {
    pub model: M::Model,
    pub optim: ModuleOptimizer,
    /// The network of the best validation error so far, its epoch and that error.
    pub best: Option<(M::Model, usize, f64)>,
    pub history: Vec<M::Epoch>,
    /// Seconds spent in the epochs so far.
    pub train_seconds: f64,
}

/// The best network by validation error and the history that led to it.
pub struct EpochOutcome<M: EpochMethod> {
    pub model: M::Model,
    pub best_epoch: usize,
    pub best_validation_error_percent: f64,
    pub epochs_run: usize,
    pub history: Vec<M::Epoch>,
    pub train_seconds: f64,
}

impl<M: EpochMethod> EpochState<M> {
    /// A run about to start with `model`.
    pub fn fresh(method: &M, model: M::Model) -> Self {
        EpochState {
            model,
            optim: method.optimizer(),
            best: None,
            history: Vec::new(),
            train_seconds: 0.0,
        }
    }

    pub fn epochs_done(&self) -> usize {
        self.history.len()
    }

    /// All epochs trained, or early stopping's patience run out.
    pub fn is_finished(&self, method: &M) -> bool {
        let done = self.epochs_done();
        let stalled = match (method.patience(), &self.best) {
            (Some(p), Some((_, best_epoch, _))) => done - best_epoch >= p,
            _ => false,
        };
        done >= method.max_epochs() || stalled
    }

    /// The best network and the history that led to it.
    pub fn outcome(self) -> Result<EpochOutcome<M>> {
        let (model, best_epoch, best) = self
            .best
            .ok_or_else(|| LadderError::Setting("no epoch was trained: nothing to keep".into()))?;
        Ok(EpochOutcome {
            model,
            best_epoch,
            best_validation_error_percent: best,
            epochs_run: self.history.len(),
            history: self.history,
            train_seconds: self.train_seconds,
        })
    }
}

/// An [`EpochMethod`] as a [`Method`] of the one loop: early stopping on the validation error,
/// the best network kept, the state saved with the run's configuration `config` (TOML).
pub struct BestOf<'a, M> {
    pub method: &'a M,
    pub config: &'a str,
}

impl<M: EpochMethod> Method for BestOf<'_, M> {
    type State = EpochState<M>;
    type Epoch = M::Epoch;

    fn max_epochs(&self) -> usize {
        self.method.max_epochs()
    }
    fn epochs_done(&self, state: &EpochState<M>) -> usize {
        state.epochs_done()
    }
    fn is_finished(&self, state: &EpochState<M>) -> bool {
        state.is_finished(self.method)
    }
    fn train_epoch(
        &self,
        mut state: EpochState<M>,
        _: &mut AfterStep<'_, EpochState<M>>,
    ) -> Result<(EpochState<M>, Option<M::Epoch>)> {
        let method = self.method;
        let epoch = state.epochs_done() + 1;
        let t0 = Instant::now();
        if epoch > 1 {
            state.optim = method.next_optimizer(epoch, state.optim);
        }
        let (model, cost) = method.train_epoch(state.model, &mut state.optim, epoch)?;
        state.model = model;
        let val = method.validation_error(&state.model);
        let improved = state.best.as_ref().is_none_or(|b| val < b.2);
        if improved {
            state.best = Some((state.model.clone(), epoch, val));
        }
        let seconds = t0.elapsed().as_secs_f64();
        let metrics = method.record(epoch, cost, val, improved, seconds);
        state.train_seconds += seconds;
        state.history.push(metrics.clone());
        Ok((state, Some(metrics)))
    }
    fn describe(&self, epoch: &M::Epoch) -> String {
        serde_json::to_string(epoch).expect("metrics serialise")
    }
    fn snapshot(&self, state: &EpochState<M>) -> Result<Snapshot> {
        let sections = encode_state(self.config, state)?;
        Ok(Box::new(move |path: &Path| write_state(path, &sections)))
    }
}

/// Trains `method` from `initial` to the end, saving nothing (tests and library users);
/// `on_epoch` sees every epoch's metrics and may stop the run with an error.
pub fn train_unsaved<M: EpochMethod>(
    method: &M,
    initial: M::Model,
    on_epoch: &mut dyn FnMut(&M::Epoch) -> Result<()>,
) -> Result<EpochOutcome<M>> {
    struct Report<'a, E>(&'a mut dyn FnMut(&E) -> Result<()>);
    impl<M: EpochMethod> Hooks<BestOf<'_, M>> for Report<'_, M::Epoch> {
        fn after_epoch(&mut self, epoch: &M::Epoch, _: &EpochState<M>) -> Result<Control> {
            (self.0)(epoch)?;
            Ok(Control::Continue)
        }
    }
    let best = BestOf { method, config: "" };
    let state = EpochState::fresh(method, initial);
    let end = train(&best, state, &mut Report(on_epoch))?;
    end.expect("only the hooks stop a run, and these do not")
        .outcome()
}

const MAGIC: &[u8; 8] = b"LADDEREP";

/// What a saved state says besides its tensors.
#[derive(Serialize, Deserialize)]
struct StateHeader<E> {
    /// The run's configuration (TOML): a state is continued only under the same one.
    config: String,
    history: Vec<E>,
    best_epoch: usize,
    best_validation_error_percent: f64,
    train_seconds: f64,
}

fn bytes_of(module: &impl Module) -> Result<Bytes> {
    module
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| LadderError::Setting(format!("cannot serialise the network: {e}")))
}

/// `state` (after at least one epoch) with `config` (TOML), as the file's sections: copied on
/// the training thread, so that [`write_state`] can go on another.
pub fn encode_state<M: EpochMethod>(config: &str, state: &EpochState<M>) -> Result<Vec<Bytes>> {
    let (best, best_epoch, best_val) = state.best.as_ref().expect("saved after an epoch");
    let header = StateHeader {
        config: config.into(),
        history: state.history.clone(),
        best_epoch: *best_epoch,
        best_validation_error_percent: *best_val,
        train_seconds: state.train_seconds,
    };
    let head = Bytes::from_bytes_vec(serde_json::to_vec(&header).expect("the header serialises"));
    let optim = state.optim.to_record().into_bytes().map_err(|e| {
        LadderError::Setting(format!("cannot serialise the optimizer's state: {e}"))
    })?;
    Ok(vec![head, bytes_of(&state.model)?, bytes_of(best)?, optim])
}

/// Writes sections of [`encode_state`] to `path` atomically.
pub fn write_state(path: &Path, sections: &[Bytes]) -> Result<()> {
    let parts: Vec<&[u8]> = sections.iter().map(|b| &b[..]).collect();
    write_sections_atomic(path, MAGIC, &parts)
}

/// Reads a state written by [`write_state`] into networks shaped as `skeleton`; refused unless it
/// was written under `config`.
pub fn load_state<M: EpochMethod>(
    path: &Path,
    config: &str,
    method: &M,
    skeleton: &M::Model,
) -> Result<EpochState<M>> {
    let bad = |reason: String| LadderError::Checkpoint {
        path: path.into(),
        reason,
    };
    let data = std::fs::read(path).map_err(|e| LadderError::io(path, e))?;
    let parts = decode_sections(&data, MAGIC, 4, "training state").map_err(bad)?;
    let header: StateHeader<M::Epoch> =
        serde_json::from_slice(parts[0]).map_err(|e| bad(format!("unreadable header: {e}")))?;
    if header.config != config {
        return Err(bad(
            "was written by another configuration than the run's; refusing to continue it".into(),
        ));
    }
    let module = |bytes: &[u8]| -> Result<M::Model> {
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes.to_vec()))
            .map_err(|e| bad(e.to_string()))?;
        skeleton
            .clone()
            .try_load_record(record)
            .map_err(|e| bad(e.to_string()))
    };
    let optim = OptimizerRecord::from_bytes(Bytes::from_bytes_vec(parts[3].to_vec()))
        .map_err(|e| bad(e.to_string()))?;
    let epochs_done = header.history.len();
    Ok(EpochState {
        model: module(parts[1])?,
        optim: method.resumed_optimizer(epochs_done.max(1), optim),
        best: Some((
            module(parts[2])?,
            header.best_epoch,
            header.best_validation_error_percent,
        )),
        history: header.history,
        train_seconds: header.train_seconds,
    })
}
