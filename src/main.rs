//! `ladder`: the command line. Thin: parse, resolve the configuration, call the library, print.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use clap::{Args, Parser, Subcommand};

use ladder::LadderError;
use ladder::data::{CsvOptions, DataRequest, Dataset, RecordedData, load_idx_images};
use ladder::experiment::bench::bench;
use ladder::experiment::plain_run::train_plain_run;
use ladder::experiment::robustness::{
    RobustnessOptions, TrainedModel, robustness, weight_pictures,
};
use ladder::experiment::run::{
    CONFIG_FILE, INTERRUPTED, SEEDS_FILE, SUMMARY_FILE, fresh_dir, load_run, read_json, run_data,
    runs_data,
};
use ladder::experiment::sweep::{GridAxis, SWEEP_FILE, SweepSpec, sweep};
use ladder::experiment::{RunOptions, evaluate_run, parse_seeds, train_run, train_seeds};
use ladder::model::Activation;
use ladder::noise::AdvKind;
use ladder::train::TrainConfig;
use ladder::train::config::PRESETS;
use ladder::train::plain::{PlainConfig, PlainModel, PlainOptimizer};

mod semantic_cli;

#[derive(Parser)]
#[command(
    name = "ladder",
    version,
    about = "Semi-supervised classifier training with Ladder networks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a Ladder network (or a baseline) and write a run directory.
    #[command(args_override_self = true)]
    Train(TrainCmd),
    /// Recompute the test error of a finished run from its checkpoint.
    Evaluate {
        /// The run directory.
        run_dir: PathBuf,
        #[command(flatten)]
        data: DataArgs,
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Label the images of an IDX file with a trained run.
    Predict {
        run_dir: PathBuf,
        /// An IDX image file (raw or gzipped) with the model's image size.
        images: PathBuf,
        /// Write the labels here (one per line) instead of standard output; never the
        /// images file or a file of the run.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace an existing --out file.
        #[arg(long)]
        force: bool,
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Measure training throughput; ends with `examples_per_second: N`.
    #[command(args_override_self = true)]
    Bench(BenchCmd),
    /// Train a plain network: model A (standard), B (adversarial, FGSM) or C (Gaussian noise).
    #[command(name = "train-plain", args_override_self = true)]
    TrainPlain(PlainCmd),
    /// Accuracy of trained models on FGSM and Gaussian-noise test sets: CSV, Markdown, PNG.
    Robustness(RobustnessCmd),
    /// Pictures of a trained model's first-layer weights and W1·…·WL class patterns.
    Weights(WeightsCmd),
    /// Train every combination of a grid of settings, choose by validation error, tabulate.
    #[command(args_override_self = true)]
    Sweep(SweepCmd),
    /// Train semantic-noise-modeling networks (003) and their baselines over a grid of models,
    /// training-set sizes and seeds; writes Table 1's layout.
    #[command(name = "train-semantic", args_override_self = true)]
    TrainSemantic(semantic_cli::SemanticCmd),
    /// Rewrite and print the table of a train-semantic grid from its finished cells.
    #[command(name = "semantic-table")]
    SemanticTable(semantic_cli::SemanticTableCmd),
    /// Pictures of a semantic run: reconstructions of perturbed latents (003 Fig. 5) and a
    /// t-SNE of latents with perturbed training examples (Fig. 6).
    #[command(name = "semantic-figures")]
    SemanticFigures(semantic_cli::SemanticFiguresCmd),
    /// List the presets.
    Presets,
}

#[derive(Args)]
struct SweepCmd {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(flatten)]
    data: DataArgs,
    /// An axis `field=v1,v2,…` (configuration field names, e.g. adv_sup_tau=4.5e-5,4.5e-4);
    /// repeat for more axes.
    #[arg(long = "grid")]
    grid: Vec<String>,
    /// Seeds each cell is trained with (`1-3`, `1,2,5`).
    #[arg(long, default_value = "1")]
    seeds: String,
    /// Output directory (default: a fresh one under runs/).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Finish the sweep in this directory; completed cells are not retrained.
    #[arg(long, value_name = "SWEEP_DIR", conflicts_with = "out")]
    resume: Option<PathBuf>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Args)]
