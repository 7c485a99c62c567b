//! The `train-semantic`, `semantic-table` and `semantic-figures` commands (paper 003).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use ladder::experiment::parse_seeds;
use ladder::experiment::semantic_figures::{FigureOptions, semantic_figures};
use ladder::experiment::semantic_run::load_semantic_model;
use ladder::experiment::semantic_run::{
    SEMANTIC_MODEL_FILE, SemanticGrid, semantic_table, train_semantic_grid,
};
use ladder::model::semantic::SemanticModel;
use ladder::train::semantic::SemanticConfig;

use crate::{DataArgs, device};

#[derive(Args)]
pub struct SemanticCmd {
    /// Start from 003 Sec. 4.2's settings for `mnist` (default) or `cifar`.
    #[arg(long)]
    preset: Option<String>,
    /// A TOML file of semantic-run fields; the flags below override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Models, comma-separated, or `all`: feedforward, recon-one, recon-all, proposed-base,
    /// perturb-random, perturb-class.
    #[arg(long, default_value = "perturb-class")]
    models: String,
    /// Training examples per class, comma-separated (k of Table 1; 0 = all).
    #[arg(long, default_value = "10")]
    per_class: String,
    /// Seeds (`1-3`, `1,2,5`): each draws its own training set and initialisation.
    #[arg(long, default_value = "1")]
    seeds: String,
    /// Layers below the output, e.g. convs:32:3:2:2-convs:64:3:2:2-convs:96:3:2:2-fc:128.
    #[arg(long)]
    layers: Option<String>,
    /// λ₁ (eq. 5, 7), λ (eq. 11), λ₀ (eq. 12).
    #[arg(long)]
    lambda_input: Option<f64>,
    /// λ₂ (eq. 5, 7).
    #[arg(long)]
    lambda_latent: Option<f64>,
    /// λᵢ of the hidden layers (eq. 12).
    #[arg(long)]
    lambda_hidden: Option<f64>,
    /// λ₃ (eq. 5, 7).
    #[arg(long)]
    lambda_supervised: Option<f64>,
    /// Std of the Gaussian noise on the [0, 1]-scaled z or y.
    #[arg(long)]
    noise_std: Option<f64>,
    #[arg(long)]
    lr: Option<f64>,
    #[arg(long)]
    lr_decay_factor: Option<f64>,
    #[arg(long)]
    lr_decay_every: Option<usize>,
    #[arg(long)]
    lr_decay_until: Option<usize>,
    #[arg(long)]
    epochs: Option<usize>,
    #[arg(long)]
    batch_size: Option<usize>,
    #[arg(long)]
    validation_samples: Option<usize>,
    #[arg(long)]
    mean_subtraction: Option<bool>,
    /// Train on random SIDE×SIDE crops, test on the centre crop (0 = off).
    #[arg(long)]
    crop: Option<usize>,
    #[arg(long)]
    flip: Option<bool>,
    #[arg(long)]
    num_classes: Option<usize>,
    #[command(flatten)]
    data: DataArgs,
    /// Root directory of the grid: runs go to ROOT/k{K}/{model}/seed-{S}.
    #[arg(long)]
    out: PathBuf,
    /// Retrain finished runs instead of reading them back.
    #[arg(long)]
    force: bool,
    #[arg(long, short)]
    quiet: bool,
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// Preset, then config file, then flags.
fn resolve(cmd: &SemanticCmd) -> Result<SemanticConfig> {
    let mut c = match &cmd.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
            SemanticConfig::from_toml_str(&text).with_context(|| path.display().to_string())?
        }
        None => SemanticConfig::preset(cmd.preset.as_deref().unwrap_or("mnist"))?,
    };
    macro_rules! over {
        ($($f:ident),*) => { $( if let Some(v) = &cmd.$f { c.$f = v.clone(); } )* };
    }
    over!(
        layers,
        lambda_input,
        lambda_latent,
        lambda_hidden,
        lambda_supervised,
        noise_std,
        lr,
        lr_decay_factor,
        lr_decay_every,
        lr_decay_until,
        epochs,
        batch_size,
        validation_samples,
        mean_subtraction,
        crop,
        flip,
        num_classes
    );
    c.validate()?;
    Ok(c)
}

fn parse_models(s: &str) -> Result<Vec<SemanticModel>> {
    if s.trim() == "all" {
        return Ok(SemanticModel::ALL.to_vec());
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
    let config = resolve(&cmd)?;
    let grid = SemanticGrid {
        models: parse_models(&cmd.models)?,
        per_class: parse_per_class(&cmd.per_class)?,
        seeds: parse_seeds(&cmd.seeds)?,
    };
    let dev = device(&cmd.device)?;
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
    #[arg(long, default_value_t = 30.0)]
    perplexity: f32,
    #[arg(long, default_value_t = 1000)]
    tsne_epochs: usize,
    /// Noise std of the perturbations (default: the run's).
    #[arg(long)]
    noise_std: Option<f64>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Replace the figures of an earlier call in --out.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    data: DataArgs,
    #[arg(long, default_value = "cpu")]
    device: String,
}

pub fn figures(cmd: SemanticFiguresCmd) -> Result<()> {
    let dev = device(&cmd.device)?;
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
