//! The compact specification grammar of the authors' `run.py`: one flag describes a network.
//!
//! - encoder layers: `1000-500-250-250-250-10` (widths of the hidden layers and the output);
//! - decoder: `gauss` for every layer, or one combinator per layer, bottom (input) first,
//!   joined by `-`: `gauss-gauss-linear-0-0-0-0` (`0` = no decoder at that layer);
//! - λ (denoising cost weights): `1000,10,0.1,0.1,0.1,0.1,0.1`, bottom first, one per layer
//!   including the input layer, or a single number applied to every layer;
//! - per-layer noise: one number for every layer, or a comma list of one per encoder layer.

use serde::{Deserialize, Serialize};

use crate::error::{LadderError, Result};
use crate::model::combinator::CombinatorKind;
use crate::model::layers::{LayerGeom, LayerKind, dense_plan, layer_shape, parse_layer_kinds};
use crate::noise::Adversarial;
use crate::ops::Shape;

/// Activation of the hidden layers (the top is always softmax).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    #[default]
    Relu,
    /// Leaky ReLU with slope 0.1, as in the authors' code.
    Leakyrelu,
}

impl Activation {
    /// The slope for negative inputs: 0 for ReLU, 0.1 for the leaky ReLU.
    pub fn negative_slope(self) -> f64 {
        match self {
            Activation::Relu => 0.0,
            Activation::Leakyrelu => 0.1,
        }
    }
}

crate::named_choice!(Activation, "activation");

/// Everything that fixes the shape and the noise of a fully connected Ladder network.
///
/// Layer 0 is the input; layers 1..=L are the encoder's linear layers, L being the softmax top.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LadderSpec {
    /// Widths of layers 0..=L (input first): C·H·W of each layer's activation.
    pub dims: Vec<usize>,
    /// Layers 1..=L with their shapes: fully connected, convolution or pooling.
    pub layers: Vec<LayerGeom>,
    /// Combinator of layer l's decoder, `None` where the layer has no decoder.
    pub combinators: Vec<Option<CombinatorKind>>,
    /// λ_l, the weight of layer l's denoising cost (eq. 3).
    pub lambdas: Vec<f64>,
    /// Std of the Gaussian corruption of the input.
    pub input_noise_std: f64,
    /// Std of the Gaussian corruption after each layer's normalisation (layers 1..=L).
    pub layer_noise_std: Vec<f64>,
    /// Learn a scale γ at the softmax top (the original's `--top-c`).
    pub top_c: bool,
    pub activation: Activation,
    /// Adversarial noise added to the labelled rows' corrupted input.
    #[serde(default)]
    pub adv_sup: Option<Adversarial>,
    /// Adversarial noise added to the unlabelled rows' corrupted input (virtual labels).
    #[serde(default)]
    pub adv_unsup: Option<Adversarial>,
}

impl LadderSpec {
    /// Number of encoder layers L (not counting the input).
    pub fn depth(&self) -> usize {
        self.dims.len() - 1
    }

    /// Each layer's width and the std of its corruption noise, input first (Algorithm 1's
    /// x̃ = x + noise and z̃ = N_B(z_pre) + noise).
    pub fn noise_levels(&self) -> Vec<(usize, f64)> {
        let stds = std::iter::once(&self.input_noise_std).chain(&self.layer_noise_std);
        self.dims.iter().copied().zip(stds.copied()).collect()
    }

    /// Shape of layer l's activation (l = 0 is the input).
    pub fn shape(&self, l: usize) -> Shape {
        layer_shape(&self.layers, l)
    }

    /// A fully connected network's layers for widths `dims` (input first).
    pub fn dense_layers(dims: &[usize]) -> Vec<LayerGeom> {
        dense_plan(dims)
    }

    pub fn num_classes(&self) -> usize {
        *self.dims.last().expect("a spec has at least two layers")
    }

