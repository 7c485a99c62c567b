//! `ladder robustness` and `ladder weights`: trained models read back from their run
//! directories (any method), measured on perturbed test sets, and drawn.

use std::path::{Path, PathBuf};

use burn::prelude::*;

use crate::attack::AttackTable;
use crate::attack::{AttackKind, AttackSettings, Norm};
use crate::data::Dataset;
use crate::error::{LadderError, Result};
use crate::eval::robustness::RobustnessTable;
use crate::experiment::plots::{Series, TileLabels, line_chart, tile_grid};
use crate::experiment::run::output_dir;
pub use crate::experiment::trained::TrainedModel;
use crate::ops::linear::matmul;
use crate::train::checkpoint::write_atomic;

/// Test-set perturbation levels and the seed of the Gaussian noise; the attacks, their radii
/// and settings.
#[derive(Debug, Clone)]
pub struct RobustnessOptions {
    /// The thesis 004's unclipped FGSM steps.
    pub epsilons: Vec<f64>,
    pub sigmas: Vec<f64>,
    pub seed: u64,
    /// The attacks of today's standard (none: only the thesis's tables).
    pub attacks: Vec<AttackKind>,
    pub norm: Norm,
    pub attack_epsilons: Vec<f64>,
    pub attack_settings: AttackSettings,
    /// Attack the first this many test examples (`None`: all of them).
    pub attack_examples: Option<usize>,
    /// Replace the tables and plots of an earlier measurement in the output directory.
    pub force: bool,
}

/// The files [`robustness`] writes (and with attacks, [`attack_plot`] of each and of the
/// worst case).
pub const ROBUSTNESS_FILES: [&str; 6] = [
    "robustness.csv",
    "robustness.md",
    "fgsm.png",
    "gaussian.png",
    "attacks.csv",
    "attacks.md",
];

/// The picture of one attack's (or the worst case's) accuracy against ε, a curve per model.
pub fn attack_plot(what: &str) -> String {
    format!("attacks-{what}.png")
}

fn output_files(opts: &RobustnessOptions) -> Vec<String> {
    let mut files: Vec<String> = ROBUSTNESS_FILES.iter().map(|f| f.to_string()).collect();
    if !opts.attacks.is_empty() {
        files.extend(opts.attacks.iter().map(|a| attack_plot(&a.to_string())));
        files.push(attack_plot("worst-case"));
    }
    files
}
/// The files [`weight_pictures`] writes.
pub const WEIGHT_FILES: [&str; 2] = ["first-layer.png", "class-patterns.png"];

/// Refuses perturbation levels and attack settings no measurement can honour.
fn check_options(opts: &RobustnessOptions) -> Result<()> {
    if opts
        .epsilons
        .iter()
        .chain(&opts.sigmas)
        .chain(&opts.attack_epsilons)
        .any(|v| !(v.is_finite() && *v >= 0.0))
    {
        return Err(LadderError::Setting(
            "perturbation levels must be finite numbers ≥ 0".into(),
        ));
    }
    opts.attack_settings.validate()?;
    if opts.attacks.contains(&AttackKind::Square) && opts.norm != Norm::Linf {
        return Err(LadderError::Setting(
            "Square Attack is implemented for the L∞ norm only: drop it from --attacks for \
             --norm l2"
                .into(),
        ));
    }
    if opts.attack_examples == Some(0) {
        return Err(LadderError::Setting(
            "--attack-examples must be at least 1".into(),
        ));
    }
    Ok(())
}

/// One measurement of [`measure_model`]: the accuracy on a perturbed test set.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RobustnessRow {
    /// `thesis` (the thesis 004's unclipped FGSM and Gaussian noise) or `attacks` (the
    /// clipped threat model).
    pub table: &'static str,
    /// `fgsm` or `gaussian` (thesis); `none` (clean), an attack or `worst-case` (attacks).
    pub perturbation: String,
    /// The attacks' norm; `None` for the thesis's perturbations.
    pub norm: Option<String>,
    /// ε, or σ of the Gaussian noise.
    pub level: f64,
    pub accuracy_percent: f64,
}

