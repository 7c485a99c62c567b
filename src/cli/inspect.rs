//! `evaluate`, `predict`, `robustness` and `weights`: what a trained run does.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;

use ladder::attack::{AttackKind, AttackSettings, Norm};
use ladder::data::images::{image_files, is_image_file, load_images};
use ladder::data::inputs::{RowValues, read_inputs};
use ladder::eval::argmax;
use ladder::eval::robustness::csv_field;
use ladder::experiment::export::{is_export, load_for_new_inputs, load_model};
use ladder::experiment::robustness::{RobustnessOptions, robustness, weight_pictures};
use ladder::experiment::run::{SUMMARY_FILE, read_json, runs_data};

use super::args::{DataArgs, DeviceArgs, parse_levels};

#[derive(Args)]
pub struct EvaluateCmd {
    /// The run directory.
    pub run_dir: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
}

#[derive(Args)]
pub struct PredictCmd {
    /// The run directory or exported (.safetensors) network.
    pub run_dir: PathBuf,
    /// The inputs, of the model's image size: an IDX image file (raw or gzipped), a CIFAR-10/100
    /// binary batch (.bin), a CSV file of one example per row (.csv: pixels in [0, 1] in
    /// channel-major order, or a CSV-trained model's feature columns; a first line that is not
    /// all numbers is a header), a PNG or JPEG file, or a directory of PNG and JPEG files (in
    /// name order).
    pub images: PathBuf,
    /// Write the labels here (one per line) instead of standard output; never the images file
    /// or a file of the run [default: standard output].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write CSV instead: the input (file name or IDX index), the label and each class's
    /// probability.
    #[arg(long)]
    pub probabilities: bool,
    /// Replace an existing --out file.
    #[arg(long)]
    pub force: bool,
    /// For a run that whitens its inputs (ZCA) or was trained on CSV data: a moved copy of the
    /// data the run recorded [default: the recorded data].
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
}

#[derive(Args)]
pub struct RobustnessCmd {
    /// Finished run directories (Ladder or plain; one seed's directory of a multi-seed run).
    #[arg(required = true)]
    run_dirs: Vec<PathBuf>,
    /// A name per run for the table and legends [default: the directory names].
    #[arg(long = "name")]
    names: Vec<String>,
    /// The thesis 004's unclipped FGSM steps ε, comma-separated (robustness.md, fgsm.png).
    #[arg(long, default_value = "0,0.05,0.1,0.15,0.2,0.25,0.3")]
    epsilons: String,
    /// Attacks within the clipped threat model, comma-separated: fgsm, pgd, apgd, square, or
    /// none (attacks.md, attacks.csv, attacks.png, with the worst case per example).
    #[arg(long, default_value = "fgsm,pgd,apgd,square")]
    attacks: String,
    /// The norm of the attacks' ball: linf or l2.
    #[arg(long, value_enum, default_value_t = Norm::Linf)]
    norm: Norm,
    /// The attacks' radii ε, comma-separated.
    #[arg(long, default_value = "0.1,0.3")]
    attack_epsilons: String,
    /// PGD's iterations.
    #[arg(long, default_value_t = 40)]
    pgd_steps: usize,
    /// PGD's random starts.
    #[arg(long, default_value_t = 1)]
    pgd_restarts: usize,
    /// PGD's step size [default: 2.5 ε / --pgd-steps].
    #[arg(long)]
    pgd_step_size: Option<f64>,
    /// Start PGD from a random point of the ball (false: from the clean input).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pgd_random_start: bool,
    /// APGD-CE's iterations.
    #[arg(long, default_value_t = 100)]
    apgd_steps: usize,
    /// Square Attack's queries per example.
    #[arg(long, default_value_t = 1000)]
    square_queries: usize,
    /// Attack only the first N test examples [default: all of them].
    #[arg(long)]
    attack_examples: Option<usize>,
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
    #[command(flatten)]
    device: DeviceArgs,
}

#[derive(Args)]
pub struct PlotCmd {
    /// Run directories (any method; a multi-seed directory is drawn as the mean over its
    /// seeds with a band of one standard deviation).
    #[arg(required = true)]
    run_dirs: Vec<PathBuf>,
    /// A name per run for the legends [default: the directory names].
    #[arg(long = "name")]
    names: Vec<String>,
    /// Where costs.png, costs.svg, errors.png and errors.svg go.
    #[arg(long, default_value = "curves")]
    out: PathBuf,
    /// Replace the figures of an earlier plot in --out.
    #[arg(long)]
    force: bool,
}

