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
//! error that says so. [`import`] reads such a file back as a trained model, so that
//! `evaluate`, `predict` and `robustness` take it in place of a run directory.

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

/// Whether `path` names an exported network (a `.safetensors` file) rather than a run
/// directory.
pub fn is_export(path: &Path) -> bool {
    path.is_file()
        && path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("safetensors"))
}

/// Reads a file [`Exported::save`] wrote (or any file with the same names and metadata) as a
/// trained model on `device`, for `evaluate`, `predict` and `robustness`.
pub fn import(path: &Path, device: &Device) -> Result<TrainedModel> {
    let bad = |reason: String| LadderError::Format {
        path: path.into(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| LadderError::io(path, e))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| bad(format!("not a safetensors file: {e}")))?;
    let meta = header.metadata().clone().unwrap_or_default();
    let field = |k: &str| {
        meta.get(k)
            .ok_or_else(|| bad(format!("its metadata has no `{k}`")))
    };
    if field("format")? != EXPORT_FORMAT {
        return Err(bad(format!(
            "format {} is not {EXPORT_FORMAT}",
            field("format")?
        )));
    }
    let dims: Vec<usize> = field("architecture")?
        .split('-')
        .map(|d| {
            d.parse()
                .map_err(|_| bad(format!("architecture `{d}` is not a width")))
        })
        .collect::<Result<_>>()?;
    let classes: usize = field("classes")?
        .parse()
        .map_err(|_| bad("classes is not a number".into()))?;
    let preprocessing = match field("preprocessing")?.as_str() {
        "none" => Preprocessing::default(),
        "grey" => Preprocessing {
            grey: true,
            ..Preprocessing::default()
        },
        other => return Err(bad(format!("unknown preprocessing `{other}`"))),
    };
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
    let tensor = |name: String, shape: [usize; 2]| -> Result<Tensor<2>> {
        let t = st
            .tensor(&name)
            .map_err(|_| bad(format!("has no tensor `{name}`")))?;
        if t.dtype() != Dtype::F32 || t.shape().iter().product::<usize>() != shape[0] * shape[1] {
            return Err(bad(format!(
                "tensor `{name}` is {:?} {:?}, expected F32 {shape:?}",
                t.dtype(),
                t.shape()
            )));
        }
        let v: Vec<f32> = t
            .data()
            .chunks(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect();
        Ok(Tensor::from_data(TensorData::new(v, shape), device))
    };
    let param = |t: Tensor<2>| burn::module::Param::from_tensor(t);
    let depth = dims.len() - 1;
    let pairs = || (1..=depth).map(|l| (l, [dims[l - 1], dims[l]]));
    match field("method")?.as_str() {
        "plain" => {
            let mut mlp = Mlp {
                weights: Vec::new(),
                biases: Vec::new(),
            };
            for (l, shape) in pairs() {
                mlp.weights
                    .push(param(tensor(format!("layers.{l}.weight"), shape)?));
                mlp.biases
                    .push(param(tensor(format!("layers.{l}.bias"), [1, shape[1]])?));
            }
            Ok(TrainedModel::Plain(mlp.no_grad(), preprocessing, classes))
        }
        "ladder" => import_ladder(&meta, &dims, classes, preprocessing, &tensor, device, &bad),
        other => Err(bad(format!("unknown method `{other}`"))),
    }
}

/// The clean encoder of an exported Ladder: a network of its widths and activation, whose
/// weights, β, γ and population moments are the file's.
fn import_ladder(
    meta: &HashMap<String, String>,
    dims: &[usize],
    classes: usize,
    preprocessing: Preprocessing,
    tensor: &dyn Fn(String, [usize; 2]) -> Result<Tensor<2>>,
    device: &Device,
    bad: &dyn Fn(String) -> LadderError,
) -> Result<TrainedModel> {
    let activation = match meta.get("activation").map(String::as_str) {
        Some("relu") => Activation::Relu,
        Some(a) if a.starts_with("leaky-relu") => Activation::Leakyrelu,
        other => return Err(bad(format!("unknown activation {other:?}"))),
    };
    let top_gamma = meta.get("top_gamma").is_some_and(|v| v == "true");
    let widths: Vec<String> = dims[1..].iter().map(usize::to_string).collect();
    let config = crate::train::TrainConfig {
        encoder_layers: crate::model::spec::Written::parse(&widths.join("-"))?,
        denoising_cost_x: crate::model::spec::Written::known("0"),
        act: activation,
        top_c: top_gamma,
        num_classes: classes,
        ..crate::train::TrainConfig::default()
    };
    let spec = config.ladder_spec(&[dims[0]])?;
    let mut net = crate::model::LadderNetwork::new(&spec, 1, device);
    let param = |t: Tensor<2>| burn::module::Param::from_tensor(t);
    let mut moments = Vec::new();
    for l in 1..=dims.len() - 1 {
        let (i, o) = (dims[l - 1], dims[l]);
        net.encoder.weights[l - 1] = param(tensor(format!("encoder.{l}.weight"), [i, o])?);
        net.encoder.betas[l - 1] = param(tensor(format!("encoder.{l}.beta"), [1, o])?);
        moments.push(crate::ops::batch_norm::Moments {
            mean: tensor(format!("encoder.{l}.mean"), [1, o])?,
            var: tensor(format!("encoder.{l}.var"), [1, o])?,
        });
    }
    if top_gamma {
        let l = dims.len() - 1;
        net.encoder.gamma = Some(param(tensor(format!("encoder.{l}.gamma"), [1, dims[l]])?));
    }
    Ok(TrainedModel::Ladder(
        LadderClassifier {
            net: net.no_grad(),
            moments,
        },
        preprocessing,
        classes,
    ))
}

/// The trained model at `path`: an exported file ([`import`]) or a run directory
/// ([`TrainedModel::load`]).
pub fn load_model(path: &Path, device: &Device) -> Result<TrainedModel> {
    match is_export(path) {
        true => import(path, device),
        false => TrainedModel::load(path, device),
    }
}