/// The thesis's tables and the attacks of `opts` for one model, on `test` as a caller holds
/// it (preprocessed as the model's run did), as rows: what `ladder robustness` writes to
/// `robustness.csv` and `attacks.csv`, unrounded.
pub fn measure_model(
    model: &TrainedModel,
    test: Dataset,
    opts: &RobustnessOptions,
    report: &mut dyn FnMut(&str),
) -> Result<Vec<RobustnessRow>> {
    check_options(opts)?;
    let test = model.preprocessing().apply_to_new(test)?;
    if model.input_dim() != test.dim {
        return Err(LadderError::Setting(format!(
            "the model takes {} inputs but the test images have {}",
            model.input_dim(),
            test.dim
        )));
    }
    let models = [("model".to_string(), model)];
    let thesis = RobustnessTable::measure(&models, &test, &opts.epsilons, &opts.sigmas, opts.seed);
    let row =
        |table, perturbation: &str, norm: Option<String>, level, accuracy_percent| RobustnessRow {
            table,
            perturbation: perturbation.into(),
            norm,
            level,
            accuracy_percent,
        };
    let mut rows = Vec::new();
    for (kind, levels, acc) in [
        ("fgsm", &thesis.epsilons, &thesis.fgsm[0]),
        ("gaussian", &thesis.sigmas, &thesis.gaussian[0]),
    ] {
        for (&l, &a) in levels.iter().zip(acc) {
            rows.push(row("thesis", kind, None, l, a));
        }
    }
    if opts.attacks.is_empty() {
        return Ok(rows);
    }
    let t = attack_table(&models, &test, opts, report)?;
    let norm = || Some(t.norm.to_string());
    rows.push(row("attacks", "none", norm(), 0.0, t.clean[0]));
    for (e, &eps) in t.epsilons.iter().enumerate() {
        for (a, kind) in t.attacks.iter().enumerate() {
            rows.push(row(
                "attacks",
                &kind.to_string(),
                norm(),
                eps,
                t.accuracy[0][e][a],
            ));
        }
        rows.push(row("attacks", "worst-case", norm(), eps, t.worst[0][e]));
    }
    Ok(rows)
}

/// Measures every `(name, run directory)` on `test` and writes `robustness.csv`,
/// `robustness.md`, `fgsm.png` and `gaussian.png` (the thesis 004's unclipped FGSM and Gaussian
/// noise) into `out`, and with attacks, `attacks.csv`, `attacks.md` and `attacks.png`;
/// `report` sees progress lines and the gradient-masking warnings.
pub fn robustness(
    runs: &[(String, PathBuf)],
    test: &Dataset,
    opts: &RobustnessOptions,
    out: &Path,
    device: &Device,
    report: &mut dyn FnMut(&str),
) -> Result<(RobustnessTable, Option<AttackTable>)> {
    check_options(opts)?;
    let mut models: Vec<(String, TrainedModel)> = Vec::with_capacity(runs.len());
    for (name, dir) in runs {
        let m = crate::experiment::export::load_model(dir, device)?;
        if let Some((first, other)) = models.first()
            && other.preprocessing() != m.preprocessing()
        {
            return Err(LadderError::Setting(format!(
                "{} and {first} preprocess their inputs differently: they cannot share one \
                 perturbed test set",
                dir.display()
            )));
        }
        models.push((name.clone(), m));
    }
    // The perturbations act on the inputs as the models see them.
    let test = match models.first() {
        Some((_, m)) => m.preprocessing().apply_to_loaded(test.clone())?,
        None => test.clone(),
    };
    for ((_, m), (_, dir)) in models.iter().zip(runs) {
        let input = m.input_dim();
        if input != test.dim {
            return Err(LadderError::Setting(format!(
                "{}: the model takes {input} inputs but the test images have {}",
                dir.display(),
                test.dim
            )));
        }
    }
    let files = output_files(opts);
    output_dir(
        out,
        &files.iter().map(String::as_str).collect::<Vec<_>>(),
        opts.force,
    )?;
    let table = RobustnessTable::measure(&models, &test, &opts.epsilons, &opts.sigmas, opts.seed);
    write_atomic(&out.join(ROBUSTNESS_FILES[0]), table.to_csv().as_bytes())?;
    write_atomic(
        &out.join(ROBUSTNESS_FILES[1]),
        table.to_markdown().as_bytes(),
    )?;
    let series = |levels: &[f64], acc: &[Vec<f64>]| -> Vec<(String, Vec<(f64, f64)>)> {
        table
            .models
            .iter()
            .zip(acc)
            .map(|(n, a)| {
                (
                    n.clone(),
                    levels.iter().copied().zip(a.iter().copied()).collect(),
                )
            })
            .collect()
    };
    for (file, title, x, data) in [
        (
            ROBUSTNESS_FILES[2],
            "Accuracy on the FGSM test set",
            "ε",
            series(&table.epsilons, &table.fgsm),
        ),
        (
            ROBUSTNESS_FILES[3],
            "Accuracy on the Gaussian-noise test set",
            "σ",
            series(&table.sigmas, &table.gaussian),
        ),
    ] {
        let s: Vec<Series> = data
            .iter()
            .map(|(n, p)| Series {
                name: n,
                points: p.clone(),
            })
            .collect();
        line_chart(&out.join(file), title, x, &s)?;
    }
    let attacks = match opts.attacks.is_empty() {
        true => None,
        false => Some(measure_attacks(&models, &test, opts, out, report)?),
    };
    Ok((table, attacks))
}

