//! Run directories: a training run writes its resolved configuration, per-epoch metrics
//! (JSON lines), a checkpoint after every epoch and, only once it has finished, `summary.json`.
//! A directory without `summary.json` is an unfinished run: it can be resumed, and it is never
//! passed off as complete. An existing run directory is never overwritten unless asked.

use std::borrow::Cow;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::preprocess::preprocessed;
use crate::data::{
    DataRecord, DataRequest, DataSource, RecordedData, SemiSupervisedSplit, TrainTest,
};
use crate::error::{LadderError, Result};
use crate::experiment::host::{self, HOST_FILE, Host};
use crate::experiment::progress::Progress;
use crate::experiment::seeds::mean_std;
use crate::train::TrainConfig;
use crate::train::checkpoint::{Checkpoint, write_atomic, write_shared};
use crate::train::epochs::{
    BestOf, Control, EpochMethod, EpochOutcome, EpochState, Hooks, Method, StepDone, load_state,
    train,
};
use crate::train::trainer::{EpochMetrics, LadderMethod, PreparedData, Trainer, load_moments};

pub const CONFIG_FILE: &str = "config.toml";
pub const METRICS_FILE: &str = "metrics.jsonl";
pub const CHECKPOINT_FILE: &str = "checkpoint.bin";
pub const SUMMARY_FILE: &str = "summary.json";
/// The seed list of a multi-seed directory.
pub const SEEDS_FILE: &str = "seeds.json";
/// The data a run (or a multi-seed run, a sweep, a grid) was trained on: its source and the
/// fingerprint of every file.
pub const DATA_FILE: &str = "data.json";

/// The method a run directory belongs to, as its [`CONFIG_FILE`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMethod {
    /// A Ladder network or one of its baselines: `config.toml` without a `method` key.
    Ladder,
    /// A plain network of 004: `method = "plain"`.
    Plain,
    /// A semantic-noise-modeling network of 003: `method = "semantic"`.
    Semantic,
}

/// The key of [`CONFIG_FILE`] that names the method (absent for the Ladder, as in runs written
/// before it existed).
const METHOD_KEY: &str = "method";

impl RunMethod {
    fn key(self) -> Option<&'static str> {
        match self {
            RunMethod::Ladder => None,
            RunMethod::Plain => Some("plain"),
            RunMethod::Semantic => Some("semantic"),
        }
    }

    /// Where runs written before every method shared [`CONFIG_FILE`] kept their configuration.
    fn legacy_file(self) -> Option<&'static str> {
        match self {
            RunMethod::Ladder => None,
            RunMethod::Plain => Some("plain.toml"),
            RunMethod::Semantic => Some("semantic.toml"),
        }
    }

    /// The method of the run (or multi-seed run, or grid cell) in `dir`; `None` when it holds
    /// no configuration.
    pub fn of_dir(dir: &Path) -> Result<Option<RunMethod>> {
        let path = dir.join(CONFIG_FILE);
        if path.exists() {
            let table = read_toml_table(&path)?;
            return match table.get(METHOD_KEY) {
                None => Ok(Some(RunMethod::Ladder)),
                Some(toml::Value::String(s)) if s == "plain" => Ok(Some(RunMethod::Plain)),
                Some(toml::Value::String(s)) if s == "semantic" => Ok(Some(RunMethod::Semantic)),
                Some(other) => Err(LadderError::Format {
                    path,
                    reason: format!("unknown method {other}; expected \"plain\" or \"semantic\""),
                }),
            };
        }
        let legacy = [RunMethod::Plain, RunMethod::Semantic]
            .into_iter()
            .find(|m| m.legacy_file().is_some_and(|f| dir.join(f).exists()));
        Ok(legacy)
    }
}

fn read_toml_table(path: &Path) -> Result<toml::Table> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    toml::from_str(&text).map_err(|e| LadderError::Format {
        path: path.into(),
        reason: e.to_string(),
    })
}

/// Writes `config` (TOML) as the [`CONFIG_FILE`] of a run of `method` in `dir`, atomically.
pub(crate) fn write_config(dir: &Path, method: RunMethod, config: &str) -> Result<()> {
    let text = match method.key() {
        Some(name) => format!("{METHOD_KEY} = \"{name}\"\n{config}"),
        None => config.to_string(),
    };
    // Several tasks of a shared sweep may write one cell's configuration at once.
    write_shared(&dir.join(CONFIG_FILE), with_host(text).as_bytes())
}

/// Ends a configuration with a comment naming the machine that started the run (every
/// process that wrote the directory is in its `host.json`); the file still configures a
/// new run as it is.
fn with_host(config: String) -> String {
    let sep = if config.ends_with('\n') { "" } else { "\n" };
    format!("{config}{sep}# started on: {}\n", Host::current().line())
}

