//! Training configuration: the flags of the authors' `run.py`, TOML files and the paper's
//! presets. A configuration resolves in three layers: a preset, then a `--config` file, then
//! explicit flags, each overriding the one before.

use serde::{Deserialize, Serialize};

use crate::data::preprocess::Preprocessing;
use crate::error::{LadderError, Result};
use crate::model::consistency::Consistency;
use crate::model::layers::{LayerKind, plan};
use crate::model::spec::{
    Activation, DecoderSpec, EncoderLayers, LadderSpec, LayerValues, Written,
};
use crate::model::vat::{Lvan, Vat};
use crate::noise::{AdvKind, Adversarial};
use crate::ops::Shape;

/// Everything that decides a training run. Field names follow `run.py`'s flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Hidden and output layers, `-`-separated (`--encoder-layers`).
    pub encoder_layers: EncoderLayers,
    /// Combinator per layer or one for all (`--decoder-spec`).
    pub decoder_spec: DecoderSpec,
    /// λ per layer, input first (`--denoising-cost-x`).
    pub denoising_cost_x: LayerValues,
    /// Labelled examples, balanced across classes; 0 = every training example.
    pub labeled_samples: usize,
    /// Unlabelled examples; `None` = every training example.
    pub unlabeled_samples: Option<usize>,
    /// Examples held out of training for validation.
    pub validation_samples: usize,
    /// Drives initialisation, the split, the data order and the noise.
    pub seed: u64,
    /// Passes over the unlabelled set.
    pub epochs: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Fraction of the epochs after which the learning rate decays linearly to 0.
    pub lrate_decay: f64,
    /// Labelled and unlabelled examples per step (each).
    pub batch_size: usize,
    /// Std of the corruption of the input (`--super-noise-std`).
    pub super_noise_std: f64,
    /// Std of the corruption after each layer, one value or one per layer
    /// (`--f-local-noise-std`).
    pub f_local_noise_std: LayerValues,
    /// Learn γ at the softmax top (`--top-c`).
    pub top_c: bool,
    /// Hidden activation (`--act`).
    pub act: Activation,
    /// Number of classes; labels must lie in 0..num_classes.
    pub num_classes: usize,
    /// Evaluate the validation and test error every this many epochs (and after the last).
    pub eval_every: usize,
    /// Training examples whose population moments normalise the per-epoch evaluations,
    /// evenly spaced through the training set; 0 = all of them. The run's result (its
    /// summary, checkpoint and `evaluate`) always uses the whole training set.
    pub monitor_moments: usize,
    /// Adversarial noise on the labelled rows' corrupted input (thesis 000 eq. 56–59).
    pub adv_sup_kind: AdvKind,
    /// τ of the labelled rows' adversarial noise; 0 turns it off.
    pub adv_sup_tau: f64,
    /// Keep the Gaussian input noise on the labelled rows as well (x̃ = x + u + n rather than
    /// x + u).
    pub adv_sup_gaussian: bool,
    /// Adversarial noise on the unlabelled rows, from the network's argmax as virtual label.
    pub adv_unsup_kind: AdvKind,
    /// τ of the unlabelled rows' adversarial noise; 0 turns it off.
    pub adv_unsup_tau: f64,
    /// Keep the Gaussian input noise on the unlabelled rows as well.
    pub adv_unsup_gaussian: bool,
    /// Convert colour images to grey (luminance) before anything else (paper 004's grey
    /// CIFAR-10).
    pub grey: bool,
    /// Global contrast normalisation: each example centred and scaled to this L2 norm
    /// (55 for CIFAR-10 in paper 001); 0 turns it off.
    pub contrast_norm: f64,
    /// ZCA whitening fitted on the training data.
    pub zca: bool,
    /// Regulariser added to the covariance's eigenvalues before whitening (the original's
    /// `filter_bias`).
    pub zca_bias: f64,
    /// Random crops of this side and the same centre crop at test time (24 in paper 003);
    /// 0 turns it off.
    pub crop: usize,
    /// Random horizontal flips of the training images (paper 003).
    pub flip: bool,
    /// ε of virtual adversarial training (Miyato et al. 2018; L2 per example); 0 turns VAT
    /// off.
    pub vat_epsilon: f64,
    /// ξ of VAT's power iteration.
    pub vat_xi: f64,
    /// Power-iteration steps of VAT.
    pub vat_iterations: usize,
    /// α, the weight of the virtual adversarial loss on the unlabelled rows.
    pub vat_weight: f64,
    /// Add the entropy of the unlabelled rows' predictions (VAT+EntMin).
    pub entmin: bool,
    /// The virtual adversarial Ladder (Shinoda et al. 2017): ε_l per layer, input first, of
    /// the virtual adversarial noise added to the corrupted path's Gaussian noise on the
    /// unlabelled rows; nonzero on the input only is LVAN, on every layer below the top
    /// LVAN-LW; "0" turns it off. Its power iteration takes `vat_xi` and `vat_iterations`.
    pub lvan_epsilon: LayerValues,
    /// σ of the Gaussian noise on every layer of LVAN's power-iteration passes (the authors'
    /// `vadv_sd`).
    pub lvan_noise_std: f64,
    /// Read from run directories of this project's first LVAN (r_vadv replaced the Gaussian
    /// input noise of every row), which is gone: `true` is refused, and it is never written.
    #[serde(skip_serializing)]
    pub vat_corruption: bool,
    /// w_max of the Π-model's consistency cost between two noisy passes (Laine and Aila
    /// 2017); 0 turns it off.
    pub consistency_weight: f64,
    /// Epochs over which w(t) ramps up to w_max along exp(−5 (1 − T)²).
    pub consistency_rampup: f64,
    /// α of Mean Teacher's moving average (Tarvainen and Valpola 2017): the consistency
    /// target is a teacher θ′ ← α θ′ + (1 − α) θ instead of a second pass of the network; 0
    /// is the Π-model.
    pub mean_teacher_decay: f64,
}

