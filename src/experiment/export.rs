//! `ladder export`: a finished run's inference network as a safetensors file, so that other
//! tools (PyTorch, the reference attack libraries) can load it, and [`import`], which reads
//! such a file back for `evaluate`, `predict` and `robustness`.
//!
//! # Format `ladder-export/2`
//!
//! Tensors are `f32` (the ZCA's `f64`), row-major. The metadata block (`__metadata__`, strings)
//! says how to run them:
//!
//! - `format`: `ladder-export/2`; `method`: `ladder`, `plain` or `semantic`;
//! - `layers`: the layers above the input in the `--encoder-layers` grammar of
//!   [`crate::model::layers`] (`1000-500-10`, `convv:32:5:1:1-maxpool:2:2-…-10`);
//! - `input_shape`: the network's input, JSON `[d]` or `[C, H, W]` (after preprocessing);
//! - `architecture`: the units of every layer, input first (for reading, not parsing);
//! - `classes`; `activation`: `relu` or `leaky-relu:SLOPE`;
//! - `preprocessing`: `none`, or the steps applied to the raw inputs (pixels in [0, 1], or a
//!   CSV file's feature columns), in order, joined by `,`: `standardise` (each feature x ↦
//!   (x − `preprocessing.standardise.mean`)/`preprocessing.standardise.std`, `[d]`, `f64`: the
//!   training part's statistics of a run on CSV data), `grey` (0.299 R + 0.587 G + 0.114 B),
//!   `contrast-norm:S` (each
//!   example minus its mean, scaled to L2 norm S), `zca:BIAS` (x ↦ (x − `preprocessing.zca.mean`)
//!   · `preprocessing.zca.matrix`, `[d]` and `[d, d]`, `f64`), `crop:SIDE` (the centre
//!   SIDE × SIDE window of `[C, H, W]` images);
//! - for the Ladder, `bn_epsilon` (added to the variance) and `top_gamma` (`true`/`false`).
//!
//! Layers act on `[C, H, W]` maps, flattened channel-major where a fully connected layer takes
//! them (PyTorch's `flatten`): `convv`/`convf`/`convs` are cross-correlations with zero padding
//! 0, K − 1 and (K − 1)/2 and the stated strides, `maxpool:PY:PX` pools PY × PX windows with
//! stride PY × PX (a ragged border is dropped), `globalmeanpool` averages each channel. Weights
//! are `[d_in, d_out]` for fully connected layers (h · W) and `[F, C, K, K]` for convolutions.
//!
//! **Ladder** (001, Algorithm 1's clean encoder at test time): layer l computes
//! z_l = (W_l ⋆ h_{l−1} − μ_l)/√(σ²_l + ε) with the training set's population moments (per
//! channel for maps), then h_l = φ(z_l + β_l) for layers with weights below the top, h_l = z_l
//! for pooling layers, and the logits γ ⊙ (z_L + β_L) at the top: `encoder.{l}.weight`,
//! `encoder.{l}.mean`, `encoder.{l}.var` `[C_l]` (every layer), `encoder.{l}.beta` `[C_l]`
//! (layers with weights and the top), `encoder.{L}.gamma` `[d_L]` when the run learned γ.
//!
//! **Plain** (004) and **semantic** (003) networks: h_l = ReLU(W_l ⋆ h_{l−1} + b_l), linear at
//! the top: `layers.{l}.weight`, `layers.{l}.bias` `[C_l]`; a semantic network first subtracts
//! its training set's mean image `input.mean` `[d]` (after the preprocessing).
//!
//! Files of format `ladder-export/1` (fully connected networks, preprocessing `none` or `grey`,
//! widths in `architecture`) are read too.

use std::collections::HashMap;
use std::path::Path;

use burn::module::Param;
use burn::prelude::*;
use safetensors::tensor::{Dtype, TensorView};

