//! `train-semantic`, `semantic-table` and `semantic-figures`: semantic noise modeling (003).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde::Serialize;

use ladder::experiment::parse_seeds;
use ladder::experiment::semantic_figures::{FigureOptions, semantic_figures};
use ladder::experiment::semantic_run::load_semantic_model;
use ladder::experiment::semantic_run::{
    SEMANTIC_MODEL_FILE, SemanticGrid, semantic_table, train_semantic_grid,
};
use ladder::model::semantic::SemanticModel;
use ladder::train::resolve::{flag_table, resolve};
use ladder::train::semantic::SemanticConfig;

use super::args::{DataArgs, DeviceArgs};

/// The configuration fields of a semantic run; each overrides the preset and the config file.
#[serde_with::skip_serializing_none]
#[derive(Args, Serialize)]
pub struct SemanticConfigArgs {
    /// Start from 003 Sec. 4.2's settings for `mnist` or `cifar` [default: mnist].
    #[arg(long)]
    #[serde(skip)]
    pub preset: Option<String>,
    /// A TOML file of semantic-run fields (any subset); they override the preset [default:
    /// none].
    #[arg(long)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Layers below the output, '-'-separated [default: the preset's, for mnist
    /// convs:32:3:2:2-convs:64:3:2:2-convs:96:3:2:2-fc:128].
    #[arg(long)]
    pub layers: Option<String>,
    /// λ₁ (eq. 5, 7), λ (eq. 11), λ₀ (eq. 12) [default: 0.03 mnist, 0.01 cifar].
    #[arg(long)]
    pub lambda_input: Option<f64>,
    /// λ₂ (eq. 5, 7) [default: 0.03 mnist, 0.01 cifar].
    #[arg(long)]
    pub lambda_latent: Option<f64>,
    /// λᵢ of the hidden layers (eq. 12) [default: 0.03 mnist, 0.01 cifar].
    #[arg(long)]
    pub lambda_hidden: Option<f64>,
    /// λ₃ (eq. 5, 7) [default: 1].
    #[arg(long)]
    pub lambda_supervised: Option<f64>,
    /// Std of the Gaussian noise on the [0, 1]-scaled z or y [default: 0.2].
    #[arg(long)]
    pub noise_std: Option<f64>,
    /// Adam's learning rate [default: 0.005 mnist, 0.002 cifar].
    #[arg(long)]
    pub lr: Option<f64>,
    /// The learning rate is divided by this every --lr-decay-every epochs [default: 5].
    #[arg(long)]
    pub lr_decay_factor: Option<f64>,
    /// Epochs between two divisions of the learning rate [default: 40].
    #[arg(long)]
    pub lr_decay_every: Option<usize>,
    /// The last division comes before this epoch [default: 120].
    #[arg(long)]
    pub lr_decay_until: Option<usize>,
    /// Passes over the training set [default: 120].
    #[arg(long, alias = "num-epochs")]
    pub epochs: Option<usize>,
    /// Examples per step [default: 100].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Training examples held out for validation (the best network is kept) [default: 1000].
    #[arg(long, alias = "valid-set-size")]
    pub validation_samples: Option<usize>,
    /// Subtract the training set's mean image [default: true].
    #[arg(long)]
    pub mean_subtraction: Option<bool>,
    /// Train on random SIDE×SIDE crops, test on the centre crop (0 = off) [default: 0 mnist,
    /// 24 cifar].
    #[arg(long)]
    pub crop: Option<usize>,
    /// Random horizontal flips of the training images [default: false mnist, true cifar].
    #[arg(long)]
    pub flip: Option<bool>,
    /// Classes; labels must lie in 0..N [default: 10].
    #[arg(long)]
    pub num_classes: Option<usize>,
}

impl SemanticConfigArgs {
    /// Preset, then config file, then flags.
    pub fn resolve(&self) -> Result<SemanticConfig> {
        let base = SemanticConfig::preset(self.preset.as_deref().unwrap_or("mnist"))?;
        let c = resolve(&base, self.config.as_deref(), &flag_table(self))?;
        c.validate()?;
        Ok(c)
    }
}

#[derive(Args)]
pub struct SemanticCmd {
    #[command(flatten)]
    pub config: SemanticConfigArgs,
    /// Models, ','-separated, or `all`: feedforward, recon-one, recon-all, proposed-base,
    /// perturb-random, perturb-class.
    #[arg(long, default_value = "perturb-class")]
    pub models: String,
    /// Training examples per class, ','-separated (k of Table 1; 0 = all).
    #[arg(long, default_value = "10")]
    pub per_class: String,
    /// Seeds, ','-separated with ranges (`1-3`, `1,2,5`): each draws its own training set and
    /// initialisation.
    #[arg(long, default_value = "1")]
    pub seeds: String,
    #[command(flatten)]
    pub data: DataArgs,
    /// Root directory of the grid: runs go to ROOT/k{K}/{model}/seed-{S}.
    #[arg(long)]
    pub out: PathBuf,
    /// Retrain finished runs instead of reading them back.
    #[arg(long)]
    pub force: bool,
    /// No progress output.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub device: DeviceArgs,
}

