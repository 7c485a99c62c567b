//! Each method at its best, chosen as Oliver et al. 2018 ("Realistic Evaluation of Deep
//! Semi-Supervised Learning Algorithms") prescribe: the same network, the same number of
//! settings tried for every method (its [`search_space`]), picked on a validation split drawn
//! from the training set (disjoint from the labelled examples), never on the test set; the
//! chosen setting is then trained on fresh seeds and reported on the test set.
//!
//! A tune directory holds `tune.json` (its [`TuneSpec`]), `search/` (a sweep of the search
//! space on the selection seeds) and `final/` (a sweep of the one chosen cell on the final
//! seeds); both are ordinary sweeps, so `--shard`, claims, `sweep --gather` and resume work
//! on them as on any sweep.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::data::RecordedData;
use crate::error::{LadderError, Result};
use crate::experiment::claim::{CLAIM_PREFIX, ClaimSettings};
use crate::experiment::run::{
    DirLock, LOCK_FILE, RunOptions, RunSummary, json_text, read_json, write_json, write_json_shared,
};
use crate::experiment::seeds::mean_std;
use crate::experiment::shard::{LadderSeeds, Share, complete_seeds, seed_dir};
use crate::experiment::sweep::{
    CellState, GridAxis, SweepReport, SweepSpec, cell_name, cells, gather, sweep,
};
use crate::train::TrainConfig;
use crate::train::checkpoint::create_once;

pub const TUNE_FILE: &str = "tune.json";
pub const SEARCH_DIR: &str = "search";
pub const FINAL_DIR: &str = "final";
/// Settings tried per method unless `--budget` says otherwise: the same for every method.
pub const DEFAULT_BUDGET: usize = 12;
/// The validation split `tune` holds out when none is configured.
pub const DEFAULT_VALIDATION: usize = 1000;

/// The joint noise axis: the input's and every layer's Gaussian σ take the same value.
const NOISE: &str = "super_noise_std+f_local_noise_std";

/// The kind of method a configuration trains, as far as tuning is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// Labelled examples only, with Gaussian noise (the Ladder's baseline).
    Supervised,
    /// A decoder with denoising costs (the Ladder, Γ-model).
    Ladder,
    /// Virtual adversarial training (with or without entropy minimisation).
    Vat,
    /// The virtual adversarial Ladder.
    Lvan,
    /// Consistency between two noisy passes (Laine and Aila 2017).
    Pi,
    /// Consistency with a moving-average teacher (Tarvainen and Valpola 2017).
    MeanTeacher,
}

impl Family {
    /// What `config` trains: VAT and LVAN by their ε, the consistency methods by their
    /// weight (Mean Teacher by its decay), the Ladder by its decoder.
    pub fn of(config: &TrainConfig) -> Family {
        if config.vat_epsilon > 0.0 {
            Family::Vat
        } else if config.lvan_on() {
            Family::Lvan
        } else if config.consistency_weight > 0.0 && config.mean_teacher_decay > 0.0 {
            Family::MeanTeacher
        } else if config.consistency_weight > 0.0 {
            Family::Pi
        } else if config.has_decoder() {
            Family::Ladder
        } else {
            Family::Supervised
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::Supervised => "supervised",
            Family::Ladder => "ladder",
            Family::Vat => "vat",
            Family::Lvan => "lvan",
            Family::Pi => "pi",
            Family::MeanTeacher => "mean-teacher",
        }
    }
}

fn axis(name: &str, values: &[&str]) -> GridAxis {
    GridAxis {
        name: name.into(),
        values: values.iter().map(|v| v.to_string()).collect(),
    }
}

