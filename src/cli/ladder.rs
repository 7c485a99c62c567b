//! `train`, `bench`, `sweep` and `presets`: Ladder networks and their baselines (001, 000).

use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};
use clap::Args;
use serde::Serialize;

use ladder::data::TrainTest;
use ladder::experiment::bench::{BenchReport, Scope, bench};
use ladder::experiment::run::{RunMethod, SEEDS_FILE, fresh_dir, read_config, read_json};
use ladder::experiment::shard::{LadderSeeds, SeedsOutcome, UnitState, train_seeds_shared};
use ladder::experiment::sweep::{
    CellState, Gathered, GridAxis, METHOD_AXIS, MethodBase, SWEEP_FILE, SweepSpec, gather, sweep,
};
use ladder::experiment::{parse_seeds, train_run, train_seeds};
use ladder::model::Activation;
use ladder::noise::AdvKind;
use ladder::train::TrainConfig;
use ladder::train::config::Method;
use ladder::train::config::PRESET_TABLE;
use ladder::train::resolve::{flag_table, resolve};

use super::args::{
    DataArgs, DeviceArgs, RunArgs, SeedsArg, ShareArgs, given_flags, print_open_seeds,
    read_resumed, refuse_with_resume, say_share,
};

/// The configuration fields of a Ladder run, named as in the authors' `run.py` (whose own
/// names `--num-epochs` and `--valid-set-size` are accepted too). Each overrides the preset and
/// the config file; the defaults are the 100-label full Ladder's.
#[serde_with::skip_serializing_none]
#[derive(Args, Clone, Default, Serialize)]
pub struct ConfigArgs {
    /// Start from one of the paper's settings (see `ladder presets`) [default: the 100-label
    /// full Ladder].
    #[arg(long)]
    #[serde(skip)]
    pub preset: Option<String>,
    /// A TOML file of configuration fields (any subset); they override the preset [default:
    /// none].
    #[arg(long)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Train the preset's network (and data, budget, seed) with another method: ladder (the
    /// preset as it is), vat, vat-entmin, lvan, lvan-lw, pi or mean-teacher; the config file
    /// and flags override its settings [default: ladder].
    #[arg(long)]
    #[serde(skip)]
    pub method: Option<Method>,
    /// Encoder layers, '-'-separated: widths or convv/convf/convs:F:K:SY:SX, maxpool:PY:PX,
    /// globalmeanpool:0, fc:N [default: 1000-500-250-250-250-10].
    #[arg(long)]
    pub encoder_layers: Option<String>,
    /// Combinator g per layer, input first, ','-separated (the authors' '-' works too), or one
    /// for all: gauss, g1, g2, g3, g4, linear, 0 [default: gauss].
    #[arg(long)]
    pub decoder_spec: Option<String>,
    /// λ per layer, input first, ','-separated, or one for all [default:
    /// 1000,10,0.1,0.1,0.1,0.1,0.1].
    #[arg(long)]
    pub denoising_cost_x: Option<String>,
    /// Labelled examples, balanced across classes (0 = all) [default: 100].
    #[arg(long)]
    pub labeled_samples: Option<usize>,
    /// Unlabelled examples [default: every training example].
    #[arg(long)]
    pub unlabeled_samples: Option<usize>,
    /// Training examples held out for validation [default: 0].
    #[arg(long, alias = "valid-set-size")]
    pub validation_samples: Option<usize>,
    /// The seed of initialisation, split, data order and noise [default: 1].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Passes over the unlabelled set [default: 150].
    #[arg(long, alias = "num-epochs")]
    pub epochs: Option<usize>,
    /// Adam's learning rate [default: 0.002].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Fraction of the epochs after which the learning rate decays linearly to 0 [default:
    /// 0.67].
    #[arg(long)]
    pub lrate_decay: Option<f64>,
    /// Labelled and unlabelled examples per step (each) [default: 100].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Std of the input corruption [default: 0.3].
    #[arg(long)]
    pub super_noise_std: Option<f64>,
    /// Std of the per-layer corruption: one value or one per encoder layer, ','-separated
    /// [default: 0.3].
    #[arg(long)]
    pub f_local_noise_std: Option<String>,
    /// Learn a scale γ at the softmax top [default: true].
    #[arg(long)]
    pub top_c: Option<bool>,
    /// Hidden activation [default: relu].
    #[arg(long)]
    pub act: Option<Activation>,
    /// Classes; labels must lie in 0..N [default: 10].
    #[arg(long)]
    pub num_classes: Option<usize>,
    /// Evaluate every this many epochs (and after the last) [default: 1].
    #[arg(long)]
    pub eval_every: Option<usize>,
    /// Training examples whose moments normalise per-epoch evaluations (0 = all; the final
    /// result always uses all) [default: 2000].
    #[arg(long)]
    pub monitor_moments: Option<usize>,
    /// Adversarial noise on labelled examples (000 eq. 56–59) [default: sign].
    #[arg(long)]
    pub adv_sup_kind: Option<AdvKind>,
    /// τ of the labelled examples' adversarial noise (0 = off) [default: 0].
    #[arg(long)]
    pub adv_sup_tau: Option<f64>,
    /// Keep the Gaussian input noise on labelled examples too (x + u + n; false: x + u)
    /// [default: true].
    #[arg(long)]
    pub adv_sup_gaussian: Option<bool>,
    /// Adversarial noise on unlabelled examples, with argmax virtual labels [default: unit].
    #[arg(long)]
    pub adv_unsup_kind: Option<AdvKind>,
    /// τ of the unlabelled examples' adversarial noise (0 = off) [default: 0].
    #[arg(long)]
    pub adv_unsup_tau: Option<f64>,
    /// Keep the Gaussian input noise on unlabelled examples too [default: true].
    #[arg(long)]
    pub adv_unsup_gaussian: Option<bool>,
    /// Convert colour images to grey first [default: false].
    #[arg(long)]
    pub grey: Option<bool>,
    /// Global contrast normalisation to this L2 norm per example (55 for CIFAR-10; 0 = off)
    /// [default: 0].
    #[arg(long)]
    pub contrast_norm: Option<f64>,
    /// ZCA whitening fitted on the training data [default: false].
    #[arg(long)]
    pub zca: Option<bool>,
    /// ZCA regulariser added to the covariance's eigenvalues [default: 0.1].
    #[arg(long)]
    pub zca_bias: Option<f64>,
    /// Train on random SIDE×SIDE crops, test on the centre crop (0 = off) [default: 0].
    #[arg(long)]
    pub crop: Option<usize>,
    /// Random horizontal flips of the training images [default: false].
    #[arg(long)]
    pub flip: Option<bool>,
    /// ε of virtual adversarial training, the L2 radius of r_vadv per example (Miyato et al.
    /// 2018; 0 = off) [default: 0].
    #[arg(long)]
    pub vat_epsilon: Option<f64>,
    /// ξ of VAT's power iteration [default: 1e-6].
    #[arg(long)]
    pub vat_xi: Option<f64>,
    /// Power-iteration steps of VAT [default: 1].
    #[arg(long)]
    pub vat_iterations: Option<usize>,
    /// α, the weight of the virtual adversarial loss on unlabelled examples [default: 1].
    #[arg(long)]
    pub vat_weight: Option<f64>,
    /// Add the entropy of the unlabelled examples' predictions (VAT+EntMin) [default: false].
    #[arg(long)]
    pub entmin: Option<bool>,
    /// Virtual adversarial Ladder: ε per layer, input first, ','-separated, or one for all,
    /// of the virtual adversarial noise added to the unlabelled rows' Gaussian corruption
    /// (input only: LVAN; every layer below the top: LVAN-LW; 0 = off) [default: 0].
    #[arg(long)]
    pub lvan_epsilon: Option<String>,
    /// σ of the Gaussian noise on every layer of LVAN's power-iteration passes [default: 0.5].
    #[arg(long)]
    pub lvan_noise_std: Option<f64>,
    /// Π-model: w_max of the consistency cost between two noisy passes (needs
    /// --denoising-cost-x 0; 0 = off) [default: 0].
    #[arg(long)]
    pub consistency_weight: Option<f64>,
    /// Epochs over which the Π-model's weight ramps up along exp(−5(1 − T)²) [default: 80].
    #[arg(long)]
    pub consistency_rampup: Option<f64>,
    /// Mean Teacher: α of the teacher's moving average (needs --consistency-weight; 0 = the
    /// Π-model) [default: 0].
    #[arg(long)]
    pub mean_teacher_decay: Option<f64>,
}

