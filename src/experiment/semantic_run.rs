//! Run directories of semantic-noise-modeling networks (003), and the grids of Table 1.
//!
//! One run: `config.toml` (with `method = "semantic"`), `data.json`, `metrics.jsonl` (one line per epoch),
//! `checkpoint.bin` (the state a stopped run continues from exactly), `model.bin` (the network
//! of the best validation error, with the mean image it subtracts) and, once finished,
//! `summary.json`. A grid of models × examples per class × seeds writes one run per seed to
//! `ROOT/k{K}/{model}/seed-{S}/`, each cell's mean ± std to `ROOT/k{K}/{model}/summary.json`
//! and the whole table, in Table 1's layout, to `ROOT/table.md` and `ROOT/table.csv`.
//! Finished runs are kept and read back and a stopped run continues from its saved state, so a
//! grid stopped halfway continues where it was.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::RecordedData;
use crate::error::{LadderError, Result};
use crate::eval::error_percent_of;
use crate::experiment::host::{self, Host};
use crate::experiment::run::{
    CHECKPOINT_FILE, CONFIG_FILE, DirLock, METRICS_FILE, RunMethod, SUMMARY_FILE, StartMode,
    check_data_record, device_name, on_cpu, prepare_run_files, read_config, read_json, run_epochs,
    write_config, write_data_record, write_json,
};
use crate::experiment::seeds::mean_std;
use crate::model::semantic::{SemanticModel, SemanticNet};
use crate::noise::{RngStream, stream_rng};
use crate::train::checkpoint::{load_module, save_module, write_atomic};
use crate::train::semantic::{SemanticConfig, SemanticData, SemanticMethod, semantic_split};

pub const SEMANTIC_MODEL_FILE: &str = "model.bin";
pub const TABLE_MARKDOWN: &str = "table.md";
pub const TABLE_CSV: &str = "table.csv";
const SEMANTIC_MAGIC: &[u8; 8] = b"LADDERSN";

/// What `model.bin` says about its network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SemanticModelHeader {
    pub config: SemanticConfig,
    /// Shape of the training images before any crop.
    pub image_shape: Vec<usize>,
    pub best_epoch: usize,
    /// The mean image subtracted from the inputs (full size).
    pub mean: Vec<f32>,
}

/// `summary.json` of one finished run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SemanticSummary {
    pub kind: String,
    pub model: SemanticModel,
    pub per_class: usize,
    pub seed: u64,
    /// Test error of the network with the best validation error.
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

/// `summary.json` of one cell of a grid: a model at one training-set size over seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SemanticCell {
    pub model: SemanticModel,
    pub per_class: usize,
    pub seeds: Vec<u64>,
    pub mean: f64,
    pub std: f64,
    pub runs: Vec<SemanticSummary>,
}

/// Writes the network and its header atomically.
pub fn save_semantic_model(
    path: &Path,
    header: &SemanticModelHeader,
    net: &SemanticNet,
) -> Result<()> {
    save_module(path, SEMANTIC_MAGIC, header, net)
}

/// Reads `model.bin` of a semantic run onto `device`.
pub fn load_semantic_model(
    path: &Path,
    device: &Device,
) -> Result<(SemanticModelHeader, SemanticNet)> {
    load_module(
        path,
        SEMANTIC_MAGIC,
        "semantic-noise network file",
        |h: &SemanticModelHeader| {
            let layers = h.config.plan(&h.image_shape)?;
            let mut rng = stream_rng(0, RngStream::Init, 0, 0);
            SemanticNet::new(layers, &mut rng, device)
        },
    )
}

/// The files of one semantic run directory.
const RUN_FILES: [&str; 5] = [
    CONFIG_FILE,
    METRICS_FILE,
    CHECKPOINT_FILE,
    SEMANTIC_MODEL_FILE,
    SUMMARY_FILE,
];