/// The built-in search space of a method: 12 cells each, over the settings its paper names
/// as the ones to tune (the rest stay at the preset's values, Adam and the 150-epoch budget
/// included).
///
/// - supervised and Ladder: Adam's rate × the Gaussian noise σ (input and every layer), the
///   Ladder paper's two tuned quantities besides λ (001 Sec. 4).
/// - Π-model and Mean Teacher: the consistency weight w_max × its ramp-up × the noise σ
///   (Laine and Aila 2017 Sec. 3; Mean Teacher × the teacher's decay α instead of the ramp-up,
///   Tarvainen and Valpola 2017 Sec. 3.2).
/// - VAT: ε × ξ (Miyato et al. 2018 Sec. 3.2 and 5; ξ down to the f32 rounding floor measured
///   in RESULTS.md).
///
/// LVAN has no built-in space (its ε is per layer): give one with `--grid`.
pub fn search_space(family: Family) -> Result<Vec<GridAxis>> {
    let lr = ["0.001", "0.002", "0.004"];
    Ok(match family {
        Family::Supervised | Family::Ladder => {
            vec![axis("lr", &lr), axis(NOISE, &["0.2", "0.3", "0.45", "0.6"])]
        }
        Family::Pi => vec![
            axis("consistency_weight", &["10", "30", "100"]),
            axis("consistency_rampup", &["40", "80"]),
            axis(NOISE, &["0.3", "0.5"]),
        ],
        Family::MeanTeacher => vec![
            axis("consistency_weight", &["10", "30", "100"]),
            axis("mean_teacher_decay", &["0.99", "0.999"]),
            axis(NOISE, &["0.3", "0.5"]),
        ],
        Family::Vat => vec![
            axis("vat_epsilon", &["1", "2.5", "5", "8"]),
            axis("vat_xi", &["1e-6", "1e-4", "1e-2"]),
        ],
        Family::Lvan => {
            return Err(LadderError::Setting(
                "LVAN has no built-in search space (its ε is one value per layer): give the \
                 settings to try with --grid field=v1,v2,…"
                    .into(),
            ));
        }
    })
}

/// Everything a tune directory needs to be continued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TuneSpec {
    /// The method's configuration before the search space's settings.
    pub base: TrainConfig,
    pub family: Family,
    /// The preset `base` started from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    pub axes: Vec<GridAxis>,
    /// The most cells the search may have.
    pub budget: usize,
    /// Seeds each search cell is trained with (the selection averages over them).
    pub select_seeds: Vec<u64>,
    /// Seeds the chosen setting is trained with for the reported test error.
    pub seeds: Vec<u64>,
}

impl TuneSpec {
    /// Errors for a tune that would not be a fair, validation-chosen comparison.
    pub fn validate(&self) -> Result<()> {
        if self.base.validation_samples == 0 {
            return Err(LadderError::Setting(
                "tuning chooses on a validation split: validation-samples must be > 0".into(),
            ));
        }
        let n = cells(&self.axes).len();
        if n > self.budget {
            return Err(LadderError::Setting(format!(
                "the search space has {n} cells, over the budget of {}: every method gets the \
                 same budget (raise --budget for all of them, or give fewer values)",
                self.budget
            )));
        }
        if self.select_seeds.is_empty() || self.seeds.is_empty() {
            return Err(LadderError::Setting(
                "tuning needs at least one selection seed and one final seed".into(),
            ));
        }
        self.search().validate()
    }

    /// The search: every cell of the space on the selection seeds.
    pub fn search(&self) -> SweepSpec {
        SweepSpec {
            base: self.base.clone(),
            axes: self.axes.clone(),
            seeds: self.select_seeds.clone(),
            preset: self.preset.clone(),
            method_bases: Vec::new(),
        }
    }

    /// The final runs: the chosen cell's settings (one value per axis) on the final seeds.
    pub fn final_runs(&self, chosen: &[(String, String)]) -> SweepSpec {
        SweepSpec {
            axes: chosen
                .iter()
                .map(|(k, v)| GridAxis {
                    name: k.clone(),
                    values: vec![v.clone()],
                })
                .collect(),
            seeds: self.seeds.clone(),
            ..self.search()
        }
    }
}

/// The tuned method's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TuneReport {
    pub family: Family,
    pub preset: Option<String>,
    pub labeled_samples: usize,
    pub validation_samples: usize,
    /// The settings the search chose (lowest mean validation error).
    pub chosen: Vec<(String, String)>,
    pub search: SweepReport,
    /// The final runs' seeds and test errors (percent), in seed order.
    pub seeds: Vec<u64>,
    pub test_errors: Vec<f64>,
    pub validation_errors: Vec<f64>,
    pub test_mean: f64,
    pub test_std: f64,
    pub test_median: f64,
    /// The first and third quartiles of the test errors (linear interpolation).
    pub test_quartiles: (f64, f64),
}