/// The attacks of `opts` on the first `opts.attack_examples` of `test`; `report` sees a line
/// per measurement and the gradient-masking warnings.
fn attack_table<C: crate::eval::Classifier>(
    models: &[(String, C)],
    test: &Dataset,
    opts: &RobustnessOptions,
    report: &mut dyn FnMut(&str),
) -> Result<AttackTable> {
    let subset = match opts.attack_examples {
        Some(k) if k < test.len() => &test.subset(&(0..k).collect::<Vec<_>>()),
        _ => test,
    };
    let table = AttackTable::measure(
        models,
        subset,
        opts.norm,
        &opts.attack_epsilons,
        &opts.attacks,
        &opts.attack_settings,
        report,
    )?;
    for w in table.warnings() {
        report(&format!("warning: {w}"));
    }
    Ok(table)
}

/// The attack table on the first `opts.attack_examples` of `test`, written as `attacks.csv`,
/// `attacks.md` and a picture per attack and of the worst case (accuracy against ε, the clean
/// accuracy at 0, a curve per model).
fn measure_attacks(
    models: &[(String, TrainedModel)],
    test: &Dataset,
    opts: &RobustnessOptions,
    out: &Path,
    report: &mut dyn FnMut(&str),
) -> Result<AttackTable> {
    let table = attack_table(models, test, opts, report)?;
    write_atomic(&out.join(ROBUSTNESS_FILES[4]), table.to_csv().as_bytes())?;
    write_atomic(
        &out.join(ROBUSTNESS_FILES[5]),
        table.to_markdown().as_bytes(),
    )?;
    let curve = |m: usize, acc: &dyn Fn(usize) -> f64| {
        let mut p = vec![(0.0, table.clean[m])];
        p.extend(
            table
                .epsilons
                .iter()
                .enumerate()
                .map(|(e, &eps)| (eps, acc(e))),
        );
        p
    };
    let draw = |what: &str, title: &str, acc: &dyn Fn(usize, usize) -> f64| {
        let points: Vec<Vec<(f64, f64)>> = (0..table.models.len())
            .map(|m| curve(m, &|e| acc(m, e)))
            .collect();
        let series: Vec<Series> = table
            .models
            .iter()
            .zip(points)
            .map(|(name, points)| Series { name, points })
            .collect();
        line_chart(&out.join(attack_plot(what)), title, "ε", &series)
    };
    let ball = format!("{} ball, inputs clipped", table.norm);
    for (a, kind) in table.attacks.iter().enumerate() {
        let title = format!("Accuracy under {kind} ({ball})");
        draw(&kind.to_string(), &title, &|m, e| table.accuracy[m][e][a])?;
    }
    let title = format!("Robust accuracy, worst case over the attacks ({ball})");
    draw("worst-case", &title, &|m, e| table.worst[m][e])?;
    Ok(table)
}

/// The values of a `[rows, cols]` tensor, column by column (one column = one unit's or one
/// class's input weights).
fn columns(t: Tensor<2>) -> Vec<Vec<f32>> {
    let [rows, cols] = t.dims();
    let v = t
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32 weights");
    (0..cols)
        .map(|c| (0..rows).map(|r| v[r * cols + c]).collect())
        .collect()
}

/// Writes `first-layer.png` (the input weights of the first `max_units` units of layer 1, each
/// as an image) and `class-patterns.png` (the columns of W^(1)·…·W^(L), one image per class,
/// 004 Sec. 3.4.5) into `out`. `shape` is the input image's (height, width).
pub fn weight_pictures(
    model: &TrainedModel,
    shape: (usize, usize),
    max_units: usize,
    out: &Path,
    force: bool,
) -> Result<(PathBuf, PathBuf)> {
    let weights = model.weights()?;
    let input = weights[0].dims()[0];
    if shape.0 * shape.1 != input {
        return Err(LadderError::Setting(format!(
            "an image of {}×{} does not match the model's {input} inputs",
            shape.0, shape.1
        )));
    }
    output_dir(out, &WEIGHT_FILES, force)?;
    let mut units = columns(weights[0].clone());
    units.truncate(max_units.max(1));
    let first = out.join(WEIGHT_FILES[0]);
    let per_row = (units.len() as f64).sqrt().ceil() as usize;
    let title = format!(
        "First-layer weights: the input weights of units 1–{}",
        units.len()
    );
    let labels = TileLabels {
        title,
        ..TileLabels::default()
    };
    tile_grid(&first, &units, shape, per_row, 2, &labels)?;
    // The fixed-order product, so that the figure is the same on every host.
    let product = weights[1..]
        .iter()
        .fold(weights[0].clone(), |acc, w| matmul(acc, w.clone()));
    let classes = columns(product);
    let patterns = out.join(WEIGHT_FILES[1]);
    let labels = TileLabels {
        title: "Class patterns: the columns of W1·…·WL, one per class (0, 1, …)".into(),
        rows: Vec::new(),
        columns: (0..classes.len()).map(|c| c.to_string()).collect(),
    };
    tile_grid(
        &patterns,
        &classes,
        shape,
        classes.len().min(10),
        4,
        &labels,
    )?;
    Ok((first, patterns))
}