use crate::data::csv::Standardiser;
use crate::data::preprocess::{Fitted, Preprocessing, Zca};
use crate::error::{LadderError, Result};
use crate::eval::LadderClassifier;
use crate::experiment::trained::{SemanticClassifier, TrainedModel};
use crate::model::layers::{LayerGeom, LayerKind, layer_kinds_spec, parse_layer_kinds, plan};
use crate::model::mlp::Mlp;
use crate::model::semantic::SemanticNet;
use crate::model::spec::{Activation, Written};
use crate::ops::Shape;
use crate::ops::batch_norm::{BN_EPSILON, Moments};
use crate::train::checkpoint::write_atomic;

/// The export format's name and version, in the metadata.
pub const EXPORT_FORMAT: &str = "ladder-export/2";
/// The first version: fully connected networks without fitted preprocessing.
const EXPORT_FORMAT_1: &str = "ladder-export/1";

/// One named tensor of an export.
pub struct Named {
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Values,
}

/// A tensor's values: the networks' `f32`, the ZCA's `f64`.
pub enum Values {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

/// Named tensors and the metadata of one exported network.
pub struct Exported {
    pub tensors: Vec<Named>,
    pub metadata: HashMap<String, String>,
}

/// The documented shape of layer `geom`'s weight in a file: `[d_in, d_out]` for fully connected
/// layers, `[F, C, K, K]` for convolutions (the `[F, C·K·K]` the model holds, unflattened).
fn file_shape(geom: &LayerGeom) -> Vec<usize> {
    match geom.kind {
        LayerKind::Conv { filters, size, .. } => vec![filters, geom.input.channels, size, size],
        _ => held_shape(geom).to_vec(),
    }
}

/// The `[rows, cols]` the model holds layer `geom`'s weight as.
fn held_shape(geom: &LayerGeom) -> [usize; 2] {
    geom.kind
        .weight_shape(geom.input)
        .expect("layers with weights")
}

fn values(t: Tensor<2>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32 parameters")
}

impl Exported {
    fn push(&mut self, name: String, shape: Vec<usize>, t: Tensor<2>) {
        self.tensors.push(Named {
            name,
            shape,
            values: Values::F32(values(t)),
        });
    }

    /// A `[1, n]` parameter as a vector `[n]`.
    fn push_vector(&mut self, name: String, t: Tensor<2>) {
        let n = t.dims()[1];
        self.push(name, vec![n], t);
    }