impl ConfigArgs {
    /// The configuration flags given, as written on the command line.
    pub fn given(&self) -> Vec<String> {
        let skipped = [
            ("preset", self.preset.is_some()),
            ("config", self.config.is_some()),
            ("method", self.method.is_some()),
        ];
        given_flags(self, &skipped)
    }

    /// Preset, then config file, then explicit flags.
    pub fn resolve(&self) -> Result<TrainConfig> {
        self.resolve_with(self.method.unwrap_or(Method::Ladder))
    }

    /// Preset trained by `method`, then config file, then explicit flags.
    pub fn resolve_with(&self, method: Method) -> Result<TrainConfig> {
        let base = match &self.preset {
            Some(p) => TrainConfig::preset(p)?,
            None => TrainConfig::default(),
        };
        let base = method.apply(base);
        let c = resolve(&base, self.config.as_deref(), &flag_table(self))?;
        c.validate()?;
        Ok(c)
    }
}

#[derive(Args)]
pub struct TrainCmd {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub seeds: SeedsArg,
    /// Output directory [default: a fresh one under runs/].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the unfinished run (or multi-seed run) in this directory, on its recorded
    /// configuration, seeds and data; configuration and seed flags are refused with it, since
    /// the run would not honour them [default: start a new run].
    #[arg(
        long,
        value_name = "RUN_DIR",
        conflicts_with_all = ["out", "force", "SeedsArg"]
    )]
    pub resume: Option<PathBuf>,
    #[command(flatten)]
    pub share: ShareArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