struct PlainCmd {
    /// A TOML file of plain-network fields; the flags below override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// a (standard), b (adversarial) or c (noisy inputs).
    #[arg(long)]
    model: Option<PlainModel>,
    /// Hidden widths, e.g. 800 or 500-300.
    #[arg(long)]
    hidden_layers: Option<String>,
    /// ε: FGSM step of model B, noise std of model C.
    #[arg(long)]
    epsilon: Option<f64>,
    /// α of model B's cost α·C(x) + (1 − α)·C(x_adv).
    #[arg(long)]
    alpha: Option<f64>,
    /// sgd (with growing momentum) or adam.
    #[arg(long)]
    optimizer: Option<PlainOptimizer>,
    #[arg(long)]
    lr: Option<f64>,
    #[arg(long)]
    momentum_start: Option<f64>,
    #[arg(long)]
    momentum_final: Option<f64>,
    /// Epoch at which the momentum reaches its final value.
    #[arg(long)]
    momentum_saturate: Option<usize>,
    #[arg(long)]
    batch_size: Option<usize>,
    #[arg(long)]
    max_epochs: Option<usize>,
    /// Stop after this many epochs without a better validation error.
    #[arg(long)]
    patience: Option<usize>,
    #[arg(long)]
    validation_samples: Option<usize>,
    /// Training examples, balanced over classes (0 = all not held out).
    #[arg(long)]
    labeled_samples: Option<usize>,
    /// Non-zero initial weights per hidden unit (0 = dense).
    #[arg(long)]
    sparse_init: Option<usize>,
    #[arg(long)]
    seed: Option<u64>,
    #[arg(long)]
    num_classes: Option<usize>,
    /// Convert colour images to grey first (grey CIFAR-10 of 004).
    #[arg(long)]
    grey: Option<bool>,
    #[command(flatten)]
    data: DataArgs,
    /// Output directory (default: a fresh one under runs/).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Replace an existing run directory.
    #[arg(long)]
    force: bool,
    #[arg(long, short)]
    quiet: bool,
    #[arg(long, default_value = "cpu")]
    device: String,
}

#[derive(Args)]
struct RobustnessCmd {
    /// Finished run directories (Ladder or plain; one seed's directory of a multi-seed run).
    #[arg(required = true)]
    run_dirs: Vec<PathBuf>,
    /// A name per run for the table and legends (default: the directory names).
    #[arg(long = "name")]
    names: Vec<String>,
    /// FGSM steps ε, comma-separated.
    #[arg(long, default_value = "0,0.05,0.1,0.15,0.2,0.25,0.3")]
    epsilons: String,
    /// Gaussian noise stds σ, comma-separated.
    #[arg(long, default_value = "0,0.1,0.2,0.3,0.4,0.5")]
    sigmas: String,
    /// Seed of the Gaussian noise (the same noisy test set for every model).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where the table and plots go.
    #[arg(long, default_value = "robustness")]
    out: PathBuf,
    /// Replace the table and plots of an earlier measurement in --out.
    #[arg(long)]
    force: bool,
    /// Classes of the test data (labels must lie in 0..N after --first-label).
    #[arg(long, default_value_t = 10)]
    num_classes: usize,
    #[command(flatten)]
    data: DataArgs,
    #[arg(long, default_value = "cpu")]
    device: String,
}

#[derive(Args)]
struct WeightsCmd {
    run_dir: PathBuf,
    /// Where first-layer.png and class-patterns.png go.
    #[arg(long, default_value = "weights")]
    out: PathBuf,
    /// Units of the first layer to draw.
    #[arg(long, default_value_t = 100)]
    max_units: usize,
    /// Input image shape HxW [default: square].
    #[arg(long)]
    image_shape: Option<String>,
    /// Replace the pictures of an earlier call in --out.
    #[arg(long)]
    force: bool,
}