/// The configuration of the run of `method` in `dir` (from its legacy file in older runs);
/// an error when the directory holds another method's run or none.
pub fn read_config<C: serde::de::DeserializeOwned>(dir: &Path, method: RunMethod) -> Result<C> {
    let found = RunMethod::of_dir(dir)?;
    if found != Some(method) {
        return Err(LadderError::RunDir {
            path: dir.into(),
            reason: match found {
                None => format!("has no {CONFIG_FILE}: not a run directory"),
                Some(other) => format!("holds a {other:?} run, not a {method:?} run"),
            },
        });
    }
    let path = match (dir.join(CONFIG_FILE), method.legacy_file()) {
        (p, _) if p.exists() => p,
        (_, Some(legacy)) => dir.join(legacy),
        (p, None) => p,
    };
    let mut table = read_toml_table(&path)?;
    table.remove(METHOD_KEY);
    table
        .try_into()
        .map_err(|e: toml::de::Error| LadderError::Format {
            path,
            reason: e.to_string(),
        })
}

/// Begins a Ladder run's [`CONFIG_FILE`] that started from a preset: a comment, so that the
/// file stays a configuration as it is (`--config`), and a resumed run still knows its preset.
const PRESET_COMMENT: &str = "# preset: ";

/// Writes a Ladder run's (or multi-seed run's) [`CONFIG_FILE`], atomically, its first line
/// naming the preset of `opts` when there is one.
pub(crate) fn write_ladder_config(
    dir: &Path,
    config: &TrainConfig,
    opts: &RunOptions,
) -> Result<()> {
    let text = match &opts.preset {
        Some(p) => format!("{PRESET_COMMENT}{p}\n{}", config.to_toml()),
        None => config.to_toml(),
    };
    // Several tasks of a shared sweep may write one cell's configuration at once.
    write_shared(&dir.join(CONFIG_FILE), with_host(text).as_bytes())
}

/// The preset the Ladder run in `dir` recorded it started from; `None` when it started from
/// none, or was written before runs recorded it.
pub fn recorded_preset(dir: &Path) -> Result<Option<String>> {
    let path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let first = text.lines().next().unwrap_or_default();
    Ok(first
        .strip_prefix(PRESET_COMMENT)
        .map(|p| p.trim().to_string()))
}

/// Set by the Ctrl-C handler: the run finishes its current step, saves and stops.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

pub(crate) fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// How a run is carried out.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Replace an existing run directory.
    pub force: bool,
    /// Continue an unfinished run in the directory.
    pub resume: bool,
    /// No progress output.
    pub quiet: bool,
    /// Where training happens (with autodiff).
    pub device: Device,
    /// Recorded in the summary: the preset the configuration started from.
    pub preset: Option<String>,
    /// Also checkpoint within an epoch once this much time has passed since the last save.
    pub checkpoint_every: Option<Duration>,
}

/// Writes a file on a thread of its own, one write at a time (each goes through the same
/// temporary file): the training thread only copies the state. A failed write is the run's
/// error; dropped, it waits, so a run that stops with an error still leaves its last file whole.
pub(crate) struct BackgroundWrite {
    path: PathBuf,
    writing: Option<JoinHandle<Result<()>>>,
}

impl BackgroundWrite {
    pub(crate) fn new(path: PathBuf) -> Self {
        BackgroundWrite {
            path,
            writing: None,
        }
    }

    /// Waits for the write before, then starts `write` (of this writer's file).
    pub(crate) fn start(
        &mut self,
        write: impl FnOnce(&Path) -> Result<()> + Send + 'static,
    ) -> Result<()> {
        self.finish()?;
        let target = self.path.clone();
        let writer = std::thread::Builder::new()
            .name("checkpoint".into())
            .spawn(move || write(&target))
            .map_err(|e| LadderError::Checkpoint {
                path: self.path.clone(),
                reason: format!("cannot start a thread to write it: {e}"),
            })?;
        self.writing = Some(writer);
        Ok(())
    }

    /// Waits for the write under way, if any.
    pub(crate) fn finish(&mut self) -> Result<()> {
        match self.writing.take() {
            Some(writer) => writer.join().unwrap_or_else(|_| {
                Err(LadderError::Checkpoint {
                    path: self.path.clone(),
                    reason: "the thread writing it panicked".into(),
                })
            }),
            None => Ok(()),
        }
    }
}

