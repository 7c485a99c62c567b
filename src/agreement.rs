//! Every method's step on the `wgpu` backend against the CPU (Flex with the fused kernels):
//! the same network, batch and noise on both devices, the step's cost and the gradient of every
//! parameter tensor compared within [`COST_TOLERANCE`] and [`GRADIENT_TOLERANCE`], and the
//! attacks' norms and clipping checked on the GPU. CI runs these on Mesa's software Vulkan
//! driver (lavapipe): `cargo test --release --features wgpu --lib agreement`.
//!
//! The two backends add in different orders, so their results differ in the last digits;
//! each check prints the largest differences it saw (`-- --nocapture`).

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::Gradients;
use rand::Rng;

use crate::attack::{AttackKind, AttackSettings, Inputs, Norm, Threat, attack};
use crate::device::{DeviceKind, training_device};
use crate::model::LadderBatch;
use crate::model::encoder::scaled_normal;
use crate::model::layers::{parse_layer_kinds, plan};
use crate::model::mlp::{Mlp, MlpInit};
use crate::model::semantic::{CostWeights, SemanticModel, SemanticNet};
use crate::model::spec::Written;
use crate::noise::{RngStream, gaussian_vec, stream_rng};
use crate::ops::Shape;
use crate::train::config::{Method, TrainConfig};
use crate::train::plain::{PlainConfig, PlainModel, plain_cost};
use crate::train::trainer::Trainer;

/// Largest relative difference of a step's cost between the devices.
const COST_TOLERANCE: f64 = 1e-4;
/// Largest difference of a gradient entry between the devices, relative to the largest
/// magnitude in that parameter tensor's CPU gradient.
const GRADIENT_TOLERANCE: f64 = 1e-3;

fn cpu() -> Device {
    training_device(DeviceKind::Cpu).expect("the CPU is always built")
}

fn gpu() -> Device {
    training_device(DeviceKind::Wgpu).expect("the wgpu feature is on")
}

/// A step's cost and every float parameter tensor's gradient (empty where it has none), in
/// the module's visiting order.
struct Step {
    cost: f64,
    grads: Vec<Vec<f32>>,
}

struct CollectGrads<'a> {
    grads: &'a Gradients,
    out: Vec<Vec<f32>>,
}

impl ModuleVisitor for CollectGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let g = param.val().grad(self.grads).map(|g| {
            g.into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .expect("f32 data")
        });
        self.out.push(g.unwrap_or_default());
    }
}

/// The cost `total` of `module` and its gradients.
fn step_of<M: Module>(module: &M, total: Tensor<1>) -> Step {
    let cost = total.clone().into_scalar::<f32>() as f64;
    let grads = total.backward();
    let mut visitor = CollectGrads {
        grads: &grads,
        out: Vec::new(),
    };
    module.visit(&mut visitor);
    Step {
        cost,
        grads: visitor.out,
    }
}

/// Asserts that the two devices' steps agree, and prints the largest cost and gradient
/// differences (relative) for the record.
fn assert_agree(what: &str, cpu: &Step, gpu: &Step) {
    assert!(cpu.cost.is_finite(), "{what}: CPU cost {}", cpu.cost);
    let cost = (cpu.cost - gpu.cost).abs() / cpu.cost.abs().max(1e-6);
    assert_eq!(cpu.grads.len(), gpu.grads.len(), "{what}: parameter count");
    let mut worst = 0f64;
    let mut with_gradient = 0;
    for (i, (a, b)) in cpu.grads.iter().zip(&gpu.grads).enumerate() {
        assert_eq!(
            a.len(),
            b.len(),
            "{what}: parameter {i} has a gradient on one device"
        );
        let scale = a.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6) as f64;
        with_gradient += usize::from(scale > 1e-6);
        for (x, y) in a.iter().zip(b) {
            assert!(y.is_finite(), "{what}: parameter {i}: GPU gradient {y}");
            worst = worst.max((x - y).abs() as f64 / scale);
        }
    }
    assert!(with_gradient > 0, "{what}: no parameter has a gradient");
    eprintln!(
        "agreement {what}: cost {:.6} vs {:.6} (relative {cost:.1e}), gradients of {} tensors \
         within {worst:.1e} of their largest entry",
        cpu.cost,
        gpu.cost,
        cpu.grads.len()
    );
    assert!(
        cost <= COST_TOLERANCE,
        "{what}: cost {} vs {}",
        cpu.cost,
        gpu.cost
    );
    assert!(
        worst <= GRADIENT_TOLERANCE,
        "{what}: a gradient differs by {worst:.2e}"
    );
}