    /// The lowest layer whose reconstruction is needed: a layer's decoder must run when it, or
    /// any layer below it, has a positive λ. `None` means no decoder at all (the supervised
    /// baseline).
    pub fn lowest_decoded_layer(&self) -> Option<usize> {
        self.lambdas.iter().position(|&l| l > 0.0)
    }

    /// Checks the lengths and values against each other.
    pub fn validate(&self) -> Result<()> {
        let n = self.dims.len();
        if n < 2 {
            return Err(LadderError::Spec(
                "the encoder needs at least one layer".into(),
            ));
        }
        if let Some(i) = self.dims.iter().position(|&d| d == 0) {
            return Err(LadderError::Spec(format!("layer {i} has width 0")));
        }
        let shapes_match = self.layers.len() == n - 1
            && (0..n).all(|l| self.shape(l).units() == self.dims[l])
            && self.layers.windows(2).all(|w| w[0].output == w[1].input);
        if !shapes_match {
            return Err(LadderError::Spec(format!(
                "layer widths {:?} do not match the layers' shapes",
                self.dims
            )));
        }
        if self.num_classes() < 2 {
            return Err(LadderError::Spec(
                "the top layer must have at least 2 units (one per class)".into(),
            ));
        }
        if self.lambdas.len() != n {
            return Err(LadderError::Spec(format!(
                "{} denoising costs given for {} layers (input + {} encoder layers): give one λ per layer, input first",
                self.lambdas.len(),
                n,
                n - 1
            )));
        }
        if let Some(l) = self.lambdas.iter().find(|l| !l.is_finite() || **l < 0.0) {
            return Err(LadderError::Spec(format!(
                "denoising cost {l} must be a finite number ≥ 0"
            )));
        }
        if self.combinators.len() != n {
            return Err(LadderError::Spec(format!(
                "decoder spec has {} entries for {} layers",
                self.combinators.len(),
                n
            )));
        }
        if self.layer_noise_std.len() != n - 1 {
            return Err(LadderError::Spec(format!(
                "{} layer noise levels given for {} encoder layers",
                self.layer_noise_std.len(),
                n - 1
            )));
        }
        let stds = std::iter::once(&self.input_noise_std).chain(&self.layer_noise_std);
        if let Some(s) = stds.into_iter().find(|s| !s.is_finite() || **s < 0.0) {
            return Err(LadderError::Spec(format!(
                "noise std {s} must be a finite number ≥ 0"
            )));
        }
        if self.adv_unsup.is_some() && self.lowest_decoded_layer().is_none() {
            return Err(LadderError::Spec(
                "adversarial noise on unlabelled examples needs a denoising cost: without one \
                 (the supervised baseline) no unlabelled example is used"
                    .into(),
            ));
        }
        let low = self.lowest_decoded_layer().unwrap_or(n);
        if let Some(l) = (low..n).find(|&l| self.combinators[l].is_none()) {
            return Err(LadderError::Spec(format!(
                "layer {l} has decoder '0' but layer {low} below it has a denoising cost: its reconstruction needs every decoder layer above it"
            )));
        }
        Ok(())
    }
}

/// Parses `1000-500-250-250-250-10` into widths: a fully connected network's layers.
pub fn parse_layers(s: &str) -> Result<Vec<usize>> {
    parse_layer_kinds(s)?
        .into_iter()
        .map(|kind| match kind {
            LayerKind::Fc { units } => Ok(units),
            _ => Err(LadderError::Spec(format!(
                "encoder spec '{s}' has convolution or pooling layers, but this network is \
                 fully connected: give widths such as 1000-500-10"
            ))),
        })
        .collect()
}

/// Parses a comma-separated list of numbers; a single number is repeated `n` times.
pub fn parse_float_list(s: &str, n: usize, what: &str) -> Result<Vec<f64>> {
    let values = s
        .split(',')
        .map(|p| {
            p.trim().parse::<f64>().map_err(|_| {
                LadderError::Spec(format!("cannot parse '{}' in {what} '{s}'", p.trim()))
            })
        })
        .collect::<Result<Vec<f64>>>()?;
    match values.len() {
        1 => Ok(vec![values[0]; n]),
        len if len == n => Ok(values),
        len => Err(LadderError::Spec(format!(
            "{what} '{s}' has {len} values but the network needs {n} (or a single value for all)"
        ))),
    }
}

