//! What a Ladder run records of its epochs and steps: the cost terms and the metrics line.

use serde::{Deserialize, Serialize};

/// The mean cost terms of an epoch (or the values of one step).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostSummary {
    pub total: f64,
    pub supervised: f64,
    /// Unweighted denoising cost per layer, input first; `None` where λ = 0.
    pub denoising: Vec<Option<f64>>,
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
