//! Robust accuracy per model, radius and attack under one threat model, with the worst case
//! over the attacks per example, as CSV and Markdown, and the gradient-masking warning.

use crate::attack::{AttackKind, AttackSettings, Inputs, Norm, Oracle, Threat, attack};
use crate::data::Dataset;
use crate::error::Result;
use crate::eval::Classifier;
use crate::eval::robustness::csv_field;

/// The valid box of inputs as the models see them: [0, 1] when every value of `data` lies in
/// it (pixels), else the range of `data` (inputs after preprocessing).
pub fn input_box(data: &Dataset) -> (f32, f32) {
    if let crate::data::Pixels::Bytes(_) = data.images {
        return (0.0, 1.0);
    }
    let values = data.images.all();
    let lo = values.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if lo >= 0.0 && hi <= 1.0 {
        (0.0, 1.0)
    } else {
        (lo, hi)
    }
}

/// (channels, height, width) of one example of `data`; a vector of d values is 1 × 1 × d.
pub fn image_layout(data: &Dataset) -> (usize, usize, usize) {
    match data.image_shape[..] {
        [c, h, w] => (c, h, w),
        [h, w] => (1, h, w),
        _ => (1, 1, data.dim),
    }
}

/// Robust accuracy (%) per model, radius and attack under one threat model, and the worst
/// case over the attacks per example (robust accuracy as RobustBench reports it).
#[derive(Debug, Clone, PartialEq)]
pub struct AttackTable {
    pub norm: Norm,
    /// The box the adversarial inputs were clipped to.
    pub bounds: (f32, f32),
    pub models: Vec<String>,
    pub epsilons: Vec<f64>,
    pub attacks: Vec<AttackKind>,
    /// `clean[m]`: accuracy without perturbation.
    pub clean: Vec<f64>,
    /// `accuracy[m][e][a]`: model m at `epsilons[e]` under `attacks[a]`.
    pub accuracy: Vec<Vec<Vec<f64>>>,
    /// `worst[m][e]`: examples no attack fooled.
    pub worst: Vec<Vec<f64>>,
}

fn percent(flags: &[bool]) -> f64 {
    100.0 * flags.iter().filter(|&&f| f).count() as f64 / flags.len().max(1) as f64
}

impl AttackTable {
    /// Runs every attack on every model at every radius; `report` sees a line per measurement.
    #[allow(clippy::too_many_arguments)]
    pub fn measure<C: Classifier>(
        models: &[(String, C)],
        data: &Dataset,
        norm: Norm,
        epsilons: &[f64],
        attacks: &[AttackKind],
        settings: &AttackSettings,
        report: &mut dyn FnMut(&str),
    ) -> Result<Self> {
        let bounds = input_box(data);
        let x = data.images.all();
        let inputs = Inputs {
            x: &x,
            y: &data.labels,
            dim: data.dim,
            shape: image_layout(data),
        };
        let mut table = AttackTable {
            norm,
            bounds,
            models: models.iter().map(|(n, _)| n.clone()).collect(),
            epsilons: epsilons.to_vec(),
            attacks: attacks.to_vec(),
            clean: Vec::new(),
            accuracy: Vec::new(),
            worst: Vec::new(),
        };
        for (name, clf) in models {
            let clean = Oracle::new(clf, data.dim).correct(inputs.x, inputs.y);
            table.clean.push(percent(&clean));
            let (mut rows, mut worst) = (Vec::new(), Vec::new());
            for &epsilon in epsilons {
                let threat = Threat {
                    norm,
                    epsilon,
                    bounds: Some(bounds),
                };
                let mut all = clean.clone();
                let mut row = Vec::new();
                for &kind in attacks {
                    let started = std::time::Instant::now();
                    let out = attack(clf, inputs, &threat, kind, settings)?;
                    for (a, r) in all.iter_mut().zip(&out.robust) {
                        *a &= r;
                    }
                    let acc = percent(&out.robust);
                    report(&format!(
                        "{name}: {kind} {norm} ε = {epsilon}: {acc:.2} % ({:.1} s)",
                        started.elapsed().as_secs_f64()
                    ));
                    row.push(acc);
                }
                rows.push(row);
                worst.push(percent(&all));
            }
            table.accuracy.push(rows);
            table.worst.push(worst);
        }
        Ok(table)
    }

    /// One warning per model and radius where the gradient-free attack beats every white-box
    /// one by more than half a point: the signature of gradient masking.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let Some(sq) = self.attacks.iter().position(|&a| a == AttackKind::Square) else {
            return out;
        };
        for (m, name) in self.models.iter().enumerate() {
            for (e, eps) in self.epsilons.iter().enumerate() {
                let row = &self.accuracy[m][e];
                let white = self
                    .attacks
                    .iter()
                    .zip(row)
                    .filter(|(a, _)| a.is_white_box())
                    .map(|(_, &v)| v)
                    .fold(f64::INFINITY, f64::min);
                if white.is_finite() && row[sq] < white - 0.5 {
                    out.push(format!(
                        "{name} at {} ε = {eps}: the gradient-free Square Attack leaves {:.2} % \
                         accurate, below the {white:.2} % of the best white-box attack: its \
                         gradients mislead the white-box attacks (gradient masking); trust the \
                         worst case",
                        self.norm, row[sq]
                    ));
                }
            }
        }
        out
    }

    /// `model,norm,epsilon,attack,accuracy_percent`: the clean accuracy (attack `none`, ε 0),
    /// each attack and the worst case (`worst-case`).
    pub fn to_csv(&self) -> String {
        let mut out = String::from("model,norm,epsilon,attack,accuracy_percent\n");
        for (m, name) in self.models.iter().enumerate() {
            let name = csv_field(name);
            out.push_str(&format!(
                "{name},{},0,none,{:.2}\n",
                self.norm, self.clean[m]
            ));
            for (e, eps) in self.epsilons.iter().enumerate() {
                for (a, kind) in self.attacks.iter().enumerate() {
                    let acc = self.accuracy[m][e][a];
                    out.push_str(&format!("{name},{},{eps},{kind},{acc:.2}\n", self.norm));
                }
                let worst = self.worst[m][e];
                out.push_str(&format!(
                    "{name},{},{eps},worst-case,{worst:.2}\n",
                    self.norm
                ));
            }
        }
        out
    }

    /// A Markdown table per radius: a row per model, columns clean, each attack, worst case;
    /// then the warnings.
    pub fn to_markdown(&self) -> String {
        let (lo, hi) = self.bounds;
        let mut out = String::new();
        for (e, eps) in self.epsilons.iter().enumerate() {
            out.push_str(&format!(
                "### Robust accuracy (%), {} ε = {eps}, inputs clipped to [{lo}, {hi}]\n\n\
                 | model | clean |",
                self.norm
            ));
            for a in &self.attacks {
                out.push_str(&format!(" {a} |"));
            }
            out.push_str(" worst case |\n| --- | ---: |");
            out.push_str(&" ---: |".repeat(self.attacks.len() + 1));
            out.push('\n');
            for (m, name) in self.models.iter().enumerate() {
                out.push_str(&format!("| {name} | {:.2} |", self.clean[m]));
                for v in &self.accuracy[m][e] {
                    out.push_str(&format!(" {v:.2} |"));
                }
                out.push_str(&format!(" {:.2} |\n", self.worst[m][e]));
            }
            out.push('\n');
        }
        for w in self.warnings() {
            out.push_str(&format!("**Warning:** {w}\n\n"));
        }
        out
    }
}
