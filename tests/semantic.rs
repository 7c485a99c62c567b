//! Semantic noise modeling (003) end to end on the embedded MNIST-10k: the data split, exact
//! reproducibility, and training that clears a wide margin over chance.

use burn::prelude::*;
use ladder::data::load_embedded;
use ladder::eval::error_percent_of;
use ladder::model::semantic::SemanticModel;
use ladder::train::semantic::{SemanticConfig, SemanticData, SemanticEpoch, train_semantic};

fn device() -> Device {
    Device::flex().autodiff()
}

/// Every epoch's metrics (wall-clock seconds zeroed) and the selected network's test error.
fn run(config: &SemanticConfig) -> (Vec<SemanticEpoch>, f64) {
    let data = load_embedded(10).unwrap();
    let split = SemanticData::new(&data, config).unwrap();
    let outcome = train_semantic(config, &split, &device(), &mut |_| Ok(())).unwrap();
    let test = error_percent_of(&outcome.model.valid(), &split.test);
    let history = outcome
        .history
        .into_iter()
        .map(|e| SemanticEpoch { seconds: 0.0, ..e })
        .collect();
    (history, test)
}

#[test]
fn the_split_has_k_per_class_and_the_inputs_are_mean_subtracted() {
    let data = load_embedded(10).unwrap();
    let config = SemanticConfig {
        per_class: 20,
        validation_samples: 500,
        ..SemanticConfig::default()
    };
    let split = SemanticData::new(&data, &config).unwrap();
    assert_eq!(split.train.class_counts(), vec![20; 10]);
    assert_eq!(split.validation.n, 500);
    assert_eq!(split.unseen.n, 8000 - 500 - 200);
    assert_eq!(split.test.n, 2000);
    // The training set's own mean is now zero at every pixel.
    for p in 0..split.train.dim {
        let m: f32 = (0..split.train.n)
            .map(|i| split.train.row(i)[p])
            .sum::<f32>();
        assert!(m.abs() / (split.train.n as f32) < 1e-5, "pixel {p}: {m}");
    }
    // The test set had the same mean subtracted: the first test image is the original minus it.
    let original = data.test.row(0);
    for ((a, b), m) in split
        .test
        .row(0)
        .iter()
        .zip(original.iter())
        .zip(&split.mean)
    {
        assert!((a - (b - m)).abs() < 1e-6);
    }
    // Another seed draws another training set.
    let other = SemanticData::new(&data, &SemanticConfig { seed: 2, ..config }).unwrap();
    assert_ne!(other.train.images, split.train.images);
}

#[test]
fn same_seed_gives_identical_metrics_for_every_model() {
    for model in [SemanticModel::ReconAll, SemanticModel::PerturbClass] {
        let config = SemanticConfig {
            model,
            epochs: 2,
            validation_samples: 300,
            ..SemanticConfig::default()
        };
        let a = run(&config);
        let b = run(&config);
        assert_eq!(a.0, b.0, "{model}");
        assert_eq!(a.1, b.1, "{model}");
        let c = run(&SemanticConfig { seed: 9, ..config });
        assert_ne!(a.0, c.0, "{model}");
    }
}

/// 100 labelled digits and 25 epochs take the class-conditional model from chance (90 %) to
/// well under 40 % test error, its validation-selected epoch being a recorded best.
#[test]
fn the_class_conditional_model_learns_from_100_labels() {
    let config = SemanticConfig {
        epochs: 25,
        lr_decay_every: 10,
        lr_decay_until: 25,
        ..SemanticConfig::default()
    };
    let (history, test) = run(&config);
    eprintln!("test error {test:.2} %");
    assert!(test < 40.0, "test error {test:.2} %");
    let first = history[0].validation_error_percent;
    let best = history
        .iter()
        .rfind(|e| e.best)
        .unwrap()
        .validation_error_percent;
    assert!(best + 20.0 < first, "best {best} vs first {first}");
    assert!(history.iter().all(|e| e.cost.perturbed.is_some()));
}
