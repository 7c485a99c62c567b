//! The decoder of Algorithm 1: from the top down, each layer's denoised estimate
//! ẑ^(l) = g^(l)(z̃^(l), u^(l)) with u^(L) = N_B(h̃^(L)) (the corrupted softmax output) and
//! u^(l) = N_B(ẑ^(l+1) V^(l+1)) below it (a "vertical" map, initialised like W). Under a
//! convolution the vertical map is a transposed convolution, under pooling an upsampling by
//! copying, and g's parameters are shared per channel (paper 001 Sec. 3.4).
//!
//! Only the layers from the lowest one with a positive λ up to the top are built: a layer
//! above it must run because the reconstruction below needs it, a layer below it has nothing
//! to feed (the Γ-model builds just the top).

use burn::module::Param;
use burn::prelude::*;
use rand::Rng;

use crate::model::combinator::Combinator;
use crate::model::encoder::{scaled_normal, scaled_uniform};
use crate::model::layers::{LayerGeom, LayerKind, layer_shape};
use crate::model::spec::LadderSpec;
use crate::ops::Shape;
use crate::ops::batch_norm::normalize_batch;

/// One decoder layer: the vertical map from the layer above (none at the top, nor under a
/// pooling layer, whose map is upsampling) and g.
#[derive(Module, Debug)]
pub struct DecoderLayer {
    /// V^(l+1): `[d_{l+1}, d_l]`, or a transposed convolution's `[F, C·K·K]`.
    pub vertical: Option<Param<Tensor<2>>>,
    pub combinator: Combinator,
}

/// Decoder layers `lowest..=L`, stored bottom first.
#[derive(Module, Debug)]
pub struct Decoder {
    pub lowest: usize,
    pub layers: Vec<DecoderLayer>,
    /// The encoder's layers 1..=L, whose maps the vertical connections reverse.
    #[module(skip)]
    pub encoder_layers: Vec<LayerGeom>,
}

impl Decoder {
    /// `None` when no layer has a denoising cost (the supervised baseline).
    pub fn new(spec: &LadderSpec, rng: &mut impl Rng, device: &Device) -> Option<Self> {
        let lowest = spec.lowest_decoded_layer()?;
        let top = spec.depth();
        let layers = (lowest..=top)
            .map(|l| {
                let kind = spec.combinators[l].expect("validated: decoded layers have g");
                let vertical = (l < top)
                    .then(|| vertical_weights(&spec.layers[l], rng, device))
                    .flatten();
                DecoderLayer {
                    vertical: vertical.map(Param::from_tensor),
                    combinator: Combinator::new(kind, spec.shape(l).channels, device),
                }
            })
            .collect();
        Some(Decoder {
            lowest,
            layers,
            encoder_layers: spec.layers.clone(),
        })
    }

    /// Reconstructions ẑ^(l) for l = lowest..=L (bottom first), from the corrupted values
    /// `z_tilde[l]` of the unlabelled rows and the corrupted softmax output `y_tilde`.
    pub fn forward(&self, z_tilde: &[Tensor<2>], y_tilde: Tensor<2>) -> Vec<Tensor<2>> {
        let top = z_tilde.len() - 1;
        let mut estimates: Vec<Tensor<2>> = Vec::with_capacity(self.layers.len());
        let mut above: Option<Tensor<2>> = None;
        for l in (self.lowest..=top).rev() {
            let layer = &self.layers[l - self.lowest];
            let shape = self.shape(l);
            let projected = match above {
                Some(z_hat) => {
                    self.encoder_layers[l].decode(z_hat, layer.vertical.as_ref().map(|v| v.val()))
                }
                None => y_tilde.clone(),
            };
            let u = normalize_batch(projected, &[z_tilde[l].dims()[0]], shape, None);
            let z_hat = layer
                .combinator
                .forward_shaped(z_tilde[l].clone(), u, shape);
            above = Some(z_hat.clone());
            estimates.push(z_hat);
        }
        estimates.reverse();
        estimates
    }

    fn shape(&self, l: usize) -> Shape {
        layer_shape(&self.encoder_layers, l)
    }
}

/// V^(l+1) for the map of encoder layer l+1 (`geom`) reversed, initialised like the encoder's
/// weights with the transposed fan-in; `None` for pooling.
fn vertical_weights(geom: &LayerGeom, rng: &mut impl Rng, device: &Device) -> Option<Tensor<2>> {
    let [rows, cols] = geom.kind.weight_shape(geom.input)?;
    Some(match geom.kind {
        LayerKind::Fc { .. } => scaled_normal(cols, rows, rng, device),
        _ => scaled_uniform(
            [rows, cols],
            geom.kind.fan_in_transposed(geom.input),
            rng,
            device,
        ),
    })
}