impl Default for TrainConfig {
    /// The paper's full Ladder on MNIST with 100 labels.
    fn default() -> Self {
        TrainConfig {
            encoder_layers: Written::known("1000-500-250-250-250-10"),
            decoder_spec: Written::known("gauss"),
            denoising_cost_x: Written::known("1000,10,0.1,0.1,0.1,0.1,0.1"),
            labeled_samples: 100,
            unlabeled_samples: None,
            validation_samples: 0,
            seed: 1,
            epochs: 150,
            lr: 0.002,
            lrate_decay: 0.67,
            batch_size: 100,
            super_noise_std: 0.3,
            f_local_noise_std: Written::known("0.3"),
            top_c: true,
            act: Activation::Relu,
            num_classes: 10,
            eval_every: 1,
            monitor_moments: 2000,
            adv_sup_kind: AdvKind::Sign,
            adv_sup_tau: 0.0,
            adv_sup_gaussian: true,
            adv_unsup_kind: AdvKind::Unit,
            adv_unsup_tau: 0.0,
            adv_unsup_gaussian: true,
            grey: false,
            contrast_norm: 0.0,
            zca: false,
            zca_bias: 0.1,
            crop: 0,
            flip: false,
            vat_epsilon: 0.0,
            vat_xi: 1e-6,
            vat_iterations: 1,
            vat_weight: 1.0,
            entmin: false,
            lvan_epsilon: Written::known("0"),
            lvan_noise_std: 0.5,
            vat_corruption: false,
            consistency_weight: 0.0,
            consistency_rampup: 80.0,
            mean_teacher_decay: 0.0,
        }
    }
}

/// Conv-Small of paper 001 Table 4 (MNIST).
pub const CONV_SMALL: &str = "convf:32:5:1:1-maxpool:2:2-convv:64:3:1:1-convf:64:3:1:1-\
                              maxpool:2:2-convv:128:3:1:1-convv:10:1:1:1-globalmeanpool:6:6-fc:10";

/// Conv-Large of paper 001 Table 4 (CIFAR-10).
pub const CONV_LARGE: &str = "convv:96:3:1:1-convf:96:3:1:1-convf:96:3:1:1-maxpool:2:2-\
                              convv:192:3:1:1-convf:192:3:1:1-convv:192:3:1:1-maxpool:2:2-\
                              convv:192:3:1:1-convv:192:1:1:1-convv:10:1:1:1-globalmeanpool:0";

/// Conv-FC of paper 001 Sec. 4.1.2: the fully connected network as convolutions.
pub const CONV_FC: &str = "convv:1000:26:1:1-convv:500:1:1:1-convv:250:1:1:1-convv:250:1:1:1-\
                           convv:250:1:1:1-convv:10:1:1:1-globalmeanpool:0";

/// λ = `value` on the top of an `n`-layer network (input included), 0 below: the Γ-model.
fn top_lambda(n: usize, value: &str) -> String {
    let mut v = vec!["0"; n];
    v[n - 1] = value;
    v.join(",")
}

/// A named configuration from the papers: its name, where it comes from, and how it is built
/// from the defaults.
pub struct Preset {
    pub name: &'static str,
    pub about: &'static str,
    build: fn() -> TrainConfig,
}

impl Preset {
    pub fn config(&self) -> TrainConfig {
        (self.build)()
    }
}

/// The MNIST network with `labeled` labels and λ `lambdas` (input first), else the defaults.
fn mnist(labeled: usize, lambdas: &str) -> TrainConfig {
    TrainConfig {
        labeled_samples: labeled,
        denoising_cost_x: Written::known(lambdas),
        ..TrainConfig::default()
    }
}

/// The supervised baseline: no decoder, layer noise 0.5.
fn baseline(labeled: usize) -> TrainConfig {
    TrainConfig {
        f_local_noise_std: Written::known("0.5"),
        ..mnist(labeled, "0")
    }
}

/// The full Ladder of `full` with the thesis 000's adversarial noise: sign noise of τ_sup on
/// labelled, unit noise of τ_unsup on unlabelled examples, both with Gaussian noise.
fn adversarial_ladder(full: TrainConfig, sup: f64, unsup: f64) -> TrainConfig {
    TrainConfig {
        adv_sup_kind: AdvKind::Sign,
        adv_sup_tau: sup,
        adv_unsup_kind: AdvKind::Unit,
        adv_unsup_tau: unsup,
        ..full
    }
}

/// The semi-supervised methods one network and loop train, each a set of configuration
/// fields applied to a preset's network and budget (`ladder train --method`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// The preset as it is (the Ladder, or its baseline).
    Ladder,
    /// Virtual adversarial training (Miyato et al. 2018).
    Vat,
    /// VAT with entropy minimisation.
    VatEntmin,
    /// The virtual adversarial Ladder (Shinoda et al. 2017).
    Lvan,
    /// The virtual adversarial Ladder with noise on every layer below the top (LVAN-LW).
    LvanLw,
    /// The Π-model (Laine and Aila 2017).
    Pi,
    /// Mean Teacher (Tarvainen and Valpola 2017).
    MeanTeacher,
}

crate::named_choice!(Method, "method");

impl Method {
    /// `base` (a preset: its network, data, budget and seed) trained by this method.
    pub fn apply(self, base: TrainConfig) -> TrainConfig {
        match self {
            Method::Ladder => base,
            Method::Vat => vat(base),
            Method::VatEntmin => TrainConfig {
                entmin: true,
                ..vat(base)
            },
            Method::Lvan => lvan(base, &[SHINODA_100.lvan_input]),
            Method::LvanLw => lvan(base, &SHINODA_100.lvan_layers),
            Method::Pi => consistency(base, 0.0),
            Method::MeanTeacher => consistency(base, 0.99),
        }
    }
}