impl Drop for BackgroundWrite {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// What the run writer does around the one loop, the same for every method: each epoch's
/// metrics line appended to [`METRICS_FILE`], the state saved after every epoch, on time within
/// epochs and on Ctrl-C (copied at once, written on another thread, so that the next steps do
/// not wait for the disk), and the progress shown.
struct RunHooks<'m, 'p, M: Method> {
    method: &'m M,
    metrics: Option<PathBuf>,
    /// The state's writer; `None` for a run without a directory.
    writer: Option<BackgroundWrite>,
    every: Option<Duration>,
    last_save: Instant,
    progress: &'m mut Progress<'p>,
    /// The epochs this process trained, in order.
    epochs: Vec<M::Epoch>,
}

impl<M: Method> RunHooks<'_, '_, M> {
    fn save(&mut self, state: &M::State) -> Result<()> {
        if let Some(writer) = &mut self.writer {
            // Wait for the last write before copying the state.
            writer.finish()?;
            let snapshot = self.method.snapshot(state)?;
            writer.start(snapshot)?;
        }
        self.last_save = Instant::now();
        Ok(())
    }

    /// Waits for the state being written; a failed write is the run's error.
    fn finish_writing(&mut self) -> Result<()> {
        self.writer.as_mut().map_or(Ok(()), BackgroundWrite::finish)
    }
}

impl<M: Method> Hooks<M> for RunHooks<'_, '_, M> {
    fn after_step(&mut self, state: &M::State, step: StepDone) -> Result<Control> {
        self.progress.step(&step);
        if interrupted() {
            self.save(state)?;
            self.finish_writing()?;
            return Ok(Control::Stop);
        }
        if self.every.is_some_and(|e| self.last_save.elapsed() >= e) {
            self.save(state)?;
        }
        Ok(Control::Continue)
    }

    fn after_epoch(&mut self, epoch: &M::Epoch, state: &M::State) -> Result<Control> {
        if let Some(path) = &self.metrics {
            let line = serde_json::to_string(epoch).expect("metrics serialise");
            append_line(path, &line)?;
        }
        let done = self.method.epochs_done(state);
        self.progress.epoch(done, &self.method.describe(epoch));
        self.save(state)?;
        self.epochs.push(epoch.clone());
        if interrupted() {
            self.finish_writing()?;
            return Ok(Control::Stop);
        }
        Ok(Control::Continue)
    }
}

/// A run trained to its end by [`drive`]: its final state and the epochs this process
/// trained.
pub(crate) struct Driven<M: Method> {
    pub state: M::State,
    pub epochs: Vec<M::Epoch>,
}

/// Trains `state` of `method` to the end through the one loop, writing the run's metrics and
/// state in `dir` (nothing without one) and showing `progress`; `None` when Ctrl-C stopped it
/// (its state saved). With `every`, the state is also saved within epochs once that much time
/// has passed since the last save.
pub(crate) fn drive<M: Method>(
    method: &M,
    state: M::State,
    dir: Option<&Path>,
    progress: &mut Progress<'_>,
    every: Option<Duration>,
) -> Result<Option<Driven<M>>> {
    let mut hooks = RunHooks {
        method,
        metrics: dir.map(|d| d.join(METRICS_FILE)),
        writer: dir.map(|d| BackgroundWrite::new(d.join(CHECKPOINT_FILE))),
        every,
        last_save: Instant::now(),
        progress,
        epochs: Vec::new(),
    };
    let trained = train(method, state, &mut hooks);
    // Whatever happened, the last state is written whole before the run reports.
    hooks.finish_writing()?;
    Ok(trained?.map(|state| Driven {
        state,
        epochs: hooks.epochs,
    }))
}

/// The error of a run stopped by Ctrl-C, saying how to continue it.
fn interruption(out: Option<&Path>) -> LadderError {
    LadderError::Interrupted(match out {
        Some(dir) => format!(
            "checkpoint saved; continue with: ladder train --resume {}",
            dir.display()
        ),
        None => "the run was not saved (no output directory)".into(),
    })
}

/// `summary.json` of a finished run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub test_error_percent: f64,
    pub validation_error_percent: Option<f64>,
    pub seed: u64,
    pub epochs: usize,
    /// Labelled examples used.
    pub labeled: usize,
    /// Unlabelled examples used.
    pub unlabeled: usize,
    pub train_seconds: f64,
    pub final_cost: f64,
    pub preset: Option<String>,
    pub device: String,
    pub version: String,
    /// The machine that finished the run (absent in runs written before it was recorded).
    #[serde(default)]
    pub host: Option<Host>,
    /// Whether these numbers are the same on every host ([`host::numerics`]).
    #[serde(default)]
    pub numerics: Option<String>,
}

/// `summary.json` of a multi-seed run of any method: every run's summary and the mean ± std
/// of their test errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedsSummary<R = RunSummary> {
    pub seeds: Vec<u64>,
    /// Mean test error over the seeds, percent.
    pub mean: f64,
    /// Sample standard deviation of the test error over the seeds, percent.
    pub std: f64,
    pub test_error_percent: f64,
    pub runs: Vec<R>,
}