pub fn train(cmd: TrainCmd) -> Result<()> {
    if cmd.share.shard.is_some() {
        return train_shared(cmd);
    }
    refuse_with_resume(cmd.resume.as_deref(), &cmd.config.given())?;
    let opts = cmd
        .run
        .options(cmd.resume.is_some(), cmd.config.preset.clone())?;
    // A resumed run takes its configuration, seed list and data from its own directory.
    let (config, seeds, out, data) = match &cmd.resume {
        Some(dir) => {
            let config: TrainConfig = read_config(dir, RunMethod::Ladder)?;
            let seeds_path = dir.join(SEEDS_FILE);
            let seeds = match seeds_path.exists() {
                true => Some(read_json::<Vec<u64>>(&seeds_path)?),
                false => None,
            };
            let data = cmd.data.of_run(dir, config.num_classes)?;
            (config, seeds, dir.clone(), data)
        }
        None => {
            let seeds = cmd.seeds.list(cmd.config.seed.is_some())?;
            let out = cmd.out.clone().unwrap_or_else(|| {
                let name = cmd.config.preset.clone().unwrap_or_else(|| "train".into());
                fresh_dir(Path::new("runs"), &name)
            });
            let config = cmd.config.resolve()?;
            let data = cmd.data.load(config.num_classes)?;
            (config, seeds, out, data)
        }
    };
    if !cmd.run.quiet {
        eprintln!("writing to {}", out.display());
    }
    match seeds {
        Some(seeds) => {
            let s = train_seeds(&config, &seeds, &data, &out, &opts)?;
            println!(
                "test error over {} seeds: {:.2} ± {:.2} %",
                s.seeds.len(),
                s.mean,
                s.std
            );
        }
        None => {
            let s = train_run(&config, data, Some(&out), &opts)?;
            println!(
                "test error: {:.2} % (seed {})",
                s.test_error_percent, s.seed
            );
        }
    }
    println!("run directory: {}", out.display());
    Ok(())
}

