//! The trained network of a finished run of any method (Ladder, plain, semantic noise
//! modeling), read back for evaluation, prediction, robustness and pictures.

use std::path::Path;

use burn::prelude::*;

use crate::data::preprocess::{Fitted, Preprocessing};
use crate::data::{Dataset, TrainTest};
use crate::error::{LadderError, Result};
use crate::eval::{Classifier, LadderClassifier, classify, error_percent_of, pass_rows};
use crate::experiment::plain_run::{PLAIN_MODEL_FILE, load_plain_model};
use crate::experiment::run::{CHECKPOINT_FILE, CONFIG_FILE, RunMethod, load_run};
use crate::experiment::semantic_run::{
    SEMANTIC_MODEL_FILE, SemanticModelHeader, load_semantic_model,
};
use crate::model::mlp::Mlp;
use crate::model::semantic::SemanticNet;
use crate::ops::batch_norm::Moments;
use crate::train::semantic::SemanticData;

/// A semantic-noise network at inference: inputs minus its training set's mean image.
pub struct SemanticClassifier {
    pub net: SemanticNet,
    /// The run's header; `None` for an exported network, which holds only the inference path.
    pub header: Option<Box<SemanticModelHeader>>,
    /// The mean image as the network sees it (centre-cropped when the run crops), `[1, d]`.
    pub mean: Tensor<2>,
}

impl Classifier for SemanticClassifier {
    fn logits(&self, x: Tensor<2>) -> Tensor<2> {
        self.net.logits(x - self.mean.clone())
    }
    fn device(&self) -> Device {
        Classifier::device(&self.net)
    }
}

/// A trained classifier of any family, with frozen weights.
pub enum TrainedModel {
    Ladder(LadderClassifier, Fitted, usize),
    Plain(Mlp, Fitted, usize),
    Semantic(SemanticClassifier, Fitted),
}

impl Classifier for TrainedModel {
    fn logits(&self, x: Tensor<2>) -> Tensor<2> {
        match self {
            TrainedModel::Ladder(l, ..) => l.logits(x),
            TrainedModel::Plain(m, ..) => m.logits(x),
            TrainedModel::Semantic(s, _) => s.logits(x),
        }
    }
    fn device(&self) -> Device {
        match self {
            TrainedModel::Ladder(l, ..) => l.device(),
            TrainedModel::Plain(m, ..) => m.device(),
            TrainedModel::Semantic(s, _) => s.device(),
        }
    }
    fn widest_units(&self) -> usize {
        match self {
            TrainedModel::Ladder(l, ..) => l.widest_units(),
            _ => 0,
        }
    }
}

fn not_a_run(dir: &Path) -> LadderError {
    let hint = if dir.join("seed-1").is_dir() {
        format!(
            "; for a multi-seed run pass one seed's directory, e.g. {}",
            dir.join("seed-1").display()
        )
    } else {
        String::new()
    };
    LadderError::RunDir {
        path: dir.into(),
        reason: format!(
            "holds no trained network: neither {CONFIG_FILE} with {CHECKPOINT_FILE} (Ladder) nor \
             {CONFIG_FILE} with {PLAIN_MODEL_FILE} (plain, semantic){hint}"
        ),
    }
}

