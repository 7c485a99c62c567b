//! Flags shared by several subcommands: the data, how a run writes, the device.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;
use serde::Serialize;

use ladder::data::{CsvOptions, DataRequest, RecordedData, fetch};
use ladder::device::{DeviceKind, training_device};
use ladder::experiment::claim::ClaimSettings;
use ladder::experiment::run::run_data;
use ladder::experiment::shard::{Shard, Share, UnitState};
use ladder::experiment::{RunOptions, parse_seeds};
use ladder::train::resolve::flag_table;

#[derive(Args, Clone)]
pub struct DataArgs {
    /// Directory with train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz],
    /// t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]; or a CIFAR-10 binary
    /// directory (data_batch_1.bin … data_batch_5.bin, test_batch.bin); or a CIFAR-100 binary
    /// directory (train.bin, test.bin; the fine labels); or image folders (train/<class>/*.png
    /// and test/<class>/*.png, classes in sorted order); or a .csv file of numeric features and
    /// an integer class column (standardised with the training part's statistics). Or the name
    /// of a dataset `ladder data fetch` cached (mnist, fashion-mnist, cifar10, cifar100). For a
    /// command that reads a run: a moved copy of the data the run recorded [default: the
    /// embedded MNIST-10k; for a run, its recorded data].
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The cache `--data NAME` reads [default: $XDG_CACHE_HOME/ladder or ~/.cache/ladder].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// CSV only: a separate test file [default: a seeded --test-fraction of --data's rows].
    #[arg(long)]
    pub test_data: Option<PathBuf>,
    /// CSV only: the share of rows held out as the test set when there is no --test-data
    /// [default: 0.2].
    #[arg(long)]
    pub test_fraction: Option<f64>,
    /// CSV only: 0-based column of the class [default: the last].
    #[arg(long)]
    pub label_column: Option<usize>,
    /// CSV only: the smallest class value (1 for Covertype's classes 1–7) [default: 0].
    #[arg(long)]
    pub first_label: Option<i64>,
    /// CSV only: the first line is a header.
    #[arg(long)]
    pub csv_header: bool,
}

impl DataArgs {
    /// `--data`, a fetched dataset's name resolved to its cached directory.
    fn data_path(&self) -> Result<Option<PathBuf>> {
        let Some(path) = &self.data else {
            return Ok(None);
        };
        let name = path.to_string_lossy();
        if path.exists() || name.contains(['/', '.']) {
            return Ok(Some(path.clone()));
        }
        let Ok(set) = fetch::dataset(&name) else {
            return Ok(Some(path.clone()));
        };
        let cached = fetch::data_path(&set, &fetch::cache_dir(self.data_dir.as_deref())?);
        if !cached.exists() {
            bail!(
                "--data {name}: the dataset is not in the cache ({}); fetch it with `ladder data \
                 fetch {name}`",
                cached.display()
            );
        }
        Ok(Some(cached))
    }

    pub fn request(&self) -> Result<DataRequest> {
        Ok(DataRequest {
            path: self.data_path()?,
            csv: CsvOptions {
                test: self.test_data.clone(),
                test_fraction: self.test_fraction,
                label_column: self.label_column,
                first_label: self.first_label,
                header: self.csv_header.then_some(true),
            },
        })
    }

    /// The data these flags name, with its record.
    pub fn load(&self, num_classes: usize) -> Result<RecordedData> {
        Ok(self.request()?.source()?.load(num_classes)?)
    }

    /// The data the run (or multi-seed run, sweep, grid) in `dir` recorded, or the moved copy
    /// these flags name.
    pub fn of_run(&self, dir: &Path, num_classes: usize) -> Result<RecordedData> {
        Ok(run_data(dir, &self.request()?, num_classes)?)
    }
}

/// Seeds: one run per seed, reported as mean ± std.
#[derive(Args)]
pub struct SeedsArg {
    /// Seeds, run one after another with mean ± std: a ','-separated list with ranges (`1-10`,
    /// `1,2,5`) [default: --seed's one run].
    #[arg(long)]
    pub seeds: Option<String>,
}

