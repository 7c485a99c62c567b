//! Progress display: a bar per epoch with the cost terms, and one line per finished epoch with
//! the time elapsed and the time left at the pace so far (every method).

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::train::trainer::{CostSummary, EpochMetrics, Observer};

/// The time a run has taken and the time its remaining epochs will take at the pace of the
/// epochs this process trained.
pub struct Eta {
    started: Instant,
    trained: usize,
}

impl Default for Eta {
    fn default() -> Self {
        Eta {
            started: Instant::now(),
            trained: 0,
        }
    }
}

/// `h:mm:ss`.
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

impl Eta {
    /// Counts one more finished epoch, `epoch` of `epochs`: "12:34 elapsed, 1:02:03 left".
    pub fn epoch_done(&mut self, epoch: usize, epochs: usize) -> String {
        self.trained += 1;
        let elapsed = self.started.elapsed();
        let left = elapsed / self.trained as u32 * epochs.saturating_sub(epoch) as u32;
        format!("{} elapsed, {} left", clock(elapsed), clock(left))
    }
}

/// Draws a progress bar on a terminal and prints a line per epoch to stderr.
pub struct ProgressObserver {
    bar: Option<ProgressBar>,
    epochs: usize,
    label: String,
    eta: Eta,
}

impl ProgressObserver {
    pub fn new(epochs: usize, label: impl Into<String>) -> Self {
        ProgressObserver {
            bar: None,
            epochs,
            label: label.into(),
            eta: Eta::default(),
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
        line.push_str(&format!(" | {}", self.eta.epoch_done(m.epoch, self.epochs)));
        eprintln!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_and_the_time_left_at_the_pace_so_far() {
        assert_eq!(clock(Duration::from_secs(3725)), "1:02:05");
        assert_eq!(clock(Duration::from_secs(59)), "0:00:59");
        let mut eta = Eta {
            started: Instant::now() - Duration::from_secs(20),
            trained: 1,
        };
        // Two epochs in 20 s: 10 s each, 8 to go.
        let line = eta.epoch_done(2, 10);
        assert!(line.starts_with("0:00:20 elapsed, 0:01:2"), "{line}");
    }
}
