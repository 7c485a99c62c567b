//! Hyperparameter grids (thesis 000 Tables 13–16): every combination of the named
//! configuration fields is trained over the given seeds into its own cell directory, the cell
//! with the lowest mean validation error is chosen, and the grid is written as a table with
//! that cell marked. A sweep directory records its grid (`sweep.json`), so `--resume` finishes
//! it without retraining completed cells.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::RecordedData;
use crate::error::{LadderError, Result};
use crate::experiment::SeedsSummary;
use crate::experiment::claim::ClaimSettings;
use crate::experiment::run::{
    DATA_FILE, DirLock, RunOptions, check_data_record, json_text, read_json, replace_run_files,
    write_data_record, write_json, write_json_shared,
};
use crate::experiment::seeds::mean_std;
use crate::experiment::shard::{
    LadderSeeds, SEEDS_DIR_FILES, Share, UnitOutcome, UnitState, complete_seeds, join_seeds_dir,
    seed_dir, train_unit, unit_state,
};
use crate::train::TrainConfig;
use crate::train::checkpoint::{create_once, write_shared};

pub const SWEEP_FILE: &str = "sweep.json";
/// Written into a cell's directory when one of its runs diverged: the cell is reported as
/// diverged and not trained again.
pub const DIVERGED_FILE: &str = "diverged.json";

/// One axis of the grid: a configuration field and the values it takes (TOML literals).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridAxis {
    pub name: String,
    pub values: Vec<String>,
}

impl GridAxis {
    /// `field=v1,v2,…`; dashes in the field name may stand for underscores.
    pub fn parse(s: &str) -> Result<GridAxis> {
        let (name, values) = s.split_once('=').ok_or_else(|| {
            LadderError::Setting(format!(
                "grid axis '{s}': expected field=value,value,… (e.g. adv_sup_tau=4.5e-5,4.5e-4)"
            ))
        })?;
        let values: Vec<String> = values
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect();
        if values.is_empty() {
            return Err(LadderError::Setting(format!(
                "grid axis '{s}' has no values"
            )));
        }
        Ok(GridAxis {
            name: name.trim().replace('-', "_"),
            values,
        })
    }
}

/// Everything a sweep directory needs to be resumed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepSpec {
    pub base: TrainConfig,
    pub axes: Vec<GridAxis>,
    pub seeds: Vec<u64>,
    /// The preset `base` started from, recorded in every cell's summary (absent in sweeps
    /// written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    /// With a [`METHOD_AXIS`], each method's base: the preset trained by that method, then the
    /// configuration file and flags, as `train --method` resolves it (so a flag wins over the
    /// method's own settings in every cell).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub method_bases: Vec<MethodBase>,
}

/// The grid axis whose values are comparison methods (`method=ladder,vat,mean-teacher`)
/// rather than configuration fields: each value's cells start from its [`MethodBase`].
pub const METHOD_AXIS: &str = "method";

/// The configuration a method's cells start from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodBase {
    pub method: String,
    pub base: TrainConfig,
}

