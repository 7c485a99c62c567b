//! The attacks of `ladder::attack` on a trained, undefended model A (784-200-10, 12 epochs on the
//! embedded MNIST-10k): every adversarial input inside the threat set, success that never
//! drops with ε or iterations, the strong attacks at least as strong as FGSM, APGD and PGD in
//! agreement, and Square Attack breaking the model at ε = 0.3 without gradients.

use std::sync::OnceLock;

use burn::prelude::*;
use ladder::attack::{AttackKind, AttackSettings, Inputs, Norm, Threat, attack};
use ladder::attack::{AttackTable, image_layout, input_box};
use ladder::data::{Dataset, load_embedded};
use ladder::model::mlp::Mlp;
use ladder::train::plain::{PlainConfig, PlainData, PlainModel, train_plain};

fn device() -> Device {
    Device::flex().autodiff()
}

/// A 784-200-10 `model` trained for 12 epochs (ε = 0.1 where the model uses one), and the
/// first 300 test digits.
fn train(model: PlainModel) -> (Mlp, Dataset) {
    let data = load_embedded(10).unwrap();
    let config = PlainConfig {
        model,
        hidden_layers: ladder::model::spec::Written::known("200"),
        max_epochs: 12,
        epsilon: 0.1,
        validation_samples: 1000,
        ..PlainConfig::default()
    };
    let split = PlainData::new(&data, &config).unwrap();
    let outcome = train_plain(&config, &split, &device(), &mut |_| Ok(())).unwrap();
    let mut test = split.test.subset(&(0..300).collect::<Vec<_>>());
    // The attacks take float inputs; the loaded digits are bytes.
    test.images.to_mut();
    (outcome.model.no_grad(), test)
}

/// Model A and the first 300 test digits, trained once for all tests.
fn trained() -> &'static (Mlp, Dataset) {
    static MODEL: OnceLock<(Mlp, Dataset)> = OnceLock::new();
    MODEL.get_or_init(|| train(PlainModel::A))
}

fn inputs(test: &Dataset) -> Inputs<'_> {
    Inputs {
        x: test
            .images
            .as_floats()
            .expect("the test set's pixels as floats"),
        y: &test.labels,
        dim: test.dim,
        shape: image_layout(test),
    }
}

fn threat(norm: Norm, epsilon: f64) -> Threat {
    Threat {
        norm,
        epsilon,
        bounds: Some((0.0, 1.0)),
    }
}

fn fast() -> AttackSettings {
    AttackSettings {
        pgd_steps: 20,
        apgd_steps: 40,
        square_queries: 300,
        ..AttackSettings::default()
    }
}

fn accuracy(robust: &[bool]) -> f64 {
    100.0 * robust.iter().filter(|&&r| r).count() as f64 / robust.len() as f64
}

fn run(kind: AttackKind, t: &Threat, settings: &AttackSettings) -> Vec<bool> {
    let (model, test) = trained();
    attack(model, inputs(test), t, kind, settings)
        .unwrap()
        .robust
}

