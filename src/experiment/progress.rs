//! Progress display: a bar per epoch with the cost terms, and one line per finished epoch.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::train::trainer::{CostSummary, EpochMetrics, Observer};

/// Draws a progress bar on a terminal and prints a line per epoch to stderr.
pub struct ProgressObserver {
    bar: Option<ProgressBar>,
    epochs: usize,
    label: String,
}

impl ProgressObserver {
    pub fn new(epochs: usize, label: impl Into<String>) -> Self {
        ProgressObserver {
            bar: None,
            epochs,
            label: label.into(),
        }
    }
}

fn format_cost(c: &CostSummary) -> String {
    let den: Vec<String> = c
        .denoising
        .iter()
        .enumerate()
        .filter_map(|(l, d)| d.map(|d| format!("d{l} {d:.3}")))
        .collect();
    let mut s = format!("cost {:.4} sup {:.4}", c.total, c.supervised);
    if !den.is_empty() {
        s.push_str(&format!(" [{}]", den.join(" ")));
    }
    s
}

impl Observer for ProgressObserver {
    fn step(&mut self, epoch: usize, step: usize, steps: usize, cost: &CostSummary) {
        let bar = self.bar.get_or_insert_with(|| {
            let bar =
                ProgressBar::with_draw_target(Some(steps as u64), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{prefix} [{bar:25}] {pos}/{len} {msg}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar
        });
        bar.set_prefix(format!("{} epoch {epoch}/{}", self.label, self.epochs));
        bar.set_position(step as u64);
        if step.is_multiple_of(10) || step == steps {
            bar.set_message(format_cost(cost));
        }
    }

    fn epoch(&mut self, m: &EpochMetrics) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        let mut line = format!(
            "{} epoch {}/{} lr {:.5} {}",
            self.label,
            m.epoch,
            self.epochs,
            m.lr,
            format_cost(&m.cost)
        );
        if let Some(v) = m.validation_error_percent {
            line.push_str(&format!(" | validation error {v:.2}%"));
        }
        if let Some(t) = m.test_error_percent {
            line.push_str(&format!(" | test error {t:.2}%"));
        }
        eprintln!("{line}");
    }
}
