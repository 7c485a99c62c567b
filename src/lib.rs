//! Semi-supervised and noise-robust classifier training: Ladder networks (Rasmus et al. 2015),
//! adversarial noise and training, and semantic noise modeling.
//!
//! The crate is a library with a thin command line on top (`ladder train`, `evaluate`,
//! `predict`, `bench`). Its modules follow the paper's concepts:
//!
//! - [`data`]: IDX readers, the embedded MNIST-10k, semi-supervised splits;
//! - [`model`]: the layer-spec grammar, encoder, decoder, combinators g, the Ladder and its cost,
//!   plain MLPs, the semantic-noise network with tied decoding paths;
//! - [`noise`]: Gaussian corruption and the run's random streams;
//! - [`train`]: configuration and presets, the training loop, learning-rate schedule, checkpoints;
//! - [`eval`]: error rates with the training set's batch-norm statistics, predictions;
//! - [`experiment`]: run directories, multi-seed runs with mean ± std, benchmarks.

pub mod data;
pub mod error;
pub mod eval;
pub mod experiment;
pub mod fused;
pub mod model;
pub mod noise;
pub mod train;

pub use error::{LadderError, Result};
