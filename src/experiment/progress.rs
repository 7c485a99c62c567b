//! Progress display: a bar per epoch with the cost terms, and one line per finished epoch with
//! the time elapsed and the time left at the pace so far (every method).

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::train::epochs::StepDone;

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

/// The progress of one run: a bar over the steps of an epoch (on a terminal, for methods that
/// report steps) and a line per finished epoch, "LABEL epoch k/n LINE | 0:01:02 elapsed, ...".
pub struct Progress<'a> {
    label: String,
    epochs: usize,
    /// Whether steps draw a bar.
    show_bar: bool,
    bar: Option<ProgressBar>,
    eta: Eta,
    report: &'a mut dyn FnMut(&str),
    /// Sees every step (a caller's own display, the Python package's callback).
    watch: Option<&'a mut dyn FnMut(&StepDone)>,
}

impl<'a> Progress<'a> {
    /// Progress of a run of `epochs` epochs, its lines prefixed with `label` (if not empty) and
    /// passed to `report`.
    pub fn new(epochs: usize, label: impl Into<String>, report: &'a mut dyn FnMut(&str)) -> Self {
        Progress {
            label: label.into(),
            epochs,
            show_bar: true,
            bar: None,
            eta: Eta::default(),
            report,
            watch: None,
        }
    }

    /// The same with `watch` seeing every step, instead of the bar.
    pub fn watching(mut self, watch: &'a mut dyn FnMut(&StepDone)) -> Self {
        self.watch = Some(watch);
        self.without_bar()
    }

    /// The same without the step bar (quiet runs, grids of many runs).
    pub fn without_bar(mut self) -> Self {
        self.show_bar = false;
        self
    }

    fn prefix(&self, epoch: usize) -> String {
        match self.label.as_str() {
            "" => format!("epoch {epoch}/{}", self.epochs),
            label => format!("{label} epoch {epoch}/{}", self.epochs),
        }
    }

    /// A line of its own (resuming, finishing).
    pub fn say(&mut self, line: &str) {
        (self.report)(line);
    }

    pub fn step(&mut self, s: &StepDone) {
        if let Some(watch) = &mut self.watch {
            watch(s);
        }
        if !self.show_bar {
            return;
        }
        let prefix = self.prefix(s.epoch);
        let bar = self.bar.get_or_insert_with(|| {
            let bar =
                ProgressBar::with_draw_target(Some(s.steps as u64), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{prefix} [{bar:25}] {pos}/{len} {msg}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar
        });
        bar.set_prefix(prefix);
        bar.set_position(s.step as u64);
        if s.step.is_multiple_of(10) || s.step == s.steps {
            bar.set_message(s.message.clone());
        }
    }

    /// Epoch `epoch` has finished; `line` describes it.
    pub fn epoch(&mut self, epoch: usize, line: &str) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        let eta = self.eta.epoch_done(epoch, self.epochs);
        let line = format!("{} {line} | {eta}", self.prefix(epoch));
        (self.report)(&line);
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
