//! Building, training and evaluating a Ladder network from Rust code.
//!
//! `cargo run --release --example train_ladder` trains a small full Ladder with 100 labels on
//! the embedded MNIST-10k for a few epochs and prints its test error.

use burn::prelude::*;
use ladder::data::load_embedded;
use ladder::eval::error_percent;
use ladder::train::{PreparedData, TrainConfig, Trainer, never_stop};

fn main() -> ladder::Result<()> {
    let data = load_embedded(10)?;
    let config = TrainConfig {
        encoder_layers: ladder::model::spec::Written::known("500-250-10"),
        denoising_cost_x: ladder::model::spec::Written::known("1000,10,0.1,0.1"),
        labeled_samples: 100,
        epochs: 5,
        seed: 1,
        ..TrainConfig::default()
    };
    let prepared = PreparedData::new(&data, &config)?;
    let mut trainer = Trainer::new(config, &data.train.image_shape, &Device::flex().autodiff())?;
    while !trainer.is_finished() {
        let m = trainer
            .train_epoch(&prepared, &mut never_stop)?
            .expect("a silent observer never interrupts");
        println!("epoch {}: cost {:.3}", m.epoch, m.cost.total);
    }
    // Inference uses the batch-norm moments of the whole training set.
    let moments = trainer.population_moments(&prepared);
    let model = trainer.model().valid();
    println!(
        "test error: {:.2}%",
        error_percent(&model, &moments, &prepared.test)
    );
    Ok(())
}