#[derive(Args, Clone)]
pub(crate) struct DataArgs {
    /// Directory with train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz],
    /// t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]; or a CIFAR-10 binary
    /// directory (data_batch_1.bin … data_batch_5.bin, test_batch.bin); or a .csv file of numeric
    /// features and an integer class column (standardised with the training part's
    /// statistics). Default: the embedded MNIST-10k (8,000 training, 2,000 test digits); for a
    /// command that reads a run, the data the run recorded (this names a moved copy of it).
    #[arg(long)]
    data: Option<PathBuf>,
    /// CSV only: a separate test file [default: a seeded --test-fraction of --data's rows].
    #[arg(long)]
    test_data: Option<PathBuf>,
    /// CSV only: the share of rows held out as the test set when there is no --test-data
    /// [default: 0.2].
    #[arg(long)]
    test_fraction: Option<f64>,
    /// CSV only: 0-based column of the class [default: the last].
    #[arg(long)]
    label_column: Option<usize>,
    /// CSV only: the smallest class value (1 for Covertype's classes 1–7) [default: 0].
    #[arg(long)]
    first_label: Option<i64>,
    /// CSV only: the first line is a header.
    #[arg(long)]
    csv_header: bool,
}

impl DataArgs {
    pub(crate) fn request(&self) -> DataRequest {
        DataRequest {
            path: self.data.clone(),
            csv: CsvOptions {
                test: self.test_data.clone(),
                test_fraction: self.test_fraction,
                label_column: self.label_column,
                first_label: self.first_label,
                header: self.csv_header.then_some(true),
            },
        }
    }

    /// The data these flags name, with its record.
    pub(crate) fn load(&self, num_classes: usize) -> Result<RecordedData> {
        Ok(self.request().source()?.load(num_classes)?)
    }

    /// The data the run (or multi-seed run, sweep, grid) in `dir` recorded, or the moved copy
    /// these flags name.
    pub(crate) fn of_run(&self, dir: &Path, num_classes: usize) -> Result<RecordedData> {
        Ok(run_data(dir, &self.request(), num_classes)?)
    }
}

/// Flags that mirror the authors' `run.py`; each overrides the preset and the config file.
#[derive(Args, Clone, Default)]
struct ConfigArgs {
    /// Start from one of the paper's settings (see `ladder presets`).
    #[arg(long)]
    preset: Option<String>,
    /// A TOML file of configuration fields.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Hidden and output widths, e.g. 1000-500-250-250-250-10.
    #[arg(long)]
    encoder_layers: Option<String>,
    /// Combinator per layer (input first) or one for all: gauss, g1, g2, g3, g4, linear, 0.
    #[arg(long)]
    decoder_spec: Option<String>,
    /// λ per layer, input first, e.g. 1000,10,0.1,0.1,0.1,0.1,0.1.
    #[arg(long)]
    denoising_cost_x: Option<String>,
    /// Labelled examples, balanced across classes (0 = all).
    #[arg(long)]
    labeled_samples: Option<usize>,
    /// Unlabelled examples (default: every training example).
    #[arg(long)]
    unlabeled_samples: Option<usize>,
    /// Training examples held out for validation.
    #[arg(long)]
    validation_samples: Option<usize>,
    #[arg(long)]
    seed: Option<u64>,
    #[arg(long)]
    epochs: Option<usize>,
    /// Adam's learning rate.
    #[arg(long)]
    lr: Option<f64>,
    /// Fraction of the epochs after which the learning rate decays linearly to 0.
    #[arg(long)]
    lrate_decay: Option<f64>,
    /// Labelled and unlabelled examples per step (each).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Std of the input corruption.
    #[arg(long)]
    super_noise_std: Option<f64>,
    /// Std of the per-layer corruption: one value or one per encoder layer.
    #[arg(long)]
    f_local_noise_std: Option<String>,
    /// Learn a scale γ at the softmax top.
    #[arg(long)]
    top_c: Option<bool>,
    /// Hidden activation: relu or leakyrelu.
    #[arg(long)]
    act: Option<Activation>,
    #[arg(long)]
    num_classes: Option<usize>,
    /// Evaluate every this many epochs.
    #[arg(long)]
    eval_every: Option<usize>,
    /// Training examples whose moments normalise per-epoch evaluations (0 = all; the final
    /// result always uses all).
    #[arg(long)]
    monitor_moments: Option<usize>,
    /// Adversarial noise on labelled examples: sign, grad, unit or sqrtk (000 eq. 56–59).
    #[arg(long)]
    adv_sup_kind: Option<AdvKind>,
    /// τ of the labelled examples' adversarial noise (0 = off).
    #[arg(long)]
    adv_sup_tau: Option<f64>,
    /// Keep the Gaussian input noise on labelled examples too (x + u + n; false: x + u).
    #[arg(long)]
    adv_sup_gaussian: Option<bool>,
    /// Adversarial noise on unlabelled examples, with argmax virtual labels.
    #[arg(long)]
    adv_unsup_kind: Option<AdvKind>,
    /// τ of the unlabelled examples' adversarial noise (0 = off).
    #[arg(long)]
    adv_unsup_tau: Option<f64>,
    /// Keep the Gaussian input noise on unlabelled examples too.
    #[arg(long)]
    adv_unsup_gaussian: Option<bool>,
    /// Convert colour images to grey first.
    #[arg(long)]
    grey: Option<bool>,
    /// Global contrast normalisation to this L2 norm per example (55 for CIFAR-10; 0 = off).
    #[arg(long)]
    contrast_norm: Option<f64>,
    /// ZCA whitening fitted on the training data.
    #[arg(long)]
    zca: Option<bool>,
    /// ZCA regulariser added to the covariance's eigenvalues.
    #[arg(long)]
    zca_bias: Option<f64>,
    /// Train on random SIDE×SIDE crops, test on the centre crop (0 = off).
    #[arg(long)]
    crop: Option<usize>,
    /// Random horizontal flips of the training images.
    #[arg(long)]
    flip: Option<bool>,
}