/// Virtual adversarial training (Miyato et al. 2018) on `base`'s encoder: no decoder, no
/// Gaussian corruption, ε 5.0, ξ 1e-6, one power iteration, α 1: the settings of Shinoda et
/// al.'s VAT runs on the full Ladder's network (their published run descriptions, 1.28 %
/// with 100 labels on MNIST). The ε 0.3 of Miyato's Chainer MNIST command makes this network
/// worse than no regulariser over 150 epochs on MNIST-10k, in a PyTorch VAT as here
/// (RESULTS.md).
fn vat(base: TrainConfig) -> TrainConfig {
    TrainConfig {
        denoising_cost_x: Written::known("0"),
        super_noise_std: 0.0,
        f_local_noise_std: Written::known("0"),
        vat_epsilon: 5.0,
        ..base
    }
}

/// Shinoda et al.'s tuned MNIST settings of one label count (their repository's run
/// descriptions, `vat_ladder/README.md`): ε of LVAN's input noise, ε per layer of LVAN-LW
/// (input, first hidden layer, every layer above it), and the denoising costs each was tuned
/// with (input, first hidden layer, every layer above it).
struct ShinodaSettings {
    lvan_input: f64,
    lvan_layers: [f64; 3],
    lvan_lambdas: [f64; 3],
    lvan_lw_lambdas: [f64; 3],
}

const SHINODA_100: ShinodaSettings = ShinodaSettings {
    lvan_input: 0.0209401405553,
    lvan_layers: [0.0730815479025, 0.482173463842, 0.00140155463202],
    lvan_lambdas: [754.495982501, 8.69486925733, 0.871556893638],
    lvan_lw_lambdas: [1966.16465847, 14.2000743242, 0.156300920559],
};

const SHINODA_50: ShinodaSettings = ShinodaSettings {
    lvan_input: 0.0337167780996,
    lvan_layers: [0.0478824401043, 0.0704417429427, 0.000854090192827],
    lvan_lambdas: [1862.2207984, 8.21492073196, 0.053401218333],
    lvan_lw_lambdas: [1006.29215947, 8.66109203716, 0.0717106445511],
};

/// One value per layer of a network of `n` layers, input first, from the pattern (input,
/// first hidden layer, each layer above it); `top` for the top layer.
fn per_layer(n: usize, pattern: &[f64], top: Option<f64>) -> String {
    let value = |l: usize| match (l + 1 == n, top) {
        (true, Some(t)) => t,
        _ => pattern[l.min(pattern.len() - 1)],
    };
    let values: Vec<String> = (0..n).map(|l| value(l).to_string()).collect();
    values.join(",")
}

/// The virtual adversarial Ladder on `base` (which must be a Ladder: its decoder, noise and
/// costs stay): ε per layer from `pattern` (one value: the input only, LVAN; three: LVAN-LW,
/// none on the top), the power iteration of Shinoda et al. (ξ 1e-6, K 3, Gaussian noise 0.5).
fn lvan(base: TrainConfig, pattern: &[f64]) -> TrainConfig {
    let n = base.encoder_layers.value().len() + 1;
    let epsilon = match pattern {
        [input] => per_layer(n, &[*input, 0.0], Some(0.0)),
        _ => per_layer(n, pattern, Some(0.0)),
    };
    TrainConfig {
        lvan_epsilon: Written::known(&epsilon),
        lvan_noise_std: 0.5,
        vat_xi: 1e-6,
        vat_iterations: 3,
        ..base
    }
}

/// Shinoda et al.'s LVAN (`layer_wise` false) or LVAN-LW on MNIST: their ε and λ for the
/// label count, leaky ReLU 0.1, the Ladder's Gaussian noise 0.3. Their batches (100
/// labelled, 250 unlabelled) and budget (250 epochs of full MNIST) are not copied: the
/// batches and budget are the other methods', for one comparison.
fn shinoda_lvan(labeled: usize, settings: &ShinodaSettings, layer_wise: bool) -> TrainConfig {
    let (pattern, lambdas): (&[f64], _) = match layer_wise {
        false => (&[settings.lvan_input], settings.lvan_lambdas),
        true => (&settings.lvan_layers, settings.lvan_lw_lambdas),
    };
    let base = TrainConfig {
        act: Activation::Leakyrelu,
        ..mnist(labeled, &per_layer(7, &lambdas, None))
    };
    lvan(base, pattern)
}

/// The Π-model (`decay` 0) or Mean Teacher on `base`'s encoder and noise, without a decoder:
/// w_max 100 ramped up over 80 epochs (Laine and Aila's schedule).
fn consistency(base: TrainConfig, decay: f64) -> TrainConfig {
    TrainConfig {
        denoising_cost_x: Written::known("0"),
        consistency_weight: 100.0,
        consistency_rampup: 80.0,
        mean_teacher_decay: decay,
        ..base
    }
}

fn full_100() -> TrainConfig {
    mnist(100, "1000,10,0.1,0.1,0.1,0.1,0.1")
}

fn full_1000() -> TrainConfig {
    TrainConfig {
        f_local_noise_std: Written::known("0.2"),
        ..mnist(1000, "2000,20,0.1,0.1,0.1,0.1,0.1")
    }
}

fn full_all() -> TrainConfig {
    mnist(0, "1000,1,0.01,0.01,0.01,0.01,0.01")
}

/// Conv-Small (or another network) on MNIST with 100 labels.
fn conv_mnist(layers: &str, lambdas: String) -> TrainConfig {
    TrainConfig {
        encoder_layers: Written::known(layers),
        ..mnist(100, &lambdas)
    }
}

/// Conv-Large on CIFAR-10 with 4,000 labels: leaky ReLU, GCN 55, ZCA, no γ.
fn conv_cifar(lambdas: String) -> TrainConfig {
    TrainConfig {
        encoder_layers: Written::known(CONV_LARGE),
        denoising_cost_x: Written::known(&lambdas),
        labeled_samples: 4000,
        act: Activation::Leakyrelu,
        contrast_norm: 55.0,
        zca: true,
        top_c: false,
        ..TrainConfig::default()
    }
}

