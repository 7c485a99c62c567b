//! Many processes on one multi-seed run or sweep: each trains its deterministic share of the
//! units (one seed of one cell), claiming each unit before it trains it
//! ([`crate::experiment::claim`]), so that a finished unit is skipped, a unit whose task was
//! killed is continued exactly from its checkpoint by the next task that comes to it, and no
//! two tasks ever train one unit.
//!
//! A multi-seed directory (a `train --seeds` run, or a sweep's cell) holds the unit directories
//! `seed-S` and, once every seed has finished, the seeds' `summary.json`, which whichever
//! process sees them all finished writes.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::data::{DataRecord, RecordedData};
use crate::error::{LadderError, Result};
use crate::experiment::claim::{self, ClaimSettings, Claimed, Liveness};
use crate::experiment::run::{
    CHECKPOINT_FILE, CONFIG_FILE, DATA_FILE, METRICS_FILE, RunOptions, RunSummary, SEEDS_FILE,
    SUMMARY_FILE, SeedsSummary, check_data_record, json_text, read_json, train_in,
    write_json_shared, write_ladder_config,
};
use crate::train::TrainConfig;
use crate::train::checkpoint::create_once;

/// Which share of the units a process trains: those whose index `k` in the run's order has
/// `k mod count = index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// Every unit: one process.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// `I/N` (0 ≤ I < N), or `auto` for the Slurm array task this process is
    /// ([`Shard::from_slurm`]).
    pub fn parse(s: &str, env: impl Fn(&str) -> Option<String>) -> Result<Shard> {
        if s == "auto" {
            return Shard::from_slurm(env);
        }
        let bad = || {
            LadderError::Setting(format!(
                "--shard {s}: expected I/N with 0 ≤ I < N (e.g. 0/4), or auto under a Slurm job \
                 array"
            ))
        };
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// The share of this Slurm array task: its place in the array (`SLURM_ARRAY_TASK_ID`
    /// counted from `SLURM_ARRAY_TASK_MIN` in steps of `SLURM_ARRAY_TASK_STEP`) out of
    /// `SLURM_ARRAY_TASK_COUNT`.
    pub fn from_slurm(env: impl Fn(&str) -> Option<String>) -> Result<Shard> {
        let var = |name: &str| -> Result<Option<usize>> {
            env(name)
                .map(|v| {
                    v.trim().parse::<usize>().map_err(|_| {
                        LadderError::Setting(format!("--shard auto: {name}={v} is not a number"))
                    })
                })
                .transpose()
        };
        let (Some(id), Some(count)) = (var("SLURM_ARRAY_TASK_ID")?, var("SLURM_ARRAY_TASK_COUNT")?)
        else {
            return Err(LadderError::Setting(
                "--shard auto reads SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT, and they are \
                 not set: run it as a task of a Slurm job array (sbatch --array=0-3 …), or give \
                 the share as --shard I/N"
                    .into(),
            ));
        };
        let min = var("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
        let step = var("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1).max(1);
        let place = id.checked_sub(min).map(|d| d / step);
        match place {
            Some(index) if index < count => Ok(Shard { index, count }),
            _ => Err(LadderError::Setting(format!(
                "--shard auto: array task {id} is not one of the {count} tasks from {min} in \
                 steps of {step} that Slurm reports"
            ))),
        }
    }

    /// Whether unit `k` is this share's.
    pub fn takes(&self, k: usize) -> bool {
        k % self.count == self.index
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// How a process takes part in a run that others may share.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Share {
    pub shard: Shard,
    /// The process joins a directory that other tasks share (`--shard` was given, even
    /// `0/1`), rather than owning it as one process does.
    pub joins: bool,
    pub claims: ClaimSettings,
}

impl Share {
    /// One process that owns the directory and trains everything, with the default claim
    /// timeout.
    pub fn whole() -> Share {
        Share {
            shard: Shard::WHOLE,
            joins: false,
            claims: ClaimSettings::default(),
        }
    }
}

/// Where one unit (one seed's run) stands.
#[derive(Debug, Clone, PartialEq)]
pub enum UnitState {
    Done,
    /// A live claim: who holds it.
    Running(String),
    /// Its last holder stopped with this error.
    Failed(String),
    /// Started and not finished (its task was stopped or killed): the next task continues it.
    Unfinished,
    Missing,
}

impl UnitState {
    /// A word for tables: done, running, failed, unfinished, missing.
    pub fn word(&self) -> &'static str {
        match self {
            UnitState::Done => "done",
            UnitState::Running(_) => "running",
            UnitState::Failed(_) => "failed",
            UnitState::Unfinished => "unfinished",
            UnitState::Missing => "missing",
        }
    }

    /// The word with the holder or error where there is one.
    pub fn describe(&self) -> String {
        match self {
            UnitState::Running(who) => format!("running on {who}"),
            UnitState::Failed(why) => format!("failed: {why}"),
            other => other.word().into(),
        }
    }
}

/// The directory of seed `seed`'s run in the multi-seed directory `dir`.
pub fn seed_dir(dir: &Path, seed: u64) -> std::path::PathBuf {
    dir.join(format!("seed-{seed}"))
}

/// The state of the run in `dir`, its claim judged with `claims`.
pub fn unit_state(dir: &Path, claims: &ClaimSettings) -> Result<UnitState> {
    if dir.join(SUMMARY_FILE).exists() {
        return Ok(UnitState::Done);
    }
    let now = claim::now_ms();
    if let Some((_, record)) = claim::current(dir)? {
        match record.liveness(claims, now) {
            Liveness::Live => return Ok(UnitState::Running(record.describe(now))),
            Liveness::Released => {
                if let Some(why) = record.failure {
                    return Ok(UnitState::Failed(why));
                }
            }
            Liveness::Dead | Liveness::Stale { .. } => {}
        }
        return Ok(UnitState::Unfinished);
    }
    if [METRICS_FILE, CHECKPOINT_FILE, CONFIG_FILE]
        .iter()
        .any(|f| dir.join(f).exists())
    {
        return Ok(UnitState::Unfinished);
    }
    Ok(UnitState::Missing)
}

/// What happened to a unit this process came to.
pub enum UnitOutcome<S = RunSummary> {
    /// Trained (or continued) to its end here.
    Trained(Box<S>),
    /// Already finished.
    Done,
    /// Another process holds it.
    Busy(String),
}

/// A kind of run whose seeds processes can share: how the multi-seed directory records its
/// configuration and how one seed trains in its own directory.
pub trait SeedRuns {
    type Summary: Serialize + DeserializeOwned;
    /// Writes the multi-seed directory's configuration file, or checks that the one there is
    /// this run's.
    fn join_config(&self, dir: &Path) -> Result<()>;
    /// Trains seed `seed` in `unit` to its end: continued from its saved state with `resume`,
    /// from the start otherwise; `note` hears its progress.
    fn train_seed(
        &self,
        seed: u64,
        unit: &Path,
        resume: bool,
        note: &mut dyn FnMut(&str),
    ) -> Result<Self::Summary>;
    /// The test error, percent, that the multi-seed summary averages.
    fn test_error(summary: &Self::Summary) -> f64;
}

/// The Ladder's (and its baselines' and comparison methods') runs of one configuration.
pub struct LadderSeeds<'a> {
    pub config: &'a TrainConfig,
    pub data: &'a RecordedData,
    pub opts: &'a RunOptions,
}

impl SeedRuns for LadderSeeds<'_> {
    type Summary = RunSummary;

    fn join_config(&self, dir: &Path) -> Result<()> {
        let path = dir.join(CONFIG_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let recorded: TrainConfig =
                    toml::from_str(&text).map_err(|e| LadderError::Format {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                check_same_config(dir, recorded == *self.config)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                write_ladder_config(dir, self.config, self.opts)
            }
            Err(e) => Err(LadderError::io(path, e)),
        }
    }

    fn train_seed(
        &self,
        seed: u64,
        unit: &Path,
        resume: bool,
        _note: &mut dyn FnMut(&str),
    ) -> Result<RunSummary> {
        let opts = RunOptions {
            resume,
            ..self.opts.clone()
        };
        let c = TrainConfig {
            seed,
            ..self.config.clone()
        };
        train_in(&c, self.data, unit, &opts)
    }

    fn test_error(summary: &RunSummary) -> f64 {
        summary.test_error_percent
    }
}

/// The error for a multi-seed directory that holds another configuration's run.
pub(crate) fn check_same_config(dir: &Path, same: bool) -> Result<()> {
    if same {
        return Ok(());
    }
    Err(LadderError::RunDir {
        path: dir.into(),
        reason: "holds a run of another configuration than this command's".into(),
    })
}

/// Writes the files of the multi-seed directory `dir` that describe the whole run (its data
/// record, configuration and seeds), or checks that the ones there are this run's. Every
/// process of a shared run calls it; the first one's files stay.
pub fn join_seeds_dir(
    runs: &impl SeedRuns,
    dir: &Path,
    seeds: &[u64],
    record: &DataRecord,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| LadderError::io(dir, e))?;
    if create_once(&dir.join(DATA_FILE), json_text(record).as_bytes())?.is_some() {
        check_data_record(dir, record)?;
    }
    let seeds_path = dir.join(SEEDS_FILE);
    if create_once(&seeds_path, json_text(&seeds).as_bytes())?.is_some() {
        let recorded: Vec<u64> = read_json(&seeds_path)?;
        if recorded != seeds {
            return Err(LadderError::RunDir {
                path: dir.into(),
                reason: format!(
                    "holds a run of seeds {recorded:?}, not of this command's {seeds:?}"
                ),
            });
        }
    }
    runs.join_config(dir)
}