impl SweepSpec {
    /// Errors for a grid whose cells would be mislabelled: an axis named twice (the last one
    /// would win in every cell) or a seed axis (every cell is trained with `seeds`).
    pub fn validate(&self) -> Result<()> {
        if self.base.validation_samples == 0 {
            return Err(LadderError::Setting(
                "a sweep chooses by validation error: set validation-samples > 0".into(),
            ));
        }
        if self.axes.is_empty() {
            return Err(LadderError::Setting(
                "a sweep needs at least one --grid axis".into(),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for axis in &self.axes {
            if axis.name == "seed" || axis.name == "seeds" {
                return Err(LadderError::Setting(format!(
                    "grid axis '{}': seeds are not a grid field; every cell is trained with each                      seed of --seeds (e.g. --seeds {})",
                    axis.name,
                    axis.values.join(",")
                )));
            }
            if !seen.insert(axis.name.as_str()) {
                return Err(LadderError::Setting(format!(
                    "grid axis '{}' is given twice: give all its values in one --grid {}=…",
                    axis.name, axis.name
                )));
            }
            let mut values = std::collections::HashSet::new();
            if let Some(v) = axis.values.iter().find(|v| !values.insert(v.as_str())) {
                return Err(LadderError::Setting(format!(
                    "grid axis '{}' lists the value {v} twice",
                    axis.name
                )));
            }
        }
        let methods = self.axes.iter().find(|a| a.name == METHOD_AXIS);
        let bases: Vec<&str> = self
            .method_bases
            .iter()
            .map(|b| b.method.as_str())
            .collect();
        let wanted: Vec<&str> = methods
            .map(|a| a.values.iter().map(String::as_str).collect())
            .unwrap_or_default();
        if bases != wanted {
            return Err(LadderError::Setting(format!(
                "the sweep's method axis {wanted:?} and its methods' base configurations \
                 {bases:?} do not match"
            )));
        }
        Ok(())
    }

    /// The configuration of the cell of `settings`: its method's base (or the sweep's), with
    /// the other settings applied.
    pub fn cell_config(&self, settings: &[(String, String)]) -> Result<TrainConfig> {
        let (base, rest): (&TrainConfig, Vec<(String, String)>) =
            match settings.iter().position(|(k, _)| k == METHOD_AXIS) {
                None => (&self.base, settings.to_vec()),
                Some(i) => {
                    let method = &settings[i].1;
                    let base = self
                        .method_bases
                        .iter()
                        .find(|b| &b.method == method)
                        .ok_or_else(|| {
                            LadderError::Setting(format!(
                                "method {method} of the grid has no base configuration"
                            ))
                        })?;
                    let mut rest = settings.to_vec();
                    rest.remove(i);
                    (&base.base, rest)
                }
            };
        apply_settings(base, &rest)
    }
}

/// `config` with `field = value` set for each pair; `field+field = value` sets each of the
/// fields (one axis for values that go together, e.g. the input's and the layers' noise). An
/// unknown field or a value of the wrong type is an error naming it.
pub fn apply_settings(config: &TrainConfig, settings: &[(String, String)]) -> Result<TrainConfig> {
    let mut table = toml::Table::try_from(config).expect("a TrainConfig serialises");
    let fields = settings
        .iter()
        .flat_map(|(names, value)| names.split('+').map(move |n| (n.trim(), value)));
    for (name, value) in fields {
        let parsed: toml::Value = match toml::from_str::<toml::Table>(&format!("v = {value}")) {
            Ok(mut t) => t.remove("v").expect("the key just written"),
            // Bare words (kinds, activations) are strings.
            Err(_) => toml::Value::String(value.clone()),
        };
        // `0` for a float field means 0.0.
        let parsed = match (table.get(name), parsed) {
            (Some(toml::Value::Float(_)), toml::Value::Integer(i)) => toml::Value::Float(i as f64),
            // Per-layer lists are written as text (`0.3` or `0.3,0.5`).
            (Some(toml::Value::String(_)), p) if !p.is_str() => toml::Value::String(value.clone()),
            (_, p) => p,
        };
        table.insert(name.to_string(), parsed);
    }
    let c: TrainConfig = table.try_into().map_err(|e| {
        LadderError::Setting(format!(
            "grid settings {settings:?} do not fit the configuration: {e}"
        ))
    })?;
    c.validate()?;
    Ok(c)
}

/// Every combination of the axes' values, the first axis varying slowest.
pub fn cells(axes: &[GridAxis]) -> Vec<Vec<(String, String)>> {
    axes.iter().fold(vec![vec![]], |acc, axis| {
        acc.iter()
            .flat_map(|prefix| {
                axis.values.iter().map(move |v| {
                    let mut c = prefix.clone();
                    c.push((axis.name.clone(), v.clone()));
                    c
                })
            })
            .collect()
    })
}

/// The directory name of a cell: `field=value,field=value`.
pub fn cell_name(settings: &[(String, String)]) -> String {
    settings
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
        .replace(['/', '\\', ' '], "_")
}

/// One finished cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellResult {
    pub settings: Vec<(String, String)>,
    pub dir: PathBuf,
    /// Why the cell's training diverged, if it did (its errors are then NaN).
    #[serde(default)]
    pub diverged: Option<String>,
    pub validation_mean: f64,
    pub validation_std: f64,
    pub test_mean: f64,
    pub test_std: f64,
}

/// The grid's results and the chosen cell (lowest mean validation error).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepReport {
    pub axes: Vec<GridAxis>,
    pub seeds: Vec<u64>,
    pub cells: Vec<CellResult>,
    pub chosen: usize,
}

fn run_dir_error(dir: &Path, reason: impl Into<String>) -> LadderError {
    LadderError::RunDir {
        path: dir.into(),
        reason: reason.into(),
    }
}

/// Runs (or, with `opts.resume`, finishes) the sweep `spec` into `out`, training the units
/// (one seed of one cell, in the grid's order, seeds varying fastest) of `share.shard`;
/// `note` is told when each unit starts and when one is skipped or taken over.
///
/// One process (the whole shard) holds the sweep directory and writes `sweep.json` as a new
/// sweep, or resumes it. A share of several joins the sweep: the first task to come writes its
/// `sweep.json` and data record, the others check that theirs are the same; the units are
/// claimed, so tasks (and a rerun of a killed one) never train one unit twice. What the tasks
/// find at the end is what [`gather`] finds: the report once every cell is done.
pub fn sweep(
    spec: &SweepSpec,
    data: &RecordedData,
    out: &Path,
    opts: &RunOptions,
    share: &Share,
    note: &mut dyn FnMut(&str),
) -> Result<Gathered> {
    spec.validate()?;
    let grid = cells(&spec.axes);
    // Every cell's configuration is checked before anything is trained.
    let configs = grid
        .iter()
        .map(|s| spec.cell_config(s))
        .collect::<Result<Vec<_>>>()?;
    let shared = share.joins;
    let _lock = if shared {
        join_sweep(spec, data, out, opts)?;
        None
    } else {
        Some(open_sweep(spec, data, out, opts)?)
    };
    let n_units = grid.len() * spec.seeds.len();
    let mut k = 0;
    for (i, (settings, config)) in grid.iter().zip(&configs).enumerate() {
        let name = cell_name(settings);
        let dir = out.join(&name);
        let existed = dir.exists();
        if opts.force && !shared {
            replace_run_files(&dir, &[DIVERGED_FILE])?;
            replace_run_files(&dir, &SEEDS_DIR_FILES)?;
        }
        for &seed in &spec.seeds {
            k += 1;
            if !share.shard.takes(k - 1) || dir.join(DIVERGED_FILE).exists() {
                continue;
            }
            note(&format!("unit {k}/{n_units}: {name}, seed {seed}"));
            let runs = LadderSeeds { config, data, opts };
            let trained = join_seeds_dir(&runs, &dir, &spec.seeds, &data.record)
                .and_then(|()| train_unit(&runs, seed, &dir, opts.force, &share.claims, note));
            match trained {
                Ok(UnitOutcome::Busy(who)) => {
                    note(&format!("{name}, seed {seed}: another task has it ({who})"))
                }
                Ok(UnitOutcome::Trained(_)) => note(&format!("{name}, seed {seed}: trained")),
                Ok(UnitOutcome::Done) => note(&format!("{name}, seed {seed}: already done")),
                Err(LadderError::Interrupted(_)) => {
                    return Err(LadderError::Interrupted(if shared {
                        "checkpoint saved; the same command continues this task's share".into()
                    } else {
                        format!(
                            "checkpoint saved; continue with: ladder sweep --resume {}",
                            out.display()
                        )
                    }));
                }
                Err(e @ LadderError::Diverged { .. }) => {
                    write_json_shared(&dir.join(DIVERGED_FILE), &e.to_string())?;
                }
                // A new sweep whose first cell cannot start leaves nothing to block a rerun.
                Err(e) if i == 0 && k == 1 && !shared && !opts.resume && !existed => {
                    std::fs::remove_dir_all(&dir).map_err(|e| LadderError::io(&dir, e))?;
                    replace_run_files(out, &[SWEEP_FILE, DATA_FILE])?;
                    return Err(e);
                }
                Err(e) => return Err(e),
            }
        }
    }
    gather_spec(spec, out, &share.claims)
}

/// Takes the sweep directory `out` for one process: a new sweep (`opts.force` replacing the
/// one there) or, with `opts.resume`, the same sweep on the same data.
fn open_sweep(
    spec: &SweepSpec,
    data: &RecordedData,
    out: &Path,
    opts: &RunOptions,
) -> Result<DirLock> {
    let lock = DirLock::acquire(out)?;
    let spec_path = out.join(SWEEP_FILE);
    if opts.resume {
        let stored: SweepSpec = read_json(&spec_path)?;
        if stored != *spec {
            return Err(run_dir_error(
                out,
                format!("its {SWEEP_FILE} describes another sweep"),
            ));
        }
        check_data_record(out, &data.record)?;
    } else {
        if spec_path.exists() && !opts.force {
            return Err(run_dir_error(
                out,
                "already holds a sweep; pass --resume to finish it or --force to replace it",
            ));
        }
        write_data_record(out, &data.record)?;
        write_json(&spec_path, spec)?;
    }
    Ok(lock)
}

/// Joins the sweep `spec` in `out` as one of several tasks: the first writes its data record
/// and `sweep.json`, each other checks that they are its own.
fn join_sweep(spec: &SweepSpec, data: &RecordedData, out: &Path, opts: &RunOptions) -> Result<()> {
    if opts.force {
        return Err(LadderError::Setting(
            "--force cannot be given with --shard: one task would replace the cells the others \
             are training; remove the sweep directory first to start it again"
                .into(),
        ));
    }
    std::fs::create_dir_all(out).map_err(|e| LadderError::io(out, e))?;
    if create_once(&out.join(DATA_FILE), json_text(&data.record).as_bytes())?.is_some() {
        check_data_record(out, &data.record)?;
    }
    let spec_path = out.join(SWEEP_FILE);
    if create_once(&spec_path, json_text(spec).as_bytes())?.is_some() {
        let stored: SweepSpec = read_json(&spec_path)?;
        if stored != *spec {
            return Err(run_dir_error(
                out,
                format!(
                    "its {SWEEP_FILE} describes another sweep than this task's (another grid, \
                     seeds or configuration)"
                ),
            ));
        }
    }
    Ok(())
}

/// Where a cell of a sweep stands, as its directory shows.
#[derive(Debug, Clone, PartialEq)]
pub enum CellState {
    /// Every seed trained, or the cell diverged.
    Done(CellResult),
    /// Not done: each seed's state.
    Open(Vec<(u64, UnitState)>),
}

impl CellState {
    /// done, diverged, or for an open cell the most telling of its seeds' states: running,
    /// failed, unfinished (some started), missing (none started).
    pub fn word(&self) -> &'static str {
        match self {
            CellState::Done(c) if c.diverged.is_some() => "diverged",
            CellState::Done(_) => "done",
            CellState::Open(units) => {
                let any = |w: &str| units.iter().any(|(_, u)| u.word() == w);
                if any("running") {
                    "running"
                } else if any("failed") {
                    "failed"
                } else if units.iter().all(|(_, u)| *u == UnitState::Missing) {
                    "missing"
                } else {
                    "unfinished"
                }
            }
        }
    }
}