impl TuneReport {
    pub fn to_markdown(&self) -> String {
        let settings: Vec<String> = self
            .chosen
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect();
        let errors: Vec<String> = self.test_errors.iter().map(|e| format!("{e:.2}")).collect();
        let seeds: Vec<String> = self.seeds.iter().map(u64::to_string).collect();
        format!(
            "{} ({}), {} labels, chosen on {} validation examples: {}\n\n\
             test error over seeds {}: {:.2} ± {:.2} % (median {:.2}, quartiles {:.2}–{:.2}); \
             per seed {}\n\nThe search:\n\n{}",
            self.family.name(),
            self.preset.as_deref().unwrap_or("default preset"),
            self.labeled_samples,
            self.validation_samples,
            settings.join(", "),
            seeds.join(", "),
            self.test_mean,
            self.test_std,
            self.test_median,
            self.test_quartiles.0,
            self.test_quartiles.1,
            errors.join(", "),
            self.search.to_markdown()
        )
    }
}

/// The `q`-quantile of `sorted` (ascending), interpolating linearly between order statistics
/// (the "type 7" definition of R and numpy's default).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let h = (sorted.len() - 1) as f64 * q;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// Where a tune stands after a process's share.
pub enum TuneOutcome {
    Done(Box<TuneReport>),
    /// The search (or the final runs) have cells other tasks have not finished.
    Waiting(String),
}

/// Runs (or continues) the tune `spec` in `out`: the search, then the chosen setting's final
/// runs, each as a sweep sharing `share` (a task whose share of the search is done while
/// others still train theirs stops there, and the same command continues it).
pub fn tune(
    spec: &TuneSpec,
    data: &RecordedData,
    out: &Path,
    opts: &RunOptions,
    share: &Share,
    note: &mut dyn FnMut(&str),
) -> Result<TuneOutcome> {
    spec.validate()?;
    let _lock = open_tune(spec, out, opts, share)?;
    let search_dir = out.join(SEARCH_DIR);
    let search_opts = stage_options(opts, &search_dir);
    let searched = sweep(&spec.search(), data, &search_dir, &search_opts, share, note)?;
    let Some(search) = searched.report else {
        return Ok(TuneOutcome::Waiting(format!(
            "the search in {} has cells other tasks have not finished",
            search_dir.display()
        )));
    };
    let chosen = search.cells[search.chosen].settings.clone();
    note(&format!("chosen on validation: {}", cell_name(&chosen)));
    let final_dir = out.join(FINAL_DIR);
    let final_spec = spec.final_runs(&chosen);
    reuse_search_runs(spec, &search, &final_spec, &final_dir)?;
    let final_opts = stage_options(opts, &final_dir);
    let finished = sweep(&final_spec, data, &final_dir, &final_opts, share, note)?;
    if finished.report.is_none() {
        return Ok(TuneOutcome::Waiting(format!(
            "the final runs in {} have seeds other tasks have not finished",
            final_dir.display()
        )));
    }
    let report = report(spec, search, &final_spec, &final_dir)?;
    write_json_shared(&out.join("summary.json"), &report)?;
    crate::train::checkpoint::write_shared(&out.join("tune.md"), report.to_markdown().as_bytes())?;
    Ok(TuneOutcome::Done(Box::new(report)))
}

/// A stage's options: a stage already begun is continued (its sweep checks that it is the
/// same), one not begun is started; `--force` replaces both.
fn stage_options(opts: &RunOptions, dir: &Path) -> RunOptions {
    RunOptions {
        resume: !opts.force && dir.join(crate::experiment::sweep::SWEEP_FILE).exists(),
        ..opts.clone()
    }
}

/// Takes the tune directory: a new tune writes `tune.json` (refusing one there unless
/// `opts.force`), a resumed or joined one checks that `tune.json` is this tune's.
fn open_tune(
    spec: &TuneSpec,
    out: &Path,
    opts: &RunOptions,
    share: &Share,
) -> Result<Option<DirLock>> {
    let path = out.join(TUNE_FILE);
    let differs = || LadderError::RunDir {
        path: out.into(),
        reason: format!(
            "its {TUNE_FILE} describes another tune (another method, space, budget, seeds or \
             configuration)"
        ),
    };
    std::fs::create_dir_all(out).map_err(|e| LadderError::io(out, e))?;
    if share.joins {
        if create_once(&path, json_text(spec).as_bytes())?.is_some()
            && read_json::<TuneSpec>(&path)? != *spec
        {
            return Err(differs());
        }
        return Ok(None);
    }
    let lock = DirLock::acquire(out)?;
    if opts.resume {
        if read_json::<TuneSpec>(&path)? != *spec {
            return Err(differs());
        }
    } else {
        if path.exists() && !opts.force {
            return Err(LadderError::RunDir {
                path: out.into(),
                reason: "already holds a tune; pass --resume to finish it or --force to replace \
                         it"
                .into(),
            });
        }
        write_json(&path, spec)?;
    }
    Ok(Some(lock))
}

