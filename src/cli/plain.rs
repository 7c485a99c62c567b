//! `train-plain`: plain networks of thesis 004 (models A, B and C).

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use ladder::data::preprocess::preprocessed;
use ladder::experiment::plain_run::{PlainSeeds, train_plain_run, train_plain_seeds};
use ladder::experiment::run::{
    RunMethod, SEEDS_FILE, StartMode, fresh_dir, read_config, read_json,
};
use ladder::experiment::shard::{SeedsOutcome, train_seeds_shared};
use ladder::train::plain::{PlainConfig, PlainModel, PlainOptimizer};
use ladder::train::resolve::{flag_table, resolve};

use super::args::{
    DataArgs, DeviceArgs, SeedsArg, ShareArgs, given_flags, print_open_seeds, refuse_with_resume,
    say_share,
};

/// The configuration fields of a plain run; each overrides the config file.
#[serde_with::skip_serializing_none]
#[derive(Args, Serialize)]
pub struct PlainConfigArgs {
    /// A TOML file of plain-network fields (any subset) [default: none].
    #[arg(long)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// a (standard), b (adversarial, FGSM), c (noisy inputs), pgd (PGD adversarial training) or
    /// trades (TRADES) [default: a].
    #[arg(long, ignore_case = true)]
    pub model: Option<PlainModel>,
    /// Hidden widths below the output, '-'-separated, e.g. 800 or 500-300 [default: 800].
    #[arg(long = "layers", alias = "hidden-layers")]
    pub hidden_layers: Option<String>,
    /// ε: FGSM step of model B, noise std of model C, L∞ radius of pgd and trades [default:
    /// 0.25].
    #[arg(long)]
    pub epsilon: Option<f64>,
    /// α of model B's cost α·C(x) + (1 − α)·C(x_adv) [default: 0.5].
    #[arg(long)]
    pub alpha: Option<f64>,
    /// sgd (with growing momentum) or adam [default: sgd].
    #[arg(long)]
    pub optimizer: Option<PlainOptimizer>,
    /// Learning rate [default: 0.01].
    #[arg(long)]
    pub lr: Option<f64>,
    /// SGD's momentum at the first epoch [default: 0.5].
    #[arg(long)]
    pub momentum_start: Option<f64>,
    /// SGD's momentum from --momentum-saturate on [default: 0.99].
    #[arg(long)]
    pub momentum_final: Option<f64>,
    /// Epoch at which the momentum reaches its final value [default: 10].
    #[arg(long)]
    pub momentum_saturate: Option<usize>,
    /// Examples per step [default: 200].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Most passes over the training set (early stopping may end sooner) [default: 1500].
    #[arg(long = "epochs", aliases = ["max-epochs", "num-epochs"])]
    pub max_epochs: Option<usize>,
    /// Stop after this many epochs without a better validation error [default: 100].
    #[arg(long)]
    pub patience: Option<usize>,
    /// Training examples held out for validation (early stopping) [default: 1000].
    #[arg(long, alias = "valid-set-size")]
    pub validation_samples: Option<usize>,
    /// Training examples, balanced over classes (0 = all not held out) [default: 0].
    #[arg(long)]
    pub labeled_samples: Option<usize>,
    /// Non-zero initial weights per hidden unit (0 = dense) [default: 15].
    #[arg(long)]
    pub sparse_init: Option<usize>,
    /// The seed of initialisation, split, data order and noise [default: 1].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Classes; labels must lie in 0..N [default: 10].
    #[arg(long)]
    pub num_classes: Option<usize>,
    /// Convert colour images to grey first (grey CIFAR-10 of 004) [default: false].
    #[arg(long)]
    pub grey: Option<bool>,
    /// PGD steps of the inner maximisation of pgd and trades [default: 10].
    #[arg(long)]
    pub attack_steps: Option<usize>,
    /// Their step size [default: 2.5 ε / --attack-steps].
    #[arg(long)]
    pub attack_step_size: Option<f64>,
    /// β of TRADES, the weight of its robustness term [default: 6].
    #[arg(long)]
    pub trades_beta: Option<f64>,
    /// Attack the model's predicted labels instead of the true ones (models b and pgd), against
    /// label leaking [default: false].
    #[arg(long)]
    pub attack_predicted: Option<bool>,
}

impl PlainConfigArgs {
    /// The configuration flags given, as written on the command line.
    pub fn given(&self) -> Vec<String> {
        given_flags(self, &[("config", self.config.is_some())])
    }

    /// Defaults, then the config file, then the flags.
    pub fn resolve(&self) -> Result<PlainConfig> {
        let c = resolve(
            &PlainConfig::default(),
            self.config.as_deref(),
            &flag_table(self),
        )?;
        c.validate()?;
        Ok(c)
    }
}