/// What `gather` finds: every cell's name and state in the grid's order, and the report once
/// every cell is done.
#[derive(Debug)]
pub struct Gathered {
    pub cells: Vec<(String, CellState)>,
    pub report: Option<SweepReport>,
}

/// Every cell of the sweep in `out` with its state (claims judged with `claims`), and the
/// sweep's report once every cell is done (then written as a single-process sweep writes it:
/// the same `grid.md`, `grid.csv` and `summary.json`). Trains nothing.
pub fn gather(out: &Path, claims: &ClaimSettings) -> Result<Gathered> {
    let spec_path = out.join(SWEEP_FILE);
    if !spec_path.exists() {
        return Err(run_dir_error(
            out,
            format!("has no {SWEEP_FILE}: not a sweep"),
        ));
    }
    let spec: SweepSpec = read_json(&spec_path)?;
    gather_spec(&spec, out, claims)
}

fn gather_spec(spec: &SweepSpec, out: &Path, claims: &ClaimSettings) -> Result<Gathered> {
    let mut states = Vec::new();
    for settings in cells(&spec.axes) {
        let name = cell_name(&settings);
        let state = cell_state(spec, &settings, &out.join(&name), claims)?;
        states.push((name, state));
    }
    let done: Option<Vec<CellResult>> = states
        .iter()
        .map(|(_, s)| match s {
            CellState::Done(r) => Some(r.clone()),
            CellState::Open(_) => None,
        })
        .collect();
    let report = done.map(|results| finish(spec, out, results)).transpose()?;
    Ok(Gathered {
        cells: states,
        report,
    })
}

