//! The crate's error type: every failure a user can cause names its cause.

use std::path::PathBuf;

use crate::data::DataError;

/// Errors from configuring, training, evaluating or storing a model.
#[derive(Debug, thiserror::Error)]
pub enum LadderError {
    #[error(transparent)]
    Data(#[from] DataError),

    /// A layer, decoder or λ specification that does not parse or does not fit the network.
    #[error("invalid specification: {0}")]
    Spec(String),

    /// A setting that cannot work (non-positive batch size, empty seed list, ...).
    #[error("invalid setting: {0}")]
    Setting(String),

    /// The cost became NaN or infinite: training stopped.
    #[error("training diverged: the {what} became {value} at epoch {epoch}, step {step}")]
    Diverged {
        what: String,
        value: f32,
        epoch: usize,
        step: usize,
    },

    /// Stopped by Ctrl-C after saving a checkpoint.
    #[error("interrupted: {0}")]
    Interrupted(String),

    /// A checkpoint that cannot be read back, with the file it came from.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint { path: PathBuf, reason: String },

    /// A run directory problem (exists, incomplete, not a run).
    #[error("run directory {path}: {reason}")]
    RunDir { path: PathBuf, reason: String },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}: {reason}")]
    Format { path: PathBuf, reason: String },
}

/// Shorthand for results of this crate.
pub type Result<T, E = LadderError> = std::result::Result<T, E>;

impl LadderError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LadderError::Io {
            path: path.into(),
            source,
        }
    }
}