/// Parses the decoder spec: one combinator name for all layers or one per layer joined by `-`.
pub fn parse_decoder(s: &str, n: usize) -> Result<Vec<Option<CombinatorKind>>> {
    let parts: Vec<&str> = s.split('-').map(str::trim).collect();
    let kinds = parts
        .iter()
        .map(|p| CombinatorKind::parse(p))
        .collect::<Result<Vec<_>>>()?;
    match kinds.len() {
        1 => Ok(vec![kinds[0]; n]),
        len if len == n => Ok(kinds),
        len => Err(LadderError::Spec(format!(
            "decoder spec '{s}' has {len} entries but the network has {n} layers (input included)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_layer_widths() {
        assert_eq!(
            parse_layers("1000-500-250-250-250-10").unwrap(),
            vec![1000, 500, 250, 250, 250, 10]
        );
        assert_eq!(parse_layers("fc:10").unwrap(), vec![10]);
        for bad in ["", "10-x", "10--5", "0-10", "-3"] {
            let err = parse_layers(bad).unwrap_err().to_string();
            assert!(
                err.contains("encoder spec") || err.contains("empty"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn float_lists_broadcast_or_match_length() {
        assert_eq!(parse_float_list("0.3", 3, "noise").unwrap(), vec![0.3; 3]);
        assert_eq!(
            parse_float_list("1,2,3", 3, "λ").unwrap(),
            vec![1.0, 2.0, 3.0]
        );
        let err = parse_float_list("1,2", 3, "denoising costs")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("has 2 values but the network needs 3"),
            "{err}"
        );
        assert!(parse_float_list("1,a", 2, "λ").is_err());
    }

    #[test]
    fn decoder_spec_parses_names() {
        let kinds = parse_decoder("gauss-0-linear", 3).unwrap();
        assert_eq!(
            kinds,
            vec![
                Some(CombinatorKind::Gauss),
                None,
                Some(CombinatorKind::Linear)
            ]
        );
        assert!(parse_decoder("gauss-gauss", 3).is_err());
        assert!(parse_decoder("nope", 3).is_err());
    }

    fn spec() -> LadderSpec {
        LadderSpec {
            layers: LadderSpec::dense_layers(&[4, 3, 2]),
            dims: vec![4, 3, 2],
            combinators: vec![Some(CombinatorKind::Gauss); 3],
            lambdas: vec![1.0, 0.0, 0.5],
            input_noise_std: 0.3,
            layer_noise_std: vec![0.3, 0.3],
            top_c: true,
            activation: Activation::Relu,
            adv_sup: None,
            adv_unsup: None,
        }
    }

    #[test]
    fn validation_names_the_mismatch() {
        assert!(spec().validate().is_ok());
        let mut s = spec();
        s.lambdas.pop();
        let err = s.validate().unwrap_err().to_string();
        assert!(
            err.contains("2 denoising costs given for 3 layers"),
            "{err}"
        );
        let mut s = spec();
        s.combinators[1] = None;
        assert!(s.validate().unwrap_err().to_string().contains("layer 1"));
        let mut s = spec();
        s.layer_noise_std[0] = -1.0;
        assert!(s.validate().is_err());
    }

    #[test]
    fn lowest_decoded_layer_follows_lambdas() {
        let mut s = spec();
        assert_eq!(s.lowest_decoded_layer(), Some(0));
        s.lambdas = vec![0.0, 0.0, 1.0];
        assert_eq!(s.lowest_decoded_layer(), Some(2));
        s.lambdas = vec![0.0; 3];
        assert_eq!(s.lowest_decoded_layer(), None);
    }
}