#[derive(Args)]
struct TrainCmd {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(flatten)]
    data: DataArgs,
    /// Run once per seed (`1-10`, `1,2,5`) and report mean ± std.
    #[arg(long)]
    seeds: Option<String>,
    /// Output directory (default: a fresh one under runs/).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the unfinished run in this directory.
    #[arg(long, value_name = "RUN_DIR", conflicts_with = "out")]
    resume: Option<PathBuf>,
    #[command(flatten)]
    run: RunArgs,
}

/// How a training run (or each cell of a sweep) writes and where it computes.
#[derive(Args)]
struct RunArgs {
    /// Replace an existing run or sweep directory.
    #[arg(long)]
    force: bool,
    /// No progress output.
    #[arg(long, short)]
    quiet: bool,
    /// Besides the checkpoint after every epoch, save one within an epoch when this many
    /// minutes have passed since the last (0 = only at epoch ends).
    #[arg(long, default_value_t = 10.0)]
    checkpoint_minutes: f64,
    /// cpu (Flex), cuda or wgpu (when built with those features).
    #[arg(long, default_value = "cpu")]
    device: String,
}

impl RunArgs {
    fn options(&self, resume: bool, preset: Option<String>) -> Result<RunOptions> {
        let minutes = self.checkpoint_minutes;
        if !(minutes.is_finite() && minutes >= 0.0) {
            bail!("--checkpoint-minutes must be a number of minutes ≥ 0");
        }
        Ok(RunOptions {
            force: self.force,
            resume,
            quiet: self.quiet,
            device: device(&self.device)?,
            preset,
            checkpoint_every: (minutes > 0.0).then(|| Duration::from_secs_f64(minutes * 60.0)),
        })
    }
}

#[derive(Args)]
struct BenchCmd {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(flatten)]
    data: DataArgs,
    /// Untimed steps first.
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Steps per timed block.
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Timed blocks; the median is reported.
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// The training device, with autodiff.
pub(crate) fn device(name: &str) -> Result<Device> {
    let base = match name {
        "cpu" | "flex" => Device::flex(),
        #[cfg(feature = "cuda")]
        "cuda" => {
            anyhow::ensure!(
                cuda_driver_present(),
                "device 'cuda': no CUDA driver on this machine (libcuda.so.1 does not load)"
            );
            Device::cuda(0)
        }
        #[cfg(feature = "wgpu")]
        "wgpu" => Device::wgpu(Default::default()),
        other => bail!(
            "unknown or unavailable device '{other}': this build offers cpu{}{}",
            if cfg!(feature = "cuda") { ", cuda" } else { "" },
            if cfg!(feature = "wgpu") { ", wgpu" } else { "" }
        ),
    };
    Ok(base.autodiff())
}

