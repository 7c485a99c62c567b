//! The pictures of 003 Sec. 4.4: inputs decoded from randomly and class-conditionally perturbed
//! latents (Fig. 5), and a 2-D t-SNE of latent vectors where training examples and their
//! perturbed copies are drawn over the examples the network never saw (Fig. 6).

use std::path::{Path, PathBuf};

use burn::prelude::*;
use plotters::prelude::*;
use rand::Rng;
use rand::seq::SliceRandom;

use crate::data::preprocess::centre_crop;
use crate::data::{Dataset, TrainTest};
use crate::error::{LadderError, Result};
use crate::eval::batch_tensors;
use crate::experiment::plots::{Drawn, TileLabels, draw_png, legend, tile_grid};
use crate::experiment::run::output_dir;
use crate::experiment::semantic_run::SemanticModelHeader;
use crate::model::semantic::{Perturbation, SemanticNet};
use crate::noise::{RngStream, gaussian_vec, stream_rng};
use crate::train::semantic::SemanticData;

/// The files [`semantic_figures`] writes.
pub const FIGURE_FILES: [&str; 3] = [
    "figure5-random.png",
    "figure5-class-conditional.png",
    "figure6-tsne.png",
];

/// What the pictures show.
#[derive(Debug, Clone, PartialEq)]
pub struct FigureOptions {
    /// Training examples in Fig. 5 (one per class first).
    pub examples: usize,
    /// Perturbed reconstructions per example in Fig. 5.
    pub samples: usize,
    /// Unseen examples drawn as Fig. 6's background.
    pub background: usize,
    /// Classes whose training examples Fig. 6 draws (0, 1 and 9 in the paper).
    pub classes: Vec<u32>,
    /// Perturbed copies of each training example in Fig. 6.
    pub copies: usize,
    /// t-SNE perplexity and iterations.
    pub perplexity: f32,
    pub tsne_epochs: usize,
    /// Replace the figures of an earlier call in the output directory.
    pub force: bool,
    /// Noise std of the perturbations (the run's own when `None`).
    pub noise_std: Option<f64>,
    pub seed: u64,
}

impl Default for FigureOptions {
    fn default() -> Self {
        FigureOptions {
            examples: 8,
            samples: 5,
            background: 3000,
            classes: vec![0, 1, 9],
            copies: 3,
            perplexity: 30.0,
            tsne_epochs: 1000,
            noise_std: None,
            seed: 1,
            force: false,
        }
    }
}

/// Draws Fig. 5 and Fig. 6 for the network of the run in `run_dir` (as
/// [`load_semantic_model`](crate::experiment::semantic_run::load_semantic_model) read it),
/// trained on `data`; returns the files.
pub fn semantic_figures(
    run_dir: &Path,
    (header, net): (&SemanticModelHeader, &SemanticNet),
    data: &TrainTest,
    out: &Path,
    opts: &FigureOptions,
) -> Result<Vec<PathBuf>> {
    let split = SemanticData::new(data, &header.config)?;
    let same_data = split.mean.len() == header.mean.len()
        && split
            .mean
            .iter()
            .zip(&header.mean)
            .all(|(a, b)| (a - b).abs() <= 1e-6);
    if !same_data {
        return Err(LadderError::Setting(format!(
            "{} was trained on other data: the training set's mean image differs (pass the \
             run's --data)",
            run_dir.display()
        )));
    }
    if opts.examples == 0 || opts.samples == 0 || opts.copies == 0 {
        return Err(LadderError::Setting(
            "examples, samples and copies must be positive".into(),
        ));
    }
    let noise_std = opts.noise_std.unwrap_or(header.config.noise_std) as f32;
    let train = match header.config.crop {
        0 => split.train.clone(),
        side => centre_crop(&split.train, side)?,
    };
    let mean = mean_as_input(&split, header.config.crop)?;
    output_dir(out, &FIGURE_FILES, opts.force)?;
    let mut files = Vec::new();
    for (kind, name) in [
        (Perturbation::Random, FIGURE_FILES[0]),
        (Perturbation::ClassConditional, FIGURE_FILES[1]),
    ] {
        let path = out.join(name);
        reconstructions(net, &train, &mean, kind, noise_std, opts, &path)?;
        files.push(path);
    }
    let path = out.join(FIGURE_FILES[2]);
    tsne_figure(net, &train, &split.unseen, noise_std, opts, &path)?;
    files.push(path);
    Ok(files)
}

