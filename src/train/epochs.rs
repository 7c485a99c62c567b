//! The training loop of the methods that train epoch by epoch and keep the network of the best
//! validation error (plain networks of 004, semantic noise modeling of 003): it owns the epoch
//! count, early stopping, the best network, the history and the state a run resumes from
//! exactly. A method only says how one epoch trains and what its metrics line holds.

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
use crate::train::trainer::Control;

/// One method's epoch.
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

/// Where a run stands: everything it continues from.
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

    fn outcome(self) -> Result<EpochOutcome<M>> {
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

/// Sees each epoch's metrics with the state after it; may stop the run.
pub type OnEpoch<'a, M> =
    dyn FnMut(&<M as EpochMethod>::Epoch, &EpochState<M>) -> Result<Control> + 'a;

/// Trains `state` on to the end; `on_epoch` sees each epoch's metrics with the state after it
/// (to save it) and may stop the run (`Ok(None)`, the state as of that epoch saved by it).
pub fn train_epochs<M: EpochMethod>(
    method: &M,
    mut state: EpochState<M>,
    on_epoch: &mut OnEpoch<'_, M>,
) -> Result<Option<EpochOutcome<M>>> {
    while !state.is_finished(method) {
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
        if on_epoch(&metrics, &state)? == Control::Stop && !state.is_finished(method) {
            return Ok(None);
        }
    }
    state.outcome().map(Some)
}

/// Trains `method` from `initial` to the end, saving nothing (tests and library users);
/// `on_epoch` sees every epoch's metrics and may stop the run with an error.
pub fn train_unsaved<M: EpochMethod>(
    method: &M,
    initial: M::Model,
    on_epoch: &mut dyn FnMut(&M::Epoch) -> Result<()>,
) -> Result<EpochOutcome<M>> {
    let state = EpochState::fresh(method, initial);
    let outcome = train_epochs(method, state, &mut |epoch, _| {
        on_epoch(epoch)?;
        Ok(Control::Continue)
    })?;
    Ok(outcome.expect("only on_epoch stops a run, and it did not"))
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