    /// Layer `geom`'s weight in the documented layout.
    fn push_weight(&mut self, name: String, geom: &LayerGeom, w: Tensor<2>) {
        self.push(name, file_shape(geom), w);
    }
}

/// The `preprocessing` metadata of `p`, and its fitted tensors.
fn preprocessing_steps(p: &Fitted) -> Result<(String, Vec<Named>)> {
    let s = &p.steps;
    let mut steps = Vec::new();
    let mut tensors = Vec::new();
    let f64s = |name: &str, shape: Vec<usize>, v: Vec<f64>| Named {
        name: name.into(),
        shape,
        values: Values::F64(v),
    };
    if let Some(st) = &p.standardise {
        steps.push("standardise".to_string());
        let d = st.mean.len();
        tensors.push(f64s(
            "preprocessing.standardise.mean",
            vec![d],
            st.mean.clone(),
        ));
        tensors.push(f64s(
            "preprocessing.standardise.std",
            vec![d],
            st.std.clone(),
        ));
    }
    if s.grey {
        steps.push("grey".to_string());
    }
    if s.contrast_norm > 0.0 {
        steps.push(format!("contrast-norm:{}", s.contrast_norm));
    }
    if let Some(bias) = s.zca_bias {
        let zca = p.zca.as_ref().ok_or_else(|| {
            LadderError::Setting(
                "this run whitens its inputs (ZCA): its whitening must be fitted on the run's \
                 training data before the export"
                    .into(),
            )
        })?;
        let d = zca.mean.len();
        steps.push(format!("zca:{bias}"));
        tensors.push(f64s("preprocessing.zca.mean", vec![d], zca.mean.clone()));
        let matrix = (0..d * d).map(|k| zca.matrix[(k / d, k % d)]).collect();
        tensors.push(f64s("preprocessing.zca.matrix", vec![d, d], matrix));
    }
    if s.crop > 0 {
        steps.push(format!("crop:{}", s.crop));
    }
    let text = match steps.is_empty() {
        true => "none".to_string(),
        false => steps.join(","),
    };
    Ok((text, tensors))
}

fn activation_name(a: Activation) -> String {
    match a {
        Activation::Relu => "relu".into(),
        Activation::Leakyrelu => format!("leaky-relu:{}", a.negative_slope()),
    }
}

fn input_shape_json(s: Shape) -> String {
    match s.spatial() == 1 {
        true => format!("[{}]", s.units()),
        false => format!("[{}, {}, {}]", s.channels, s.height, s.width),
    }
}

/// The export of a network of `layers` with the metadata every method shares.
fn start(method: &str, layers: &[LayerGeom], classes: usize, p: &Fitted) -> Result<Exported> {
    let mut units = vec![layers[0].input.units().to_string()];
    units.extend(layers.iter().map(|g| g.output.units().to_string()));
    let kinds: Vec<LayerKind> = layers.iter().map(|g| g.kind).collect();
    let (steps, tensors) = preprocessing_steps(p)?;
    let metadata = HashMap::from([
        ("format".to_string(), EXPORT_FORMAT.to_string()),
        ("method".to_string(), method.to_string()),
        ("layers".to_string(), layer_kinds_spec(&kinds)),
        ("input_shape".to_string(), input_shape_json(layers[0].input)),
        ("architecture".to_string(), units.join("-")),
        ("classes".to_string(), classes.to_string()),
        ("preprocessing".to_string(), steps),
    ]);
    Ok(Exported { tensors, metadata })
}

fn export_plain(mlp: &Mlp, p: &Fitted, classes: usize) -> Result<Exported> {
    let geoms = crate::model::layers::dense_plan(&mlp.dims());
    let mut out = start("plain", &geoms, classes, p)?;
    out.metadata.insert("activation".into(), "relu".into());
    for (l, (w, b)) in mlp.weights.iter().zip(&mlp.biases).enumerate() {
        out.push_weight(format!("layers.{}.weight", l + 1), &geoms[l], w.val());
        out.push_vector(format!("layers.{}.bias", l + 1), b.val());
    }
    Ok(out)
}

fn export_semantic(s: &SemanticClassifier, p: &Fitted, classes: usize) -> Result<Exported> {
    let net = &s.net;
    let mut out = start("semantic", &net.layers, classes, p)?;
    out.metadata.insert("activation".into(), "relu".into());
    out.push_vector("input.mean".into(), s.mean.clone());
    for (l, g) in net.layers.iter().enumerate() {
        out.push_weight(format!("layers.{}.weight", l + 1), g, net.weights[l].val());
        out.push_vector(format!("layers.{}.bias", l + 1), net.biases[l].val());
    }
    Ok(out)
}

fn export_ladder(clf: &LadderClassifier, p: &Fitted, classes: usize) -> Result<Exported> {
    let enc = clf.net.classifier();
    let geoms: Vec<LayerGeom> = enc.plan.iter().map(|layer| layer.geom).collect();
    let mut out = start("ladder", &geoms, classes, p)?;
    let meta = &mut out.metadata;
    meta.insert("activation".into(), activation_name(enc.activation));
    meta.insert("bn_epsilon".into(), format!("{BN_EPSILON:e}"));
    meta.insert("top_gamma".into(), enc.gamma.is_some().to_string());
    for (i, layer) in enc.plan.iter().enumerate() {
        let l = i + 1;
        if let Some(w) = layer.weight {
            out.push_weight(
                format!("encoder.{l}.weight"),
                &layer.geom,
                enc.weights[w].val(),
            );
        }
        let moments = &clf.moments[i];
        out.push_vector(format!("encoder.{l}.mean"), moments.mean.clone());
        out.push_vector(format!("encoder.{l}.var"), moments.var.clone());
        if let Some(b) = layer.beta {
            out.push_vector(format!("encoder.{l}.beta"), enc.betas[b].val());
        }
    }
    if let Some(g) = &enc.gamma {
        out.push_vector(format!("encoder.{}.gamma", enc.plan.len()), g.val());
    }
    Ok(out)
}

/// The inference network of `model` with its metadata. A run that whitens its inputs needs its
/// ZCA fitted first ([`Fitted::fit`] on the run's training data).
pub fn export(model: &TrainedModel) -> Result<Exported> {
    let classes = model.num_classes();
    match model {
        TrainedModel::Plain(mlp, p, _) => export_plain(mlp, p, classes),
        TrainedModel::Ladder(clf, p, _) => export_ladder(clf, p, classes),
        TrainedModel::Semantic(s, p) => export_semantic(s, p, classes),
    }
}

impl Exported {
    /// The safetensors bytes: the tensors in name order and the metadata block.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let bytes: Vec<(&Named, Dtype, Vec<u8>)> = self
            .tensors
            .iter()
            .map(|t| match &t.values {
                Values::F32(v) => (
                    t,
                    Dtype::F32,
                    v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                ),
                Values::F64(v) => (
                    t,
                    Dtype::F64,
                    v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                ),
            })
            .collect();
        let views = bytes
            .iter()
            .map(|(t, dtype, b)| {
                TensorView::new(*dtype, t.shape.clone(), b)
                    .map(|v| (t.name.clone(), v))
                    .map_err(|e| LadderError::Setting(format!("tensor {}: {e}", t.name)))
            })
            .collect::<Result<Vec<_>>>()?;
        let bytes = safetensors::serialize(views, Some(self.metadata.clone()))
            .map_err(|e| LadderError::Setting(format!("cannot serialise the network: {e}")))?;
        Ok(sorted_header(bytes))
    }