impl<R> SeedsSummary<R> {
    /// The summary of `runs` (one per seed of `seeds`), whose test errors `error` reads.
    pub fn of(seeds: &[u64], runs: Vec<R>, error: impl Fn(&R) -> f64) -> Self {
        let errors: Vec<f64> = runs.iter().map(error).collect();
        let (mean, std) = mean_std(&errors);
        SeedsSummary {
            seeds: seeds.to_vec(),
            mean,
            std,
            test_error_percent: mean,
            runs,
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LadderError + '_ {
    move |e| LadderError::io(path, e)
}

/// Reads a JSON file into `T`, naming the file in any error.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    serde_json::from_str(&text).map_err(|e| LadderError::Format {
        path: path.into(),
        reason: e.to_string(),
    })
}

pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    write_atomic(path, json_text(value).as_bytes())
}

/// [`write_json`] of a file that several processes may write at once ([`write_shared`]).
pub(crate) fn write_json_shared<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    write_shared(path, json_text(value).as_bytes())
}

/// The pretty JSON of `value`, as every JSON file of a run is written.
pub(crate) fn json_text<T: Serialize>(value: &T) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("serialisable");
    text.push('\n');
    text
}

/// Records the data a run in `dir` trains on.
pub(crate) fn write_data_record(dir: &Path, record: &DataRecord) -> Result<()> {
    write_json(&dir.join(DATA_FILE), record)
}

/// Errors unless the data a run in `dir` recorded (if any) is `record`'s: a run is continued,
/// read back or extended only with the data it was trained on.
pub(crate) fn check_data_record(dir: &Path, record: &DataRecord) -> Result<()> {
    let path = dir.join(DATA_FILE);
    if !path.exists() {
        return Ok(());
    }
    let recorded: DataRecord = read_json(&path)?;
    recorded.check(record).map_err(|e| LadderError::RunDir {
        path: dir.into(),
        reason: format!("was trained on other data than this command's: {e}"),
    })
}

/// Says that the run in `dir`, written before runs recorded their data, is read with `source`.
fn warn_no_record(dir: &Path, source: &DataSource) {
    eprintln!(
        "warning: {} has no {DATA_FILE} (written before runs recorded their data); using {}",
        dir.display(),
        source.describe()
    );
}

/// The data of the run (or multi-seed run, sweep, grid) in `dir`: the recorded source, or the
/// moved copy `request` names, checked against the recorded fingerprint. A directory written
/// before runs recorded their data gets the request's data (the embedded data by default), with
/// a warning.
pub fn run_data(dir: &Path, request: &DataRequest, num_classes: usize) -> Result<RecordedData> {
    let path = dir.join(DATA_FILE);
    if !path.exists() {
        let source = request.source()?;
        warn_no_record(dir, &source);
        return Ok(source.load(num_classes)?);
    }
    let recorded: DataRecord = read_json(&path)?;
    let source = request.relocate(&recorded.source)?;
    Ok(recorded.reload(&source, num_classes)?)
}

/// The source the run in `dir` recorded (`None` for a run written before runs recorded their
/// data).
pub fn recorded_source(dir: &Path) -> Result<Option<DataSource>> {
    let path = dir.join(DATA_FILE);
    match path.exists() {
        true => Ok(Some(read_json::<DataRecord>(&path)?.source)),
        false => Ok(None),
    }
}

/// The one test set several runs are compared on (robustness): the data the first run recorded
/// (or the copy `request` names), which every other run must have recorded too.
pub fn runs_data(
    dirs: &[&Path],
    request: &DataRequest,
    num_classes: usize,
) -> Result<RecordedData> {
    let first = dirs
        .first()
        .ok_or_else(|| LadderError::Setting("no run directories given".into()))?;
    let data = run_data(first, request, num_classes)?;
    for dir in &dirs[1..] {
        if !dir.join(DATA_FILE).exists() {
            warn_no_record(dir, &data.record.source);
        }
        check_data_record(dir, &data.record)?;
    }
    Ok(data)
}

/// What to do with the directory a run writes into.
enum Start {
    Fresh,
    Resume(Box<Checkpoint>),
    Finished(Box<RunSummary>),
}

/// The files a Ladder run writes.
const RUN_FILES: [&str; 6] = [
    CONFIG_FILE,
    DATA_FILE,
    SPLIT_FILE,
    METRICS_FILE,
    CHECKPOINT_FILE,
    SUMMARY_FILE,
];

/// The training-set indices (0-based, into the data as read, before any preprocessing) of a
/// Ladder run's labelled and validation examples: what the seed drew, for analyses and for
/// other implementations trained on the same split.
pub const SPLIT_FILE: &str = "split.json";

/// The labelled and validation indices of `split`, as [`SPLIT_FILE`] records them; the
/// unlabelled set is every other training example unless `unlabeled_samples` capped it (then
/// its indices are recorded too).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitRecord {
    pub labeled: Vec<usize>,
    pub validation: Vec<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlabeled: Option<Vec<usize>>,
}

