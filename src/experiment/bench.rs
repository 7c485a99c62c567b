//! Training throughput: examples per second of full training steps (cost, backward, Adam),
//! the median of several timed blocks after a warm-up; and what an epoch spends besides
//! training: assembling batches, evaluating and checkpointing. Or the steps alone, for the
//! peak memory of loading, preprocessing and training on a data set whose three final
//! evaluations would take hours ([`Scope::Training`]).

use std::borrow::Cow;
use std::time::Instant;

use burn::prelude::*;
use serde::Serialize;

use crate::data::TrainTest;
use crate::data::preprocess::preprocessed;
use crate::error::{LadderError, Result};
use crate::ops::batch_norm::Moments;
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
    /// What an epoch spends on evaluating and checkpointing; `None` for [`Scope::Training`].
    pub epoch_costs: Option<EpochCosts>,
    /// The process's peak resident memory after the timed steps, before the evaluations (whose
    /// moments of the whole training set can need more), in MiB; `None` where the system does
    /// not say (`VmHWM` of /proc/self/status on Linux).
    pub training_peak_mib: Option<f64>,
}

/// What a benchmark times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The steps, batch assembly, the evaluations and checkpoints.
    Everything,
    /// The steps and batch assembly only.
    Training,
}

/// The seconds an epoch spends besides its steps.
#[derive(Debug, Clone, Serialize)]
pub struct EpochCosts {
    /// One per-epoch evaluation (moments of the monitoring sample, validation and test
    /// error), median of three.
    pub monitored_evaluation_seconds: f64,
    /// The run's final evaluation (moments of the whole training set), median of three.
    pub full_evaluation_seconds: f64,
    /// Copying the trainer's state for a checkpoint, on the training thread; median of three.
    pub checkpoint_copy_seconds: f64,
    /// Writing that checkpoint's file (synced), on a thread of its own during a run; median of
    /// three.
    pub checkpoint_write_seconds: f64,
}

/// The peak resident memory of this process so far, in MiB (Linux).
fn peak_resident_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

impl BenchReport {
    /// Evaluation's share of an epoch that evaluates: the per-epoch one, and the final one
    /// were it done in an epoch.
    pub fn evaluation_shares(&self, costs: &EpochCosts) -> (f64, f64) {
        let share = |e: f64| e / (self.epoch_seconds + e);
        (
            share(costs.monitored_evaluation_seconds),
            share(costs.full_evaluation_seconds),
        )
    }