/// Sharing a multi-seed run or a sweep among several processes (the tasks of a Slurm job
/// array) through one directory on a shared file system.
#[derive(Args)]
pub struct ShareArgs {
    /// Train only this process's share of the units (one seed of one cell each): `I/N` for
    /// process I of N (from 0), or `auto` for the task of a Slurm job array
    /// (SLURM_ARRAY_TASK_ID of SLURM_ARRAY_TASK_COUNT). Every task runs the same command on one
    /// directory: a finished unit is skipped, a killed task's unit continued from its
    /// checkpoint, a unit another task holds left to it [default: one process trains all].
    #[arg(long, value_name = "I/N|auto")]
    pub shard: Option<String>,
    /// Seconds after which the claim of a task that stopped renewing it (killed on another
    /// machine) is taken over; a dead task on this machine is taken over at once.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub claim_timeout: u64,
}

impl ShareArgs {
    pub fn claims(&self) -> Result<ClaimSettings> {
        Ok(ClaimSettings::with_timeout(Duration::from_secs(
            self.claim_timeout,
        ))?)
    }

    /// The seeds, directory and share of a task of a shared multi-seed run (`--shard` with
    /// `--seeds` and `--out`, without `--resume`).
    pub fn seeds_run(
        &self,
        resume: Option<&Path>,
        seeds: &SeedsArg,
        seed_given: bool,
        out: Option<&Path>,
    ) -> Result<(Vec<u64>, PathBuf, Share)> {
        if resume.is_some() {
            bail!("--shard joins the run in --out whatever its state: give --out, not --resume");
        }
        let Some(seeds) = seeds.list(seed_given)? else {
            bail!("--shard shares the seeds of a multi-seed run among tasks: give --seeds");
        };
        let Some(out) = out else {
            bail!("--shard needs --out: every task of the run must write the same directory");
        };
        let share = self.share()?.expect("--shard was given");
        Ok((seeds, out.to_path_buf(), share))
    }

    /// The share of a task of a shared directory (sweep, tune) named `what`: `None` without
    /// `--shard`; refused with `--resume` (a task joins `--out` whatever its state) or without
    /// `--out`.
    pub fn task(&self, what: &str, resume: bool, out: bool) -> Result<Option<Share>> {
        let share = self.share()?;
        if share.is_some() && resume {
            bail!("--shard joins the {what} in --out whatever its state: give --out, not --resume");
        }
        if share.is_some() && !out {
            bail!("--shard needs --out: every task of the {what} must write the same directory");
        }
        Ok(share)
    }

    /// This process's share of the directory `out`: the task's (announced unless `quiet`), or
    /// all of it.
    pub fn share_or_whole(&self, task: Option<Share>, out: &Path, quiet: bool) -> Result<Share> {
        Ok(match task {
            Some(s) => {
                say_share(&s, out, quiet);
                s
            }
            None => Share {
                claims: self.claims()?,
                ..Share::whole()
            },
        })
    }

    /// The share asked for; `None` without `--shard`.
    pub fn share(&self) -> Result<Option<Share>> {
        let Some(s) = &self.shard else {
            return Ok(None);
        };
        Ok(Some(Share {
            shard: Shard::parse(s, |k| std::env::var(k).ok())?,
            joins: true,
            claims: self.claims()?,
        }))
    }
}

/// The record `file` of the directory `dir` a command resumes, `what` naming its kind.
pub fn read_resumed<T: serde::de::DeserializeOwned>(
    dir: &Path,
    file: &str,
    what: &str,
) -> Result<T> {
    let path = dir.join(file);
    if !path.exists() {
        bail!(
            "{} has no {file}: not a {what} directory to resume",
            dir.display()
        );
    }
    Ok(ladder::experiment::run::read_json(&path)?)
}

/// Tells a shared run's task which share it trains and how claims time out.
pub fn say_share(share: &Share, out: &Path, quiet: bool) {
    if !quiet {
        eprintln!(
            "shard {} of {} (claims of stopped tasks are taken over after {} s)",
            share.shard,
            out.display(),
            share.claims.stale_after.as_secs()
        );
    }
}

/// Each seed's state of a shared multi-seed run that is not complete when this task's share
/// is done.
pub fn print_open_seeds(states: &[(u64, UnitState)], share: &Share) {
    for (seed, state) in states {
        println!("seed {seed}: {}", state.describe());
    }
    println!(
        "shard {}: its share is done; the run is complete once every task's is",
        share.shard
    );
}