/// Whether the CUDA driver library loads; without it cubecl panics on first use.
#[cfg(feature = "cuda")]
fn cuda_driver_present() -> bool {
    ["libcuda.so.1", "libcuda.so"].iter().any(|name| {
        let name = std::ffi::CString::new(*name).expect("no interior NUL");
        // SAFETY: dlopen with a valid C string; the handle is closed right away.
        unsafe {
            let handle = libc::dlopen(name.as_ptr(), libc::RTLD_LAZY | libc::RTLD_LOCAL);
            let found = !handle.is_null();
            if found {
                libc::dlclose(handle);
            }
            found
        }
    })
}

/// Preset, then config file, then explicit flags.
fn resolve_config(a: &ConfigArgs) -> Result<TrainConfig> {
    let mut c = match &a.preset {
        Some(p) => TrainConfig::preset(p)?,
        None => TrainConfig::default(),
    };
    if let Some(path) = &a.config {
        // The fields the file sets override the preset; the others keep the preset's values.
        let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
        let file = TrainConfig::from_toml_str(&text).with_context(|| path.display().to_string())?;
        let set: toml::Table = toml::from_str(&text)?;
        let mut merged = toml::Table::try_from(&c)?;
        let file_table = toml::Table::try_from(&file)?;
        for key in set.keys() {
            if let Some(v) = file_table.get(key) {
                merged.insert(key.clone(), v.clone());
            }
        }
        c = merged.try_into()?;
    }
    macro_rules! over {
        ($($f:ident),*) => { $( if let Some(v) = &a.$f { c.$f = v.clone().into(); } )* };
    }
    over!(
        encoder_layers,
        decoder_spec,
        denoising_cost_x,
        labeled_samples,
        validation_samples,
        seed,
        epochs,
        lr,
        lrate_decay,
        batch_size,
        super_noise_std,
        f_local_noise_std,
        top_c,
        act,
        num_classes,
        eval_every,
        monitor_moments,
        adv_sup_kind,
        adv_sup_tau,
        adv_sup_gaussian,
        adv_unsup_kind,
        adv_unsup_tau,
        adv_unsup_gaussian,
        grey,
        contrast_norm,
        zca,
        zca_bias,
        crop,
        flip
    );
    if a.unlabeled_samples.is_some() {
        c.unlabeled_samples = a.unlabeled_samples;
    }
    c.validate()?;
    Ok(c)
}

fn train(cmd: TrainCmd) -> Result<()> {
    let opts = cmd
        .run
        .options(cmd.resume.is_some(), cmd.config.preset.clone())?;
    // A resumed run takes its configuration (and seed list) from its own directory.
    let (config, seeds, out, data) = match &cmd.resume {
        Some(dir) => {
            let config_path = dir.join(CONFIG_FILE);
            if !config_path.exists() {
                bail!(
                    "{} has no {CONFIG_FILE}: not a run directory to resume",
                    dir.display()
                );
            }
            let seeds_path = dir.join(SEEDS_FILE);
            let seeds = match seeds_path.exists() {
                true => Some(read_json::<Vec<u64>>(&seeds_path)?),
                false => None,
            };
            let config = TrainConfig::from_toml_file(&config_path)?;
            let data = cmd.data.of_run(dir, config.num_classes)?;
            (config, seeds, dir.clone(), data)
        }
        None => {
            let seeds = cmd.seeds.as_deref().map(parse_seeds).transpose()?;
            let out = cmd.out.clone().unwrap_or_else(|| {
                let name = cmd.config.preset.clone().unwrap_or_else(|| "train".into());
                fresh_dir(Path::new("runs"), &name)
            });
            let config = resolve_config(&cmd.config)?;
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
            let s = train_run(&config, &data, Some(&out), &opts)?;
            println!(
                "test error: {:.2} % (seed {})",
                s.test_error_percent, s.seed
            );
        }
    }
    println!("run directory: {}", out.display());
    Ok(())
}

fn evaluate(run_dir: &Path, data: &DataArgs, device_name: &str) -> Result<()> {
    let dev = device(device_name)?;
    let config = TrainConfig::from_toml_file(&run_dir.join(CONFIG_FILE))?;
    let data = data.of_run(run_dir, config.num_classes)?;
    let err = evaluate_run(run_dir, &data.sets, &dev)?;
    if let Ok(summary) = read_json::<serde_json::Value>(&run_dir.join(SUMMARY_FILE))
        && let Some(recorded) = summary.get("test_error_percent")
    {
        eprintln!("recorded test error: {recorded} %");
    }
    println!("test_error_percent: {err:.4}");
    Ok(())
}