/// Rows of pixels in [0, 1] drawn from `rng`.
fn pixels(rng: &mut impl Rng, rows: usize, dim: usize, device: &Device) -> Tensor<2> {
    let v: Vec<f32> = (0..rows * dim)
        .map(|_| rng.random_range(0.0..1.0))
        .collect();
    Tensor::from_data(TensorData::new(v, [rows, dim]), device)
}

fn labels(n: usize, classes: usize, device: &Device) -> Tensor<1, Int> {
    let y: Vec<i64> = (0..n).map(|i| (i % classes) as i64).collect();
    Tensor::from_data(TensorData::new(y, [n]), device)
}

/// Adds N(0, σ²) noise (from a host generator, so the same on every device) to every float
/// parameter: a fresh Ladder's combinators ignore the corrupted path (ẑ = 0 until trained),
/// which would hide every method's noise from the cost.
struct Jitter<R> {
    rng: R,
    std: f32,
}

impl<R: Rng> ModuleMapper for Jitter<R> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.map(|t| {
            let tracked = t.is_require_grad();
            let shape = t.shape();
            let noise = gaussian_vec(&mut self.rng, shape.num_elements(), self.std);
            let noise = Tensor::from_data(TensorData::new(noise, shape), &t.device());
            (t + noise).detach().set_require_grad(tracked)
        })
    }
}

/// The first training step of `config` on a batch of 8 labelled and 8 unlabelled rows of
/// `shape`: [`Trainer::step_terms`] draws its corruption, adversarial and virtual adversarial
/// noise as a run does.
fn ladder_step(config: &TrainConfig, shape: &[usize], device: &Device) -> Step {
    let mut trainer = Trainer::new(config.clone(), shape, device).expect("a valid config");
    let dim = shape.iter().product();
    let mut rng = stream_rng(7, RngStream::Init, 1, 0);
    let batch = LadderBatch {
        x_labeled: pixels(&mut rng, 8, dim, device),
        y_labeled: labels(8, config.num_classes, device),
        x_unlabeled: pixels(&mut rng, 8, dim, device),
    };
    let model = trainer.model().clone().map(&mut Jitter { rng, std: 0.3 });
    let terms = trainer.step_terms(&model, &batch, 0, 0);
    step_of(&model, terms.total)
}

/// A small fully connected Ladder (25-12-8-3, 5×5 inputs) trained by `method`.
fn small_mlp(method: Method) -> TrainConfig {
    let base = TrainConfig {
        encoder_layers: Written::known("12-8-3"),
        denoising_cost_x: Written::known("10,1,0.1,0.1"),
        num_classes: 3,
        batch_size: 8,
        ..TrainConfig::default()
    };
    // ξ = 1e-6 moves this small untrained network's logits by less than their f32 rounding,
    // so VAT's and LVAN's power-iteration direction would be rounding noise on either
    // device; 1e-2 resolves it (a trained network's larger Jacobian resolves 1e-6).
    let c = TrainConfig {
        vat_xi: 1e-2,
        ..method.apply(base)
    };
    // Shinoda et al.'s ε (0.02 on the input) barely moves this small network's cost: a
    // larger one makes the check see LVAN's noise.
    match method {
        Method::Lvan => TrainConfig {
            lvan_epsilon: Written::known("0.5,0,0,0"),
            ..c
        },
        Method::LvanLw => TrainConfig {
            lvan_epsilon: Written::known("0.5,0.5,0.5,0"),
            ..c
        },
        _ => c,
    }
}