/// The chosen cell's runs of the search on seeds that are also final seeds are the same runs
/// (same configuration, seed and data): they are copied into the final cell rather than
/// trained again.
fn reuse_search_runs(
    spec: &TuneSpec,
    search: &SweepReport,
    final_spec: &SweepSpec,
    final_dir: &Path,
) -> Result<()> {
    let chosen = &search.cells[search.chosen];
    let final_cell = final_dir.join(cell_name(&cells(&final_spec.axes)[0]));
    for &seed in spec.select_seeds.iter().filter(|s| spec.seeds.contains(s)) {
        let from = seed_dir(&chosen.dir, seed);
        let to = seed_dir(&final_cell, seed);
        if to.exists() {
            continue;
        }
        copy_run(&from, &to)?;
    }
    Ok(())
}

/// Copies a finished run's files (not its claim or lock) into a new directory, through a
/// temporary one renamed into place, so an interrupted copy leaves nothing half-written.
fn copy_run(from: &Path, to: &Path) -> Result<()> {
    let parent = to.parent().expect("a seed directory has a parent");
    std::fs::create_dir_all(parent).map_err(|e| LadderError::io(parent, e))?;
    let tmp = parent.join(format!(
        ".{}.copy",
        to.file_name().unwrap_or_default().to_string_lossy()
    ));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| LadderError::io(&tmp, e))?;
    }
    copy_tree(from, &tmp)?;
    std::fs::rename(&tmp, to).map_err(|e| LadderError::io(to, e))
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(|e| LadderError::io(to, e))?;
    for entry in std::fs::read_dir(from).map_err(|e| LadderError::io(from, e))? {
        let entry = entry.map_err(|e| LadderError::io(from, e))?;
        let name = entry.file_name();
        let text = name.to_string_lossy();
        // Claims and the lock belong to the source's writer; a `.tmp` is a write in progress.
        if text.starts_with(CLAIM_PREFIX) || text == LOCK_FILE || text.ends_with(".tmp") {
            continue;
        }
        let path = entry.path();
        let target = to.join(&name);
        if path.is_dir() {
            copy_tree(&path, &target)?;
        } else {
            std::fs::copy(&path, &target).map_err(|e| LadderError::io(&path, e))?;
        }
    }
    Ok(())
}

/// The tune's report from its finished search and final runs.
fn report(
    spec: &TuneSpec,
    search: SweepReport,
    final_spec: &SweepSpec,
    final_dir: &Path,
) -> Result<TuneReport> {
    let cell = final_dir.join(cell_name(&cells(&final_spec.axes)[0]));
    let summary =
        complete_seeds::<LadderSeeds>(&cell, &spec.seeds)?.ok_or_else(|| LadderError::RunDir {
            path: cell.clone(),
            reason: "the final runs are not all finished".into(),
        })?;
    let test_errors: Vec<f64> = summary
        .runs
        .iter()
        .map(|r: &RunSummary| r.test_error_percent)
        .collect();
    let validation_errors: Vec<f64> = summary
        .runs
        .iter()
        .map(|r| r.validation_error_percent.unwrap_or(f64::NAN))
        .collect();
    let (test_mean, test_std) = mean_std(&test_errors);
    let mut sorted = test_errors.clone();
    sorted.sort_by(f64::total_cmp);
    Ok(TuneReport {
        family: spec.family,
        preset: spec.preset.clone(),
        labeled_samples: spec.base.labeled_samples,
        validation_samples: spec.base.validation_samples,
        chosen: search.cells[search.chosen].settings.clone(),
        search,
        seeds: spec.seeds.clone(),
        test_errors,
        validation_errors,
        test_mean,
        test_std,
        test_median: quantile(&sorted, 0.5),
        test_quartiles: (quantile(&sorted, 0.25), quantile(&sorted, 0.75)),
    })
}