/// Trains one network into `out` (or continues it there); `report` sees every epoch's
/// metrics line.
pub fn train_semantic_run(
    config: &SemanticConfig,
    data: &RecordedData,
    out: &Path,
    mode: StartMode,
    device: &Device,
    report: &mut dyn FnMut(&str),
) -> Result<SemanticSummary> {
    let record = &data.record;
    let data = &data.sets;
    config.validate()?;
    config.plan(&data.train.image_shape)?;
    let split = SemanticData::new(data, config)?;
    let method = SemanticMethod {
        config,
        data: &split,
        device: device.clone(),
    };
    let initial = method.initial_model()?;
    let _lock = prepare_run_files(out, &RUN_FILES, mode, record)?;
    let toml = config.to_toml();
    write_config(out, RunMethod::Semantic, &toml)?;
    let hint =
        "the same train-semantic command again (finished and stopped runs of a grid continue)";
    let outcome = run_epochs(&method, out, &toml, mode, initial, report, hint)?;
    let header = SemanticModelHeader {
        config: config.clone(),
        image_shape: data.train.image_shape.clone(),
        best_epoch: outcome.best_epoch,
        mean: split.mean.clone(),
    };
    save_semantic_model(&out.join(SEMANTIC_MODEL_FILE), &header, &outcome.model)?;
    let summary = SemanticSummary {
        kind: "semantic".into(),
        model: config.model,
        per_class: config.per_class,
        seed: config.seed,
        test_error_percent: error_percent_of(&outcome.model.valid(), &split.test),
        validation_error_percent: outcome.best_validation_error_percent,
        best_epoch: outcome.best_epoch,
        epochs_run: outcome.history.len(),
        train_examples: split.train.len(),
        train_seconds: outcome.train_seconds,
        device: device_name(device),
        version: env!("CARGO_PKG_VERSION").into(),
        host: Some(Host::current()),
        numerics: Some(host::numerics(on_cpu(device), false)),
    };
    write_json(&out.join(SUMMARY_FILE), &summary)?;
    Ok(summary)
}

/// The models, training-set sizes and seeds of a grid.
#[derive(Debug, Clone, PartialEq)]
pub struct SemanticGrid {
    pub models: Vec<SemanticModel>,
    pub per_class: Vec<usize>,
    pub seeds: Vec<u64>,
}

/// Where a grid keeps the runs of `model` with `per_class` examples per class.
pub fn cell_dir(root: &Path, per_class: usize, model: SemanticModel) -> PathBuf {
    let k = match per_class {
        0 => "all".to_string(),
        k => k.to_string(),
    };
    root.join(format!("k{k}")).join(model.to_string())
}

/// A finished run in `dir` of exactly `config` and `data`, if there is one; an error if `dir`
/// holds a finished run of another configuration or data (unless `force`, which retrains it).
fn finished_run(
    dir: &Path,
    config: &SemanticConfig,
    data: &RecordedData,
    force: bool,
) -> Result<Option<SemanticSummary>> {
    let summary = dir.join(SUMMARY_FILE);
    if force || !summary.exists() {
        return Ok(None);
    }
    check_data_record(dir, &data.record)?;
    let stored: SemanticConfig = read_config(dir, RunMethod::Semantic)?;
    if &stored != config {
        return Err(LadderError::RunDir {
            path: dir.into(),
            reason: "holds a finished run of a different configuration; pass --force to \
                     retrain it or choose another output directory"
                .into(),
        });
    }
    read_json(&summary).map(Some)
}

/// Trains every cell of `grid` (skipping finished runs), writes each cell's summary and the
/// table; `report` sees progress lines.
pub fn train_semantic_grid(
    config: &SemanticConfig,
    grid: &SemanticGrid,
    recorded: &RecordedData,
    root: &Path,
    force: bool,
    device: &Device,
    report: &mut dyn FnMut(&str),
) -> Result<SemanticTable> {
    let data = &recorded.sets;
    if grid.models.is_empty() || grid.per_class.is_empty() || grid.seeds.is_empty() {
        return Err(LadderError::Setting(
            "a grid needs at least one model, one training-set size and one seed".into(),
        ));
    }
    // Check every cell's settings before spending hours on the first.
    for &per_class in &grid.per_class {
        for &model in &grid.models {
            let c = SemanticConfig {
                model,
                per_class,
                ..config.clone()
            };
            c.validate()?;
            c.plan(&data.train.image_shape)?;
            for &seed in &grid.seeds {
                semantic_split(data, &SemanticConfig { seed, ..c.clone() })?;
            }
        }
    }
    let _lock = DirLock::acquire(root)?;
    if !force {
        check_data_record(root, &recorded.record)?;
    }
    write_data_record(root, &recorded.record)?;
    for &per_class in &grid.per_class {
        for &model in &grid.models {
            let dir = cell_dir(root, per_class, model);
            let mut runs = Vec::with_capacity(grid.seeds.len());
            for &seed in &grid.seeds {
                let c = SemanticConfig {
                    model,
                    per_class,
                    seed,
                    ..config.clone()
                };
                let run_dir = dir.join(format!("seed-{seed}"));
                let summary = match finished_run(&run_dir, &c, recorded, force)? {
                    Some(s) => {
                        report(&format!("{}: finished earlier", run_dir.display()));
                        s
                    }
                    None => {
                        report(&format!("{}: training", run_dir.display()));
                        // A stopped run continues from its saved state; --force starts again.
                        let mode = match force {
                            true => StartMode::Fresh { force: true },
                            false => StartMode::Resume,
                        };
                        train_semantic_run(&c, recorded, &run_dir, mode, device, report)?
                    }
                };
                report(&format!(
                    "{model} k={per_class} seed {seed}: test error {:.2} % (best epoch {})",
                    summary.test_error_percent, summary.best_epoch
                ));
                runs.push(summary);
            }
            let errors: Vec<f64> = runs.iter().map(|r| r.test_error_percent).collect();
            let (mean, std) = mean_std(&errors);
            let cell = SemanticCell {
                model,
                per_class,
                seeds: grid.seeds.clone(),
                mean,
                std,
                runs,
            };
            write_json(&dir.join(SUMMARY_FILE), &cell)?;
        }
    }
    let table = semantic_table(root)?;
    table.write(root)?;
    Ok(table)
}

