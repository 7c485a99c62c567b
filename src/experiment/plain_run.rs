//! Run directories of plain (non-Ladder) networks: `config.toml` (with `method = "plain"`), `data.json`, `metrics.jsonl`
//! (one line per epoch), `checkpoint.bin` (the state a stopped run continues from exactly),
//! `model.bin` (the best network by validation error) and, once finished, `summary.json`.

use std::borrow::Cow;
use std::path::Path;

use burn::module::Module;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::preprocess::preprocessed;
use crate::data::{DataRecord, RecordedData, TrainTest};
use crate::error::{LadderError, Result};
use crate::eval::error_percent_of;
use crate::experiment::host::{self, Host};
use crate::experiment::run::{
    CHECKPOINT_FILE, CONFIG_FILE, METRICS_FILE, RunMethod, SEEDS_FILE, SUMMARY_FILE, SeedsSummary,
    StartMode, device_name, on_cpu, prepare_run_files, read_config, read_json, run_epochs,
    write_config, write_json,
};
use crate::experiment::shard::{SeedRuns, check_same_config};
use crate::model::mlp::{Mlp, MlpInit};
use crate::noise::{RngStream, stream_rng};
use crate::train::checkpoint::{load_module, save_module};
use crate::train::plain::{PlainConfig, PlainData, PlainMethod};

pub const PLAIN_MODEL_FILE: &str = "model.bin";
const PLAIN_MAGIC: &[u8; 8] = b"LADDERPL";

/// What `model.bin` says about its network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlainModelHeader {
    pub config: PlainConfig,
    pub dims: Vec<usize>,
    pub best_epoch: usize,
}

/// `summary.json` of a finished plain run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlainSummary {
    pub kind: String,
    pub model: String,
    pub seed: u64,
    pub test_error_percent: f64,
    pub validation_error_percent: f64,
    pub best_epoch: usize,
    pub epochs_run: usize,
    pub train_examples: usize,
    pub train_seconds: f64,
    pub device: String,
    pub version: String,
    /// The machine that finished the run (absent in runs written before it was recorded).
    #[serde(default)]
    pub host: Option<Host>,
    /// Whether these numbers are the same on every host ([`host::numerics`]).
    #[serde(default)]
    pub numerics: Option<String>,
}

/// Writes the network and its header atomically.
pub fn save_plain_model(path: &Path, header: &PlainModelHeader, mlp: &Mlp) -> Result<()> {
    save_module(path, PLAIN_MAGIC, header, mlp)
}

/// Reads `model.bin` of a plain run onto `device`.
pub fn load_plain_model(path: &Path, device: &Device) -> Result<(PlainModelHeader, Mlp)> {
    // A skeleton of the right shape, then the stored values.
    let (header, mlp) = load_module(
        path,
        PLAIN_MAGIC,
        "plain network file",
        |h: &PlainModelHeader| {
            let mut rng = stream_rng(0, RngStream::Init, 0, 0);
            Ok(Mlp::new(&h.dims, MlpInit::Scaled, &mut rng, device))
        },
    )?;
    if mlp.dims() != header.dims {
        return Err(LadderError::Checkpoint {
            path: path.into(),
            reason: format!(
                "network shape {:?} does not match its header {:?}",
                mlp.dims(),
                header.dims
            ),
        });
    }
    Ok((header, mlp))
}

/// The files of a plain run directory.
const PLAIN_RUN_FILES: [&str; 5] = [
    CONFIG_FILE,
    METRICS_FILE,
    CHECKPOINT_FILE,
    PLAIN_MODEL_FILE,
    SUMMARY_FILE,
];

/// Trains a plain network into `out` (or continues it there); `report` sees every epoch's
/// metrics line. A finished run is read back when resumed.
pub fn train_plain_run(
    config: &PlainConfig,
    data: &RecordedData,
    out: &Path,
    mode: StartMode,
    device: &Device,
    report: &mut dyn FnMut(&str),
) -> Result<PlainSummary> {
    config.validate()?;
    let sets = &*preprocessed(Cow::Borrowed(&data.sets), &config.preprocessing())?;
    train_preprocessed(config, sets, &data.record, out, mode, device, report)
}

