//! What a Ladder run records of its epochs and steps: the cost terms and the metrics line.

use serde::{Deserialize, Serialize};

/// The mean cost terms of an epoch (or the values of one step).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostSummary {
    pub total: f64,
    pub supervised: f64,
    /// Unweighted denoising cost per layer, input first; `None` where λ = 0.
    pub denoising: Vec<Option<f64>>,
    /// Unweighted virtual adversarial loss (mean LDS of the unlabelled rows) of a VAT run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_adversarial: Option<f64>,
    /// Entropy of the unlabelled rows' predictions of a VAT+EntMin run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entropy: Option<f64>,
    /// Unweighted consistency cost of a Π-model run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<f64>,
}

impl CostSummary {
    /// "cost 1.2345 sup 0.1234 [d0 0.123 d1 0.456]", as the progress display shows it.
    pub fn describe(&self) -> String {
        let den: Vec<String> = self
            .denoising
            .iter()
            .enumerate()
            .filter_map(|(l, d)| d.map(|d| format!("d{l} {d:.3}")))
            .collect();
        let mut s = format!("cost {:.4} sup {:.4}", self.total, self.supervised);
        if !den.is_empty() {
            s.push_str(&format!(" [{}]", den.join(" ")));
        }
        if let Some(v) = self.virtual_adversarial {
            s.push_str(&format!(" vat {v:.4}"));
        }
        if let Some(h) = self.entropy {
            s.push_str(&format!(" ent {h:.4}"));
        }
        if let Some(c) = self.consistency {
            s.push_str(&format!(" cons {c:.5}"));
        }
        s
    }
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: usize,
    pub lr: f64,
    pub cost: CostSummary,
    pub validation_error_percent: Option<f64>,
    pub test_error_percent: Option<f64>,
}