/// The mean image cropped like the network's input.
fn mean_as_input(split: &SemanticData, crop: usize) -> Result<Vec<f32>> {
    let ds = Dataset {
        images: split.mean.clone().into(),
        labels: vec![0],
        n: 1,
        dim: split.mean.len(),
        image_shape: split.train.image_shape.clone(),
        num_classes: split.train.num_classes,
    };
    Ok(match crop {
        0 => ds.images,
        side => centre_crop(&ds, side)?.images,
    }
    .all()
    .into_owned())
}

/// Rows `idx` of `ds` as an input batch.
fn rows_tensor(ds: &Dataset, idx: &[usize], device: &Device) -> Tensor<2> {
    batch_tensors(ds, idx, device).0
}

fn noise(rows: usize, units: usize, std: f32, key: (u64, u64), device: &Device) -> Tensor<2> {
    let mut rng = stream_rng(key.0, RngStream::Evaluation, key.1, 0);
    Tensor::from_data(
        TensorData::new(gaussian_vec(&mut rng, rows * units, std), [rows, units]),
        device,
    )
}

/// z′ = z + z_e for every row of `x` (eq. 6), with noise of the given std.
fn perturbed_latents(
    net: &SemanticNet,
    x: Tensor<2>,
    kind: Perturbation,
    std: f32,
    key: (u64, u64),
) -> Tensor<2> {
    let device = x.device();
    let rows = x.dims()[0];
    let trace = net.forward(x);
    let e = noise(rows, kind.noise_units(net), std, key, &device);
    trace.latent() + net.latent_noise(kind, &trace, e)
}

/// The first training example of each class, then the next ones, up to `n`.
fn one_per_class_first(train: &Dataset, n: usize) -> Vec<usize> {
    let mut picked = Vec::new();
    let mut seen = vec![false; train.num_classes];
    for (i, &c) in train.labels.iter().enumerate() {
        if !seen[c as usize] {
            seen[c as usize] = true;
            picked.push(i);
        }
    }
    let rest: Vec<usize> = (0..train.n).filter(|i| !picked.contains(i)).collect();
    picked.extend(rest);
    picked.truncate(n);
    picked
}

/// A picture of one channel per tile: colour images are shown as the mean of their channels.
fn display_tile(values: &[f32], mean: &[f32], channels: usize) -> Vec<f32> {
    let plane = values.len() / channels;
    (0..plane)
        .map(|p| {
            (0..channels)
                .map(|c| values[c * plane + p] + mean[c * plane + p])
                .sum::<f32>()
                / channels as f32
        })
        .collect()
}

/// Fig. 5: the originals on top, then `samples` rows decoded from perturbed latents.
fn reconstructions(
    net: &SemanticNet,
    train: &Dataset,
    mean: &[f32],
    kind: Perturbation,
    std: f32,
    opts: &FigureOptions,
    path: &Path,
) -> Result<()> {
    let device = net.weights[0].val().device();
    let idx = one_per_class_first(train, opts.examples);
    let shape = net.input_shape();
    let mut tiles: Vec<Vec<f32>> = idx
        .iter()
        .map(|&i| display_tile(&train.row(i), mean, shape.channels))
        .collect();
    for s in 0..opts.samples {
        let x = rows_tensor(train, &idx, &device);
        let z_p = perturbed_latents(net, x, kind, std, (opts.seed, s as u64 + 1));
        let rec = to_rows(net.reconstruct_input(z_p))?;
        tiles.extend(
            rec.chunks(shape.units())
                .map(|r| display_tile(r, mean, shape.channels)),
        );
    }
    let what = match kind {
        Perturbation::Random => "random",
        Perturbation::ClassConditional => "class-conditional",
    };
    let mut rows = vec!["original".to_string()];
    rows.extend((1..=opts.samples).map(|s| format!("decoded {s}")));
    let labels = TileLabels {
        title: format!("x decoded from {what} perturbations of z (003 Fig. 5)"),
        rows,
        columns: idx
            .iter()
            .map(|&i| format!("class {}", train.labels[i]))
            .collect(),
    };
    tile_grid(
        path,
        &tiles,
        (shape.height, shape.width),
        idx.len(),
        3,
        &labels,
    )
}