/// `train --seeds … --shard`: this task's seeds of a multi-seed run that other tasks share.
fn train_shared(cmd: TrainCmd) -> Result<()> {
    let (seeds, out, share) = cmd.share.seeds_run(
        cmd.resume.as_deref(),
        &cmd.seeds,
        cmd.config.seed.is_some(),
        cmd.out.as_deref(),
    )?;
    let opts = cmd.run.options(false, cmd.config.preset.clone())?;
    let config = cmd.config.resolve()?;
    let data = cmd.data.load(config.num_classes)?;
    say_share(&share, &out, cmd.run.quiet);
    let quiet = cmd.run.quiet;
    let runs = LadderSeeds {
        config: &config,
        data: &data,
        opts: &opts,
    };
    let record = &data.record;
    let outcome = train_seeds_shared(&runs, &seeds, record, &out, opts.force, &share, &mut |m| {
        if !quiet {
            eprintln!("{m}");
        }
    })?;
    match outcome {
        SeedsOutcome::Done(s) => println!(
            "test error over {} seeds: {:.2} ± {:.2} %",
            s.seeds.len(),
            s.mean,
            s.std
        ),
        SeedsOutcome::Open(states) => print_open_seeds(&states, &share),
    }
    println!("run directory: {}", out.display());
    Ok(())
}

#[derive(Args)]
pub struct BenchCmd {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// Untimed steps first.
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
    /// Steps per timed block.
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Timed blocks; the median is reported.
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    /// Time the steps only and report the peak memory of loading, preprocessing and training
    /// beside the data's own: no evaluations or checkpoints (three final evaluations of
    /// Conv-Large on CIFAR-10's 50,000 images take hours on a CPU).
    #[arg(long)]
    pub memory: bool,
    #[command(flatten)]
    pub device: DeviceArgs,
}

pub fn run_bench(cmd: BenchCmd) -> Result<()> {
    let config = cmd.config.resolve()?;
    let dev = cmd.device.device()?;
    let data = cmd.data.load(config.num_classes)?.sets;
    // Described before `bench` takes the data (and frees its images as loaded).
    let loaded = describe_loaded(&data);
    let input_dim = data.train.dim;
    let scope = match cmd.memory {
        true => Scope::Training,
        false => Scope::Everything,
    };
    let r = bench(
        &config,
        data,
        &dev,
        (cmd.warmup, cmd.steps, cmd.repeats),
        scope,
    )?;
    println!("encoder: {input_dim}-{}", config.encoder_layers);
    println!("denoising costs: {}", config.denoising_cost_x);
    println!("device: {}", cmd.device.device);
    println!("seed: {}", config.seed);
    println!(
        "batch: {} labelled + {} unlabelled",
        config.batch_size, config.batch_size
    );
    let blocks: Vec<String> = r.blocks.iter().map(|b| format!("{b:.0}")).collect();
    println!("blocks (examples/s): {}", blocks.join(" "));
    println!("median step: {:.2} ms", r.median_step_ms);
    println!(
        "batch assembly: {:.3} ms per step ({:.1} % of a step)",
        r.batch_ms,
        100.0 * r.batch_share()
    );
    print_epoch_costs(&r);
    println!("{loaded}");
    match r.training_peak_mib {
        Some(mib) => println!("peak memory after the timed steps: {mib:.0} MiB"),
        None => println!("peak memory after the timed steps: not reported by this system"),
    }
    println!("examples_per_second: {:.0}", r.examples_per_second);
    Ok(())
}

fn describe_loaded(data: &TrainTest) -> String {
    let mib = |bytes: usize| bytes as f64 / 1_048_576.0;
    format!(
        "data as loaded: {} + {} images, {:.1} MiB",
        data.train.len(),
        data.test.len(),
        mib(data.train.images.memory() + data.test.images.memory())
    )
}