/// Every preset: the MNIST settings of Rasmus et al. 2015 (Tables 1 and 2), the full Ladder
/// with the adversarial noise the thesis 000 chose per task (Tables 18–24), and the
/// convolutional networks of Rasmus et al. (Table 4, Sec. 4.1.2 and 4.2) on MNIST and CIFAR-10
/// with the thesis 000's settings (Sec. 5.3.4). `ladder presets` lists this table.
pub const PRESET_TABLE: [Preset; 33] = [
    Preset {
        name: "mnist-100-full",
        about: "full Ladder, 100 labels (001 Table 1)",
        build: full_100,
    },
    Preset {
        name: "mnist-100-bottom",
        about: "denoising cost on the input only, 100 labels (001 Table 1)",
        build: || mnist(100, &single_lambda(0, "5000")),
    },
    Preset {
        name: "mnist-100-gamma",
        about: "Γ-model: denoising cost on the top only, 100 labels (001 Table 1)",
        build: || mnist(100, &single_lambda(6, "0.5")),
    },
    Preset {
        name: "mnist-100-baseline",
        about: "supervised baseline, no decoder, layer noise 0.5, 100 labels",
        build: || baseline(100),
    },
    Preset {
        name: "mnist-1000-full",
        about: "full Ladder, 1000 labels, layer noise 0.2 (001 Table 1)",
        build: full_1000,
    },
    Preset {
        name: "mnist-1000-bottom",
        about: "denoising cost on the input only, 1000 labels",
        build: || mnist(1000, &single_lambda(0, "2000")),
    },
    Preset {
        name: "mnist-1000-gamma",
        about: "Γ-model, 1000 labels",
        build: || mnist(1000, &single_lambda(6, "10")),
    },
    Preset {
        name: "mnist-1000-baseline",
        about: "supervised baseline, 1000 labels",
        build: || baseline(1000),
    },
    Preset {
        name: "mnist-all-full",
        about: "full Ladder, every label (001 Table 1)",
        build: full_all,
    },
    Preset {
        name: "mnist-all-bottom",
        about: "denoising cost on the input only, every label",
        build: || mnist(0, &single_lambda(0, "2000")),
    },
    Preset {
        name: "mnist-all-gamma",
        about: "Γ-model, every label",
        build: || mnist(0, &single_lambda(6, "2")),
    },
    Preset {
        name: "mnist-all-baseline",
        about: "supervised baseline, every label",
        build: || baseline(0),
    },
    Preset {
        name: "mnist-100-adv",
        about: "full Ladder with adversarial noise τ 0.045 / 0.00045, 100 labels (000 Table 22)",
        build: || adversarial_ladder(full_100(), 0.045, 0.00045),
    },
    Preset {
        name: "mnist-100-adv-sup",
        about: "full Ladder with adversarial noise on labelled examples only, 100 labels",
        build: || adversarial_ladder(full_100(), 0.045, 0.0),
    },
    Preset {
        name: "mnist-100-adv-t21",
        about: "full Ladder with adversarial noise τ 0.00045 / 4.5e-7 (000 Table 21)",
        build: || adversarial_ladder(full_100(), 0.00045, 4.5e-7),
    },
    Preset {
        name: "mnist-1000-adv",
        about: "full Ladder with adversarial noise τ 4.5e-5 / 4.5e-5, 1000 labels (000 Table 24)",
        build: || adversarial_ladder(full_1000(), 4.5e-5, 4.5e-5),
    },
    Preset {
        name: "mnist-1000-adv-sup",
        about: "full Ladder with adversarial noise on labelled examples only, 1000 labels",
        build: || adversarial_ladder(full_1000(), 4.5e-5, 0.0),
    },
    Preset {
        name: "mnist-all-adv",
        about: "full Ladder with adversarial noise τ 0.00045 / 4.5e-8, every label (000 Table 19)",
        build: || adversarial_ladder(full_all(), 0.00045, 4.5e-8),
    },
    Preset {
        name: "mnist-all-adv-sup",
        about: "full Ladder with adversarial noise on labelled examples only, every label (000 Table 18)",
        build: || adversarial_ladder(full_all(), 0.00045, 0.0),
    },
    Preset {
        name: "mnist-100-vat",
        about: "VAT on the full Ladder's encoder (no decoder, no Gaussian noise), ε 5.0, ξ 1e-6, \
                K 1, α 1: Shinoda et al.'s VAT settings on this network, 100 labels",
        build: || vat(full_100()),
    },
    Preset {
        name: "mnist-100-vat-entmin",
        about: "VAT+EntMin on the full Ladder's encoder, 100 labels",
        build: || Method::VatEntmin.apply(full_100()),
    },
    Preset {
        name: "mnist-100-lvan",
        about: "virtual adversarial Ladder (LVAN, Shinoda et al. 2017): virtual adversarial \
                noise (ε 0.021, K 3) added to the input's Gaussian noise of the unlabelled rows, \
                their λ and leaky ReLU, 100 labels",
        build: || shinoda_lvan(100, &SHINODA_100, false),
    },
    Preset {
        name: "mnist-100-lvan-lw",
        about: "LVAN-LW: virtual adversarial noise on every layer below the top (ε 0.073, \
                0.48, 0.0014), their λ and leaky ReLU, 100 labels",
        build: || shinoda_lvan(100, &SHINODA_100, true),
    },
    Preset {
        name: "mnist-50-lvan",
        about: "LVAN with Shinoda et al.'s 50-label settings (ε 0.034), 50 labels",
        build: || shinoda_lvan(50, &SHINODA_50, false),
    },
    Preset {
        name: "mnist-50-lvan-lw",
        about: "LVAN-LW with Shinoda et al.'s 50-label settings (ε 0.048, 0.070, 0.00085), 50 \
                labels",
        build: || shinoda_lvan(50, &SHINODA_50, true),
    },
    Preset {
        name: "mnist-100-pi",
        about: "Π-model on the full Ladder's encoder: the baseline's Gaussian noise in two \
                passes, consistency w_max 100 ramped up over 80 epochs, 100 labels",
        build: || Method::Pi.apply(baseline(100)),
    },
    Preset {
        name: "mnist-100-mean-teacher",
        about: "Mean Teacher on the full Ladder's encoder: the baseline's Gaussian noise, teacher \
                decay 0.99, consistency w_max 100 ramped up over 80 epochs, 100 labels",
        build: || Method::MeanTeacher.apply(baseline(100)),
    },
    Preset {
        name: "mnist-100-conv-vat",
        about: "VAT on the Conv-Small encoder (no decoder, no Gaussian noise), ε 5.0, 100 labels",
        build: || vat(conv_mnist(CONV_SMALL, "0".into())),
    },
    Preset {
        name: "mnist-100-conv-fc",
        about: "Conv-FC: the full Ladder's network as convolutions, 100 labels (001 Sec. 4.1.2)",
        build: || conv_mnist(CONV_FC, "1000,10,0.1,0.1,0.1,0.1,0.1,0.1".into()),
    },
    Preset {
        name: "mnist-100-conv-gamma",
        about: "Conv-Small Γ-model, 100 labels (001 Table 2)",
        build: || conv_mnist(CONV_SMALL, top_lambda(10, "1")),
    },
    Preset {
        name: "mnist-100-conv-baseline",
        about: "Conv-Small supervised baseline, 20 epochs, decay from half-way, layer noise 0.45",
        build: || TrainConfig {
            epochs: 20,
            lrate_decay: 0.5,
            f_local_noise_std: Written::known("0.45"),
            ..conv_mnist(CONV_SMALL, "0".into())
        },
    },
    Preset {
        name: "cifar-4000-conv-gamma",
        about: "Conv-Large Γ-model, 4000 labels, 70 epochs, decay from epoch 60 (001 Table 3)",
        build: || TrainConfig {
            epochs: 70,
            lrate_decay: 60.0 / 70.0,
            ..conv_cifar(top_lambda(13, "4"))
        },
    },
    Preset {
        name: "cifar-4000-conv-baseline",
        about: "Conv-Large supervised baseline, 20 epochs, decay from half-way",
        build: || TrainConfig {
            epochs: 20,
            lrate_decay: 0.5,
            ..conv_cifar("0".into())
        },
    },
];