    /// Writes the file atomically (a half-written export is never left behind).
    pub fn save(&self, path: &Path) -> Result<()> {
        write_atomic(path, &self.to_bytes()?)
    }
}

/// `bytes` with the JSON header's keys in sorted order: the crate writes the metadata in a hash
/// map's random order, and one network must export to the same bytes every time. The header
/// keeps its length (the same compact JSON, padded with spaces as the format pads it).
fn sorted_header(mut bytes: Vec<u8>) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let header = &bytes[8..8 + n];
    let mut value: serde_json::Value =
        serde_json::from_slice(header).expect("the crate's own JSON");
    value.sort_all_objects();
    let mut sorted = serde_json::to_vec(&value).expect("JSON serialises");
    debug_assert!(sorted.len() <= n);
    sorted.resize(n, b' ');
    bytes[8..8 + n].copy_from_slice(&sorted);
    bytes
}

/// Whether `path` names an exported network (a `.safetensors` file) rather than a run
/// directory.
pub fn is_export(path: &Path) -> bool {
    path.is_file()
        && path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("safetensors"))
}

/// A file being read back: its tensors and metadata, and errors that name it.
struct Reader<'a> {
    path: &'a Path,
    st: safetensors::SafeTensors<'a>,
    meta: HashMap<String, String>,
    device: &'a Device,
}