fn predict(run_dir: &Path, images: &Path, out: Option<&Path>, device_name: &str) -> Result<()> {
    let dev = device(device_name)?;
    let run = load_run(run_dir, &dev)?;
    let (pixels, n, shape) = load_idx_images(images)?;
    let raw = Dataset {
        images: pixels,
        labels: vec![0; n],
        n,
        dim: shape.iter().product(),
        image_shape: shape.clone(),
        num_classes: run.trainer.config.num_classes,
    };
    let ds = run.trainer.config.preprocessing().apply_to_new(raw)?;
    let dim = run.trainer.spec.dims[0];
    if ds.dim != dim {
        bail!(
            "{}: images of shape {:?} have {} values but the model expects {dim}",
            images.display(),
            shape,
            ds.dim
        );
    }
    let model = run.trainer.model().valid();
    let labels = ladder::eval::predict(&model, &run.moments, &ds.images, dim);
    debug_assert_eq!(labels.len(), n);
    let text: String = labels.iter().map(|l| format!("{l}\n")).collect();
    match out {
        Some(path) => ladder::train::checkpoint::write_atomic(path, text.as_bytes())?,
        None => print!("{text}"),
    }
    Ok(())
}

/// `predict --out` never writes over its input or a file of the run, and replaces an earlier
/// output only with `--force`.
fn check_predict_out(out: &Path, images: &Path, run_dir: &Path, force: bool) -> Result<()> {
    let canonical = |p: &Path| std::fs::canonicalize(p).ok();
    let out_dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let target = canonical(out_dir).map(|d| d.join(out.file_name().unwrap_or_default()));
    if target.is_some() && target == canonical(images) {
        bail!(
            "--out {} is the images file being labelled: choose another file",
            out.display()
        );
    }
    if let (Some(t), Some(run)) = (&target, canonical(run_dir))
        && t.starts_with(&run)
    {
        bail!(
            "--out {} lies inside the run directory {}: choose a file outside it",
            out.display(),
            run_dir.display()
        );
    }
    if out.exists() && !force {
        bail!(
            "--out {} already exists; pass --force to replace it",
            out.display()
        );
    }
    Ok(())
}

fn run_bench(cmd: BenchCmd) -> Result<()> {
    let config = resolve_config(&cmd.config)?;
    let dev = device(&cmd.device)?;
    let data = cmd.data.load(config.num_classes)?.sets;
    let r = bench(&config, &data, &dev, cmd.warmup, cmd.steps, cmd.repeats)?;
    println!("encoder: {}-{}", data.train.dim, config.encoder_layers);
    println!("denoising costs: {}", config.denoising_cost_x);
    println!("device: {}", cmd.device);
    println!("seed: {}", config.seed);
    println!(
        "batch: {} labelled + {} unlabelled",
        config.batch_size, config.batch_size
    );
    let blocks: Vec<String> = r.blocks.iter().map(|b| format!("{b:.0}")).collect();
    println!("blocks (examples/s): {}", blocks.join(" "));
    println!("median step: {:.2} ms", r.median_step_ms);
    let (monitored, full) = r.evaluation_shares();
    println!(
        "batch assembly: {:.3} ms per step ({:.1} % of a step)",
        r.batch_ms,
        100.0 * r.batch_share()
    );
    println!(
        "evaluation: {:.3} s per epoch ({:.1} % of an epoch of {:.2} s); final, once: {:.3} s ({:.1} %)",
        r.monitored_evaluation_seconds,
        100.0 * monitored,
        r.epoch_seconds,
        r.full_evaluation_seconds,
        100.0 * full
    );
    println!(
        "checkpoint: state copied in {:.1} ms on the training thread ({:.1} % of an epoch); file written in {:.1} ms on another thread",
        1000.0 * r.checkpoint_copy_seconds,
        100.0 * r.checkpoint_share(),
        1000.0 * r.checkpoint_write_seconds
    );
    println!("examples_per_second: {:.0}", r.examples_per_second);
    Ok(())
}