#[derive(Args)]
pub struct PlainCmd {
    #[command(flatten)]
    pub config: PlainConfigArgs,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub seeds: SeedsArg,
    /// Output directory [default: a fresh one under runs/].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the stopped run in this directory from its last epoch, on its recorded
    /// configuration, seeds and data; configuration and seed flags are refused with it, since
    /// the run would not honour them [default: start a new run].
    #[arg(
        long,
        value_name = "RUN_DIR",
        conflicts_with_all = ["out", "SeedsArg"]
    )]
    pub resume: Option<PathBuf>,
    /// Replace an existing run directory (checked settings first).
    #[arg(long, conflicts_with = "resume")]
    pub force: bool,
    /// No progress output.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub share: ShareArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
}

pub fn train_plain(cmd: PlainCmd) -> Result<()> {
    if cmd.share.shard.is_some() {
        return train_plain_shared(cmd);
    }
    refuse_with_resume(cmd.resume.as_deref(), &cmd.config.given())?;
    let dev = cmd.device.device()?;
    let (config, seeds, data, out, mode) = match &cmd.resume {
        Some(dir) => {
            let config: PlainConfig = read_config(dir, RunMethod::Plain)?;
            let seeds_path = dir.join(SEEDS_FILE);
            let seeds = match seeds_path.exists() {
                true => Some(read_json::<Vec<u64>>(&seeds_path)?),
                false => None,
            };
            let data = cmd.data.of_run(dir, config.num_classes)?;
            (config, seeds, data, dir.clone(), StartMode::Resume)
        }
        None => {
            let config = cmd.config.resolve()?;
            let seeds = cmd.seeds.list(cmd.config.seed.is_some())?;
            let data = cmd.data.load(config.num_classes)?;
            let out = cmd.out.clone().unwrap_or_else(|| {
                fresh_dir(
                    Path::new("runs"),
                    &format!("plain-{}", config.model.to_string().to_lowercase()),
                )
            });
            let mode = StartMode::Fresh { force: cmd.force };
            (config, seeds, data, out, mode)
        }
    };
    if !cmd.quiet {
        eprintln!("writing to {}", out.display());
    }
    let quiet = cmd.quiet;
    let mut report = |line: &str| {
        if !quiet {
            eprintln!("{line}");
        }
    };
    match seeds {
        Some(seeds) => {
            let s = train_plain_seeds(&config, &seeds, &data, &out, mode, &dev, &mut report)?;
            println!(
                "model {}: test error over {} seeds: {:.2} ± {:.2} %",
                config.model,
                s.seeds.len(),
                s.mean,
                s.std
            );
        }
        None => {
            let s = train_plain_run(&config, &data, &out, mode, &dev, &mut report)?;
            println!(
                "model {}: test error {:.2} % (best validation error {:.2} % at epoch {} of {}, seed {})",
                s.model,
                s.test_error_percent,
                s.validation_error_percent,
                s.best_epoch,
                s.epochs_run,
                s.seed
            );
        }
    }
    println!("run directory: {}", out.display());
    Ok(())
}

/// `train-plain --seeds … --shard`: this task's seeds of a multi-seed plain run that other
/// tasks share.
fn train_plain_shared(cmd: PlainCmd) -> Result<()> {
    let (seeds, out, share) = cmd.share.seeds_run(
        cmd.resume.as_deref(),
        &cmd.seeds,
        cmd.config.seed.is_some(),
        cmd.out.as_deref(),
    )?;
    let dev = cmd.device.device()?;
    let config = cmd.config.resolve()?;
    let data = cmd.data.load(config.num_classes)?;
    let sets = preprocessed(Cow::Borrowed(&data.sets), &config.preprocessing())?;
    let runs = PlainSeeds::new(&config, &seeds, &sets, &data.record, &dev)?;
    say_share(&share, &out, cmd.quiet);
    let quiet = cmd.quiet;
    let mut note = |m: &str| {
        if !quiet {
            eprintln!("{m}");
        }
    };
    let record = &data.record;
    match train_seeds_shared(&runs, &seeds, record, &out, cmd.force, &share, &mut note)? {
        SeedsOutcome::Done(s) => println!(
            "model {}: test error over {} seeds: {:.2} ± {:.2} %",
            config.model,
            s.seeds.len(),
            s.mean,
            s.std
        ),
        SeedsOutcome::Open(states) => print_open_seeds(&states, &share),
    }
    println!("run directory: {}", out.display());
    Ok(())
}
