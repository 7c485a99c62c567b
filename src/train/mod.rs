//! Configuration and presets, the one training loop and its methods, the learning-rate schedule, checkpoints.

pub mod checkpoint;
pub mod config;
pub mod epochs;
pub mod metrics;
pub mod plain;
pub mod resolve;
pub mod schedule;
pub mod semantic;
pub mod trainer;

pub use checkpoint::Checkpoint;
pub use config::{PRESET_TABLE, TrainConfig, preset_names};
pub use epochs::{Control, never_stop};
pub use trainer::{EpochMetrics, LadderMethod, PreparedData, Trainer};