/// The formats `ladder export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Safetensors,
}

#[derive(Args)]
pub struct ExportCmd {
    /// The run directory: a Ladder (fully connected or convolutional), a plain network or a
    /// semantic-noise network.
    pub run_dir: PathBuf,
    /// For a run that whitens its inputs (ZCA) or was trained on CSV data: a moved copy of the
    /// data the run recorded, whose training set the whitening and the standardisation are
    /// fitted on [default: the recorded data].
    #[command(flatten)]
    pub data: DataArgs,
    /// The file format.
    #[arg(long, value_enum, default_value_t = ExportFormat::Safetensors)]
    pub format: ExportFormat,
    /// The file to write; never a file of the run.
    #[arg(long, default_value = "model.safetensors")]
    pub out: PathBuf,
    /// Replace an existing --out file.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args)]
pub struct WeightsCmd {
    /// The run directory (a fully connected Ladder or a plain network).
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

pub fn evaluate(cmd: EvaluateCmd) -> Result<()> {
    let dev = cmd.device.device()?;
    let run_dir = &cmd.run_dir;
    let model = load_model(run_dir, &dev)?;
    // An exported file records no data: it is tested on --data (or the embedded set).
    let data = match is_export(run_dir) {
        true => {
            let data = cmd.data.load(model.num_classes())?;
            eprintln!(
                "{} records no data: tested on {}",
                run_dir.display(),
                data.record.source.describe()
            );
            data
        }
        false => cmd.data.of_run(run_dir, model.num_classes())?,
    };
    let err = model.test_error(&data.sets)?;
    if let Ok(summary) = read_json::<serde_json::Value>(&run_dir.join(SUMMARY_FILE))
        && let Some(recorded) = summary.get("test_error_percent")
    {
        eprintln!("recorded test error: {recorded} %");
    }
    println!("test_error_percent: {err:.4}");
    Ok(())
}

pub fn predict(cmd: PredictCmd) -> Result<()> {
    if let Some(out) = &cmd.out {
        check_predict_out(out, &cmd.images, &cmd.run_dir, cmd.force)?;
    }
    let dev = cmd.device.device()?;
    let model = load_for_new_inputs(&cmd.run_dir, &cmd.data.request()?, &dev)?;
    let images = &cmd.images;
    let (names, probabilities) = if images.is_dir() || is_image_file(images) {
        let files = image_files(images)?;
        let k = model.num_classes();
        // Grey first (MNIST-like models), then colour (CIFAR-like ones).
        let grey = model.probabilities(load_images(&files, 1, k)?);
        let p = match grey {
            Ok(p) => p,
            Err(e) => model
                .probabilities(load_images(&files, 3, k)?)
                .map_err(|_| e)
                .with_context(|| {
                    format!("{}: neither as grey nor as colour images", images.display())
                })?,
        };
        let names: Vec<String> = files
            .iter()
            .map(|f| {
                f.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        (names, p)
    } else {
        let values = match model.preprocessing().standardise {
            Some(_) => RowValues::Features,
            None => RowValues::Pixels,
        };
        let raw = read_inputs(images, values, model.num_classes())?;
        let (n, shape) = (raw.n, raw.image_shape.clone());
        let p = model
            .probabilities(raw)
            .with_context(|| format!("{} (inputs of shape {shape:?})", images.display()))?;
        ((0..n).map(|i| i.to_string()).collect(), p)
    };
    let text: String = if cmd.probabilities {
        let k = probabilities.first().map_or(0, Vec::len);
        let mut t = String::from("input,label");
        t.extend((0..k).map(|c| format!(",p_{c}")));
        t.push('\n');
        for (name, p) in names.iter().zip(&probabilities) {
            t.push_str(&format!("{},{}", csv_field(name), argmax(p)));
            t.extend(p.iter().map(|v| format!(",{v:.6}")));
            t.push('\n');
        }
        t
    } else {
        probabilities
            .iter()
            .map(|p| format!("{}\n", argmax(p)))
            .collect()
    };
    match &cmd.out {
        Some(path) => ladder::train::checkpoint::write_atomic(path, text.as_bytes())?,
        None => print!("{text}"),
    }
    Ok(())
}

/// Where `out` would be written, resolved (`None` when its folder does not exist yet).
fn resolved(out: &Path) -> Option<PathBuf> {
    let out_dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::canonicalize(out_dir)
        .ok()
        .map(|d| d.join(out.file_name().unwrap_or_default()))
}

/// An output file of a command on a run (`predict --out`, `export --out`) never lies inside the
/// run directory, and replaces an earlier output only with `--force`.
fn check_out(out: &Path, run_dir: &Path, force: bool) -> Result<()> {
    if let (Some(t), Ok(run)) = (resolved(out), std::fs::canonicalize(run_dir))
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

/// `predict --out` never writes over its input either.
fn check_predict_out(out: &Path, images: &Path, run_dir: &Path, force: bool) -> Result<()> {
    let target = resolved(out);
    if target.is_some() && target == std::fs::canonicalize(images).ok() {
        bail!(
            "--out {} is the images file being labelled: choose another file",
            out.display()
        );
    }
    check_out(out, run_dir, force)
}

/// Each run directory with its `--name`, or its directory name.
fn named_runs(dirs: &[PathBuf], names: &[String]) -> Result<Vec<(String, PathBuf)>> {
    if !names.is_empty() && names.len() != dirs.len() {
        bail!(
            "{} names for {} run directories: give one --name per run or none",
            names.len(),
            dirs.len()
        );
    }
    Ok(dirs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let name = names.get(i).cloned().unwrap_or_else(|| {
                d.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| d.display().to_string())
            });
            (name, d.clone())
        })
        .collect())
}

pub fn plot(cmd: PlotCmd) -> Result<()> {
    let runs = named_runs(&cmd.run_dirs, &cmd.names)?;
    for f in ladder::experiment::curves::plot_runs(&runs, &cmd.out, cmd.force)? {
        println!("{}", f.display());
    }
    Ok(())
}

pub fn robustness_cmd(cmd: RobustnessCmd) -> Result<()> {
    let runs = named_runs(&cmd.run_dirs, &cmd.names)?;
    let attacks = match cmd.attacks.trim() {
        "none" => Vec::new(),
        list => list
            .split(',')
            .map(|a| a.parse::<AttackKind>().map_err(anyhow::Error::msg))
            .collect::<Result<Vec<_>>>()?,
    };
    let opts = RobustnessOptions {
        epsilons: parse_levels(&cmd.epsilons, "--epsilons")?,
        sigmas: parse_levels(&cmd.sigmas, "--sigmas")?,
        seed: cmd.seed,
        attacks,
        norm: cmd.norm,
        attack_epsilons: parse_levels(&cmd.attack_epsilons, "--attack-epsilons")?,
        attack_settings: AttackSettings {
            pgd_steps: cmd.pgd_steps,
            pgd_restarts: cmd.pgd_restarts,
            pgd_step_size: cmd.pgd_step_size,
            pgd_random_start: cmd.pgd_random_start,
            apgd_steps: cmd.apgd_steps,
            square_queries: cmd.square_queries,
            seed: cmd.seed,
            ..AttackSettings::default()
        },
        attack_examples: cmd.attack_examples,
        force: cmd.force,
    };
    let dev = cmd.device.device()?;
    // Run directories say which data they were trained on; exported files do not.
    let dirs: Vec<&Path> = runs
        .iter()
        .map(|(_, d)| d.as_path())
        .filter(|d| !is_export(d))
        .collect();
    let data = match dirs.is_empty() {
        true => {
            let data = cmd.data.load(cmd.num_classes)?;
            let source = data.record.source.describe();
            eprintln!("exported files record no data: tested on {source}");
            data
        }
        false => runs_data(&dirs, &cmd.data.request()?, cmd.num_classes)?,
    };
    let mut say = |line: &str| eprintln!("{line}");
    let (table, attacks) = robustness(&runs, &data.sets.test, &opts, &cmd.out, &dev, &mut say)?;
    print!("{}", table.to_markdown());
    if let Some(attacks) = attacks {
        print!("{}", attacks.to_markdown());
    }
    println!("written to {}", cmd.out.display());
    Ok(())
}

pub fn export(cmd: ExportCmd) -> Result<()> {
    check_out(&cmd.out, &cmd.run_dir, cmd.force)?;
    let dev = ladder::device::training_device(ladder::device::DeviceKind::Cpu)?;
    let model = load_for_new_inputs(&cmd.run_dir, &cmd.data.request()?, &dev)?;
    let exported = ladder::experiment::export::export(&model)?;
    match cmd.format {
        ExportFormat::Safetensors => exported.save(&cmd.out)?,
    }
    println!("{}", cmd.out.display());
    Ok(())
}

pub fn weights(cmd: WeightsCmd) -> Result<()> {
    let dev = ladder::device::training_device(ladder::device::DeviceKind::Cpu)?;
    let model = load_model(&cmd.run_dir, &dev)?;
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