fn run_sweep(cmd: SweepCmd) -> Result<()> {
    let (spec, out, data) = match &cmd.resume {
        Some(dir) => {
            let path = dir.join(SWEEP_FILE);
            if !path.exists() {
                bail!(
                    "{} has no {SWEEP_FILE}: not a sweep directory to resume",
                    dir.display()
                );
            }
            let spec = read_json::<SweepSpec>(&path)?;
            let data = cmd.data.of_run(dir, spec.base.num_classes)?;
            (spec, dir.clone(), data)
        }
        None => {
            let axes = cmd
                .grid
                .iter()
                .map(|g| GridAxis::parse(g))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let spec = SweepSpec {
                base: resolve_config(&cmd.config)?,
                axes,
                seeds: parse_seeds(&cmd.seeds)?,
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
    let opts = cmd
        .run
        .options(cmd.resume.is_some(), cmd.config.preset.clone())?;
    let quiet = cmd.run.quiet;
    let report = sweep(&spec, &data, &out, &opts, &mut |i, n, name| {
        if !quiet {
            eprintln!("cell {i}/{n}: {name}");
        }
    })?;
    print!("{}", report.to_markdown());
    println!("sweep directory: {}", out.display());
    Ok(())
}

/// Defaults, then the config file, then the flags.
fn resolve_plain(cmd: &PlainCmd) -> Result<PlainConfig> {
    let mut c = match &cmd.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
            PlainConfig::from_toml_str(&text).with_context(|| path.display().to_string())?
        }
        None => PlainConfig::default(),
    };
    macro_rules! over {
        ($($f:ident),*) => { $( if let Some(v) = &cmd.$f { c.$f = v.clone().into(); } )* };
    }
    over!(
        model,
        hidden_layers,
        epsilon,
        alpha,
        optimizer,
        lr,
        momentum_start,
        momentum_final,
        momentum_saturate,
        batch_size,
        max_epochs,
        patience,
        validation_samples,
        labeled_samples,
        sparse_init,
        seed,
        num_classes,
        grey
    );
    c.validate()?;
    Ok(c)
}

fn train_plain(cmd: PlainCmd) -> Result<()> {
    let config = resolve_plain(&cmd)?;
    let dev = device(&cmd.device)?;
    let data = cmd.data.load(config.num_classes)?;
    let out = cmd.out.clone().unwrap_or_else(|| {
        fresh_dir(
            Path::new("runs"),
            &format!("plain-{}", config.model.to_string().to_lowercase()),
        )
    });
    if !cmd.quiet {
        eprintln!("writing to {}", out.display());
    }
    let quiet = cmd.quiet;
    let s = train_plain_run(&config, &data, &out, cmd.force, &dev, &mut |line| {
        if !quiet {
            eprintln!("{line}");
        }
    })?;
    println!(
        "model {}: test error {:.2} % (best validation error {:.2} % at epoch {} of {}, seed {})",
        s.model,
        s.test_error_percent,
        s.validation_error_percent,
        s.best_epoch,
        s.epochs_run,
        s.seed
    );
    println!("run directory: {}", out.display());
    Ok(())
}

/// `0,0.1,0.2` → numbers.
fn parse_levels(s: &str, what: &str) -> Result<Vec<f64>> {
    let levels = s
        .split(',')
        .map(|v| {
            v.trim()
                .parse::<f64>()
                .with_context(|| format!("{what}: '{v}' is not a number"))
        })
        .collect::<Result<Vec<f64>>>()?;
    if levels.is_empty() {
        bail!("{what}: give at least one level");
    }
    Ok(levels)
}

fn run_robustness(cmd: RobustnessCmd) -> Result<()> {
    if !cmd.names.is_empty() && cmd.names.len() != cmd.run_dirs.len() {
        bail!(
            "{} names for {} run directories: give one --name per run or none",
            cmd.names.len(),
            cmd.run_dirs.len()
        );
    }
    let runs: Vec<(String, PathBuf)> = cmd
        .run_dirs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let name = cmd.names.get(i).cloned().unwrap_or_else(|| {
                d.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| d.display().to_string())
            });
            (name, d.clone())
        })
        .collect();
    let opts = RobustnessOptions {
        epsilons: parse_levels(&cmd.epsilons, "--epsilons")?,
        sigmas: parse_levels(&cmd.sigmas, "--sigmas")?,
        seed: cmd.seed,
        force: cmd.force,
    };
    let dev = device(&cmd.device)?;
    let dirs: Vec<&Path> = runs.iter().map(|(_, d)| d.as_path()).collect();
    let data = runs_data(&dirs, &cmd.data.request(), cmd.num_classes)?;
    let table = robustness(&runs, &data.sets.test, &opts, &cmd.out, &dev)?;
    print!("{}", table.to_markdown());
    println!("written to {}", cmd.out.display());
    Ok(())
}