impl Reader<'_> {
    fn bad(&self, reason: String) -> LadderError {
        LadderError::Format {
            path: self.path.into(),
            reason,
        }
    }

    fn field(&self, k: &str) -> Result<&str> {
        self.meta
            .get(k)
            .map(String::as_str)
            .ok_or_else(|| self.bad(format!("its metadata has no `{k}`")))
    }

    /// The values of tensor `name`, which must have exactly `shape` and `dtype`.
    fn raw(&self, name: &str, shape: &[usize], dtype: Dtype) -> Result<Vec<u8>> {
        let t = self
            .st
            .tensor(name)
            .map_err(|_| self.bad(format!("has no tensor `{name}`")))?;
        if t.dtype() != dtype || t.shape() != shape {
            return Err(self.bad(format!(
                "tensor `{name}` is {:?} {:?}, expected {dtype:?} {shape:?}",
                t.dtype(),
                t.shape()
            )));
        }
        Ok(t.data().to_vec())
    }

    /// Tensor `name` of the file's `shape`, as the `[rows, cols]` the model holds.
    fn tensor(&self, name: &str, shape: &[usize], held: [usize; 2]) -> Result<Tensor<2>> {
        let v: Vec<f32> = self
            .raw(name, shape, Dtype::F32)?
            .chunks(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect();
        Ok(Tensor::from_data(TensorData::new(v, held), self.device))
    }

    fn param(&self, name: &str, shape: &[usize], held: [usize; 2]) -> Result<Param<Tensor<2>>> {
        self.tensor(name, shape, held).map(Param::from_tensor)
    }

    /// A `[n]` vector of the file as the `[1, n]` row the model holds.
    fn row(&self, name: &str, n: usize) -> Result<Tensor<2>> {
        self.tensor(name, &[n], [1, n])
    }

    /// Layer `geom`'s weight from its documented layout.
    fn weight(&self, name: &str, geom: &LayerGeom) -> Result<Param<Tensor<2>>> {
        self.param(name, &file_shape(geom), held_shape(geom))
    }

    fn f64s(&self, name: &str, shape: &[usize]) -> Result<Vec<f64>> {
        Ok(self
            .raw(name, shape, Dtype::F64)?
            .chunks(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect())
    }

    /// The layers and their shapes: `layers` and `input_shape` (format 2) or the widths of
    /// `architecture` (format 1).
    fn layers(&self) -> Result<Vec<LayerGeom>> {
        let (spec, input) = match self.field("format")? {
            EXPORT_FORMAT => {
                let input: Vec<usize> = serde_json::from_str(self.field("input_shape")?)
                    .map_err(|e| self.bad(format!("input_shape: {e}")))?;
                (self.field("layers")?.to_string(), input)
            }
            _ => {
                let arch = self.field("architecture")?;
                let (input, rest) = arch
                    .split_once('-')
                    .ok_or_else(|| self.bad(format!("architecture `{arch}` has one layer")))?;
                let d = input
                    .parse()
                    .map_err(|_| self.bad(format!("architecture `{arch}`: `{input}`")))?;
                (rest.to_string(), vec![d])
            }
        };
        let kinds = parse_layer_kinds(&spec).map_err(|e| self.bad(e.to_string()))?;
        let shape = Shape::of_input(&input).map_err(|e| self.bad(e.to_string()))?;
        let shape = match kinds.iter().any(LayerKind::is_spatial) {
            true => shape,
            false => Shape::vector(shape.units()),
        };
        plan(shape, &kinds).map_err(|e| self.bad(e.to_string()))
    }

    /// The preprocessing steps of the metadata with the fitted ZCA.
    fn preprocessing(&self) -> Result<Fitted> {
        let mut p = Preprocessing::default();
        let text = self.field("preprocessing")?;
        let (mut zca, mut standardise) = (None, None);
        for step in text.split(',').filter(|s| *s != "none") {
            let (name, value) = step.split_once(':').unwrap_or((step, ""));
            let number = |what: &str| {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v > 0.0)
                    .ok_or_else(|| self.bad(format!("preprocessing `{step}`: {what}")))
            };
            match name {
                "standardise" => {
                    let d = self.vector_len("preprocessing.standardise.mean")?;
                    standardise = Some(Standardiser {
                        mean: self.f64s("preprocessing.standardise.mean", &[d])?,
                        std: self.f64s("preprocessing.standardise.std", &[d])?,
                    });
                }
                "grey" => p.grey = true,
                "contrast-norm" => p.contrast_norm = number("a positive scale")?,
                "zca" => {
                    p.zca_bias = Some(number("a positive bias")?);
                    let d = self.vector_len("preprocessing.zca.mean")?;
                    let mean = self.f64s("preprocessing.zca.mean", &[d])?;
                    let d = mean.len();
                    let m = self.f64s("preprocessing.zca.matrix", &[d, d])?;
                    let matrix = faer::Mat::from_fn(d, d, |i, j| m[i * d + j]);
                    zca = Some(Zca { mean, matrix });
                }
                "crop" => {
                    p.crop = value
                        .parse()
                        .ok()
                        .filter(|&c| c > 0)
                        .ok_or_else(|| self.bad(format!("preprocessing `{step}`: a side")))?
                }
                _ => return Err(self.bad(format!("unknown preprocessing step `{step}`"))),
            }
        }
        Ok(Fitted {
            standardise,
            steps: p,
            zca,
        })
    }

    /// The length of the vector `name`.
    fn vector_len(&self, name: &str) -> Result<usize> {
        let t = self
            .st
            .tensor(name)
            .map_err(|_| self.bad(format!("has no tensor `{name}`")))?;
        match t.shape() {
            [d] => Ok(*d),
            other => Err(self.bad(format!("{name} has shape {other:?}, not a vector"))),
        }
    }

    fn activation(&self) -> Result<Activation> {
        match self.field("activation")? {
            "relu" => Ok(Activation::Relu),
            a if a.starts_with("leaky-relu") => Ok(Activation::Leakyrelu),
            other => Err(self.bad(format!("unknown activation `{other}`"))),
        }
    }
}