fn write_split(dir: &Path, split: &SemiSupervisedSplit, capped: bool) -> Result<()> {
    let record = SplitRecord {
        labeled: split.labeled.clone(),
        validation: split.validation.clone(),
        unlabeled: capped.then(|| split.unlabeled.clone()),
    };
    write_json_shared(&dir.join(SPLIT_FILE), &record)
}

/// Decides how a run starts in `dir`; removes nothing (a replaced run's files go only once the
/// new run has been set up, see [`replace_run_files`]). A resumed run without a checkpoint
/// had saved nothing to continue from: it starts again, which gives the same numbers.
fn inspect_dir(dir: &Path, opts: &RunOptions) -> Result<Start> {
    let summary = dir.join(SUMMARY_FILE);
    let checkpoint = dir.join(CHECKPOINT_FILE);
    let has_run = [METRICS_FILE, CHECKPOINT_FILE, SUMMARY_FILE]
        .iter()
        .any(|f| dir.join(f).exists());
    if opts.force {
        return Ok(Start::Fresh);
    }
    if opts.resume {
        if summary.exists() {
            return Ok(Start::Finished(Box::new(read_json(&summary)?)));
        }
        if checkpoint.exists() {
            return Ok(Start::Resume(Box::new(Checkpoint::load(&checkpoint)?)));
        }
        return Ok(Start::Fresh);
    }
    if has_run {
        return Err(LadderError::RunDir {
            path: dir.into(),
            reason: "already holds a run; pass --resume to continue it or --force to replace it"
                .into(),
        });
    }
    Ok(Start::Fresh)
}

/// Removes the files of `files` that `dir` holds (the run being replaced).
pub(crate) fn replace_run_files(dir: &Path, files: &[&str]) -> Result<()> {
    for f in files {
        let p = dir.join(f);
        if p.exists() {
            std::fs::remove_file(&p).map_err(io(&p))?;
        }
    }
    Ok(())
}

/// The lock file a process holds while it writes a run directory.
pub const LOCK_FILE: &str = ".lock";

/// An exclusive lock on a run directory, held while a process writes it: a second writer is
/// refused instead of mixing its files with the first one's. Each holder adds its machine to
/// the directory's [`HOST_FILE`]. The operating system releases it
/// when the process ends, however it ends.
pub(crate) struct DirLock {
    dir: PathBuf,
    file: Option<std::fs::File>,
    /// The directory did not exist before: if nothing but the lock is left in it, it goes too.
    created: bool,
}

impl DirLock {
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock> {
        let created = !dir.exists();
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join(LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        match file.try_lock() {
            Ok(()) => {
                let lock = DirLock {
                    dir: dir.into(),
                    file: Some(file),
                    created,
                };
                host::record(dir)?;
                Ok(lock)
            }
            Err(std::fs::TryLockError::WouldBlock) => Err(LadderError::RunDir {
                path: dir.into(),
                reason: format!(
                    "another process is writing it (it holds {}); wait for it to end or stop it",
                    path.display()
                ),
            }),
            Err(std::fs::TryLockError::Error(e)) => Err(LadderError::io(path, e)),
        }
    }
}

/// A start that failed in a directory it created leaves no directory behind.
impl Drop for DirLock {
    fn drop(&mut self) {
        let own = [LOCK_FILE, HOST_FILE].map(std::ffi::OsStr::new);
        let only_lock = std::fs::read_dir(&self.dir)
            .map(|entries| entries.flatten().all(|e| own.contains(&&*e.file_name())))
            .unwrap_or(false);
        if self.created && only_lock {
            let _ = std::fs::remove_file(self.dir.join(LOCK_FILE));
            let _ = std::fs::remove_file(self.dir.join(HOST_FILE));
            let _ = std::fs::remove_dir(&self.dir);
        }
        drop(self.file.take());
    }
}

/// Keeps the metrics lines of epochs up to `epochs_done` (those the checkpoint covers), so a
/// resumed run appends after them exactly once.
fn truncate_metrics(path: &Path, epochs_done: usize) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let kept: Vec<&str> = text.lines().take(epochs_done).collect();
    let mut out = kept.join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    write_atomic(path, out.as_bytes())
}

/// How a run of an epoch method (plain, semantic) starts in its directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartMode {
    /// A new run: refused where a run is, unless `force`, which replaces it.
    Fresh { force: bool },
    /// Continue the run there (from its saved state, or from the start if it saved none), on
    /// the same data.
    Resume,
}