fn print_epoch_costs(r: &BenchReport) {
    let Some(costs) = &r.epoch_costs else {
        println!("evaluation and checkpoints: not timed (--memory)");
        return;
    };
    let (monitored, full) = r.evaluation_shares(costs);
    println!(
        "evaluation: {:.3} s per epoch ({:.1} % of an epoch of {:.2} s); final, once: {:.3} s ({:.1} %)",
        costs.monitored_evaluation_seconds,
        100.0 * monitored,
        r.epoch_seconds,
        costs.full_evaluation_seconds,
        100.0 * full
    );
    println!(
        "checkpoint: state copied in {:.1} ms on the training thread ({:.1} % of an epoch); file written in {:.1} ms on another thread",
        1000.0 * costs.checkpoint_copy_seconds,
        100.0 * r.checkpoint_share(costs),
        1000.0 * costs.checkpoint_write_seconds
    );
}

#[derive(Args)]
pub struct SweepCmd {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// An axis `field=v1,v2,…` (configuration field names, e.g. adv_sup_tau=4.5e-5,4.5e-4),
    /// or `method=ladder,vat,…` (the --method names: each method's cells start from the
    /// preset trained by it, then the flags); repeat for more axes, each field once. Seeds
    /// are not an axis: use --seeds [default: none; give at least one].
    #[arg(long = "grid")]
    pub grid: Vec<String>,
    /// Seeds each cell is trained with, ','-separated with ranges (`1-3`, `1,2,5`).
    #[arg(long, default_value = "1")]
    pub seeds: String,
    /// Output directory [default: a fresh one under runs/].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Finish the sweep in this directory, on its recorded grid, seeds and data; completed and
    /// diverged cells are not retrained. Configuration, grid and seed flags are refused with
    /// it, since the sweep would not honour them [default: start a new sweep].
    #[arg(
        long,
        value_name = "SWEEP_DIR",
        conflicts_with_all = ["out", "force", "grid", "seeds"]
    )]
    pub resume: Option<PathBuf>,
    /// Print the state of every cell of the sweep in this directory, trained by one process
    /// or several; once every cell is done, its table (and grid.md, grid.csv, summary.json,
    /// as one process writes them). Trains nothing; exits 1 while cells are missing,
    /// unfinished or running, naming them [default: train].
    #[arg(
        long,
        value_name = "SWEEP_DIR",
        conflicts_with_all = ["out", "force", "grid", "seeds", "resume"]
    )]
    pub gather: Option<PathBuf>,
    #[command(flatten)]
    pub share: ShareArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

pub fn run_sweep(cmd: SweepCmd) -> Result<()> {
    if let Some(dir) = &cmd.gather {
        let given = cmd.config.given();
        if !given.is_empty() {
            bail!(
                "--gather reads the sweep in {} as it was run; {} cannot change it",
                dir.display(),
                given.join(", ")
            );
        }
        if cmd.share.shard.is_some() {
            bail!("--gather reads the whole sweep: --shard has no meaning with it");
        }
        return gather_sweep(dir, &cmd.share);
    }
    let share = cmd
        .share
        .task("sweep", cmd.resume.is_some(), cmd.out.is_some())?;
    refuse_with_resume(cmd.resume.as_deref(), &cmd.config.given())?;
    let (spec, out, data) = match &cmd.resume {
        Some(dir) => {
            let spec: SweepSpec = read_resumed(dir, SWEEP_FILE, "sweep")?;
            let data = cmd.data.of_run(dir, spec.base.num_classes)?;
            (spec, dir.clone(), data)
        }
        None => {
            if cmd.config.seed.is_some() {
                bail!(
                    "a sweep trains every cell with each seed of --seeds: give --seeds, not --seed"
                );
            }
            let mut axes = cmd
                .grid
                .iter()
                .map(|g| GridAxis::parse(g))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let method_bases = method_bases(&cmd.config, &mut axes)?;
            let spec = SweepSpec {
                base: cmd.config.resolve()?,
                axes,
                seeds: parse_seeds(&cmd.seeds)?,
                preset: cmd.config.preset.clone(),
                method_bases,
            };
            spec.validate()?;
            let data = cmd.data.load(spec.base.num_classes)?;
            let out = cmd
                .out
                .clone()
                .unwrap_or_else(|| fresh_dir(Path::new("runs"), "sweep"));
            (spec, out, data)
        }
    };
    let opts = cmd.run.options(cmd.resume.is_some(), spec.preset.clone())?;
    let quiet = cmd.run.quiet;
    let shared = share.is_some();
    let share = cmd.share.share_or_whole(share, &out, quiet)?;
    let gathered = sweep(&spec, &data, &out, &opts, &share, &mut |m| {
        if !quiet {
            eprintln!("{m}");
        }
    })?;
    if gathered.report.is_none() && shared {
        print_states(&gathered);
        println!(
            "shard {}: its share is done; when every task has ended: ladder sweep --gather {}",
            share.shard,
            out.display()
        );
        return Ok(());
    }
    report_gathered(gathered, &out)
}