/// Reads a file [`Exported::save`] wrote (or any file with the same names and metadata) as a
/// trained model on `device`, for `evaluate`, `predict` and `robustness`.
pub fn import(path: &Path, device: &Device) -> Result<TrainedModel> {
    let bytes = std::fs::read(path).map_err(|e| LadderError::io(path, e))?;
    let bad = |reason: String| LadderError::Format {
        path: path.into(),
        reason,
    };
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| bad(format!("not a safetensors file: {e}")))?;
    let meta = header.metadata().clone().unwrap_or_default();
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
    let r = Reader {
        path,
        st,
        meta,
        device,
    };
    let format = r.field("format")?;
    if format != EXPORT_FORMAT && format != EXPORT_FORMAT_1 {
        return Err(r.bad(format!(
            "format {format} is neither {EXPORT_FORMAT} nor {EXPORT_FORMAT_1}"
        )));
    }
    let layers = r.layers()?;
    let classes: usize = r
        .field("classes")?
        .parse()
        .map_err(|_| r.bad("classes is not a number".into()))?;
    let top = layers.last().expect("plan() gives at least one layer");
    if top.output.units() != classes {
        return Err(r.bad(format!(
            "the top layer has {} units but there are {classes} classes",
            top.output.units()
        )));
    }
    let p = r.preprocessing()?;
    match r.field("method")? {
        "plain" => import_plain(&r, &layers, p, classes),
        "semantic" => import_semantic(&r, layers, p),
        "ladder" => import_ladder(&r, &layers, p, classes),
        other => Err(r.bad(format!("unknown method `{other}`"))),
    }
}

fn import_plain(
    r: &Reader,
    layers: &[LayerGeom],
    p: Fitted,
    classes: usize,
) -> Result<TrainedModel> {
    if layers.iter().any(|g| g.kind.is_spatial()) {
        return Err(r.bad("plain networks here are fully connected: its layers are not".into()));
    }
    let mut mlp = Mlp {
        weights: Vec::new(),
        biases: Vec::new(),
    };
    for (i, g) in layers.iter().enumerate() {
        let l = i + 1;
        mlp.weights
            .push(r.weight(&format!("layers.{l}.weight"), g)?);
        let b = r.row(&format!("layers.{l}.bias"), g.output.channels)?;
        mlp.biases.push(Param::from_tensor(b));
    }
    Ok(TrainedModel::Plain(mlp.no_grad(), p, classes))
}

