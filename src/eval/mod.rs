//! Evaluation: the clean encoder with each layer normalised by the moments of the whole
//! training set (not of the test batch), error rates and predictions.

pub mod robustness;

use burn::prelude::*;

use crate::data::{Dataset, Pixels};
use crate::model::LadderNetwork;
use crate::model::encoder::ChunkInputs;
use crate::ops::batch_norm::Moments;

/// Rows per forward pass during evaluation: large enough for efficient matrix products, small
/// enough to bound memory on large data sets.
const CHUNK: usize = 2000;

/// The most values one activation of a GPU pass may hold: 2²⁵ f32 (128 MiB), wgpu's default
/// limit on a storage buffer binding (lavapipe refuses larger buffers outright).
const GPU_VALUES: usize = 1 << 25;

/// Rows per inference pass on `device` for a network whose widest layer holds `widest`
/// values per row: `cpu_rows` on the CPU (so CPU results never depend on the network's
/// width), and on a GPU at most that many, as many as keep that layer within [`GPU_VALUES`].
pub fn pass_rows(device: &Device, widest: usize, cpu_rows: usize) -> usize {
    if crate::device::is_cpu(device) {
        return cpu_rows;
    }
    (GPU_VALUES / widest.max(1)).clamp(1, cpu_rows)
}

/// `rows` as the inputs of one pass, made one chunk at a time as the pass reaches them, in
/// [`pass_rows`] rows for a network whose widest layer holds `widest` values per row.
fn inputs<'a>(rows: &'a Pixels, dim: usize, device: &Device, widest: usize) -> ChunkInputs<'a> {
    let per = pass_rows(device, widest.max(dim), CHUNK);
    ChunkInputs::of_rows(rows, dim, per, device)
}

fn device_of(model: &LadderNetwork) -> Device {
    model.encoder.betas[0].val().device()
}

/// Per-layer moments of the clean classifier (the encoder, or Mean Teacher's teacher) over all
/// of `train`.
pub fn population_moments(model: &LadderNetwork, train: &Dataset) -> Vec<Moments> {
    let device = device_of(model);
    let widest = model.classifier().widest_units();
    model
        .classifier()
        .population_moments(&inputs(&train.images, train.dim, &device, widest))
}

/// Anything that maps inputs to class scores (softmax inputs): a Ladder with its population
/// moments, a plain network.
pub trait Classifier {
    fn logits(&self, x: Tensor<2>) -> Tensor<2>;
    /// Where the inputs must live.
    fn device(&self) -> Device;
    /// Values per row of its widest layer, which bounds the rows of one pass on a GPU
    /// (0: no wider than the input).
    fn widest_units(&self) -> usize {
        0
    }
}

/// A borrowed classifier classifies as its owner does (a model measured without giving it up).
impl<C: Classifier> Classifier for &C {
    fn logits(&self, x: Tensor<2>) -> Tensor<2> {
        (**self).logits(x)
    }
    fn device(&self) -> Device {
        (**self).device()
    }
    fn widest_units(&self) -> usize {
        (**self).widest_units()
    }
}

/// The Ladder at inference: the clean encoder with fixed per-layer moments.
#[derive(Debug, Clone)]
pub struct LadderClassifier {
    pub net: LadderNetwork,
    pub moments: Vec<Moments>,
}

impl Classifier for LadderClassifier {
    fn logits(&self, x: Tensor<2>) -> Tensor<2> {
        self.net.logits(x, &self.moments)
    }
    fn device(&self) -> Device {
        device_of(&self.net)
    }
    fn widest_units(&self) -> usize {
        self.net.classifier().widest_units()
    }
}

/// Rows `idx` of `ds` as an input batch and its classes.
pub fn batch_tensors(ds: &Dataset, idx: &[usize], device: &Device) -> (Tensor<2>, Tensor<1, Int>) {
    let mut v = Vec::with_capacity(idx.len() * ds.dim);
    for &i in idx {
        ds.images.extend_into(i * ds.dim..(i + 1) * ds.dim, &mut v);
    }
    let y: Vec<i64> = idx.iter().map(|&i| ds.labels[i] as i64).collect();
    (
        Tensor::from_data(TensorData::new(v, [idx.len(), ds.dim]), device),
        Tensor::from_data(TensorData::new(y, [idx.len()]), device),
    )
}

/// The index of the largest value (the first of equal ones, as `Tensor::argmax`): the class of
/// one row of logits or probabilities on the host.
pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// The argmax class of every row of `logits`.
pub fn argmax_classes(logits: Tensor<2>) -> Vec<u32> {
    logits
        .argmax(1)
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .expect("integer classes")
        .into_iter()
        .map(|c| c as u32)
        .collect()
}

/// Predicted class of each row of `images` (row-major, `dim` wide).
pub fn classify(clf: &impl Classifier, images: &Pixels, dim: usize, device: &Device) -> Vec<u32> {
    inputs(images, dim, device, clf.widest_units())
        .iter()
        .flat_map(|x| argmax_classes(clf.logits(x)))
        .collect()
}

/// Percentage of `predicted` that differ from `labels`.
pub fn error_of(predicted: &[u32], labels: &[u32]) -> f64 {
    let wrong = predicted.iter().zip(labels).filter(|(p, y)| p != y).count();
    100.0 * wrong as f64 / labels.len().max(1) as f64
}

/// Percentage of `data` that `clf` misclassifies.
pub fn error_percent_of(clf: &impl Classifier, data: &Dataset) -> f64 {
    error_of(
        &classify(clf, &data.images, data.dim, &clf.device()),
        &data.labels,
    )
}

/// Predicted class of each row of `images` by the Ladder `model` with `moments`.
pub fn predict(
    model: &LadderNetwork,
    moments: &[Moments],
    images: &Pixels,
    dim: usize,
) -> Vec<u32> {
    inputs(
        images,
        dim,
        &device_of(model),
        model.classifier().widest_units(),
    )
    .iter()
    .flat_map(|x| argmax_classes(model.logits(x, moments)))
    .collect()
}

/// Percentage of `data` the Ladder `model` with `moments` misclassifies.
pub fn error_percent(model: &LadderNetwork, moments: &[Moments], data: &Dataset) -> f64 {
    error_of(
        &predict(model, moments, &data.images, data.dim),
        &data.labels,
    )
}
