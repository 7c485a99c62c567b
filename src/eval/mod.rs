//! Evaluation: the clean encoder with each layer normalised by the moments of the whole
//! training set (not of the test batch), error rates and predictions.

use burn::prelude::*;

use crate::data::Dataset;
use crate::model::LadderNetwork;
use crate::model::batch_norm::Moments;

/// Rows per forward pass during evaluation: large enough for efficient matrix products, small
/// enough to bound memory on large data sets.
const CHUNK: usize = 2000;

fn chunks(rows: &[f32], dim: usize, device: &Device) -> Vec<Tensor<2>> {
    rows.chunks(CHUNK * dim)
        .map(|c| Tensor::from_data(TensorData::new(c.to_vec(), [c.len() / dim, dim]), device))
        .collect()
}

fn device_of(model: &LadderNetwork) -> Device {
    model.encoder.weights[0].val().device()
}

/// Per-layer moments of the clean encoder over all of `train`.
pub fn population_moments(model: &LadderNetwork, train: &Dataset) -> Vec<Moments> {
    let device = device_of(model);
    model
        .encoder
        .population_moments(&chunks(&train.images, train.dim, &device))
}

/// Predicted class of each row of `images` (row-major, `dim` wide).
pub fn predict(model: &LadderNetwork, moments: &[Moments], images: &[f32], dim: usize) -> Vec<u32> {
    let device = device_of(model);
    chunks(images, dim, &device)
        .into_iter()
        .flat_map(|x| {
            model
                .logits(x, moments)
                .argmax(1)
                .into_data()
                .convert::<i64>()
                .try_to_vec::<i64>()
                .expect("integer classes")
        })
        .map(|c| c as u32)
        .collect()
}

/// Percentage of `data` misclassified.
pub fn error_percent(model: &LadderNetwork, moments: &[Moments], data: &Dataset) -> f64 {
    let predicted = predict(model, moments, &data.images, data.dim);
    let wrong = predicted
        .iter()
        .zip(&data.labels)
        .filter(|(p, y)| p != y)
        .count();
    100.0 * wrong as f64 / data.len().max(1) as f64
}