fn import_semantic(r: &Reader, layers: Vec<LayerGeom>, p: Fitted) -> Result<TrainedModel> {
    let d = layers[0].input.units();
    let mut rng = <rand_xoshiro::Xoshiro256PlusPlus as rand::SeedableRng>::seed_from_u64(0);
    let mut net = SemanticNet::new(layers, &mut rng, r.device).map_err(|e| r.bad(e.to_string()))?;
    for (i, g) in net.layers.clone().iter().enumerate() {
        let l = i + 1;
        net.weights[i] = r.weight(&format!("layers.{l}.weight"), g)?;
        let b = r.row(&format!("layers.{l}.bias"), g.output.channels)?;
        net.biases[i] = Param::from_tensor(b);
    }
    let classifier = SemanticClassifier {
        net: net.no_grad(),
        header: None,
        mean: r.row("input.mean", d)?,
    };
    Ok(TrainedModel::Semantic(classifier, p))
}

/// The clean encoder of an exported Ladder: a network of its layers and activation, whose
/// weights, β, γ and population moments are the file's.
fn import_ladder(
    r: &Reader,
    layers: &[LayerGeom],
    p: Fitted,
    classes: usize,
) -> Result<TrainedModel> {
    let top_gamma = r.meta.get("top_gamma").is_some_and(|v| v == "true");
    let kinds: Vec<LayerKind> = layers.iter().map(|g| g.kind).collect();
    let config = crate::train::TrainConfig {
        encoder_layers: Written::parse(&layer_kinds_spec(&kinds))?,
        denoising_cost_x: Written::known("0"),
        act: r.activation()?,
        top_c: top_gamma,
        num_classes: classes,
        ..crate::train::TrainConfig::default()
    };
    let input = layers[0].input;
    let spec = config.ladder_spec(&[input.channels, input.height, input.width])?;
    let mut net = crate::model::LadderNetwork::new(&spec, 1, r.device);
    let mut moments = Vec::new();
    for (i, layer) in net.encoder.plan.clone().iter().enumerate() {
        let (l, g) = (i + 1, &layer.geom);
        let c = g.output.channels;
        if let Some(w) = layer.weight {
            net.encoder.weights[w] = r.weight(&format!("encoder.{l}.weight"), g)?;
        }
        if let Some(b) = layer.beta {
            net.encoder.betas[b] = Param::from_tensor(r.row(&format!("encoder.{l}.beta"), c)?);
        }
        moments.push(Moments {
            mean: r.row(&format!("encoder.{l}.mean"), c)?,
            var: r.row(&format!("encoder.{l}.var"), c)?,
        });
    }
    if top_gamma {
        let l = layers.len();
        let units = layers[l - 1].output.units();
        net.encoder.gamma = Some(Param::from_tensor(
            r.row(&format!("encoder.{l}.gamma"), units)?,
        ));
    }
    Ok(TrainedModel::Ladder(
        LadderClassifier {
            net: net.no_grad(),
            moments,
        },
        p,
        classes,
    ))
}

/// The trained model at `path`, able to preprocess new inputs on its own, as its export will: a
/// run directory that whitens its inputs (ZCA) or was trained on CSV data gets what its
/// recorded data fitted (the whitening of its training set, its standardisation), read from the
/// recorded data or the moved copy `request` names. Other runs and exported files need no data.
pub fn load_for_new_inputs(
    path: &Path,
    request: &crate::data::DataRequest,
    device: &Device,
) -> Result<TrainedModel> {
    let mut model = load_model(path, device)?;
    if is_export(path) {
        return Ok(model);
    }
    let csv = matches!(
        crate::experiment::run::recorded_source(path)?,
        Some(crate::data::DataSource::Csv { .. })
    );
    if csv || model.preprocessing().needs_fit() {
        let data = crate::experiment::run::run_data(path, request, model.num_classes())?;
        let p = model.preprocessing_mut();
        p.standardise = data.standardiser;
        p.fit(&data.sets.train)?;
    }
    Ok(model)
}

/// The trained model at `path`: an exported file ([`import`]) or a run directory
/// ([`TrainedModel::load`]).
pub fn load_model(path: &Path, device: &Device) -> Result<TrainedModel> {
    if !path.exists() {
        let missing = std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such file or directory (a run directory or an exported .safetensors file)",
        );
        return Err(LadderError::io(path, missing));
    }
    match is_export(path) {
        true => import(path, device),
        false => TrainedModel::load(path, device),
    }
}