impl TrainedModel {
    /// Reads the network of a finished run directory onto `device` (with autodiff, for
    /// gradient attacks).
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let method = RunMethod::of_dir(dir)?;
        if method == Some(RunMethod::Semantic) {
            return Self::load_semantic(dir, device);
        }
        if method == Some(RunMethod::Plain) {
            if !dir.join(PLAIN_MODEL_FILE).exists() {
                return Err(not_a_run(dir));
            }
            let (header, mlp) = load_plain_model(&dir.join(PLAIN_MODEL_FILE), device)?;
            let c = header.config;
            return Ok(TrainedModel::Plain(
                mlp.no_grad(),
                Fitted::unfitted(c.preprocessing()),
                c.num_classes,
            ));
        }
        if !dir.join(CHECKPOINT_FILE).exists() {
            return Err(not_a_run(dir));
        }
        let run = load_run(dir, device)?;
        let on_device = |t: &Tensor<2>| Tensor::from_data(t.clone().into_data(), device);
        let moments = run
            .moments
            .iter()
            .map(|m| Moments {
                mean: on_device(&m.mean),
                var: on_device(&m.var),
            })
            .collect();
        let c = &run.trainer.config;
        Ok(TrainedModel::Ladder(
            LadderClassifier {
                net: run.trainer.model().clone().no_grad(),
                moments,
            },
            Fitted::unfitted(c.preprocessing()),
            c.num_classes,
        ))
    }

    fn load_semantic(dir: &Path, device: &Device) -> Result<Self> {
        let (header, net) = load_semantic_model(&dir.join(SEMANTIC_MODEL_FILE), device)?;
        let crop = header.config.crop;
        let full = Dataset {
            images: header.mean.clone().into(),
            labels: vec![0],
            n: 1,
            dim: header.mean.len(),
            image_shape: header.image_shape.clone(),
            num_classes: header.config.num_classes,
        };
        let preprocessing = Preprocessing {
            grey: false,
            contrast_norm: 0.0,
            zca_bias: None,
            crop,
        };
        let mean = preprocessing.apply_to_new(full)?;
        let values = mean.images.all().into_owned();
        let mean = Tensor::from_data(TensorData::new(values, [1, mean.dim]), device);
        Ok(TrainedModel::Semantic(
            SemanticClassifier {
                net: net.no_grad(),
                header: Some(Box::new(header)),
                mean,
            },
            Fitted::unfitted(preprocessing),
        ))
    }

    /// Classes of the run's labels.
    pub fn num_classes(&self) -> usize {
        match self {
            TrainedModel::Ladder(.., n) | TrainedModel::Plain(.., n) => *n,
            TrainedModel::Semantic(s, _) => s.net.num_classes(),
        }
    }

    /// Values per input example, as the network takes them.
    pub fn input_dim(&self) -> usize {
        match self {
            TrainedModel::Ladder(l, ..) => l.net.encoder.plan[0].geom.input.units(),
            TrainedModel::Plain(m, ..) => m.weights[0].val().dims()[0],
            TrainedModel::Semantic(s, _) => s.mean.dims()[1],
        }
    }

    /// What the model's run did to its inputs before the network (a semantic network's mean
    /// subtraction is part of the network here, so that perturbations act on pixels).
    pub fn preprocessing(&self) -> &Fitted {
        match self {
            TrainedModel::Ladder(_, p, _)
            | TrainedModel::Plain(_, p, _)
            | TrainedModel::Semantic(_, p) => p,
        }
    }

    /// Mutable access to the preprocessing, to fit its ZCA (for an export).
    pub fn preprocessing_mut(&mut self) -> &mut Fitted {
        match self {
            TrainedModel::Ladder(_, p, _)
            | TrainedModel::Plain(_, p, _)
            | TrainedModel::Semantic(_, p) => p,
        }
    }

    /// Test error (percent) on `data`'s test set, preprocessed as the run did (with the fitted
    /// ZCA an exported network holds, else ZCA fitted on `data`'s training set).
    pub fn test_error(&self, data: &TrainTest) -> Result<f64> {
        if let TrainedModel::Semantic(s, _) = self
            && let Some(header) = &s.header
        {
            // The run's own split and mean image, exactly as training tested.
            let split = SemanticData::new(data, &header.config)?;
            return Ok(error_percent_of(&s.net, &split.test));
        }
        let data = &*self.preprocessing().apply(data)?;
        self.check_dim(data.test.dim)?;
        Ok(error_percent_of(self, &data.test))
    }

    /// The predicted class of every image of `raw` (pixels as loaded), preprocessed as the
    /// run did.
    pub fn predict(&self, raw: Dataset) -> Result<Vec<u32>> {
        let ds = self.preprocessing().apply_to_new(raw)?;
        self.check_dim(ds.dim)?;
        Ok(classify(self, &ds.images, ds.dim, &self.device()))
    }

    /// The class probabilities (softmax) of every example of `raw`, preprocessed as the run
    /// did, a row of `num_classes` per example.
    pub fn probabilities(&self, raw: Dataset) -> Result<Vec<Vec<f32>>> {
        let ds = self.preprocessing().apply_to_new(raw)?;
        self.check_dim(ds.dim)?;
        let device = self.device();
        let mut out = Vec::with_capacity(ds.len());
        let rows_per_pass = pass_rows(&device, self.widest_units().max(ds.dim), 1000);
        for start in (0..ds.len()).step_by(rows_per_pass) {
            let rows = ds.rows(start..(start + rows_per_pass).min(ds.len()));
            let n = rows.len() / ds.dim;
            let x = Tensor::from_data(TensorData::new(rows.into_owned(), [n, ds.dim]), &device);
            let p = burn::tensor::activation::softmax(self.logits(x), 1);
            let k = p.dims()[1];
            let v = p
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .expect("f32");
            out.extend(v.chunks(k).map(<[f32]>::to_vec));
        }
        Ok(out)
    }

    fn check_dim(&self, dim: usize) -> Result<()> {
        let input = self.input_dim();
        if dim != input {
            return Err(LadderError::Setting(format!(
                "the images have {dim} values each but the model expects {input}"
            )));
        }
        Ok(())
    }

    /// W^(1), …, W^(L), each `[d_{l−1}, d_l]`; an error for networks with convolutions, whose
    /// weights are filters.
    pub fn weights(&self) -> Result<Vec<Tensor<2>>> {
        let conv = |what: &str| {
            LadderError::Setting(format!(
                "weight pictures are drawn for fully connected networks; this {what} has \
                 convolution or pooling layers"
            ))
        };
        match self {
            TrainedModel::Ladder(l, ..) => {
                let enc = &l.net.encoder;
                if enc.plan.iter().any(|p| p.geom.kind.is_spatial()) {
                    return Err(conv("Ladder"));
                }
                Ok(enc.weights.iter().map(|w| w.val()).collect())
            }
            TrainedModel::Plain(m, ..) => Ok(m.weights.iter().map(|w| w.val()).collect()),
            TrainedModel::Semantic(s, _) => {
                if s.net.layers.iter().any(|g| g.kind.is_spatial()) {
                    return Err(conv("semantic-noise network"));
                }
                Ok(s.net.weights.iter().map(|w| w.val()).collect())
            }
        }
    }
}

/// Test error (percent) of a finished run of any method on `data`'s test set.
pub fn evaluate_run(dir: &Path, data: &TrainTest, device: &Device) -> Result<f64> {
    TrainedModel::load(dir, device)?.test_error(data)
}
