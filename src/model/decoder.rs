//! The decoder of Algorithm 1: from the top down, each layer's denoised estimate
//! ẑ^(l) = g^(l)(z̃^(l), u^(l)) with u^(L) = N_B(h̃^(L)) (the corrupted softmax output) and
//! u^(l) = N_B(ẑ^(l+1) V^(l+1)) below it (a "vertical" map, initialised like W).
//!
//! Only the layers from the lowest one with a positive λ up to the top are built: a layer
//! above it must run because the reconstruction below needs it, a layer below it has nothing
//! to feed (the Γ-model builds just the top).

use burn::module::Param;
use burn::prelude::*;
use rand::Rng;

use crate::model::batch_norm::normalize;
use crate::model::combinator::Combinator;
use crate::model::encoder::scaled_normal;
use crate::model::spec::LadderSpec;

/// One decoder layer: the vertical map from the layer above (none at the top) and g.
#[derive(Module, Debug)]
pub struct DecoderLayer {
    /// V^(l+1), shape `[d_{l+1}, d_l]`.
    pub vertical: Option<Param<Tensor<2>>>,
    pub combinator: Combinator,
}

/// Decoder layers `lowest..=L`, stored bottom first.
#[derive(Module, Debug)]
pub struct Decoder {
    pub lowest: usize,
    pub layers: Vec<DecoderLayer>,
}

impl Decoder {
    /// `None` when no layer has a denoising cost (the supervised baseline).
    pub fn new(spec: &LadderSpec, rng: &mut impl Rng, device: &Device) -> Option<Self> {
        let lowest = spec.lowest_decoded_layer()?;
        let top = spec.depth();
        let layers = (lowest..=top)
            .map(|l| {
                let kind = spec.combinators[l].expect("validated: decoded layers have g");
                DecoderLayer {
                    vertical: (l < top).then(|| {
                        Param::from_tensor(scaled_normal(
                            spec.dims[l + 1],
                            spec.dims[l],
                            rng,
                            device,
                        ))
                    }),
                    combinator: Combinator::new(kind, spec.dims[l], device),
                }
            })
            .collect();
        Some(Decoder { lowest, layers })
    }

    /// Reconstructions ẑ^(l) for l = lowest..=L (bottom first), from the corrupted values
    /// `z_tilde[l]` of the unlabelled rows and the corrupted softmax output `y_tilde`.
    pub fn forward(&self, z_tilde: &[Tensor<2>], y_tilde: Tensor<2>) -> Vec<Tensor<2>> {
        let top = z_tilde.len() - 1;
        let mut estimates: Vec<Tensor<2>> = Vec::with_capacity(self.layers.len());
        let mut above: Option<Tensor<2>> = None;
        for l in (self.lowest..=top).rev() {
            let layer = &self.layers[l - self.lowest];
            let projected = match (above, &layer.vertical) {
                (Some(z_hat), Some(v)) => z_hat.matmul(v.val()),
                _ => y_tilde.clone(),
            };
            let (u, _) = normalize(projected);
            let z_hat = layer.combinator.forward(z_tilde[l].clone(), u);
            above = Some(z_hat.clone());
            estimates.push(z_hat);
        }
        estimates.reverse();
        estimates
    }
}