#[test]
fn every_ladder_method_takes_the_cpus_step_on_wgpu() {
    let mut cases: Vec<(String, TrainConfig, Vec<usize>)> = crate::choice::all::<Method>()
        .into_iter()
        .map(|m| (format!("{m} (MLP)"), small_mlp(m), vec![5, 5]))
        .collect();
    let adversarial = TrainConfig {
        adv_sup_tau: 0.05,
        adv_unsup_tau: 0.05,
        ..small_mlp(Method::Ladder)
    };
    cases.push((
        "adversarial noise (000, MLP)".into(),
        adversarial,
        vec![5, 5],
    ));
    let conv = TrainConfig {
        encoder_layers: Written::known(
            "convf:4:3:1:1-maxpool:2:2-convv:6:3:1:1-globalmeanpool:0-fc:3",
        ),
        denoising_cost_x: Written::known("2,0.7,0.5,0.4,0.3,0.2"),
        ..small_mlp(Method::Ladder)
    };
    cases.push(("full Ladder (conv)".into(), conv, vec![8, 8]));
    let conv_small = TrainConfig {
        batch_size: 8,
        ..TrainConfig::preset("mnist-100-conv-gamma").unwrap()
    };
    cases.push(("Conv-Small Γ".into(), conv_small, vec![28, 28]));
    let plain_ladder = ladder_step(&small_mlp(Method::Ladder), &[5, 5], &cpu()).cost;
    for (what, config, shape) in cases {
        let c = ladder_step(&config, &shape, &cpu());
        let g = ladder_step(&config, &shape, &gpu());
        assert_agree(&what, &c, &g);
        // Each method's own terms or noise are in the step checked.
        if shape == [5, 5] && what != "ladder (MLP)" {
            assert_ne!(c.cost, plain_ladder, "{what}: the Ladder's step");
        }
    }
}

/// A 25-10-3 network with a random top layer (a fresh one's is 0, which makes its output
/// constant and most gradients vanish), and the generator after drawing it.
fn plain_mlp(device: &Device) -> (Mlp, impl Rng) {
    let mut rng = stream_rng(4, RngStream::Init, 0, 0);
    let mlp = Mlp::new(&[25, 10, 3], MlpInit::Scaled, &mut rng, device);
    let top = Param::from_tensor(scaled_normal(10, 3, &mut rng, device) * 3.0);
    let mlp = Mlp {
        weights: vec![mlp.weights[0].clone(), top],
        biases: mlp.biases,
    };
    (mlp, rng)
}

/// A [`plain_mlp`] of `config`'s model and its cost on 8 rows, with the step's noise (model
/// C's Gaussian noise, PGD's and TRADES' random starts) drawn on the host.
fn plain_step(config: &PlainConfig, device: &Device) -> Step {
    let (mlp, mut rng) = plain_mlp(device);
    let x = pixels(&mut rng, 8, 25, device);
    let noise = gaussian_vec(&mut rng, 8 * 25, 0.05);
    let noise = Tensor::from_data(TensorData::new(noise, [8, 25]), device);
    let noise = matches!(
        config.model,
        PlainModel::C | PlainModel::Pgd | PlainModel::Trades
    )
    .then_some(noise);
    let total = plain_cost(&mlp, config, x, labels(8, 3, device), noise, (0.0, 1.0));
    step_of(&mlp, total)
}

#[test]
fn plain_models_with_fgsm_and_pgd_training_take_the_cpus_step_on_wgpu() {
    for model in [
        PlainModel::A,
        PlainModel::B,
        PlainModel::C,
        PlainModel::Pgd,
        PlainModel::Trades,
    ] {
        let config = PlainConfig {
            model,
            epsilon: 0.1,
            attack_steps: 3,
            num_classes: 3,
            ..PlainConfig::default()
        };
        let what = format!("plain {model}");
        assert_agree(
            &what,
            &plain_step(&config, &cpu()),
            &plain_step(&config, &gpu()),
        );
    }
}