/// Latent vectors of `x` (clean), as rows.
fn latents(net: &SemanticNet, x: Tensor<2>) -> Result<Vec<f32>> {
    to_rows(net.forward(x).latent())
}

/// A tensor's values, row after row.
fn to_rows(t: Tensor<2>) -> Result<Vec<f32>> {
    t.into_data()
        .try_to_vec::<f32>()
        .map_err(|e| LadderError::Setting(format!("cannot read a tensor's values: {e:?}")))
}

/// Where each group of points sits in the joint t-SNE input.
struct TsnePoints {
    vectors: Vec<f32>,
    dim: usize,
    background_labels: Vec<u32>,
    train: std::ops::Range<usize>,
    random: std::ops::Range<usize>,
    class: std::ops::Range<usize>,
}

fn gather_points(
    net: &SemanticNet,
    train: &Dataset,
    unseen: &Dataset,
    std: f32,
    opts: &FigureOptions,
) -> Result<TsnePoints> {
    let device = net.weights[0].val().device();
    let mut order: Vec<usize> = (0..unseen.n).collect();
    order.shuffle(&mut stream_rng(opts.seed, RngStream::Evaluation, 0, 1));
    order.truncate(opts.background);
    let chosen: Vec<usize> = (0..train.n)
        .filter(|&i| opts.classes.contains(&train.labels[i]))
        .collect();
    if chosen.is_empty() {
        return Err(LadderError::Setting(format!(
            "no training example is of the classes {:?}",
            opts.classes
        )));
    }
    let mut vectors = Vec::new();
    for part in order.chunks(1000) {
        vectors.extend(latents(net, rows_tensor(unseen, part, &device))?);
    }
    let dim = net.latent_shape().units();
    let n_bg = order.len();
    vectors.extend(latents(net, rows_tensor(train, &chosen, &device))?);
    let repeated: Vec<usize> = (0..opts.copies).flat_map(|_| chosen.clone()).collect();
    for (k, kind) in [Perturbation::Random, Perturbation::ClassConditional]
        .into_iter()
        .enumerate()
    {
        let x = rows_tensor(train, &repeated, &device);
        let z_p = perturbed_latents(net, x, kind, std, (opts.seed, 100 + k as u64));
        vectors.extend(to_rows(z_p)?);
    }
    let n = chosen.len();
    let c = n * opts.copies;
    Ok(TsnePoints {
        vectors,
        dim,
        background_labels: order.iter().map(|&i| unseen.labels[i]).collect(),
        train: n_bg..n_bg + n,
        random: n_bg + n..n_bg + n + c,
        class: n_bg + n + c..n_bg + n + 2 * c,
    })
}

/// Barnes–Hut t-SNE (the `bhtsne` crate) from a seeded random start, so pictures repeat.
pub fn tsne_2d(
    vectors: &[f32],
    dim: usize,
    perplexity: f32,
    epochs: usize,
    seed: u64,
) -> Result<Vec<f32>> {
    let n = vectors.len() / dim.max(1);
    if n < 2 || (n - 1) < (3.0 * perplexity).ceil() as usize {
        return Err(LadderError::Setting(format!(
            "t-SNE with perplexity {perplexity} needs more than {} points; it has {n}",
            (3.0 * perplexity).ceil()
        )));
    }
    if vectors.iter().any(|v| !v.is_finite()) {
        return Err(LadderError::Setting(
            "the latent vectors are not finite".into(),
        ));
    }
    let rows: Vec<&[f32]> = vectors.chunks(dim).collect();
    let mut rng = stream_rng(seed, RngStream::Evaluation, 0, 2);
    let start: Vec<f32> = (0..2 * n).map(|_| rng.random_range(-1e-2..1e-2)).collect();
    let mut tsne: bhtsne::tSNE<f32, &[f32]> = bhtsne::tSNE::new(&rows);
    tsne.perplexity(perplexity)
        .epochs(epochs)
        .initial_embedding(start)
        .barnes_hut(0.5, |a, b| {
            a.iter()
                .zip(b.iter())
                .map(|(x, y)| (x - y) * (x - y))
                .sum::<f32>()
                .sqrt()
        });
    Ok(tsne.embedding())
}

