//! Training end to end on the embedded MNIST-10k: reproducibility and the Ladder's advantage
//! over the supervised baseline trained the same way.

use burn::prelude::*;
use ladder::data::load_embedded;
use ladder::train::{EpochMetrics, PreparedData, TrainConfig, Trainer, never_stop};

fn device() -> Device {
    Device::flex().autodiff()
}

fn run(config: &TrainConfig) -> Vec<EpochMetrics> {
    let data = load_embedded(10).unwrap();
    let prepared = PreparedData::new(&data, config).unwrap();
    let mut trainer = Trainer::new(config.clone(), &data.train.image_shape, &device()).unwrap();
    (0..config.epochs)
        .map(|_| {
            trainer
                .train_epoch(&prepared, &mut never_stop)
                .unwrap()
                .unwrap()
        })
        .collect()
}

#[test]
fn same_seed_gives_identical_metrics_and_another_seed_does_not() {
    let config = TrainConfig {
        encoder_layers: ladder::model::spec::Written::known("50-20-10"),
        denoising_cost_x: ladder::model::spec::Written::known("100,1,0.1,0.1"),
        unlabeled_samples: Some(1000),
        validation_samples: 500,
        epochs: 2,
        seed: 7,
        ..TrainConfig::default()
    };
    let a = run(&config);
    let b = run(&config);
    assert_eq!(a, b);
    assert!(a.iter().all(|m| m.test_error_percent.is_some()));
    let c = run(&TrainConfig { seed: 8, ..config });
    assert_ne!(a, c);
}

/// With 100 labels, the full Ladder must beat the supervised baseline trained the same way
/// (same network, epochs and data) by a clear margin.
#[test]
fn full_ladder_beats_the_supervised_baseline_with_100_labels() {
    let ladder = TrainConfig {
        encoder_layers: ladder::model::spec::Written::known("500-250-10"),
        denoising_cost_x: ladder::model::spec::Written::known("1000,10,0.1,0.1"),
        epochs: 8,
        lrate_decay: 0.6,
        ..TrainConfig::default()
    };
    let baseline = TrainConfig {
        denoising_cost_x: ladder::model::spec::Written::known("0"),
        f_local_noise_std: ladder::model::spec::Written::known("0.5"),
        ..ladder.clone()
    };
    let error = |c: &TrainConfig| run(c).last().unwrap().test_error_percent.unwrap();
    let (l, b) = (error(&ladder), error(&baseline));
    eprintln!("ladder {l:.2}% vs baseline {b:.2}%");
    assert!(
        l + 5.0 < b,
        "ladder {l:.2}% is not clearly better than baseline {b:.2}%"
    );
}

/// With two worker threads the trainer draws each step's noise ahead, on the other worker;
/// the numbers must be those of one thread, where it draws them in place.
#[test]
fn noise_drawn_ahead_on_another_thread_gives_the_same_run() {
    let config = TrainConfig {
        encoder_layers: ladder::model::spec::Written::known("50-20-10"),
        denoising_cost_x: ladder::model::spec::Written::known("100,1,0.1,0.1"),
        unlabeled_samples: Some(1000),
        epochs: 2,
        seed: 3,
        ..TrainConfig::default()
    };
    let in_pool = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| run(&config))
    };
    let one = in_pool(1);
    assert_eq!(one, in_pool(2));
    assert_eq!(one.len(), 2);
}

/// Per-epoch evaluations take their batch-norm moments from an evenly spaced sample of the
/// training set, close to the whole set's, so the monitored error is close to the exact one;
/// a sample of 0 means the whole set.
#[test]
fn monitoring_samples_the_moments() {
    let config = TrainConfig {
        encoder_layers: ladder::model::spec::Written::known("100-50-10"),
        denoising_cost_x: ladder::model::spec::Written::known("100,1,0.1,0.1"),
        unlabeled_samples: Some(3000),
        monitor_moments: 500,
        epochs: 2,
        seed: 5,
        ..TrainConfig::default()
    };
    let data = load_embedded(10).unwrap();
    let exact = |t: &Trainer, p: &PreparedData| t.errors(p, &t.population_moments(p)).1;
    let prepared = PreparedData::new(&data, &config).unwrap();
    assert_eq!(prepared.monitor_sample.as_ref().map(|d| d.len()), Some(500));
    let mut trainer = Trainer::new(config.clone(), &data.train.image_shape, &device()).unwrap();
    for _ in 0..2 {
        let m = trainer
            .train_epoch(&prepared, &mut never_stop)
            .unwrap()
            .unwrap();
        let (monitored, full) = (m.test_error_percent.unwrap(), exact(&trainer, &prepared));
        assert!((monitored - full).abs() < 1.0, "{monitored} vs {full}");
    }
    // The sample's moments are its own, not the whole set's.
    let first_mean = |moments: Vec<ladder::ops::batch_norm::Moments>| {
        moments[0]
            .mean
            .clone()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    };
    assert_ne!(
        first_mean(trainer.monitoring_moments(&prepared)),
        first_mean(trainer.population_moments(&prepared))
    );
    // The whole set every epoch: the monitored error is the exact one.
    let all = TrainConfig {
        monitor_moments: 0,
        ..config
    };
    let prepared = PreparedData::new(&data, &all).unwrap();
    assert!(prepared.monitor_sample.is_none());
    let mut trainer = Trainer::new(all.clone(), &data.train.image_shape, &device()).unwrap();
    let m = trainer
        .train_epoch(&prepared, &mut never_stop)
        .unwrap()
        .unwrap();
    assert_eq!(m.test_error_percent, Some(exact(&trainer, &prepared)));
}