/// The base configuration of each method of a `method` grid axis (whose values are written
/// as their canonical names): the preset trained by that method, then the config file and
/// flags. None without such an axis.
fn method_bases(config: &ConfigArgs, axes: &mut [GridAxis]) -> Result<Vec<MethodBase>> {
    let Some(axis) = axes.iter_mut().find(|a| a.name == METHOD_AXIS) else {
        return Ok(Vec::new());
    };
    if config.method.is_some() {
        bail!("--grid method=… gives the methods: --method cannot be given with it");
    }
    let mut bases = Vec::with_capacity(axis.values.len());
    for value in &mut axis.values {
        let method: Method = value
            .parse()
            .map_err(|e: String| anyhow!("--grid method: {e}"))?;
        *value = method.to_string();
        bases.push(MethodBase {
            method: value.clone(),
            base: config.resolve_with(method)?,
        });
    }
    Ok(bases)
}

/// `sweep --gather`: every cell's state, and the table once all are done.
fn gather_sweep(dir: &Path, share: &ShareArgs) -> Result<()> {
    report_gathered(gather(dir, &share.claims()?)?, dir)
}

/// The sweep's table once every cell is done; otherwise each cell's state, and an error
/// naming the cells not done.
fn report_gathered(gathered: Gathered, dir: &Path) -> Result<()> {
    if let Some(report) = &gathered.report {
        print!("{}", report.to_markdown());
        println!("sweep directory: {}", dir.display());
        return Ok(());
    }
    print_states(&gathered);
    let open: Vec<String> = gathered
        .cells
        .iter()
        .filter(|(_, s)| !matches!(s, CellState::Done(_)))
        .map(|(name, s)| format!("{name} ({})", s.word()))
        .collect();
    bail!(
        "{} of {} cells of the sweep in {} are not done: {}",
        open.len(),
        gathered.cells.len(),
        dir.display(),
        open.join(", ")
    )
}

/// One line per cell: its state, and each seed's where the cell is not done.
fn print_states(gathered: &Gathered) {
    for (name, state) in &gathered.cells {
        match state {
            CellState::Done(_) => println!("{name}: {}", state.word()),
            CellState::Open(units) => {
                let seeds: Vec<String> = units
                    .iter()
                    .map(|(seed, u): &(u64, UnitState)| format!("seed {seed} {}", u.describe()))
                    .collect();
                println!("{name}: {} ({})", state.word(), seeds.join("; "));
            }
        }
    }
}

pub fn presets() -> Result<()> {
    let width = PRESET_TABLE.iter().map(|p| p.name.len()).max().unwrap_or(0);
    for p in &PRESET_TABLE {
        println!("{:width$}  {}", p.name, p.about);
    }
    Ok(())
}