/// [`train_plain_run`] on `sets`, the data of `record` preprocessed as `config` asks.
fn train_preprocessed(
    config: &PlainConfig,
    sets: &TrainTest,
    record: &DataRecord,
    out: &Path,
    mode: StartMode,
    device: &Device,
    report: &mut dyn FnMut(&str),
) -> Result<PlainSummary> {
    let split = PlainData::new(sets, config)?;
    let method = PlainMethod {
        config,
        data: &split,
        device: device.clone(),
    };
    let initial = method.initial_model()?;
    let _lock = prepare_run_files(out, &PLAIN_RUN_FILES, mode, record)?;
    if mode == StartMode::Resume && out.join(SUMMARY_FILE).exists() {
        return read_json(&out.join(SUMMARY_FILE));
    }
    let toml = config.to_toml();
    write_config(out, RunMethod::Plain, &toml)?;
    let hint = format!("ladder train-plain --resume {}", out.display());
    let outcome = run_epochs(&method, out, &toml, mode, initial, report, &hint)?;
    let header = PlainModelHeader {
        config: config.clone(),
        dims: outcome.model.dims(),
        best_epoch: outcome.best_epoch,
    };
    save_plain_model(&out.join(PLAIN_MODEL_FILE), &header, &outcome.model)?;
    let summary = PlainSummary {
        kind: "plain".into(),
        model: config.model.to_string(),
        seed: config.seed,
        test_error_percent: error_percent_of(&outcome.model.valid(), &split.test),
        validation_error_percent: outcome.best_validation_error_percent,
        best_epoch: outcome.best_epoch,
        epochs_run: outcome.epochs_run,
        train_examples: split.train.len(),
        train_seconds: outcome.train_seconds,
        device: device_name(device),
        version: env!("CARGO_PKG_VERSION").into(),
        host: Some(Host::current()),
        numerics: Some(host::numerics(
            on_cpu(device),
            config.preprocessing().zca_bias.is_some(),
        )),
    };
    write_json(&out.join(SUMMARY_FILE), &summary)?;
    Ok(summary)
}

/// The seeds of one plain configuration, for a run that processes share
/// ([`crate::experiment::shard`]); `sets` is the data of `record` preprocessed as `config` asks.
pub struct PlainSeeds<'a> {
    pub config: &'a PlainConfig,
    pub sets: &'a TrainTest,
    pub record: &'a DataRecord,
    pub device: &'a Device,
}

impl<'a> PlainSeeds<'a> {
    /// Checks every seed's split of `sets` before anything is written.
    pub fn new(
        config: &'a PlainConfig,
        seeds: &[u64],
        sets: &'a TrainTest,
        record: &'a DataRecord,
        device: &'a Device,
    ) -> Result<Self> {
        config.validate()?;
        for &seed in seeds {
            PlainData::new(sets, &config.with_seed(seed))?;
        }
        Ok(PlainSeeds {
            config,
            sets,
            record,
            device,
        })
    }
}

impl SeedRuns for PlainSeeds<'_> {
    type Summary = PlainSummary;

    fn join_config(&self, dir: &Path) -> Result<()> {
        if dir.join(CONFIG_FILE).exists() {
            let recorded: PlainConfig = read_config(dir, RunMethod::Plain)?;
            return check_same_config(dir, recorded == *self.config);
        }
        write_config(dir, RunMethod::Plain, &self.config.to_toml())
    }

    fn train_seed(
        &self,
        seed: u64,
        unit: &Path,
        resume: bool,
        note: &mut dyn FnMut(&str),
    ) -> Result<PlainSummary> {
        let mode = match resume {
            true => StartMode::Resume,
            false => StartMode::Fresh { force: true },
        };
        let config = self.config.with_seed(seed);
        train_preprocessed(
            &config,
            self.sets,
            self.record,
            unit,
            mode,
            self.device,
            note,
        )
    }

    fn test_error(summary: &PlainSummary) -> f64 {
        summary.test_error_percent
    }
}

/// `summary.json` of a multi-seed plain run.
pub type PlainSeedsSummary = SeedsSummary<PlainSummary>;

/// Runs `config` once per seed into `out/seed-N/` (each a plain run directory) and writes
/// `out/summary.json` with the mean ± std; resumed, finished seeds are read back and a stopped
/// one continues. Every seed's split is checked before anything is written.
pub fn train_plain_seeds(
    config: &PlainConfig,
    seeds: &[u64],
    data: &RecordedData,
    out: &Path,
    mode: StartMode,
    device: &Device,
    report: &mut dyn FnMut(&str),
) -> Result<PlainSeedsSummary> {
    if seeds.is_empty() {
        return Err(LadderError::Setting("no seeds given".into()));
    }
    config.validate()?;
    let sets = &*preprocessed(Cow::Borrowed(&data.sets), &config.preprocessing())?;
    PlainSeeds::new(config, seeds, sets, &data.record, device)?;
    let top_files = [CONFIG_FILE, SEEDS_FILE, SUMMARY_FILE];
    let _lock = prepare_run_files(out, &top_files, mode, &data.record)?;
    let summary_path = out.join(SUMMARY_FILE);
    if mode == StartMode::Resume && summary_path.exists() {
        return read_json(&summary_path);
    }
    write_config(out, RunMethod::Plain, &config.to_toml())?;
    write_json(&out.join(SEEDS_FILE), &seeds)?;
    let mut runs = Vec::with_capacity(seeds.len());
    for &seed in seeds {
        let dir = out.join(format!("seed-{seed}"));
        let run = train_preprocessed(
            &config.with_seed(seed),
            sets,
            &data.record,
            &dir,
            mode,
            device,
            report,
        );
        match run {
            Ok(run) => runs.push(run),
            // The whole multi-seed run is what resumes.
            Err(LadderError::Interrupted(_)) => {
                return Err(LadderError::Interrupted(format!(
                    "state saved; continue with: ladder train-plain --resume {}",
                    out.display()
                )));
            }
            Err(e) => return Err(e),
        }
    }
    let summary = SeedsSummary::of(seeds, runs, |r| r.test_error_percent);
    write_json(&summary_path, &summary)?;
    Ok(summary)
}
