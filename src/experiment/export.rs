//! `ladder export`: a finished run's inference network as a safetensors file, so that other
//! tools (PyTorch, the reference attack libraries) can load it.
//!
//! The file holds the clean inference network with documented tensor names, all `f32`, and a
//! metadata block (`__metadata__`, strings) saying how to run it:
//!
//! - `format`: `ladder-export/1`; `method`: `ladder` or `plain`;
//! - `architecture`: the layer widths, input first (`784-1000-500-250-250-250-10`);
//! - `classes`, `input_shape` (JSON), `activation` (`relu` or `leaky-relu:0.1`);
//! - `preprocessing`: `none` or `grey` (inputs are pixels in [0, 1] after it);
//! - for the Ladder, `bn_epsilon` (added to the variance) and `top_gamma` (`true`/`false`).
//!
//! Plain network (004): layer l = 1..L computes h_l = φ(h_{l−1}·W_l + b_l), linear at the top:
//! `layers.{l}.weight` `[d_{l−1}, d_l]`, `layers.{l}.bias` `[d_l]`.
//!
//! Ladder (001, Algorithm 1's clean encoder at test time): z_l = (h_{l−1}·W_l − μ_l)/√(σ²_l + ε)
//! with the population moments of the training set, h_l = φ(z_l + β_l) below the top and the
//! logits γ ⊙ (z_L + β_L) at it: `encoder.{l}.weight` `[d_{l−1}, d_l]`, `encoder.{l}.mean`,
//! `encoder.{l}.var`, `encoder.{l}.beta` `[d_l]`, and `encoder.{L}.gamma` `[d_L]` when the run
//! learned γ.
//!
//! Convolutional Ladders and semantic-noise networks are not exported yet: asking for one is an
//! error that says so.

use std::collections::HashMap;
use std::path::Path;

use burn::prelude::*;
use safetensors::tensor::{Dtype, TensorView};

use crate::data::preprocess::Preprocessing;
use crate::error::{LadderError, Result};
use crate::eval::LadderClassifier;
use crate::experiment::trained::TrainedModel;
use crate::model::mlp::Mlp;
use crate::model::spec::Activation;
use crate::ops::batch_norm::BN_EPSILON;
use crate::train::checkpoint::write_atomic;

/// The export format's name and version, in the metadata.
pub const EXPORT_FORMAT: &str = "ladder-export/1";

/// Named tensors (shape, values) and the metadata of one exported network.
pub struct Exported {
    pub tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
    pub metadata: HashMap<String, String>,
}

fn values(t: Tensor<2>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32 parameters")
}

fn preprocessing_name(p: &Preprocessing) -> Result<&'static str> {
    match (p.grey, p.contrast_norm, p.zca_bias, p.crop) {
        (false, 0.0, None, 0) => Ok("none"),
        (true, 0.0, None, 0) => Ok("grey"),
        _ => Err(LadderError::Setting(
            "this run normalises contrast, whitens (ZCA) or crops its inputs; exporting that \
             preprocessing is not supported yet"
                .into(),
        )),
    }
}

fn activation_name(a: Activation) -> String {
    match a {
        Activation::Relu => "relu".into(),
        Activation::Leakyrelu => format!("leaky-relu:{}", a.negative_slope()),
    }
}

fn joined(dims: &[usize]) -> String {
    dims.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join("-")
}

fn base_metadata(
    method: &str,
    dims: &[usize],
    classes: usize,
    p: &Preprocessing,
) -> Result<HashMap<String, String>> {
    Ok(HashMap::from([
        ("format".to_string(), EXPORT_FORMAT.to_string()),
        ("method".to_string(), method.to_string()),
        ("architecture".to_string(), joined(dims)),
        ("classes".to_string(), classes.to_string()),
        (
            "preprocessing".to_string(),
            preprocessing_name(p)?.to_string(),
        ),
    ]))
}

