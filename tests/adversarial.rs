//! Adversarial training and robustness end to end on the embedded MNIST-10k: model B (FGSM
//! training) must resist FGSM better than model A trained the same way, and the Ladder with
//! adversarial noise must train.

use burn::prelude::*;
use ladder::data::load_embedded;
use ladder::eval::robustness::{Perturbation, accuracy_under};
use ladder::train::plain::{PlainConfig, PlainData, PlainModel, train_plain};
use ladder::train::{PreparedData, TrainConfig, Trainer, never_stop};

fn device() -> Device {
    Device::flex().autodiff()
}

fn short(model: PlainModel) -> PlainConfig {
    PlainConfig {
        model,
        hidden_layers: ladder::model::spec::Written::known("200"),
        max_epochs: 12,
        patience: 100,
        validation_samples: 1000,
        epsilon: 0.1,
        ..PlainConfig::default()
    }
}

#[test]
fn model_b_resists_fgsm_better_than_model_a() {
    let data = load_embedded(10).unwrap();
    let mut accuracy = Vec::new();
    for model in [PlainModel::A, PlainModel::B] {
        let config = short(model);
        let split = PlainData::new(&data, &config).unwrap();
        let outcome = train_plain(&config, &split, &device(), &mut |_| Ok(())).unwrap();
        let net = outcome.model.no_grad();
        let clean = accuracy_under(&net, &split.test, Perturbation::Fgsm(0.0), 1);
        let attacked = accuracy_under(&net, &split.test, Perturbation::Fgsm(0.1), 1);
        eprintln!("model {model}: clean {clean:.2} %, FGSM ε = 0.1: {attacked:.2} %");
        assert!(clean > 75.0, "model {model} did not learn: {clean} %");
        accuracy.push(attacked);
    }
    assert!(
        accuracy[1] > accuracy[0] + 15.0,
        "FGSM accuracy: A {:.2} %, B {:.2} %",
        accuracy[0],
        accuracy[1]
    );
}

#[test]
fn early_stopping_keeps_the_best_epoch() {
    let data = load_embedded(10).unwrap();
    let config = PlainConfig {
        max_epochs: 30,
        patience: 3,
        hidden_layers: ladder::model::spec::Written::known("50"),
        ..PlainConfig::default()
    };
    let split = PlainData::new(&data, &config).unwrap();
    let outcome = train_plain(&config, &split, &device(), &mut |_| Ok(())).unwrap();
    let best = outcome
        .history
        .iter()
        .map(|e| e.validation_error_percent)
        .fold(f64::INFINITY, f64::min);
    assert_eq!(outcome.best_validation_error_percent, best);
    assert_eq!(
        outcome.history[outcome.best_epoch - 1].validation_error_percent,
        best
    );
    // Stopped `patience` epochs after the best one, or at the limit.
    assert!(
        outcome.epochs_run == outcome.best_epoch + 3 || outcome.epochs_run == 30,
        "best {} of {}",
        outcome.best_epoch,
        outcome.epochs_run
    );
    let kept = ladder::eval::error_percent_of(&outcome.model, &split.validation);
    assert_eq!(kept, best);
}

/// The Ladder trains with both adversarial noises on and its noise differs from the plain
/// Ladder's; both runs are reproducible.
#[test]
fn the_ladder_trains_with_adversarial_noise() {
    let data = load_embedded(10).unwrap();
    let base = TrainConfig {
        encoder_layers: ladder::model::spec::Written::known("100-50-10"),
        denoising_cost_x: ladder::model::spec::Written::known("1000,10,0.1,0.1"),
        unlabeled_samples: Some(2000),
        epochs: 3,
        ..TrainConfig::default()
    };
    let adv = TrainConfig {
        adv_sup_tau: 0.05,
        adv_unsup_tau: 0.5,
        ..base.clone()
    };
    let run = |c: &TrainConfig| {
        let prepared = PreparedData::new(&data, c).unwrap();
        let mut t = Trainer::new(c.clone(), &data.train.image_shape, &device()).unwrap();
        (0..c.epochs)
            .map(|_| t.train_epoch(&prepared, &mut never_stop).unwrap().unwrap())
            .collect::<Vec<_>>()
    };
    let a = run(&adv);
    assert_eq!(a, run(&adv));
    assert_ne!(a, run(&base));
    let last = a.last().unwrap().test_error_percent.unwrap();
    assert!(last < 40.0, "test error {last} %");
}
