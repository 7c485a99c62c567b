//! The compact specification grammar of the authors' `run.py`: one flag describes a network.
//!
//! - encoder layers: `1000-500-250-250-250-10` (widths of the hidden layers and the output);
//! - decoder: `gauss` for every layer, or one combinator per layer, bottom (input) first,
//!   joined by `,` as the other per-layer lists are (or by `-`, as in the authors' code):
//!   `gauss,gauss,linear,0,0,0,0` (`0` = no decoder at that layer);
//! - λ (denoising cost weights): `1000,10,0.1,0.1,0.1,0.1,0.1`, bottom first, one per layer
//!   including the input layer, or a single number applied to every layer;
//! - per-layer noise: one number for every layer, or a comma list of one per encoder layer.
//!
//! A configuration holds each as a typed value parsed when it is read ([`Written`]): a
//! malformed spec is an error when the configuration loads, the network code never re-parses
//! text, and the configuration writes back the very text it read, so existing `config.toml`
//! files load and compare as before.

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

/// A value of the spec grammar that parses from its text.
pub trait FromText: Sized {
    fn from_text(s: &str) -> Result<Self>;
}

/// A typed value together with the text it was parsed from: it serialises as that text, and
/// two are equal when their texts are.
#[derive(Debug, Clone)]
pub struct Written<T: FromText + Clone> {
    text: String,
    value: T,
}

impl<T: FromText + Clone> Written<T> {
    pub fn parse(text: &str) -> Result<Self> {
        Ok(Written {
            value: T::from_text(text)?,
            text: text.into(),
        })
    }

    /// A spec written in this program (a default or a preset), known to parse.
    pub fn known(text: &str) -> Self {
        Self::parse(text).unwrap_or_else(|e| panic!("built-in spec '{text}' is invalid: {e}"))
    }

    pub fn value(&self) -> &T {
        &self.value
    }

    pub fn text(&self) -> &str {
        &self.text
    }
}