    /// The checkpoint copy's share of an epoch.
    pub fn checkpoint_share(&self, costs: &EpochCosts) -> f64 {
        costs.checkpoint_copy_seconds / (self.epoch_seconds + costs.checkpoint_copy_seconds)
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

/// Times `repeats` blocks of `steps` training steps after `warmup` untimed steps, and with
/// [`Scope::Everything`] the evaluations and checkpoints.
pub fn bench(
    config: &TrainConfig,
    data: TrainTest,
    device: &Device,
    (warmup, steps, repeats): (usize, usize, usize),
    scope: Scope,
) -> Result<BenchReport> {
    if steps == 0 || repeats == 0 {
        return Err(LadderError::Setting(
            "bench needs at least one timed step and one repeat".into(),
        ));
    }
    let data = &*preprocessed(Cow::Owned(data), &config.preprocessing())?;
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
            trainer.step(&batch, (0, offset + i), offset + i, config.lr)?;
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
    let training_peak_mib = peak_resident_mib();
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
    let epoch_costs = match scope {
        Scope::Everything => Some(epoch_costs(&trainer, &prepared)?),
        Scope::Training => None,
    };
    Ok(BenchReport {
        examples_per_step,
        examples_per_second: eps,
        median_step_ms,
        epoch_seconds: per_epoch as f64 * median_step_ms / 1000.0,
        batch_ms,
        epoch_costs,
        blocks,
        training_peak_mib,
    })
}

/// Medians of three: the per-epoch and the final evaluation, copying and writing a checkpoint.
fn epoch_costs(trainer: &Trainer, prepared: &PreparedData) -> Result<EpochCosts> {
    let evaluation = |moments_of: &dyn Fn() -> Vec<Moments>| {
        let times = (0..3).map(|_| {
            let start = Instant::now();
            trainer.errors(prepared, &moments_of());
            start.elapsed().as_secs_f64()
        });
        median(times.collect())
    };
    let monitored_evaluation_seconds = evaluation(&|| trainer.monitoring_moments(prepared));
    let full_evaluation_seconds = evaluation(&|| trainer.population_moments(prepared));
    let (checkpoint_copy_seconds, checkpoint_write_seconds) = time_checkpoint(trainer)?;
    Ok(EpochCosts {
        monitored_evaluation_seconds,
        full_evaluation_seconds,
        checkpoint_copy_seconds,
        checkpoint_write_seconds,
    })
}

/// Medians of three: copying `trainer`'s state into a checkpoint, and writing it to a file in
/// the temporary directory (removed afterwards).
fn time_checkpoint(trainer: &Trainer) -> Result<(f64, f64)> {
    let path = std::env::temp_dir().join(format!("ladder-bench-{}.bin", std::process::id()));
    let mut copy = Vec::new();
    let mut write = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        let checkpoint = trainer.checkpoint(None)?;
        copy.push(start.elapsed().as_secs_f64());
        let start = Instant::now();
        let saved = checkpoint.save(&path);
        write.push(start.elapsed().as_secs_f64());
        saved?;
    }
    let _ = std::fs::remove_file(&path);
    Ok((median(copy), median(write)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::load_embedded;

    fn tiny() -> TrainConfig {
        TrainConfig {
            encoder_layers: crate::model::spec::Written::known("30-10"),
            denoising_cost_x: crate::model::spec::Written::known("10,1,0.1"),
            labeled_samples: 100,
            unlabeled_samples: Some(500),
            ..TrainConfig::default()
        }
    }

    #[test]
    fn the_report_covers_steps_batches_evaluation_and_checkpoints() {
        let data = load_embedded(10).unwrap();
        let r = bench(
            &tiny(),
            data,
            &Device::flex().autodiff(),
            (1, 2, 3),
            Scope::Everything,
        )
        .unwrap();
        let costs = r.epoch_costs.clone().expect("timed");
        assert_eq!(r.examples_per_step, 200);
        assert_eq!(r.blocks.len(), 3);
        assert!(r.examples_per_second > 0.0 && r.median_step_ms > 0.0);
        assert!(r.epoch_seconds > r.median_step_ms / 1000.0);
        for t in [
            r.batch_ms,
            costs.monitored_evaluation_seconds,
            costs.full_evaluation_seconds,
            costs.checkpoint_copy_seconds,
            costs.checkpoint_write_seconds,
        ] {
            assert!(t > 0.0 && t.is_finite(), "{r:?}");
        }
        let share = r.checkpoint_share(&costs);
        assert!(share > 0.0 && share < 1.0);
        let leftover =
            std::env::temp_dir().join(format!("ladder-bench-{}.bin", std::process::id()));
        assert!(!leftover.exists());
    }

    #[test]
    fn nothing_to_time_is_an_error() {
        let data = load_embedded(10).unwrap();
        let device = Device::flex().autodiff();
        assert!(bench(&tiny(), data.clone(), &device, (0, 0, 1), Scope::Training).is_err());
        assert!(bench(&tiny(), data, &device, (0, 1, 0), Scope::Training).is_err());
    }

    /// The training scope times the steps and reports their peak memory, nothing else.
    #[test]
    fn the_training_scope_leaves_the_evaluations_out() {
        let data = load_embedded(10).unwrap();
        let device = Device::flex().autodiff();
        let r = bench(&tiny(), data, &device, (0, 1, 1), Scope::Training).unwrap();
        assert!(r.epoch_costs.is_none() && r.median_step_ms > 0.0);
        if cfg!(target_os = "linux") {
            assert!(r.training_peak_mib.is_some_and(|m| m > 1.0), "{r:?}");
        }
    }
}