/// Paper 003's conv network (stride-2 'same' and 'valid' convolutions, two fully connected
/// layers, the last hidden one the latent) on 2×7×7 inputs, and its cost for `model`.
fn semantic_step(model: SemanticModel, device: &Device) -> Step {
    let input = Shape {
        channels: 2,
        height: 7,
        width: 7,
    };
    let kinds = parse_layer_kinds("convs:3:3:2:2-convv:2:2:1:1-fc:6-fc:3").unwrap();
    let mut rng = stream_rng(6, RngStream::Init, 0, 0);
    let net = SemanticNet::new(plan(input, &kinds).unwrap(), &mut rng, device).unwrap();
    let x = pixels(&mut rng, 8, input.units(), device);
    let noise = model.perturbation().map(|p| {
        let units = p.noise_units(&net);
        let e = gaussian_vec(&mut rng, 8 * units, 0.3);
        Tensor::from_data(TensorData::new(e, [8, units]), device)
    });
    let weights = CostWeights {
        input: 0.5,
        latent: 0.3,
        hidden: 0.2,
        supervised: 1.0,
    };
    let cost = net
        .cost(model, &weights, x, labels(8, 3, device), noise)
        .unwrap();
    step_of(&net, cost.total)
}

#[test]
fn semantic_noise_models_take_the_cpus_step_on_wgpu() {
    for model in SemanticModel::all() {
        let what = format!("semantic {model}");
        assert_agree(
            &what,
            &semantic_step(model, &cpu()),
            &semantic_step(model, &gpu()),
        );
    }
}

/// FGSM, PGD and APGD on the GPU keep every adversarial input inside its L∞ or L2 ball and
/// the [0, 1] box, and find adversarial inputs where the CPU's attack does as often, within
/// 2 of 64 examples (gradients whose sign flips between devices may change a step).
#[test]
fn attacks_on_wgpu_stay_in_the_ball_and_the_box() {
    let mut rng = stream_rng(8, RngStream::Init, 0, 0);
    let n = 64;
    let x: Vec<f32> = (0..n * 25).map(|_| rng.random_range(0.0..1.0)).collect();
    let y: Vec<u32> = (0..n).map(|i| (i % 3) as u32).collect();
    let settings = AttackSettings {
        pgd_steps: 10,
        apgd_steps: 20,
        ..AttackSettings::default()
    };
    let model = |device: &Device| plain_mlp(device).0.no_grad();
    let (on_cpu, on_gpu) = (model(&cpu()), model(&gpu()));
    for (norm, epsilon) in [(Norm::Linf, 0.1), (Norm::L2, 0.5)] {
        let threat = Threat {
            norm,
            epsilon,
            bounds: Some((0.0, 1.0)),
        };
        for kind in [AttackKind::Fgsm, AttackKind::Pgd, AttackKind::Apgd] {
            let inputs = Inputs {
                x: &x,
                y: &y,
                dim: 25,
                shape: (1, 1, 25),
            };
            let g = attack(&on_gpu, inputs, &threat, kind, &settings).unwrap();
            assert!(
                threat.contains(&x, &g.adversarial, 25, 1e-5),
                "{kind} {norm} on wgpu left the threat set"
            );
            assert!(g.adversarial.iter().all(|v| (0.0..=1.0).contains(v)));
            let c = attack(&on_cpu, inputs, &threat, kind, &settings).unwrap();
            let fooled = |r: &[bool]| r.iter().filter(|&&r| !r).count() as i64;
            let (fc, fg) = (fooled(&c.robust), fooled(&g.robust));
            eprintln!(
                "agreement {kind} {norm} ε = {epsilon}: fooled {fc} (CPU) vs {fg} (wgpu) of {n}"
            );
            assert!((fc - fg).abs() <= 2, "{kind} {norm}: {fc} vs {fg}");
        }
    }
}