/// Makes `dir` ready for a run that writes `files` (and [`DATA_FILE`], written here from
/// `record`), holding its lock. Callers check their settings and data first, so that a
/// refused start removes nothing.
pub(crate) fn prepare_run_files(
    dir: &Path,
    files: &[&str],
    mode: StartMode,
    record: &DataRecord,
) -> Result<DirLock> {
    let lock = DirLock::acquire(dir)?;
    match mode {
        StartMode::Resume => check_data_record(dir, record)?,
        StartMode::Fresh { force } => {
            if files.iter().any(|f| dir.join(f).exists()) {
                if !force {
                    return Err(LadderError::RunDir {
                        path: dir.into(),
                        reason: "already holds a run; pass --resume to continue it or --force \
                                 to replace it"
                            .into(),
                    });
                }
                replace_run_files(dir, files)?;
            }
        }
    }
    write_data_record(dir, record)?;
    Ok(lock)
}

/// Trains `method` in `dir` through the one loop: from the state saved in
/// [`CHECKPOINT_FILE`] when resuming (and there is one), otherwise from `initial`. Each
/// epoch's metrics line is appended to [`METRICS_FILE`] and shown to `report`, and the state is
/// saved after it, so that a run stopped at any point continues exactly; Ctrl-C stops it after
/// the epoch with a hint to `resume_with`.
pub(crate) fn run_epochs<M: EpochMethod>(
    method: &M,
    dir: &Path,
    config_toml: &str,
    mode: StartMode,
    initial: M::Model,
    report: &mut dyn FnMut(&str),
    resume_with: &str,
) -> Result<EpochOutcome<M>> {
    let state_path = dir.join(CHECKPOINT_FILE);
    let metrics = dir.join(METRICS_FILE);
    let mut progress = Progress::new(method.max_epochs(), "", report).without_bar();
    let state = if mode == StartMode::Resume && state_path.exists() {
        let state = load_state(&state_path, config_toml, method, &initial)?;
        truncate_metrics(&metrics, state.epochs_done())?;
        progress.say(&format!(
            "{}: continuing after epoch {}",
            dir.display(),
            state.epochs_done()
        ));
        state
    } else {
        replace_run_files(dir, &[METRICS_FILE, CHECKPOINT_FILE])?;
        EpochState::fresh(method, initial)
    };
    let best = BestOf {
        method,
        config: config_toml,
    };
    match drive(&best, state, Some(dir), &mut progress, None)? {
        Some(done) => done.state.outcome(),
        None => Err(LadderError::Interrupted(format!(
            "state saved; continue with: {resume_with}"
        ))),
    }
}

/// Makes `out` ready for a command's output `files` (tables, figures): refused when one of them
/// is already there (an earlier result) unless `force`, which replaces them.
pub fn output_dir(out: &Path, files: &[&str], force: bool) -> Result<()> {
    if !force && let Some(f) = files.iter().find(|f| out.join(f).exists()) {
        return Err(LadderError::RunDir {
            path: out.into(),
            reason: format!(
                "already holds {f} from an earlier command; pass --force to replace it or \
                 choose another --out"
            ),
        });
    }
    std::fs::create_dir_all(out).map_err(io(out))
}

pub(crate) fn append_line(path: &Path, line: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io(path))?;
    writeln!(f, "{line}").map_err(io(path))?;
    f.sync_data().map_err(io(path))
}

/// A name for the device, recorded in summaries.
pub fn device_name(device: &Device) -> String {
    format!("{device:?}")
}

/// Whether `device` is the CPU backend, whose kernels make the numbers host-independent.
pub fn on_cpu(device: &Device) -> bool {
    crate::device::is_cpu(device)
}

/// A run set up to train: its directory locked and (when fresh) its configuration and data
/// record written.
struct Ready {
    trainer: Trainer,
    prepared: PreparedData,
    _lock: Option<DirLock>,
}

enum Started {
    Finished(Box<RunSummary>),
    Ready(Box<Ready>),
}

