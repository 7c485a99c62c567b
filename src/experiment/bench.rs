//! Training throughput: examples per second of full training steps (cost, backward, Adam),
//! the median of several timed blocks after a warm-up; and what an epoch spends besides
//! training: assembling batches and evaluating.

use std::time::Instant;

use burn::prelude::*;
use serde::Serialize;

use crate::data::TrainTest;
use crate::data::preprocess::preprocessed;
use crate::error::{LadderError, Result};
use crate::eval;
use crate::model::batch_norm::Moments;
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
    /// Training time of one epoch at the median step time.
    pub epoch_seconds: f64,
    /// Of a step, assembling its batch (data loading), median over the timed steps.
    pub batch_ms: f64,
    /// One per-epoch evaluation (moments of the monitoring sample, validation and test
    /// error), median of three.
    pub monitored_evaluation_seconds: f64,
    /// The run's final evaluation (moments of the whole training set), median of three.
    pub full_evaluation_seconds: f64,
}

impl BenchReport {
    /// Evaluation's share of an epoch that evaluates: the per-epoch one, and the final one
    /// were it done in an epoch.
    pub fn evaluation_shares(&self) -> (f64, f64) {
        let share = |e: f64| e / (self.epoch_seconds + e);
        (
            share(self.monitored_evaluation_seconds),
            share(self.full_evaluation_seconds),
        )
    }

    /// Batch assembly's share of a step.
    pub fn batch_share(&self) -> f64 {
        self.batch_ms / self.median_step_ms
    }
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
    let median_step_ms = 1000.0 * examples_per_step as f64 / eps;
    let batch_ms = median(
        (0..steps)
            .map(|s| -> Result<f64> {
                let s = s % per_epoch;
                let start = Instant::now();
                let rows = s * b..(s + 1) * b;
                trainer.batch(&prepared, &unl[rows.clone()], &lab[rows], (0, s))?;
                Ok(1000.0 * start.elapsed().as_secs_f64())
            })
            .collect::<Result<Vec<f64>>>()?,
    );
    let evaluation = |moments_of: &dyn Fn() -> Vec<Moments>| {
        let times = (0..3).map(|_| {
            let start = Instant::now();
            let moments = moments_of();
            let model = trainer.model().valid();
            if let Some(v) = &prepared.validation {
                eval::error_percent(&model, &moments, v);
            }
            eval::error_percent(&model, &moments, &prepared.test);
            start.elapsed().as_secs_f64()
        });
        median(times.collect())
    };
    let monitored = evaluation(&|| trainer.monitoring_moments(&prepared));
    let full = evaluation(&|| trainer.population_moments(&prepared));
    Ok(BenchReport {
        examples_per_step,
        examples_per_second: eps,
        median_step_ms,
        epoch_seconds: per_epoch as f64 * median_step_ms / 1000.0,
        batch_ms,
        monitored_evaluation_seconds: monitored,
        full_evaluation_seconds: full,
        blocks,
    })
}
