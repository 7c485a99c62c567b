//! How finely VAT's power iteration resolves its direction in f32 (RESULTS.md, issue 37):
//! on the first 100 embedded training digits, the full Ladder's 784-1000-500-250-250-250-10
//! encoder at its initialisation (seed 1) and one random start, the mean cosine between the
//! perturbation r_vadv found with each ξ and the one found with ξ = 1e-3, and with the start.
//!
//!   cargo run --release --example vat_xi

use burn::prelude::*;
use ladder::data::load_embedded;
use ladder::model::{LadderBatch, LadderNetwork};
use ladder::noise::{RngStream, gaussian_vec, stream_rng};
use ladder::train::TrainConfig;
use ladder::train::config::Method;

const ROWS: usize = 100;

fn values(t: Tensor<2>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32")
}

/// The mean over rows of the cosine between the rows of `a` and `b`, `dim` wide.
fn mean_cosine(a: &[f32], b: &[f32], dim: usize) -> f64 {
    let rows = a.chunks(dim).zip(b.chunks(dim));
    let total: f64 = rows
        .map(|(ra, rb)| {
            let dot: f64 = ra.iter().zip(rb).map(|(x, y)| *x as f64 * *y as f64).sum();
            let norm = |r: &[f32]| r.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
            dot / (norm(ra) * norm(rb))
        })
        .sum();
    total / (a.len() / dim) as f64
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = Device::flex().autodiff();
    let data = load_embedded(10)?;
    let dim = data.train.dim;
    let x = data.train.rows(0..ROWS).into_owned();
    let x = Tensor::<2>::from_data(TensorData::new(x, [ROWS, dim]), &device);
    let batch = LadderBatch {
        x_labeled: x.clone(),
        y_labeled: Tensor::from_data(TensorData::new(vec![0i64; ROWS], [ROWS]), &device),
        x_unlabeled: x,
    };
    let mut rng = stream_rng(3, RngStream::VirtualAdversarial, 0, 0);
    let start = gaussian_vec(&mut rng, ROWS * dim, 1.0);
    let d0 = Tensor::<2>::from_data(TensorData::new(start.clone(), [ROWS, dim]), &device);
    let vat = Method::Vat.apply(TrainConfig::default());
    let r_vadv = |xi: f64| -> Result<Vec<f32>, Box<dyn std::error::Error>> {
        let spec = TrainConfig {
            vat_xi: xi,
            ..vat.clone()
        }
        .ladder_spec(&[28, 28])?;
        let model = LadderNetwork::new(&spec, 1, &device);
        let r = model.virtual_adversarial(&spec, &batch, d0.clone());
        Ok(values(r.expect("VAT is on")))
    };
    let reference = r_vadv(1e-3)?;
    println!("| ξ | cos with ξ = 1e-3 | cos with the random start |");
    println!("| ---: | ---: | ---: |");
    for xi in [1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1] {
        let r = r_vadv(xi)?;
        println!(
            "| {xi:e} | {:.4} | {:.4} |",
            mean_cosine(&r, &reference, dim),
            mean_cosine(&r, &start, dim)
        );
    }
    Ok(())
}