/// Where a command computes.
#[derive(Args, Clone)]
pub struct DeviceArgs {
    /// cpu (Flex), cuda or wgpu (when built with those features); `--backend` is the same
    /// flag.
    #[arg(long, alias = "backend", default_value_t = DeviceKind::Cpu)]
    pub device: DeviceKind,
}

impl DeviceArgs {
    pub fn device(&self) -> Result<burn::prelude::Device> {
        Ok(training_device(self.device)?)
    }
}

/// How a training run (or each run of a multi-seed run, sweep or grid) writes.
#[derive(Args)]
pub struct RunArgs {
    /// Replace an existing run, sweep or grid directory (checked settings first).
    #[arg(long)]
    pub force: bool,
    /// No progress output.
    #[arg(long, short)]
    pub quiet: bool,
    /// Besides the checkpoint after every epoch, save one within an epoch when this many
    /// minutes have passed since the last (0 = only at epoch ends).
    #[arg(long, default_value_t = 10.0)]
    pub checkpoint_minutes: f64,
    #[command(flatten)]
    pub device: DeviceArgs,
}

impl RunArgs {
    pub fn options(&self, resume: bool, preset: Option<String>) -> Result<RunOptions> {
        let minutes = self.checkpoint_minutes;
        if !(minutes.is_finite() && minutes >= 0.0) {
            bail!("--checkpoint-minutes must be a number of minutes ≥ 0");
        }
        Ok(RunOptions {
            force: self.force,
            resume,
            quiet: self.quiet,
            device: self.device.device()?,
            preset,
            checkpoint_every: (minutes > 0.0).then(|| Duration::from_secs_f64(minutes * 60.0)),
        })
    }
}

impl SeedsArg {
    /// The seed list, if given; `--seed` (`seed_given`) with it is an error, as one of the
    /// two would be ignored.
    pub fn list(&self, seed_given: bool) -> Result<Option<Vec<u64>>> {
        if seed_given && self.seeds.is_some() {
            bail!("give --seed for one run or --seeds for several, not both");
        }
        Ok(self.seeds.as_deref().map(parse_seeds).transpose()?)
    }
}

/// The fields of `args` given on the command line, as flags the way they are written
/// (`--layers` for the field `hidden_layers`): those its serialisation keeps (set fields) and
/// those it skips, listed in `skipped` as (field, given).
pub fn given_flags<A: Args + Serialize>(args: &A, skipped: &[(&str, bool)]) -> Vec<String> {
    let command = A::augment_args(clap::Command::new("flags"));
    let flag = |id: &str| {
        let arg = command.get_arguments().find(|a| a.get_id() == id);
        let long = arg.and_then(|a| a.get_long()).unwrap_or(id);
        format!("--{long}")
    };
    let skipped = skipped
        .iter()
        .filter(|(_, given)| *given)
        .map(|(id, _)| *id);
    let set = flag_table(args);
    skipped
        .chain(set.keys().map(String::as_str))
        .map(flag)
        .collect()
}

/// `--resume` continues a run on its recorded configuration: configuration flags beside it
/// would be silently ignored, so they are refused, by name.
pub fn refuse_with_resume(resume: Option<&Path>, given: &[String]) -> Result<()> {
    let Some(dir) = resume.filter(|_| !given.is_empty()) else {
        return Ok(());
    };
    bail!(
        "--resume continues the run in {} on its recorded configuration; {} cannot change it \
         (leave {} out, or start a new run with --out to train with other settings)",
        dir.display(),
        given.join(", "),
        if given.len() == 1 { "it" } else { "them" }
    )
}

/// A list of numbers, comma-separated: `0,0.1,0.2`.
pub fn parse_levels(s: &str, what: &str) -> Result<Vec<f64>> {
    let levels = s
        .split(',')
        .map(|v| {
            v.trim()
                .parse::<f64>()
                .map_err(|_| anyhow::anyhow!("{what}: '{v}' is not a number"))
        })
        .collect::<Result<Vec<f64>>>()?;
    if levels.is_empty() {
        bail!("{what}: give at least one level");
    }
    Ok(levels)
}