fn export_plain(mlp: &Mlp, p: &Preprocessing, classes: usize) -> Result<Exported> {
    let dims = mlp.dims();
    let mut metadata = base_metadata("plain", &dims, classes, p)?;
    metadata.insert("activation".into(), "relu".into());
    metadata.insert("input_shape".into(), format!("[{}]", dims[0]));
    let mut tensors = Vec::new();
    for (l, (w, b)) in mlp.weights.iter().zip(&mlp.biases).enumerate() {
        let w = w.val();
        let shape = w.dims().to_vec();
        tensors.push((format!("layers.{}.weight", l + 1), shape, values(w)));
        let b = values(b.val());
        tensors.push((format!("layers.{}.bias", l + 1), vec![b.len()], b));
    }
    Ok(Exported { tensors, metadata })
}

fn export_ladder(clf: &LadderClassifier, p: &Preprocessing, classes: usize) -> Result<Exported> {
    let enc = &clf.net.encoder;
    if enc.plan.iter().any(|layer| layer.geom.kind.is_spatial()) {
        return Err(LadderError::Setting(
            "this Ladder has convolution or pooling layers; exporting those is not supported \
             yet (fully connected Ladders and plain networks are)"
                .into(),
        ));
    }
    let mut dims = vec![enc.plan[0].geom.input.units()];
    dims.extend(enc.plan.iter().map(|layer| layer.geom.output.units()));
    let mut metadata = base_metadata("ladder", &dims, classes, p)?;
    metadata.insert("activation".into(), activation_name(enc.activation));
    metadata.insert("input_shape".into(), format!("[{}]", dims[0]));
    metadata.insert("bn_epsilon".into(), format!("{BN_EPSILON:e}"));
    metadata.insert("top_gamma".into(), enc.gamma.is_some().to_string());
    let mut tensors = Vec::new();
    let mut vector = |name: String, t: Tensor<2>| {
        let v = values(t);
        tensors.push((name, vec![v.len()], v));
    };
    let mut weights = Vec::new();
    for (i, layer) in enc.plan.iter().enumerate() {
        let l = i + 1;
        let (Some(w), Some(b)) = (layer.weight, layer.beta) else {
            unreachable!("fully connected layers have a weight and a β")
        };
        let w = enc.weights[w].val();
        weights.push((format!("encoder.{l}.weight"), w.dims().to_vec(), values(w)));
        let moments = &clf.moments[i];
        vector(format!("encoder.{l}.mean"), moments.mean.clone());
        vector(format!("encoder.{l}.var"), moments.var.clone());
        vector(format!("encoder.{l}.beta"), enc.betas[b].val());
    }
    if let Some(g) = &enc.gamma {
        vector(format!("encoder.{}.gamma", enc.plan.len()), g.val());
    }
    tensors.extend(weights);
    Ok(Exported { tensors, metadata })
}

/// The inference network of `model` with its metadata.
pub fn export(model: &TrainedModel) -> Result<Exported> {
    let classes = model.num_classes();
    match model {
        TrainedModel::Plain(mlp, p, _) => export_plain(mlp, p, classes),
        TrainedModel::Ladder(clf, p, _) => export_ladder(clf, p, classes),
        TrainedModel::Semantic(..) => Err(LadderError::Setting(
            "exporting semantic-noise networks is not supported yet (fully connected Ladders \
             and plain networks are)"
                .into(),
        )),
    }
}

impl Exported {
    /// The safetensors bytes: the tensors in name order and the metadata block.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let bytes: Vec<(&str, &[usize], Vec<u8>)> = self
            .tensors
            .iter()
            .map(|(n, s, v)| {
                (
                    n.as_str(),
                    s.as_slice(),
                    v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                )
            })
            .collect();
        let views = bytes
            .iter()
            .map(|(n, s, b)| {
                TensorView::new(Dtype::F32, s.to_vec(), b)
                    .map(|v| (n.to_string(), v))
                    .map_err(|e| LadderError::Setting(format!("tensor {n}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        safetensors::serialize(views, Some(self.metadata.clone()))
            .map_err(|e| LadderError::Setting(format!("cannot serialise the network: {e}")))
    }

    /// Writes the file atomically (a half-written export is never left behind).
    pub fn save(&self, path: &Path) -> Result<()> {
        write_atomic(path, &self.to_bytes()?)
    }
}