/// The multi-seed directory's files [`join_seeds_dir`] writes, removed before a forced start.
pub const SEEDS_DIR_FILES: [&str; 4] = [SUMMARY_FILE, CONFIG_FILE, SEEDS_FILE, DATA_FILE];

/// What a process of a shared multi-seed run finds once its share is trained.
pub enum SeedsOutcome<S = RunSummary> {
    /// Every seed has finished: the run's summary.
    Done(SeedsSummary<S>),
    /// Not yet: each seed's state.
    Open(Vec<(u64, UnitState)>),
}

/// Trains `share.shard`'s seeds of the multi-seed run `runs` in `out`, which other processes
/// share: each seed is claimed, skipped when finished or held, continued when an earlier task
/// left it unfinished. `note` hears of each seed started and skipped. `force` is refused: one
/// task would replace the runs the others are training.
pub fn train_seeds_shared<R: SeedRuns>(
    runs: &R,
    seeds: &[u64],
    record: &DataRecord,
    out: &Path,
    force: bool,
    share: &Share,
    note: &mut dyn FnMut(&str),
) -> Result<SeedsOutcome<R::Summary>> {
    if seeds.is_empty() {
        return Err(LadderError::Setting("no seeds given".into()));
    }
    if force {
        return Err(LadderError::Setting(
            "--force cannot be given with --shard: one task would replace the runs the others \
             are training; remove the directory first to start again"
                .into(),
        ));
    }
    join_seeds_dir(runs, out, seeds, record)?;
    for (k, &seed) in seeds.iter().enumerate() {
        if !share.shard.takes(k) {
            continue;
        }
        note(&format!("seed {seed} ({}/{})", k + 1, seeds.len()));
        match train_unit(runs, seed, out, false, &share.claims, note) {
            Ok(UnitOutcome::Busy(who)) => {
                note(&format!("seed {seed}: another task has it ({who})"))
            }
            Ok(UnitOutcome::Trained(_)) => note(&format!("seed {seed}: trained")),
            Ok(UnitOutcome::Done) => note(&format!("seed {seed}: already done")),
            Err(LadderError::Interrupted(_)) => {
                return Err(LadderError::Interrupted(
                    "checkpoint saved; the same command continues this task's share".into(),
                ));
            }
            Err(e) => return Err(e),
        }
    }
    if let Some(summary) = complete_seeds::<R>(out, seeds)? {
        return Ok(SeedsOutcome::Done(summary));
    }
    let states = seeds
        .iter()
        .map(|&s| Ok((s, unit_state(&seed_dir(out, s), &share.claims)?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(SeedsOutcome::Open(states))
}

/// Trains seed `seed` of the multi-seed run `runs` in `dir` unless it is finished or another
/// process holds it: claimed first, continued from its saved state if an earlier task left one
/// (`force` starts it again instead). `note` hears of takeovers.
pub fn train_unit<R: SeedRuns>(
    runs: &R,
    seed: u64,
    dir: &Path,
    force: bool,
    claims: &ClaimSettings,
    note: &mut dyn FnMut(&str),
) -> Result<UnitOutcome<R::Summary>> {
    let unit = seed_dir(dir, seed);
    let finished = || !force && unit.join(SUMMARY_FILE).exists();
    if finished() {
        return Ok(UnitOutcome::Done);
    }
    let held = match claim::claim(&unit, claims)? {
        Claimed::Busy(record) => {
            return Ok(UnitOutcome::Busy(record.describe(claim::now_ms())));
        }
        Claimed::Held(c) => c,
    };
    if let Some(who) = &held.took_over {
        note(&format!("{}: taking over from {who}", unit.display()));
    }
    // Finished by another task between the look and the claim.
    if finished() {
        return Ok(UnitOutcome::Done);
    }
    match runs.train_seed(seed, &unit, !force, note) {
        Ok(summary) => Ok(UnitOutcome::Trained(Box::new(summary))),
        Err(e) => {
            if !matches!(e, LadderError::Interrupted(_)) {
                held.fail(&e.to_string());
            }
            Err(e)
        }
    }
}

/// The summary of the multi-seed run in `dir` once each of `seeds` has finished (written
/// there if it was not yet); `None` while one has not.
pub fn complete_seeds<R: SeedRuns>(
    dir: &Path,
    seeds: &[u64],
) -> Result<Option<SeedsSummary<R::Summary>>> {
    let path = dir.join(SUMMARY_FILE);
    if path.exists() {
        return read_json(&path).map(Some);
    }
    let mut runs = Vec::with_capacity(seeds.len());
    for &seed in seeds {
        let run = seed_dir(dir, seed).join(SUMMARY_FILE);
        if !run.exists() {
            return Ok(None);
        }
        runs.push(read_json::<R::Summary>(&run)?);
    }
    let summary = SeedsSummary::of(seeds, runs, R::test_error);
    write_json_shared(&path, &summary)?;
    Ok(Some(summary))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn shares_split_the_units_without_overlap() {
        let shards: Vec<Shard> = (0..4)
            .map(|i| Shard::parse(&format!("{i}/4"), env(&[])).unwrap())
            .collect();
        for k in 0..23 {
            assert_eq!(shards.iter().filter(|s| s.takes(k)).count(), 1, "unit {k}");
        }
        assert!(Shard::WHOLE.takes(7));
        assert_eq!(shards[2].to_string(), "2/4");
    }

    #[test]
    fn bad_shares_are_refused() {
        for bad in ["4/4", "1", "a/2", "0/0", "-1/3"] {
            let e = Shard::parse(bad, env(&[])).unwrap_err().to_string();
            assert!(e.contains(&format!("--shard {bad}")), "{e}");
        }
    }

    #[test]
    fn auto_reads_the_slurm_array_task() {
        let s = Shard::parse(
            "auto",
            env(&[
                ("SLURM_ARRAY_TASK_ID", "3"),
                ("SLURM_ARRAY_TASK_COUNT", "4"),
            ]),
        )
        .unwrap();
        assert_eq!(s, Shard { index: 3, count: 4 });
        // --array=1-7:2 runs tasks 1, 3, 5, 7.
        let s = Shard::from_slurm(env(&[
            ("SLURM_ARRAY_TASK_ID", "5"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_STEP", "2"),
        ]))
        .unwrap();
        assert_eq!(s, Shard { index: 2, count: 4 });
        let e = Shard::parse("auto", env(&[])).unwrap_err().to_string();
        assert!(e.contains("SLURM_ARRAY_TASK_ID"), "{e}");
        assert!(e.contains("not set"), "{e}");
        let e = Shard::from_slurm(env(&[
            ("SLURM_ARRAY_TASK_ID", "9"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.contains("array task 9"), "{e}");
    }

    #[test]
    fn a_unit_state_follows_its_files_and_claim() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("seed-1");
        let claims = ClaimSettings::default();
        assert_eq!(unit_state(&dir, &claims).unwrap(), UnitState::Missing);
        let Claimed::Held(c) = claim::claim(&dir, &claims).unwrap() else {
            panic!("free");
        };
        assert!(matches!(
            unit_state(&dir, &claims).unwrap(),
            UnitState::Running(_)
        ));
        c.fail("no space left on device");
        assert_eq!(
            unit_state(&dir, &claims).unwrap(),
            UnitState::Failed("no space left on device".into())
        );
        std::fs::write(dir.join(SUMMARY_FILE), "{}").unwrap();
        assert_eq!(unit_state(&dir, &claims).unwrap(), UnitState::Done);
    }
}