/// The state of the cell of `settings` in `dir`.
fn cell_state(
    spec: &SweepSpec,
    settings: &[(String, String)],
    dir: &Path,
    claims: &ClaimSettings,
) -> Result<CellState> {
    let diverged_path = dir.join(DIVERGED_FILE);
    if diverged_path.exists() {
        let reason: String = read_json(&diverged_path)?;
        return Ok(CellState::Done(cell_result(
            settings,
            dir,
            Some(reason),
            &[f64::NAN],
            &[f64::NAN],
        )));
    }
    if let Some(summary) = complete_seeds::<LadderSeeds>(dir, &spec.seeds)? {
        if summary.seeds != spec.seeds {
            return Err(run_dir_error(
                dir,
                format!(
                    "was trained with seeds {:?}, the sweep's are {:?}",
                    summary.seeds, spec.seeds
                ),
            ));
        }
        return Ok(CellState::Done(seeds_result(settings, dir, &summary)));
    }
    let units = spec
        .seeds
        .iter()
        .map(|&s| Ok((s, unit_state(&seed_dir(dir, s), claims)?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(CellState::Open(units))
}

/// The report of a sweep whose every cell is done (`results`, in the grid's order): the cell
/// of the lowest mean validation error among those that did not diverge is chosen, and the
/// tables and summary are written into `out`.
fn finish(spec: &SweepSpec, out: &Path, results: Vec<CellResult>) -> Result<SweepReport> {
    let chosen = results
        .iter()
        .enumerate()
        .filter(|(_, c)| c.diverged.is_none())
        .min_by(|a, b| a.1.validation_mean.total_cmp(&b.1.validation_mean))
        .map(|(i, _)| i);
    let Some(chosen) = chosen else {
        return Err(LadderError::Setting(format!(
            "every cell of the sweep in {} diverged: nothing to choose",
            out.display()
        )));
    };
    let report = SweepReport {
        axes: spec.axes.clone(),
        seeds: spec.seeds.clone(),
        cells: results,
        chosen,
    };
    // Every task that finds the sweep done writes these, the same bytes.
    write_shared(&out.join("grid.csv"), report.to_csv().as_bytes())?;
    write_shared(&out.join("grid.md"), report.to_markdown().as_bytes())?;
    write_json_shared(&out.join("summary.json"), &report)?;
    Ok(report)
}

/// A cell's result from its errors over the seeds (NaN where it diverged).
fn cell_result(
    settings: &[(String, String)],
    dir: &Path,
    diverged: Option<String>,
    validation: &[f64],
    test: &[f64],
) -> CellResult {
    let (validation_mean, validation_std) = mean_std(validation);
    let (test_mean, test_std) = mean_std(test);
    CellResult {
        settings: settings.to_vec(),
        dir: dir.to_path_buf(),
        diverged,
        validation_mean,
        validation_std,
        test_mean,
        test_std,
    }
}

/// A trained cell's result from its runs' summary.
fn seeds_result(settings: &[(String, String)], dir: &Path, summary: &SeedsSummary) -> CellResult {
    let validation: Vec<f64> = summary
        .runs
        .iter()
        .map(|r| r.validation_error_percent.unwrap_or(f64::NAN))
        .collect();
    let test: Vec<f64> = summary.runs.iter().map(|r| r.test_error_percent).collect();
    cell_result(settings, dir, None, &validation, &test)
}

impl SweepReport {
    /// One line per cell: the settings, validation and test error (mean, std), whether the
    /// cell diverged, chosen flag.
    pub fn to_csv(&self) -> String {
        let mut out: String = self.axes.iter().map(|a| format!("{},", a.name)).collect();
        out.push_str(
            "validation_error_mean,validation_error_std,test_error_mean,test_error_std,diverged,chosen\n",
        );
        for (i, c) in self.cells.iter().enumerate() {
            for (_, v) in &c.settings {
                out.push_str(&format!("{v},"));
            }
            out.push_str(&format!(
                "{:.4},{:.4},{:.4},{:.4},{},{}\n",
                c.validation_mean,
                c.validation_std,
                c.test_mean,
                c.test_std,
                c.diverged.is_some(),
                i == self.chosen
            ));
        }
        out
    }

    /// A Markdown table, a row per cell, with the chosen cell in bold and marked; for two axes
    /// also the validation errors as a grid (rows: first axis, columns: second).
    pub fn to_markdown(&self) -> String {
        let seeds = self
            .seeds
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let mut out = format!(
            "Validation and test error (%, mean ± std over seeds {seeds}); ✔ marks the cell with \
             the lowest validation error.\n\n|"
        );
        for a in &self.axes {
            out.push_str(&format!(" {} |", a.name));
        }
        out.push_str(" validation error | test error | |\n|");
        out.push_str(&" --- |".repeat(self.axes.len() + 3));
        out.push('\n');
        for (i, c) in self.cells.iter().enumerate() {
            let mark = |s: String| {
                if i == self.chosen {
                    format!("**{s}**")
                } else {
                    s
                }
            };
            out.push('|');
            for (_, v) in &c.settings {
                out.push_str(&format!(" {} |", mark(v.clone())));
            }
            let error = |mean: f64, std: f64| match &c.diverged {
                Some(_) => "diverged".to_string(),
                None => mark(format!("{mean:.2} ± {std:.2}")),
            };
            out.push_str(&format!(
                " {} | {} | {} |\n",
                error(c.validation_mean, c.validation_std),
                error(c.test_mean, c.test_std),
                if i == self.chosen { "✔" } else { "" }
            ));
        }
        if let [rows, cols] = &self.axes[..] {
            out.push_str(&format!(
                "\nValidation error (%): {} (rows) × {} (columns)\n\n| |",
                rows.name, cols.name
            ));
            for v in &cols.values {
                out.push_str(&format!(" {v} |"));
            }
            out.push_str("\n| --- |");
            out.push_str(&" ---: |".repeat(cols.values.len()));
            out.push('\n');
            for (r, rv) in rows.values.iter().enumerate() {
                out.push_str(&format!("| {rv} |"));
                for c in 0..cols.values.len() {
                    let i = r * cols.values.len() + c;
                    let v = match self.cells[i].diverged {
                        Some(_) => "diverged".to_string(),
                        None => format!("{:.2}", self.cells[i].validation_mean),
                    };
                    out.push_str(&if i == self.chosen {
                        format!(" **{v}** ✔ |")
                    } else {
                        format!(" {v} |")
                    });
                }
                out.push('\n');
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_parse_and_cells_cover_the_grid() {
        let a = GridAxis::parse("adv-sup-tau=0.1,0.2").unwrap();
        assert_eq!(a.name, "adv_sup_tau");
        let b = GridAxis::parse("act=relu, leakyrelu").unwrap();
        let grid = cells(&[a, b]);
        assert_eq!(grid.len(), 4);
        assert_eq!(cell_name(&grid[1]), "adv_sup_tau=0.1,act=leakyrelu");
        assert!(GridAxis::parse("lr").is_err());
        assert!(GridAxis::parse("lr=").is_err());
    }

    #[test]
    fn settings_apply_with_their_types_and_unknown_fields_are_named() {
        let base = TrainConfig::default();
        let s = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        let c = apply_settings(&base, &s("adv_sup_tau", "4.5e-4")).unwrap();
        assert_eq!(c.adv_sup_tau, 4.5e-4);
        let c = apply_settings(&base, &s("adv_unsup_kind", "sqrtk")).unwrap();
        assert_eq!(c.adv_unsup_kind, crate::noise::AdvKind::Sqrtk);
        assert_eq!(
            apply_settings(&base, &s("adv_sup_tau", "0"))
                .unwrap()
                .adv_sup_tau,
            0.0
        );
        let c = apply_settings(&base, &s("epochs", "3")).unwrap();
        assert_eq!(c.epochs, 3);
        let err = apply_settings(&base, &s("adv_sup_tua", "1"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("adv_sup_tua"), "{err}");
        let err = apply_settings(&base, &s("epochs", "many"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("epochs"), "{err}");
        assert!(apply_settings(&base, &s("lr", "-1")).is_err());
    }

    #[test]
    fn a_method_axis_starts_each_cell_from_its_method_base() {
        use crate::train::config::Method;
        let base = TrainConfig {
            validation_samples: 100,
            ..TrainConfig::default()
        };
        let bases = |methods: &[Method]| -> Vec<MethodBase> {
            methods
                .iter()
                .map(|m| MethodBase {
                    method: m.to_string(),
                    base: m.apply(base.clone()),
                })
                .collect()
        };
        let spec = SweepSpec {
            base: base.clone(),
            axes: vec![
                GridAxis::parse("method=ladder,vat").unwrap(),
                GridAxis::parse("lr=0.001").unwrap(),
            ],
            seeds: vec![1],
            preset: None,
            method_bases: bases(&[Method::Ladder, Method::Vat]),
        };
        spec.validate().unwrap();
        let grid = cells(&spec.axes);
        assert_eq!(cell_name(&grid[1]), "method=vat,lr=0.001");
        let ladder = spec.cell_config(&grid[0]).unwrap();
        let vat = spec.cell_config(&grid[1]).unwrap();
        assert_eq!((ladder.lr, vat.lr), (0.001, 0.001));
        assert_eq!(ladder.vat_epsilon, 0.0);
        assert_eq!(
            vat,
            Method::Vat.apply(TrainConfig {
                lr: 0.001,
                ..base.clone()
            })
        );
        // The bases must be the axis's methods, in its order.
        let wrong = SweepSpec {
            method_bases: bases(&[Method::Vat, Method::Ladder]),
            ..spec.clone()
        };
        assert!(
            wrong
                .validate()
                .unwrap_err()
                .to_string()
                .contains("method axis")
        );
        let none = SweepSpec {
            method_bases: vec![],
            ..spec
        };
        assert!(none.validate().is_err());
    }
}
