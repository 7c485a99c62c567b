//! Training throughput: examples per second of full training steps (cost, backward, Adam),
//! the median of several timed blocks after a warm-up.

use std::time::Instant;

use burn::prelude::*;
use serde::Serialize;

use crate::data::TrainTest;
use crate::data::preprocess::preprocessed;
use crate::error::{LadderError, Result};
use crate::train::{PreparedData, TrainConfig, Trainer};

/// What a benchmark measured.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Labelled plus unlabelled examples in one step's batch (labelled only without a
    /// decoder).
    pub examples_per_step: usize,
    /// Examples per second of each timed block.
    pub blocks: Vec<f64>,
    pub examples_per_second: f64,
    pub median_step_ms: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Times `repeats` blocks of `steps` training steps after `warmup` untimed steps.
pub fn bench(
    config: &TrainConfig,
    data: &TrainTest,
    device: &Device,
    warmup: usize,
    steps: usize,
    repeats: usize,
) -> Result<BenchReport> {
    if steps == 0 || repeats == 0 {
        return Err(LadderError::Setting(
            "bench needs at least one timed step and one repeat".into(),
        ));
    }
    let data = &*preprocessed(data, &config.preprocessing())?;
    let mut trainer = Trainer::new(config.clone(), &data.train.image_shape, device)?;
    let prepared = PreparedData::new(data, config)?;
    let b = config.batch_size;
    let per_epoch = trainer.steps_per_epoch(&prepared);
    let (unl, lab) = trainer.epoch_order(&prepared, 0);
    let run = |trainer: &mut Trainer, n: usize, offset: usize| -> Result<f64> {
        let start = Instant::now();
        for i in 0..n {
            let s = (offset + i) % per_epoch;
            let batch = trainer.batch(
                &prepared,
                &unl[s * b..(s + 1) * b],
                &lab[s * b..(s + 1) * b],
                (0, offset + i),
            )?;
            trainer.step(&batch, 0, offset + i, config.lr)?;
        }
        device
            .sync()
            .map_err(|e| LadderError::Setting(format!("device error: {e:?}")))?;
        Ok(start.elapsed().as_secs_f64())
    };
    run(&mut trainer, warmup, 0)?;
    // The supervised baseline's step sees the labelled rows only.
    let examples_per_step = trainer.model().corrupted_rows(b, b);
    let mut blocks = Vec::with_capacity(repeats);
    for r in 0..repeats {
        let secs = run(&mut trainer, steps, warmup + r * steps)?;
        blocks.push((steps * examples_per_step) as f64 / secs);
    }
    let eps = median(blocks.clone());
    Ok(BenchReport {
        examples_per_step,
        examples_per_second: eps,
        median_step_ms: 1000.0 * examples_per_step as f64 / eps,
        blocks,
    })
}