fn parse_models(s: &str) -> Result<Vec<SemanticModel>> {
    if s.trim() == "all" {
        return Ok(SemanticModel::all());
    }
    let models = s
        .split(',')
        .map(|m| {
            m.trim()
                .parse::<SemanticModel>()
                .map_err(anyhow::Error::msg)
        })
        .collect::<Result<Vec<_>>>()?;
    let mut seen = std::collections::HashSet::new();
    if let Some(d) = models.iter().find(|m| !seen.insert(**m)) {
        bail!("model {d} is listed twice in '{s}'");
    }
    Ok(models)
}

fn parse_per_class(s: &str) -> Result<Vec<usize>> {
    let ks = s
        .split(',')
        .map(|k| {
            k.trim().parse::<usize>().with_context(|| {
                format!("cannot parse '{k}' in --per-class '{s}': expected numbers like 10,50,100")
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut seen = std::collections::HashSet::new();
    if let Some(d) = ks.iter().find(|k| !seen.insert(**k)) {
        bail!("{d} is listed twice in --per-class '{s}'");
    }
    Ok(ks)
}

pub fn train_semantic(cmd: SemanticCmd) -> Result<()> {
    let config = cmd.config.resolve()?;
    let grid = SemanticGrid {
        models: parse_models(&cmd.models)?,
        per_class: parse_per_class(&cmd.per_class)?,
        seeds: parse_seeds(&cmd.seeds)?,
    };
    let dev = cmd.device.device()?;
    let data = cmd.data.load(config.num_classes)?;
    let quiet = cmd.quiet;
    let table = train_semantic_grid(&config, &grid, &data, &cmd.out, cmd.force, &dev, &mut |l| {
        if !quiet {
            eprintln!("{l}");
        }
    })?;
    print!("{}", table.to_markdown());
    println!("grid directory: {}", cmd.out.display());
    Ok(())
}

#[derive(Args)]
pub struct SemanticTableCmd {
    /// Root directory of a grid written by train-semantic.
    root: PathBuf,
}

/// Rewrites `table.md` and `table.csv` of a grid from its finished cells and prints the table.
pub fn table(cmd: SemanticTableCmd) -> Result<()> {
    let table = semantic_table(&cmd.root)?;
    table.write(&cmd.root)?;
    print!("{}", table.to_markdown());
    Ok(())
}

#[derive(Args)]
pub struct SemanticFiguresCmd {
    /// A finished run directory (ROOT/k{K}/{model}/seed-{S}).
    run_dir: PathBuf,
    /// Where the PNG files go.
    #[arg(long)]
    out: PathBuf,
    /// Training examples shown in Fig. 5.
    #[arg(long, default_value_t = 8)]
    examples: usize,
    /// Perturbed reconstructions per example in Fig. 5.
    #[arg(long, default_value_t = 5)]
    samples: usize,
    /// Unseen examples in Fig. 6's background.
    #[arg(long, default_value_t = 3000)]
    background: usize,
    /// Classes whose training examples Fig. 6 shows.
    #[arg(long, default_value = "0,1,9")]
    classes: String,
    /// Perturbed copies per training example in Fig. 6.
    #[arg(long, default_value_t = 3)]
    copies: usize,
    /// t-SNE perplexity.
    #[arg(long, default_value_t = 30.0)]
    perplexity: f32,
    /// t-SNE iterations.
    #[arg(long, default_value_t = 1000)]
    tsne_epochs: usize,
    /// Noise std of the perturbations [default: the run's].
    #[arg(long)]
    noise_std: Option<f64>,
    /// Seed of the perturbations, the background examples drawn and t-SNE's start.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Replace the figures of an earlier call in --out.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    device: DeviceArgs,
}

pub fn figures(cmd: SemanticFiguresCmd) -> Result<()> {
    let dev = cmd.device.device()?;
    let (header, net) = load_semantic_model(&cmd.run_dir.join(SEMANTIC_MODEL_FILE), &dev)?;
    let classes = cmd
        .classes
        .split(',')
        .map(|c| {
            let c: u32 = c
                .trim()
                .parse()
                .with_context(|| format!("bad class '{c}'"))?;
            if c as usize >= header.config.num_classes {
                bail!(
                    "class {c} is out of range: the run has {} classes",
                    header.config.num_classes
                );
            }
            Ok(c)
        })
        .collect::<Result<Vec<_>>>()?;
    let data = cmd.data.of_run(&cmd.run_dir, header.config.num_classes)?;
    let opts = FigureOptions {
        examples: cmd.examples,
        samples: cmd.samples,
        background: cmd.background,
        classes,
        copies: cmd.copies,
        perplexity: cmd.perplexity,
        tsne_epochs: cmd.tsne_epochs,
        noise_std: cmd.noise_std,
        seed: cmd.seed,
        force: cmd.force,
    };
    for f in semantic_figures(&cmd.run_dir, (&header, &net), &data.sets, &cmd.out, &opts)? {
        println!("{}", f.display());
    }
    Ok(())
}