#[test]
fn every_adversarial_input_lies_in_the_ball_and_the_box() {
    let (model, test) = trained();
    for (norm, eps) in [(Norm::Linf, 0.1), (Norm::Linf, 0.3), (Norm::L2, 1.5)] {
        for kind in [
            AttackKind::Fgsm,
            AttackKind::Pgd,
            AttackKind::Apgd,
            AttackKind::Square,
        ] {
            if kind == AttackKind::Square && norm == Norm::L2 {
                continue;
            }
            let t = threat(norm, eps);
            let out = attack(model, inputs(test), &t, kind, &fast()).unwrap();
            assert!(
                t.contains(inputs(test).x, &out.adversarial, test.dim, 1e-5),
                "{kind} {norm} ε = {eps} left the threat set"
            );
            // The adversarial inputs of fooled examples really fool the model.
            let again = attack(
                model,
                inputs(test),
                &threat(norm, 0.0),
                AttackKind::Fgsm,
                &fast(),
            )
            .unwrap()
            .robust;
            let fooled = out
                .robust
                .iter()
                .zip(&again)
                .filter(|(r, c)| !**r && **c)
                .count();
            assert!(
                fooled > 0 || eps < 0.05,
                "{kind} {norm} ε = {eps} fooled nothing"
            );
        }
    }
    // Square Attack is L∞ only: an L2 request is an error, not a silent L∞ run.
    let err = attack(
        model,
        inputs(test),
        &threat(Norm::L2, 1.0),
        AttackKind::Square,
        &fast(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("L∞"), "{err}");
}

#[test]
fn success_never_drops_with_radius_or_iterations() {
    for kind in [AttackKind::Pgd, AttackKind::Apgd] {
        let accs: Vec<f64> = [0.0, 0.03, 0.06, 0.1, 0.2, 0.3]
            .iter()
            .map(|&e| accuracy(&run(kind, &threat(Norm::Linf, e), &fast())))
            .collect();
        assert!(accs.windows(2).all(|w| w[1] <= w[0]), "{kind}: {accs:?}");
        assert!(accs[0] > 80.0 && accs[5] < 5.0, "{kind}: {accs:?}");
    }
    // With the step size fixed, PGD's first 10 iterates are those of a 40-step run: every
    // example 10 steps fool, 40 steps fool too.
    let t = threat(Norm::Linf, 0.06);
    let with = |steps| AttackSettings {
        pgd_steps: steps,
        pgd_step_size: Some(0.01),
        ..fast()
    };
    let (short, long) = (
        run(AttackKind::Pgd, &t, &with(10)),
        run(AttackKind::Pgd, &t, &with(40)),
    );
    assert!(
        short.iter().zip(&long).all(|(s, l)| *s || !*l),
        "a fooled example recovered"
    );
    assert!(
        accuracy(&long) < accuracy(&short),
        "{} vs {}",
        accuracy(&long),
        accuracy(&short)
    );
}

#[test]
fn iterative_attacks_beat_fgsm_and_agree_with_each_other() {
    for eps in [0.05, 0.1] {
        let t = threat(Norm::Linf, eps);
        let fgsm = accuracy(&run(AttackKind::Fgsm, &t, &fast()));
        let pgd = accuracy(&run(AttackKind::Pgd, &t, &fast()));
        let apgd = accuracy(&run(AttackKind::Apgd, &t, &fast()));
        eprintln!("ε = {eps}: FGSM {fgsm:.2} %, PGD {pgd:.2} %, APGD {apgd:.2} %");
        assert!(
            pgd <= fgsm && apgd <= fgsm,
            "ε = {eps}: {fgsm} {pgd} {apgd}"
        );
        assert!(
            (pgd - apgd).abs() <= 5.0,
            "ε = {eps}: PGD {pgd} vs APGD {apgd}"
        );
    }
}

#[test]
fn square_attack_breaks_an_undefended_model_without_gradients() {
    let acc = accuracy(&run(AttackKind::Square, &threat(Norm::Linf, 0.3), &fast()));
    assert!(acc < 10.0, "Square Attack at ε = 0.3 left {acc} % accurate");
}

/// The worst case is the conjunction per example, and a table warns when the gradient-free
/// attack beats every white-box one.
#[test]
fn the_table_takes_the_worst_case_and_flags_gradient_masking() {
    let (model, test) = trained();
    assert_eq!(input_box(test), (0.0, 1.0));
    let attacks = [AttackKind::Fgsm, AttackKind::Pgd, AttackKind::Square];
    let models = vec![("A".to_string(), model.clone())];
    let table = AttackTable::measure(
        &models,
        test,
        Norm::Linf,
        &[0.1],
        &attacks,
        &fast(),
        &mut |_| {},
    )
    .unwrap();
    let row = &table.accuracy[0][0];
    assert!(
        row.iter().all(|&a| table.worst[0][0] <= a),
        "{row:?} {:?}",
        table.worst
    );
    assert!(table.to_csv().contains("A,linf,0.1,worst-case,"));
    let mut masked = table.clone();
    masked.accuracy[0][0] = vec![60.0, 55.0, 20.0];
    assert_eq!(masked.warnings().len(), 1, "{:?}", masked.warnings());
    assert!(masked.to_markdown().contains("gradient masking"));
    masked.accuracy[0][0] = vec![60.0, 55.0, 54.8];
    assert!(masked.warnings().is_empty());
}

/// PGD adversarial training and TRADES (12 epochs, ε = 0.1) leave a network far more accurate
/// under PGD and APGD at ε = 0.1 than model A trained the same way, with the worst case over
/// the attacks (Square included) as the measure.
#[test]
fn pgd_training_and_trades_resist_the_attacks_model_a_falls_to() {
    let attacks = [AttackKind::Pgd, AttackKind::Apgd, AttackKind::Square];
    let mut worst = Vec::new();
    for model in [PlainModel::A, PlainModel::Pgd, PlainModel::Trades] {
        let (net, test) = match model {
            PlainModel::A => trained().clone(),
            other => train(other),
        };
        let test = &test;
        let models = vec![(model.to_string(), net)];
        let table = AttackTable::measure(
            &models,
            test,
            Norm::Linf,
            &[0.1],
            &attacks,
            &fast(),
            &mut |_| {},
        )
        .unwrap();
        eprintln!(
            "{model}: clean {:.2} %, worst case {:.2} %",
            table.clean[0], table.worst[0][0]
        );
        assert!(table.clean[0] > 70.0, "{model} did not learn");
        worst.push(table.worst[0][0]);
    }
    assert!(worst[1] > worst[0] + 15.0, "PGD training: {worst:?}");
    assert!(worst[2] > worst[0] + 10.0, "TRADES: {worst:?}");
}