/// Sets a run up in `out` (locked while it runs): a finished run's summary is read back, an
/// unfinished one continues from its checkpoint, a fresh one is checked completely (network,
/// split) before any earlier run's files are replaced and its own are written.
fn start_run(
    config: &TrainConfig,
    (sets, record): (Cow<'_, TrainTest>, &DataRecord),
    out: Option<&Path>,
    opts: &RunOptions,
) -> Result<Started> {
    let lock = out.map(DirLock::acquire).transpose()?;
    let start = match out {
        Some(dir) => {
            if !opts.force {
                check_data_record(dir, record)?;
            }
            inspect_dir(dir, opts)?
        }
        None => Start::Fresh,
    };
    // A finished run returns before its data is preprocessed (ZCA on CIFAR-10 takes a while).
    let resume_from = match start {
        Start::Finished(summary) => return Ok(Started::Finished(summary)),
        Start::Resume(ck) => Some(ck),
        Start::Fresh => None,
    };
    let sets = &*preprocessed(sets, &config.preprocessing())?;
    let (trainer, prepared) = match resume_from {
        Some(ck) => {
            let dir = out.expect("resume needs a directory");
            let path = dir.join(CHECKPOINT_FILE);
            if ck.header.config != *config {
                return Err(LadderError::Checkpoint {
                    path,
                    reason: format!(
                        "was written by another configuration than the run's {CONFIG_FILE}; refusing to continue it"
                    ),
                });
            }
            let t = Trainer::from_checkpoint(*ck, &path, &opts.device)?;
            let prepared = PreparedData::new(sets, &t.config)?;
            truncate_metrics(&dir.join(METRICS_FILE), t.epochs_done)?;
            (t, prepared)
        }
        None => {
            let t = Trainer::new(config.clone(), &sets.train.image_shape, &opts.device)?;
            let prepared = PreparedData::new(sets, &t.config)?;
            if let Some(dir) = out {
                replace_run_files(dir, &RUN_FILES)?;
                write_data_record(dir, record)?;
                write_split(dir, &prepared.split, config.unlabeled_samples.is_some())?;
                write_ladder_config(dir, config, opts)?;
            }
            (t, prepared)
        }
    };
    Ok(Started::Ready(Box::new(Ready {
        trainer,
        prepared,
        _lock: lock,
    })))
}

/// Trains one run. With `out`, the run's files go there (and `resume` continues them);
/// without, nothing is written. Returns the run's summary. `data` is handed over so that its
/// images as loaded are freed once preprocessed.
pub fn train_run(
    config: &TrainConfig,
    data: RecordedData,
    out: Option<&Path>,
    opts: &RunOptions,
) -> Result<RunSummary> {
    match start_run(config, (Cow::Owned(data.sets), &data.record), out, opts)? {
        Started::Finished(summary) => Ok(*summary),
        Started::Ready(ready) => run_to_end(*ready, out, opts),
    }
}

/// Trains the run of `config` in `dir` to its end (its summary read back if it had finished,
/// continued from its checkpoint with `opts.resume`).
pub(crate) fn train_in(
    config: &TrainConfig,
    data: &RecordedData,
    dir: &Path,
    opts: &RunOptions,
) -> Result<RunSummary> {
    let started = start_run(
        config,
        (Cow::Borrowed(&data.sets), &data.record),
        Some(dir),
        opts,
    )?;
    finish_run(started, dir, opts)
}

fn finish_run(started: Started, dir: &Path, opts: &RunOptions) -> Result<RunSummary> {
    match started {
        Started::Finished(summary) => Ok(*summary),
        Started::Ready(ready) => run_to_end(*ready, Some(dir), opts),
    }
}

/// Trains a started run to its last epoch (or to Ctrl-C) and finishes it.
fn run_to_end(ready: Ready, out: Option<&Path>, opts: &RunOptions) -> Result<RunSummary> {
    let Ready {
        trainer,
        prepared,
        _lock,
    } = ready;
    let method = LadderMethod::new(&prepared, &trainer);
    let label = format!("seed {}", trainer.config.seed);
    let mut say = |line: &str| eprintln!("{line}");
    let mut quiet = |_: &str| {};
    let report: &mut dyn FnMut(&str) = if opts.quiet { &mut quiet } else { &mut say };
    let mut progress = Progress::new(trainer.config.epochs, label, report);
    if opts.quiet {
        progress = progress.without_bar();
    }
    let every = opts.checkpoint_every;
    let Some(done) = drive(&method, trainer, out, &mut progress, every)? else {
        return Err(interruption(out));
    };
    finish(
        &done.state,
        &prepared,
        done.epochs.last().cloned(),
        out,
        opts,
    )
}

/// Final evaluation, the evaluable checkpoint and `summary.json` (written last).
fn finish(
    trainer: &Trainer,
    data: &PreparedData,
    last: Option<EpochMetrics>,
    out: Option<&Path>,
    opts: &RunOptions,
) -> Result<RunSummary> {
    let moments = trainer.population_moments(data);
    let (validation, test) = trainer.errors(data, &moments);
    let final_cost = match last {
        Some(m) => m.cost.total,
        None => read_last_cost(out)?,
    };
    let summary = RunSummary {
        test_error_percent: test,
        validation_error_percent: validation,
        seed: trainer.config.seed,
        epochs: trainer.config.epochs,
        labeled: data.labeled.len(),
        unlabeled: data.unlabeled.len(),
        train_seconds: trainer.train_seconds,
        final_cost,
        preset: match out {
            Some(dir) => recorded_preset(dir)?,
            None => opts.preset.clone(),
        },
        device: device_name(&opts.device),
        version: env!("CARGO_PKG_VERSION").into(),
        host: Some(Host::current()),
        numerics: Some(host::numerics(
            on_cpu(&opts.device),
            trainer.config.preprocessing().zca_bias.is_some(),
        )),
    };
    if let Some(dir) = out {
        trainer
            .checkpoint(Some(&moments))?
            .save(&dir.join(CHECKPOINT_FILE))?;
        write_json(&dir.join(SUMMARY_FILE), &summary)?;
    }
    if !opts.quiet {
        eprintln!(
            "seed {}: test error {:.2}% after {} epochs ({:.0} s of training)",
            summary.seed, summary.test_error_percent, summary.epochs, summary.train_seconds
        );
    }
    Ok(summary)
}

/// The last epoch's cost from `metrics.jsonl` (a run resumed after its last epoch).
fn read_last_cost(out: Option<&Path>) -> Result<f64> {
    let Some(dir) = out else { return Ok(f64::NAN) };
    let path = dir.join(METRICS_FILE);
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let line = text.lines().last().unwrap_or("{}");
    let m: EpochMetrics = serde_json::from_str(line).map_err(|e| LadderError::Format {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    Ok(m.cost.total)
}

/// Runs `config` once per seed into `out/seed-N/` and writes `out/summary.json` with the mean ±
/// std. With `resume`, finished seeds are read back and the first unfinished one continues.
/// The directory's own files (configuration, seed list, data record) are written once the
/// first seed's run has been set up, so a start that fails leaves nothing to block a rerun.
pub fn train_seeds(
    config: &TrainConfig,
    seeds: &[u64],
    data: &RecordedData,
    out: &Path,
    opts: &RunOptions,
) -> Result<SeedsSummary> {
    if seeds.is_empty() {
        return Err(LadderError::Setting("no seeds given".into()));
    }
    let _lock = DirLock::acquire(out)?;
    let summary_path = out.join(SUMMARY_FILE);
    let seeds_path = out.join(SEEDS_FILE);
    if !opts.force {
        check_data_record(out, &data.record)?;
        if summary_path.exists() {
            if opts.resume {
                return read_json(&summary_path);
            }
            return Err(LadderError::RunDir {
                path: out.into(),
                reason: "already holds a finished multi-seed run; pass --force to replace it"
                    .into(),
            });
        }
        if seeds_path.exists() && !opts.resume {
            return Err(LadderError::RunDir {
                path: out.into(),
                reason: "already holds a multi-seed run; pass --resume to continue it or --force to replace it".into(),
            });
        }
    }
    let mut runs = Vec::with_capacity(seeds.len());
    for (i, &seed) in seeds.iter().enumerate() {
        let c = TrainConfig {
            seed,
            ..config.clone()
        };
        let dir = out.join(format!("seed-{seed}"));
        let started = start_run(
            &c,
            (Cow::Borrowed(&data.sets), &data.record),
            Some(&dir),
            opts,
        )?;
        if i == 0 && !(opts.resume && seeds_path.exists()) {
            replace_run_files(out, &[SUMMARY_FILE])?;
            write_data_record(out, &data.record)?;
            write_ladder_config(out, config, opts)?;
            write_json(&seeds_path, &seeds)?;
        }
        let run = finish_run(started, &dir, opts);
        match run {
            Ok(run) => runs.push(run),
            // The whole multi-seed run is what resumes.
            Err(LadderError::Interrupted(_)) => return Err(interruption(Some(out))),
            Err(e) => return Err(e),
        }
    }
    let summary = SeedsSummary::of(seeds, runs, |r| r.test_error_percent);
    write_json(&summary_path, &summary)?;
    Ok(summary)
}

/// A trained model ready for inference, read from a run directory.
pub struct LoadedRun {
    pub trainer: Trainer,
    pub moments: Vec<crate::ops::batch_norm::Moments>,
}

/// Loads the final checkpoint of a finished run for inference on `device` (with autodiff).
pub fn load_run(dir: &Path, device: &Device) -> Result<LoadedRun> {
    let path = dir.join(CHECKPOINT_FILE);
    if !path.exists() {
        return Err(LadderError::RunDir {
            path: dir.into(),
            reason: format!("has no {CHECKPOINT_FILE}: not a run directory"),
        });
    }
    let ck = Checkpoint::load(&path)?;
    let stored = ck.header.moments.clone().ok_or_else(|| LadderError::RunDir {
        path: dir.into(),
        reason: "the run has not finished (its checkpoint has no batch-norm statistics); resume it first".into(),
    })?;
    let trainer = Trainer::from_checkpoint(ck, &path, device)?;
    let moments = load_moments(&stored, &device.clone().inner());
    Ok(LoadedRun { trainer, moments })
}

/// A fresh directory name under `base`: `name`, or `name-2`, `name-3`, ... if taken.
pub fn fresh_dir(base: &Path, name: &str) -> PathBuf {
    let first = base.join(name);
    if !first.exists() {
        return first;
    }
    (2..)
        .map(|i| base.join(format!("{name}-{i}")))
        .find(|p| !p.exists())
        .expect("some suffix is free")
}