/// Table 1's layout: a row per model, a column per training-set size, mean ± std test error.
#[derive(Debug, Clone, PartialEq)]
pub struct SemanticTable {
    pub per_class: Vec<usize>,
    pub cells: BTreeMap<(SemanticModel, usize), SemanticCell>,
}

/// Reads every cell summary under `root` (`k*/<model>/summary.json`).
pub fn semantic_table(root: &Path) -> Result<SemanticTable> {
    let entries = std::fs::read_dir(root).map_err(|e| LadderError::io(root, e))?;
    let mut cells = BTreeMap::new();
    for entry in entries {
        let entry = entry.map_err(|e| LadderError::io(root, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('k') || !entry.path().is_dir() {
            continue;
        }
        for model in SemanticModel::all() {
            let path = entry.path().join(model.to_string()).join(SUMMARY_FILE);
            if path.exists() {
                let cell: SemanticCell = read_json(&path)?;
                cells.insert((cell.model, cell.per_class), cell);
            }
        }
    }
    if cells.is_empty() {
        return Err(LadderError::RunDir {
            path: root.into(),
            reason: "holds no finished cell (k*/<model>/summary.json) of a semantic grid".into(),
        });
    }
    let mut per_class: Vec<usize> = cells.keys().map(|k| k.1).collect();
    per_class.sort_by_key(|&k| if k == 0 { usize::MAX } else { k });
    per_class.dedup();
    Ok(SemanticTable { per_class, cells })
}

fn column_name(k: usize) -> String {
    match k {
        0 => "all".into(),
        k => k.to_string(),
    }
}

impl SemanticTable {
    fn models(&self) -> Vec<SemanticModel> {
        SemanticModel::all()
            .into_iter()
            .filter(|m| self.cells.keys().any(|k| k.0 == *m))
            .collect()
    }

    /// Markdown in Table 1's layout, with the seeds behind each column.
    pub fn to_markdown(&self) -> String {
        let mut s = String::from("| model (test error %, mean ± std) |");
        for &k in &self.per_class {
            s += &format!(" {} per class |", column_name(k));
        }
        s += "\n| --- |";
        s += &" ---: |".repeat(self.per_class.len());
        s += "\n";
        for m in self.models() {
            s += &format!("| {} |", m.table_label());
            for &k in &self.per_class {
                s += &match self.cells.get(&(m, k)) {
                    Some(c) => format!(" {:.2} ± {:.2} |", c.mean, c.std),
                    None => " – |".into(),
                };
            }
            s += "\n";
        }
        s
    }

    /// One line per cell: model, examples per class, mean, std, seeds and each seed's error.
    pub fn to_csv(&self) -> String {
        let mut s = String::from("model,per_class,mean,std,seeds,errors\n");
        for cell in self.cells.values() {
            let seeds: Vec<String> = cell.seeds.iter().map(u64::to_string).collect();
            let errors: Vec<String> = cell
                .runs
                .iter()
                .map(|r| format!("{:.2}", r.test_error_percent))
                .collect();
            s += &format!(
                "{},{},{:.4},{:.4},{},{}\n",
                cell.model,
                cell.per_class,
                cell.mean,
                cell.std,
                seeds.join(" "),
                errors.join(" ")
            );
        }
        s
    }

    /// Writes `table.md` and `table.csv` into `root`.
    pub fn write(&self, root: &Path) -> Result<()> {
        write_atomic(&root.join(TABLE_MARKDOWN), self.to_markdown().as_bytes())?;
        write_atomic(&root.join(TABLE_CSV), self.to_csv().as_bytes())
    }
}