fn run_weights(cmd: WeightsCmd) -> Result<()> {
    let dev = device("cpu")?;
    let model = TrainedModel::load(&cmd.run_dir, &dev)?;
    let input = model.weights()?[0].dims()[0];
    let shape = match &cmd.image_shape {
        Some(s) => {
            let (h, w) = s
                .split_once(['x', 'X'])
                .with_context(|| format!("--image-shape '{s}': expected HxW, e.g. 28x28"))?;
            (h.trim().parse()?, w.trim().parse()?)
        }
        None => {
            let side = (input as f64).sqrt().round() as usize;
            if side * side != input {
                bail!("{input} inputs are not a square image: give --image-shape HxW");
            }
            (side, side)
        }
    };
    let (first, patterns) = weight_pictures(&model, shape, cmd.max_units, &cmd.out, cmd.force)?;
    println!("{}\n{}", first.display(), patterns.display());
    Ok(())
}

/// First Ctrl-C: finish the step, save, exit with a resume hint. Second: exit at once.
fn install_interrupt_handler() {
    let result = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            eprintln!("\ninterrupted again: exiting without saving");
            std::process::exit(130);
        }
        eprintln!(
            "\ninterrupted: finishing the current step and saving a checkpoint (Ctrl-C again to quit now)"
        );
    });
    if let Err(e) = result {
        eprintln!(
            "warning: cannot handle Ctrl-C ({e}); an interrupted run resumes from its last checkpoint"
        );
    }
}

/// The error and its causes, joined by colons; a cause that the message before it already
/// ends with (our errors quote their I/O cause) is not repeated.
fn describe(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain().map(ToString::to_string) {
        if text.ends_with(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

fn main() -> ExitCode {
    ladder::keep_freed_memory();
    let cli = Cli::parse();
    install_interrupt_handler();
    // Run the command on a worker of the thread pool rather than beside it: otherwise, between
    // parallel operations, the pool's spinning workers and this thread are one more runnable
    // thread than there are cores.
    let pool = rayon::ThreadPoolBuilder::new().stack_size(64 << 20).build();
    let result = match pool {
        Ok(pool) => pool.install(|| run(cli.command)),
        Err(e) => Err(anyhow::anyhow!("cannot start the thread pool: {e}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", describe(&e));
            match e.downcast_ref::<LadderError>() {
                Some(LadderError::Interrupted(_)) => ExitCode::from(130),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Train(cmd) => train(cmd),
        Command::Evaluate {
            run_dir,
            data,
            device,
        } => evaluate(&run_dir, &data, &device),
        Command::Predict {
            run_dir,
            images,
            out,
            force,
            device,
        } => {
            if let Some(out) = &out {
                check_predict_out(out, &images, &run_dir, force)?;
            }
            predict(&run_dir, &images, out.as_deref(), &device)
        }
        Command::Bench(cmd) => run_bench(cmd),
        Command::TrainPlain(cmd) => train_plain(cmd),
        Command::Sweep(cmd) => run_sweep(cmd),
        Command::Robustness(cmd) => run_robustness(cmd),
        Command::Weights(cmd) => run_weights(cmd),
        Command::TrainSemantic(cmd) => semantic_cli::train_semantic(cmd),
        Command::SemanticTable(cmd) => semantic_cli::table(cmd),
        Command::SemanticFigures(cmd) => semantic_cli::figures(cmd),
        Command::Presets => {
            for p in PRESETS {
                println!("{p}");
            }
            Ok(())
        }
    }
}