impl<T: FromText + Clone> PartialEq for Written<T> {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl<T: FromText + Clone> Serialize for Written<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de, T: FromText + Clone> Deserialize<'de> for Written<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl<T: FromText + Clone> std::fmt::Display for Written<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// One value for every layer, or one per layer (input first).
#[derive(Debug, Clone, PartialEq)]
pub enum PerLayer<T> {
    All(T),
    Each(Vec<T>),
}

impl<T: Clone> PerLayer<T> {
    /// The values of a network of `n` layers; `what` and `text` name the list in the error
    /// when it has another length.
    pub fn for_layers(&self, n: usize, what: &str, text: &str) -> Result<Vec<T>> {
        match self {
            PerLayer::All(v) => Ok(vec![v.clone(); n]),
            PerLayer::Each(v) if v.len() == n => Ok(v.clone()),
            PerLayer::Each(v) => Err(LadderError::Spec(format!(
                "{what} '{text}' has {} values but the network needs {n} (or a single value for all)",
                v.len()
            ))),
        }
    }
}

impl<T: Copy> PerLayer<T> {
    /// Whether `f` holds for some layer's value.
    pub fn any(&self, f: impl Fn(T) -> bool) -> bool {
        match self {
            PerLayer::All(v) => f(*v),
            PerLayer::Each(v) => v.iter().any(|x| f(*x)),
        }
    }
}

fn per_layer<T>(mut values: Vec<T>) -> PerLayer<T> {
    match values.len() {
        1 => PerLayer::All(values.remove(0)),
        _ => PerLayer::Each(values),
    }
}

impl FromText for Vec<LayerKind> {
    fn from_text(s: &str) -> Result<Self> {
        parse_layer_kinds(s)
    }
}

impl FromText for PerLayer<f64> {
    fn from_text(s: &str) -> Result<Self> {
        let values = s
            .split(',')
            .map(|p| {
                p.trim().parse::<f64>().map_err(|_| {
                    LadderError::Spec(format!("cannot parse '{}' as a number in '{s}'", p.trim()))
                })
            })
            .collect::<Result<Vec<f64>>>()?;
        Ok(per_layer(values))
    }
}

impl FromText for PerLayer<Option<CombinatorKind>> {
    fn from_text(s: &str) -> Result<Self> {
        let kinds = s
            .split([',', '-'])
            .map(|p| CombinatorKind::parse(p.trim()))
            .collect::<Result<Vec<_>>>()?;
        Ok(per_layer(kinds))
    }
}

/// An encoder spec: the layer chain `1000-500-10` or `convv:32:3:1:1-maxpool:2:2-fc:10`.
pub type EncoderLayers = Written<Vec<LayerKind>>;
/// A combinator for every layer or one per layer.
pub type DecoderSpec = Written<PerLayer<Option<CombinatorKind>>>;
/// A number for every layer or one per layer: λ, noise std.
pub type LayerValues = Written<PerLayer<f64>>;

impl LayerValues {
    /// The values of a network of `n` layers.
    pub fn for_layers(&self, n: usize, what: &str) -> Result<Vec<f64>> {
        self.value.for_layers(n, what, &self.text)
    }
}

impl DecoderSpec {
    /// The combinators of a network of `n` layers (input included).
    pub fn for_layers(&self, n: usize) -> Result<Vec<Option<CombinatorKind>>> {
        self.value.for_layers(n, "decoder spec", &self.text)
    }
}

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
    /// Virtual adversarial training: its loss on the unlabelled rows, and its perturbation.
    #[serde(default)]
    pub vat: Option<crate::model::vat::Vat>,
    /// The virtual adversarial Ladder: virtual adversarial noise added to the corrupted
    /// path's Gaussian noise (LVAN, LVAN-LW).
    #[serde(default)]
    pub lvan: Option<crate::model::vat::Lvan>,
    /// The Π-model: a second noisy pass and the consistency cost between the two.
    #[serde(default)]
    pub consistency: Option<crate::model::consistency::Consistency>,
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
        if let Some(lvan) = &self.lvan {
            lvan.validate(n).map_err(LadderError::Spec)?;
            if self.lowest_decoded_layer().is_none() {
                return Err(LadderError::Spec(
                    "LVAN corrupts the unlabelled rows' pass, which only a Ladder with a decoder \
                     has: give a denoising cost above 0"
                        .into(),
                ));
            }
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

/// The widths of a fully connected network's layers (`1000-500-250-250-250-10`); an error
/// for convolution or pooling layers.
pub fn widths(spec: &EncoderLayers) -> Result<Vec<usize>> {
    let s = spec.text();
    spec.value()
        .iter()
        .map(|kind| match *kind {
            LayerKind::Fc { units } => Ok(units),
            _ => Err(LadderError::Spec(format!(
                "encoder spec '{s}' has convolution or pooling layers, but this network is \
                 fully connected: give widths such as 1000-500-10"
            ))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_layer_widths() {
        let parse_layers = |s: &str| EncoderLayers::parse(s).and_then(|l| widths(&l));
        assert_eq!(
            parse_layers("1000-500-250-250-250-10").unwrap(),
            vec![1000, 500, 250, 250, 250, 10]
        );
        assert_eq!(parse_layers("fc:10").unwrap(), vec![10]);
        for bad in ["", "10-x", "10--5", "0-10", "-3", "convv:4:3:1:1"] {
            let err = parse_layers(bad).unwrap_err().to_string();
            assert!(
                err.contains("encoder spec") || err.contains("empty"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn float_lists_broadcast_or_match_length() {
        let values = |s: &str, n| LayerValues::parse(s).unwrap().for_layers(n, "λ");
        assert_eq!(values("0.3", 3).unwrap(), vec![0.3; 3]);
        assert_eq!(values("1,2,3", 3).unwrap(), vec![1.0, 2.0, 3.0]);
        let err = values("1,2", 3).unwrap_err().to_string();
        assert!(
            err.contains("λ '1,2' has 2 values but the network needs 3"),
            "{err}"
        );
        let err = LayerValues::parse("1,a").unwrap_err().to_string();
        assert!(err.contains("cannot parse 'a'"), "{err}");
    }

    #[test]
    fn decoder_spec_parses_names_joined_by_commas_or_dashes() {
        let want = vec![
            Some(CombinatorKind::Gauss),
            None,
            Some(CombinatorKind::Linear),
        ];
        for text in ["gauss-0-linear", "gauss,0,linear"] {
            let spec = DecoderSpec::parse(text).unwrap();
            assert_eq!(spec.for_layers(3).unwrap(), want);
            assert_eq!(spec.text(), text);
        }
        assert!(
            DecoderSpec::parse("gauss-gauss")
                .unwrap()
                .for_layers(3)
                .is_err()
        );
        assert!(DecoderSpec::parse("nope").is_err());
    }

    /// A typed spec writes back the text it read, and a malformed one fails to load.
    #[test]
    fn written_specs_round_trip_their_text() {
        #[derive(Serialize, Deserialize)]
        struct C {
            layers: EncoderLayers,
        }
        let c: C = toml::from_str("layers = 'convv:4:3:1:1-fc:10'").unwrap();
        assert_eq!(c.layers.value().len(), 2);
        assert_eq!(
            toml::to_string(&c).unwrap(),
            "layers = \"convv:4:3:1:1-fc:10\"\n"
        );
        let err = toml::from_str::<C>("layers = '10-x'")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("cannot parse 'x'"), "{err}");
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
            vat: None,
            lvan: None,
            consistency: None,
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