/// The names of the presets, in the table's order.
pub fn preset_names() -> impl Iterator<Item = &'static str> {
    PRESET_TABLE.iter().map(|p| p.name)
}

/// λ with `value` at layer `at` and 0 elsewhere, for the 7 layers of the MNIST network.
fn single_lambda(at: usize, value: &str) -> String {
    (0..7)
        .map(|l| if l == at { value } else { "0" })
        .collect::<Vec<_>>()
        .join(",")
}

impl TrainConfig {
    /// The configuration of the preset `name` ([`PRESET_TABLE`]).
    pub fn preset(name: &str) -> Result<TrainConfig> {
        PRESET_TABLE
            .iter()
            .find(|p| p.name == name)
            .map(Preset::config)
            .ok_or_else(|| {
                LadderError::Setting(format!(
                    "unknown preset '{name}'; known presets: {}",
                    preset_names().collect::<Vec<_>>().join(", ")
                ))
            })
    }

    /// Reads a TOML file of [`TrainConfig`] fields (missing ones take the defaults).
    pub fn from_toml_file(path: &std::path::Path) -> Result<TrainConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| LadderError::io(path, e))?;
        Self::from_toml_str(&text).map_err(|e| match e {
            LadderError::Setting(reason) => LadderError::Format {
                path: path.into(),
                reason,
            },
            other => other,
        })
    }

    pub fn from_toml_str(text: &str) -> Result<TrainConfig> {
        toml::from_str(text).map_err(|e| LadderError::Setting(format!("bad configuration: {e}")))
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a TrainConfig always serialises")
    }

    /// The network this configuration describes, for inputs of `image_shape` (`[d]`,
    /// `[H, W]` or `[C, H, W]`; a fully connected network flattens images).
    pub fn ladder_spec(&self, image_shape: &[usize]) -> Result<LadderSpec> {
        let kinds = self.encoder_layers.value();
        let input = Shape::of_input(image_shape)?;
        let input = if kinds.iter().any(LayerKind::is_spatial) {
            input
        } else {
            Shape::vector(input.units())
        };
        let layers = plan(input, kinds)?;
        let mut dims = vec![input.units()];
        dims.extend(layers.iter().map(|g| g.output.units()));
        let n = dims.len();
        if dims[n - 1] != self.num_classes {
            return Err(LadderError::Spec(format!(
                "the top layer has {} units but there are {} classes",
                dims[n - 1],
                self.num_classes
            )));
        }
        let spec = LadderSpec {
            layers,
            combinators: self.decoder_spec.for_layers(n)?,
            lambdas: self.denoising_cost_x.for_layers(n, "denoising costs")?,
            input_noise_std: self.super_noise_std,
            layer_noise_std: self
                .f_local_noise_std
                .for_layers(n - 1, "layer noise std")?,
            top_c: self.top_c,
            activation: self.act,
            adv_sup: adversarial(self.adv_sup_kind, self.adv_sup_tau, self.adv_sup_gaussian),
            adv_unsup: adversarial(
                self.adv_unsup_kind,
                self.adv_unsup_tau,
                self.adv_unsup_gaussian,
            ),
            vat: self.vat(),
            lvan: self.lvan_for(n)?,
            consistency: (self.consistency_weight > 0.0).then_some(Consistency {
                weight: self.consistency_weight,
                rampup_epochs: self.consistency_rampup,
                teacher_decay: (self.mean_teacher_decay > 0.0).then_some(self.mean_teacher_decay),
            }),
            dims,
        };
        spec.validate()?;
        Ok(spec)
    }

    /// The virtual adversarial setting, `None` when ε = 0.
    pub fn vat(&self) -> Option<Vat> {
        (self.vat_epsilon > 0.0).then(|| self.vat_fields())
    }

    /// The virtual adversarial Ladder's setting for a network of `n` layers (input
    /// included), `None` when every ε_l is 0.
    fn lvan_for(&self, n: usize) -> Result<Option<Lvan>> {
        let epsilon = self.lvan_epsilon.for_layers(n, "LVAN ε")?;
        Ok(epsilon.iter().any(|&e| e != 0.0).then_some(Lvan {
            epsilon,
            xi: self.vat_xi,
            iterations: self.vat_iterations,
            probe_noise_std: self.lvan_noise_std,
        }))
    }

    /// Whether LVAN is asked for (some ε_l is not 0), before the network's depth is known.
    pub fn lvan_on(&self) -> bool {
        self.lvan_epsilon.value().any(|e| e != 0.0)
    }

    /// Whether a decoder is trained (some denoising cost λ_l is above 0).
    pub fn has_decoder(&self) -> bool {
        self.denoising_cost_x.value().any(|l| l > 0.0)
    }

    /// The VAT fields as one setting, whether ε turns it on or not.
    fn vat_fields(&self) -> Vat {
        Vat {
            epsilon: self.vat_epsilon,
            xi: self.vat_xi,
            iterations: self.vat_iterations,
            weight: self.vat_weight,
            entmin: self.entmin,
        }
    }

    /// Checks that the VAT settings make sense together.
    fn validate_vat(&self) -> Result<()> {
        let bad = |m: String| Err(LadderError::Setting(m));
        self.vat_fields().validate().map_err(LadderError::Setting)?;
        let on = self.vat_epsilon > 0.0;
        if self.vat_corruption {
            return bad(
                "vat_corruption = true was this project's first LVAN (r_vadv instead of the \
                 Gaussian input noise), which is gone: LVAN now adds virtual adversarial noise \
                 to the Gaussian noise as Shinoda et al. do; set lvan_epsilon (--method lvan)"
                    .into(),
            );
        }
        if !on && self.entmin {
            return bad(
                "entmin is part of virtual adversarial training: set --vat-epsilon above 0".into(),
            );
        }
        if on && self.vat_weight == 0.0 {
            return bad(
                "with vat-weight 0 the virtual adversarial perturbation would be computed and \
                 not used: set --vat-epsilon 0 to turn VAT off"
                    .into(),
            );
        }
        let fine = |v: f64| v.is_finite() && v >= 0.0;
        if !fine(self.lvan_noise_std) {
            return bad(format!(
                "lvan-noise-std {} must be finite and ≥ 0",
                self.lvan_noise_std
            ));
        }
        // LVAN's own settings are checked with the network's depth ([`Lvan::validate`]).
        Ok(())
    }

    /// The Π-model trains no decoder: its consistency cost takes the denoising costs' place.
    fn validate_consistency(&self) -> Result<()> {
        let fine = |v: f64| v.is_finite() && v >= 0.0;
        if !(fine(self.consistency_weight) && fine(self.consistency_rampup)) {
            return Err(LadderError::Setting(format!(
                "consistency-weight {} and consistency-rampup {} must be finite and ≥ 0",
                self.consistency_weight, self.consistency_rampup
            )));
        }
        let decoder = self.has_decoder();
        if !(0.0..1.0).contains(&self.mean_teacher_decay) {
            return Err(LadderError::Setting(format!(
                "mean-teacher-decay {} must lie in [0, 1)",
                self.mean_teacher_decay
            )));
        }
        if self.mean_teacher_decay > 0.0 && self.consistency_weight == 0.0 {
            return Err(LadderError::Setting(
                "Mean Teacher's teacher is a consistency target: set --consistency-weight \
                 above 0"
                    .into(),
            ));
        }
        if self.consistency_weight > 0.0 && (decoder || self.lvan_on()) {
            return Err(LadderError::Setting(
                "the Π-model (consistency-weight > 0) trains the encoder without a decoder: set \
                 --denoising-cost-x 0 (and no lvan-epsilon)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The input preprocessing this configuration asks for.
    pub fn preprocessing(&self) -> Preprocessing {
        Preprocessing {
            grey: self.grey,
            contrast_norm: self.contrast_norm,
            zca_bias: self.zca.then_some(self.zca_bias),
            crop: self.crop,
        }
    }

    /// Checks the settings that do not depend on the data.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(LadderError::Setting(m));
        if self.batch_size == 0 {
            return bad("batch size must be positive".into());
        }
        if self.epochs == 0 {
            return bad("epochs must be positive".into());
        }
        if !(self.contrast_norm.is_finite() && self.contrast_norm >= 0.0) {
            return bad(format!(
                "contrast-norm {} must be ≥ 0 (0 turns it off)",
                self.contrast_norm
            ));
        }
        if self.zca && !(self.zca_bias.is_finite() && self.zca_bias > 0.0) {
            return bad(format!(
                "zca-bias {} must be positive: it keeps the whitening finite",
                self.zca_bias
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!("learning rate {} must be positive", self.lr));
        }
        if !(0.0..=1.0).contains(&self.lrate_decay) {
            return bad(format!(
                "lrate-decay {} must be a fraction of the epochs in [0, 1]",
                self.lrate_decay
            ));
        }
        if self.num_classes < 2 {
            return bad("there must be at least 2 classes".into());
        }
        if self.eval_every == 0 {
            return bad("eval-every must be positive".into());
        }
        if !(self.super_noise_std.is_finite() && self.super_noise_std >= 0.0) {
            return bad(format!(
                "input noise std {} must be ≥ 0",
                self.super_noise_std
            ));
        }
        for (name, tau) in [
            ("adv-sup-tau", self.adv_sup_tau),
            ("adv-unsup-tau", self.adv_unsup_tau),
        ] {
            if !(tau.is_finite() && tau >= 0.0) {
                return bad(format!("{name} {tau} must be ≥ 0"));
            }
        }
        self.validate_vat()?;
        self.validate_consistency()?;
        // The network shape is checked against an arbitrary input here (a vector, or an image
        // for convolutional networks); the real one comes with the data, so only the lists'
        // lengths and values count.
        let kinds = self.encoder_layers.value();
        if kinds.iter().any(LayerKind::is_spatial) {
            let n = kinds.len() + 1;
            self.decoder_spec.for_layers(n)?;
            self.denoising_cost_x.for_layers(n, "denoising costs")?;
            self.f_local_noise_std
                .for_layers(n - 1, "layer noise std")?;
            if let Some(lvan) = self.lvan_for(n)? {
                lvan.validate(n).map_err(LadderError::Setting)?;
            }
            Ok(())
        } else {
            self.ladder_spec(&[1]).map(|_| ())
        }
    }
}

/// The adversarial setting of one row group, `None` when τ = 0.
fn adversarial(kind: AdvKind, tau: f64, with_gaussian: bool) -> Option<Adversarial> {
    (tau > 0.0).then_some(Adversarial {
        kind,
        tau,
        with_gaussian,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--method` trains any preset's network with another method, and the result validates.
    #[test]
    fn methods_apply_to_any_preset() {
        for p in [
            "mnist-100-full",
            "mnist-100-conv-gamma",
            "mnist-100-baseline",
        ] {
            let base = TrainConfig::preset(p).unwrap();
            for m in crate::choice::all::<Method>() {
                let c = m.apply(base.clone());
                let lvan = matches!(m, Method::Lvan | Method::LvanLw);
                if lvan && p == "mnist-100-baseline" {
                    let e = c.validate().unwrap_err().to_string();
                    assert!(e.contains("only a Ladder with a decoder"), "{e}");
                    continue;
                }
                c.validate().unwrap_or_else(|e| panic!("{p} {m}: {e}"));
                assert_eq!(
                    c.encoder_layers, base.encoder_layers,
                    "{p} {m}: same network"
                );
                assert_eq!(c.labeled_samples, base.labeled_samples);
                let spec = c.ladder_spec(&[28, 28]).unwrap();
                match m {
                    Method::Ladder => assert_eq!(c, base),
                    Method::Vat | Method::VatEntmin => {
                        assert!(spec.vat.is_some() && spec.lambdas.iter().all(|l| *l == 0.0));
                        assert_eq!(spec.vat.unwrap().entmin, m == Method::VatEntmin);
                    }
                    Method::Lvan | Method::LvanLw => {
                        let lvan = spec.lvan.unwrap();
                        let n = spec.dims.len();
                        assert!(spec.vat.is_none() && lvan.epsilon[0] > 0.0);
                        assert_eq!(lvan.epsilon[n - 1], 0.0, "no noise on the top");
                        let hidden = lvan.epsilon[1..n - 1].iter().all(|&e| e > 0.0);
                        assert_eq!(hidden, m == Method::LvanLw, "{:?}", lvan.epsilon);
                        assert_eq!(spec.lambdas, base.ladder_spec(&[28, 28]).unwrap().lambdas);
                    }
                    Method::Pi | Method::MeanTeacher => {
                        let c = spec.consistency.unwrap();
                        assert_eq!(c.teacher_decay.is_some(), m == Method::MeanTeacher);
                    }
                }
            }
        }
        assert_eq!(
            Method::Vat.apply(full_100()),
            TrainConfig::preset("mnist-100-vat").unwrap()
        );
    }

    /// The LVAN presets carry Shinoda et al.'s tuned values (their run descriptions) for each
    /// label count; old run directories' `vat_corruption = true` is refused, `false` read.
    #[test]
    fn lvan_presets_are_shinodas_settings() {
        let spec = |p: &str| {
            let c = TrainConfig::preset(p).unwrap();
            (c.labeled_samples, c.ladder_spec(&[28, 28]).unwrap())
        };
        let (labels, lw) = spec("mnist-100-lvan-lw");
        assert_eq!(labels, 100);
        let lvan = lw.lvan.unwrap();
        let small = 0.00140155463202;
        let expected = [
            0.0730815479025,
            0.482173463842,
            small,
            small,
            small,
            small,
            0.0,
        ];
        assert_eq!(lvan.epsilon, expected);
        assert_eq!(
            (lvan.xi, lvan.iterations, lvan.probe_noise_std),
            (1e-6, 3, 0.5)
        );
        assert_eq!(lw.lambdas[..2], [1966.16465847, 14.2000743242]);
        assert_eq!(lw.activation, Activation::Leakyrelu);
        let (labels, input) = spec("mnist-50-lvan");
        assert_eq!(labels, 50);
        assert_eq!(
            input.lvan.unwrap().epsilon,
            [0.0337167780996, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        );
        assert_eq!(input.lambdas[0], 1862.2207984);
        let old = |v: bool| {
            toml::from_str::<TrainConfig>(&format!("vat_corruption = {v}"))
                .unwrap()
                .validate()
        };
        assert!(old(false).is_ok());
        let e = old(true).unwrap_err().to_string();
        assert!(e.contains("lvan_epsilon"), "{e}");
        let written = toml::to_string(&TrainConfig::default()).unwrap();
        assert!(!written.contains("vat_corruption"), "{written}");
        // Without ξ the directions cannot be found, on fc and conv networks alike.
        for p in ["mnist-100-full", "mnist-100-conv-gamma"] {
            let c = TrainConfig {
                vat_xi: 0.0,
                ..Method::LvanLw.apply(TrainConfig::preset(p).unwrap())
            };
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains("LVAN needs ξ > 0"), "{p}: {e}");
        }
    }

    #[test]
    fn the_preset_table_names_each_preset_once_and_each_one_validates() {
        let names: Vec<&str> = preset_names().collect();
        let unique: std::collections::HashSet<&&str> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        for p in &PRESET_TABLE {
            assert!(!p.about.is_empty(), "{}", p.name);
            p.config().validate().unwrap();
            assert_eq!(TrainConfig::preset(p.name).unwrap(), p.config());
        }
        let err = TrainConfig::preset("mnist-10-full")
            .unwrap_err()
            .to_string();
        assert!(err.contains("known presets: mnist-100-full"), "{err}");
    }

    #[test]
    fn conv_presets_build_the_papers_networks() {
        let build = |name: &str, shape: &[usize]| {
            let c = TrainConfig::preset(name).unwrap();
            c.validate().unwrap();
            (c.ladder_spec(shape).unwrap(), c)
        };
        let (fc, _) = build("mnist-100-conv-fc", &[28, 28]);
        assert_eq!(fc.dims, vec![784, 9000, 4500, 2250, 2250, 2250, 90, 10]);
        assert!(fc.lambdas.iter().all(|&l| l > 0.0));
        let (gamma, c) = build("mnist-100-conv-gamma", &[28, 28]);
        assert_eq!((gamma.depth(), gamma.lowest_decoded_layer()), (9, Some(9)));
        assert_eq!((c.epochs, c.lrate_decay, c.top_c), (150, 0.67, true));
        let (base, c) = build("mnist-100-conv-baseline", &[28, 28]);
        assert_eq!(base.lowest_decoded_layer(), None);
        assert_eq!(
            (c.epochs, c.lrate_decay, base.layer_noise_std[0]),
            (20, 0.5, 0.45)
        );
        let (large, c) = build("cifar-4000-conv-gamma", &[3, 32, 32]);
        assert_eq!((large.depth(), large.lambdas[12]), (12, 4.0));
        assert_eq!(large.activation, Activation::Leakyrelu);
        assert!(!large.top_c && c.zca && c.contrast_norm == 55.0 && c.labeled_samples == 4000);
        assert_eq!((c.epochs, (c.lrate_decay * 70.0).round()), (70, 60.0));
        let (_, c) = build("cifar-4000-conv-baseline", &[3, 32, 32]);
        assert_eq!((c.epochs, c.lrate_decay), (20, 0.5));
        // A convolutional network refuses vector inputs.
        let c = TrainConfig::preset("mnist-100-conv-gamma").unwrap();
        assert!(c.ladder_spec(&[784]).is_err());
    }

    #[test]
    fn every_preset_resolves_to_a_valid_network() {
        for name in preset_names().filter(|n| !n.contains("conv")) {
            let c = TrainConfig::preset(name).unwrap();
            c.validate().unwrap();
            let spec = c.ladder_spec(&[784]).unwrap();
            assert_eq!(spec.dims, vec![784, 1000, 500, 250, 250, 250, 10], "{name}");
            assert_eq!(spec.adv_sup.is_some(), name.contains("-adv"), "{name}");
            assert_eq!(c.epochs, 150);
        }
    }

    #[test]
    fn presets_follow_the_paper_table() {
        let spec = |n: &str| TrainConfig::preset(n).unwrap().ladder_spec(&[784]).unwrap();
        assert_eq!(
            spec("mnist-100-bottom").lambdas,
            vec![5000., 0., 0., 0., 0., 0., 0.]
        );
        assert_eq!(
            spec("mnist-1000-gamma").lambdas,
            vec![0., 0., 0., 0., 0., 0., 10.]
        );
        assert_eq!(spec("mnist-1000-full").layer_noise_std, vec![0.2; 6]);
        assert_eq!(spec("mnist-1000-full").input_noise_std, 0.3);
        let base = spec("mnist-100-baseline");
        assert_eq!(base.lowest_decoded_layer(), None);
        assert_eq!(base.layer_noise_std, vec![0.5; 6]);
        assert_eq!(
            TrainConfig::preset("mnist-all-full")
                .unwrap()
                .labeled_samples,
            0
        );
        let err = TrainConfig::preset("mnist-10-full")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown preset") && err.contains("mnist-100-full"),
            "{err}"
        );
    }

    #[test]
    fn adversarial_presets_follow_the_thesis_tables() {
        let spec = |n: &str| TrainConfig::preset(n).unwrap().ladder_spec(&[784]).unwrap();
        let adv = spec("mnist-100-adv");
        let sup = adv.adv_sup.unwrap();
        let unsup = adv.adv_unsup.unwrap();
        assert_eq!(
            (sup.kind, sup.tau, sup.with_gaussian),
            (AdvKind::Sign, 0.045, true)
        );
        assert_eq!((unsup.kind, unsup.tau), (AdvKind::Unit, 0.00045));
        // Everything else is the full Ladder's.
        let full = spec("mnist-100-full");
        assert_eq!(
            (adv.lambdas.clone(), adv.layer_noise_std.clone()),
            (full.lambdas, full.layer_noise_std)
        );
        assert!(spec("mnist-100-adv-sup").adv_unsup.is_none());
        assert_eq!(spec("mnist-all-adv").adv_unsup.unwrap().tau, 4.5e-8);
        assert_eq!(spec("mnist-1000-adv").adv_sup.unwrap().tau, 4.5e-5);
        assert!(TrainConfig::preset("mnist-1000-adv-t21").is_err());
    }

    #[test]
    fn unsupervised_adversarial_noise_needs_unlabelled_rows() {
        let mut c = TrainConfig::preset("mnist-100-baseline").unwrap();
        c.adv_unsup_tau = 0.1;
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("needs a denoising cost"), "{err}");
        c.adv_unsup_tau = -1.0;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("adv-unsup-tau")
        );
    }

    #[test]
    fn toml_round_trip_and_unknown_fields() {
        let c = TrainConfig::preset("mnist-100-gamma").unwrap();
        assert_eq!(TrainConfig::from_toml_str(&c.to_toml()).unwrap(), c);
        let partial = TrainConfig::from_toml_str("epochs = 3\nseed = 9").unwrap();
        assert_eq!(
            (partial.epochs, partial.seed, partial.batch_size),
            (3, 9, 100)
        );
        let err = TrainConfig::from_toml_str("epoch = 3")
            .unwrap_err()
            .to_string();
        assert!(err.contains("epoch"), "{err}");
    }

    #[test]
    fn impossible_settings_are_rejected() {
        let mut c = TrainConfig {
            batch_size: 0,
            ..TrainConfig::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("batch size"));
        c.batch_size = 100;
        c.denoising_cost_x = Written::known("1,2,3");
        let err = c.validate().unwrap_err().to_string();
        assert!(
            err.contains("has 3 values but the network needs 7"),
            "{err}"
        );
        c.denoising_cost_x = Written::known("1");
        let err = TrainConfig::from_toml_str("encoder_layers = '100-x'").unwrap_err();
        assert!(err.to_string().contains("cannot parse 'x'"), "{err}");
        c.encoder_layers = Written::known("100-5");
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("5 units but there are 10 classes")
        );
    }
}