/// Fig. 6: (a) training examples over the unseen ones, (b) with random and (c) with
/// class-conditional perturbed copies.
fn tsne_figure(
    net: &SemanticNet,
    train: &Dataset,
    unseen: &Dataset,
    std: f32,
    opts: &FigureOptions,
    path: &Path,
) -> Result<()> {
    let pts = gather_points(net, train, unseen, std, opts)?;
    let y = tsne_2d(
        &pts.vectors,
        pts.dim,
        opts.perplexity,
        opts.tsne_epochs,
        opts.seed,
    )?;
    let xy: Vec<(f64, f64)> = y.chunks(2).map(|p| (p[0] as f64, p[1] as f64)).collect();
    draw_png(path, |tmp| draw_tsne(tmp, &xy, &pts, opts))
}

/// Per class: the sums of x and y and the count of `points` with that label.
fn class_centres(points: &[(f64, f64)], labels: &[u32]) -> Vec<(f64, f64, usize)> {
    let classes = labels.iter().max().map_or(0, |&m| m as usize + 1);
    let mut sums = vec![(0.0, 0.0, 0usize); classes];
    for (&(x, y), &c) in points.iter().zip(labels) {
        let s = &mut sums[c as usize];
        *s = (s.0 + x, s.1 + y, s.2 + 1);
    }
    sums
}

fn draw_tsne(path: &Path, xy: &[(f64, f64)], pts: &TsnePoints, opts: &FigureOptions) -> Drawn {
    let (x0, x1, y0, y1) = xy.iter().fold(
        (
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ),
        |(a, b, c, d), &(x, y)| (a.min(x), b.max(x), c.min(y), d.max(y)),
    );
    let pad = |lo: f64, hi: f64| {
        let m = 0.03 * (hi - lo).max(1e-6);
        (lo - m)..(hi + m)
    };
    let root = BitMapBackend::new(path, (1800, 640)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((1, 3));
    let classes: Vec<String> = opts.classes.iter().map(u32::to_string).collect();
    let titles = [
        format!("(a) training examples of classes {}", classes.join(", ")),
        format!("(b) + {}× random perturbations", opts.copies),
        format!("(c) + {}× class-conditional perturbations", opts.copies),
    ];
    for (p, (area, title)) in panels.iter().zip(&titles).enumerate() {
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 20))
            .margin(10)
            .build_cartesian_2d(pad(x0, x1), pad(y0, y1))?;
        let bg = &xy[..pts.background_labels.len()];
        chart.draw_series(bg.iter().zip(&pts.background_labels).map(|(&at, &c)| {
            let colour = Palette99::pick(c as usize).mix(0.35);
            Circle::new(at, 2, colour.filled())
        }))?;
        // Each class's digit at the centre of its unseen examples.
        for (c, (sx, sy, n)) in class_centres(bg, &pts.background_labels)
            .into_iter()
            .enumerate()
        {
            if n > 0 {
                let at = (sx / n as f64, sy / n as f64);
                chart.draw_series(std::iter::once(Text::new(
                    c.to_string(),
                    at,
                    ("sans-serif", 22).into_font().color(&BLACK.mix(0.6)),
                )))?;
            }
        }
        let train = &xy[pts.train.clone()];
        let grey = Palette99::pick(0).mix(0.35);
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
            .label("unseen examples (colour: class; digit: its centre)")
            .legend(move |(x, y)| Circle::new((x + 10, y), 3, grey.filled()));
        if p == 0 {
            chart
                .draw_series(train.iter().map(|&at| Circle::new(at, 4, BLACK.filled())))?
                .label("training examples")
                .legend(|(x, y)| Circle::new((x + 10, y), 4, BLACK.filled()));
        } else {
            let copies = if p == 1 { &pts.random } else { &pts.class };
            chart
                .draw_series(
                    xy[copies.clone()]
                        .iter()
                        .map(|&at| Cross::new(at, 4, BLUE.stroke_width(2))),
                )?
                .label("perturbed copies of the training examples")
                .legend(|(x, y)| Cross::new((x + 10, y), 4, BLUE.stroke_width(2)));
            let yellow = RGBColor(235, 190, 0);
            chart
                .draw_series(train.iter().map(|&at| Circle::new(at, 4, yellow.filled())))?
                .label("training examples")
                .legend(move |(x, y)| Circle::new((x + 10, y), 4, yellow.filled()));
        }
        legend(&mut chart, SeriesLabelPosition::LowerLeft, 14)?;
    }
    root.present()?;
    Ok(())
}