/// The state of the tune in `out` without training: the search's cells, then (once the search
/// is done) the final runs'.
pub fn status(out: &Path, claims: &ClaimSettings) -> Result<Vec<(String, CellState)>> {
    let _spec: TuneSpec = read_json(&out.join(TUNE_FILE))?;
    let mut states = Vec::new();
    let search = gather(&out.join(SEARCH_DIR), claims)?;
    for (name, s) in search.cells {
        states.push((format!("{SEARCH_DIR}/{name}"), s));
    }
    let final_dir = out.join(FINAL_DIR);
    if final_dir
        .join(crate::experiment::sweep::SWEEP_FILE)
        .exists()
    {
        for (name, s) in gather(&final_dir, claims)?.cells {
            states.push((format!("{FINAL_DIR}/{name}"), s));
        }
    }
    Ok(states)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::spec::PerLayer;

    #[test]
    fn quantiles_interpolate_between_order_statistics() {
        let v = [1.0, 2.0, 4.0, 8.0, 16.0];
        assert_eq!(quantile(&v, 0.5), 4.0);
        assert_eq!(quantile(&v, 0.25), 2.0);
        assert_eq!(quantile(&v, 0.75), 8.0);
        // Four values: the median halfway between the middle two, the quartiles at 3/4 and
        // 9/4 of the way (numpy.percentile's default).
        let w = [1.0, 2.0, 3.0, 10.0];
        assert_eq!(quantile(&w, 0.5), 2.5);
        assert_eq!(quantile(&w, 0.25), 1.75);
        assert_eq!(quantile(&w, 0.75), 4.75);
        assert!(quantile(&[], 0.5).is_nan());
    }

    #[test]
    fn families_follow_the_presets() {
        let family = |p: &str| Family::of(&TrainConfig::preset(p).unwrap());
        assert_eq!(family("mnist-100-full"), Family::Ladder);
        assert_eq!(family("mnist-100-baseline"), Family::Supervised);
        assert_eq!(family("mnist-100-pi"), Family::Pi);
        assert_eq!(family("mnist-100-mean-teacher"), Family::MeanTeacher);
        assert_eq!(family("mnist-100-vat"), Family::Vat);
        assert_eq!(family("mnist-100-vat-entmin"), Family::Vat);
        assert_eq!(family("mnist-100-lvan"), Family::Lvan);
    }

    /// Every built-in space has the same budget, and each of its cells is a valid
    /// configuration of its method that differs from the base only in the space's fields.
    #[test]
    fn every_space_has_the_same_budget_and_valid_cells() {
        use crate::experiment::sweep::apply_settings;
        for preset in [
            "mnist-100-full",
            "mnist-100-baseline",
            "mnist-100-pi",
            "mnist-100-mean-teacher",
            "mnist-100-vat",
        ] {
            let base = TrainConfig::preset(preset).unwrap();
            let family = Family::of(&base);
            let axes = search_space(family).unwrap();
            let grid = cells(&axes);
            assert_eq!(grid.len(), DEFAULT_BUDGET, "{preset}");
            for settings in &grid {
                let c = apply_settings(&base, settings).unwrap();
                assert_eq!(Family::of(&c), family, "{preset} {settings:?}");
                if let Some((_, v)) = settings.iter().find(|(k, _)| k == NOISE) {
                    let v: f64 = v.parse().unwrap();
                    assert_eq!(c.super_noise_std, v);
                    assert_eq!(c.f_local_noise_std.value(), &PerLayer::All(v));
                }
            }
        }
        assert!(search_space(Family::Lvan).is_err());
    }

    #[test]
    fn a_space_over_the_budget_or_without_validation_is_refused() {
        let base = TrainConfig {
            validation_samples: 100,
            ..TrainConfig::preset("mnist-100-vat").unwrap()
        };
        let spec = TuneSpec {
            family: Family::Vat,
            preset: None,
            axes: search_space(Family::Vat).unwrap(),
            budget: 11,
            select_seeds: vec![1],
            seeds: vec![1, 2],
            base: base.clone(),
        };
        let e = spec.validate().unwrap_err().to_string();
        assert!(e.contains("12 cells, over the budget of 11"), "{e}");
        let e = TuneSpec {
            budget: 12,
            base: TrainConfig {
                validation_samples: 0,
                ..base
            },
            ..spec
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(e.contains("validation"), "{e}");
    }
}
