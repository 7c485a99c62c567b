//! Corruption of the encoder's second pass.
//!
//! [`gaussian`] draws the additive noise n of Algorithm 1. Every random stream of a run is
//! derived from the run's seed and the position in training ([`stream_rng`]), so a run is
//! reproducible and can be resumed at any epoch without storing generator state.

pub mod adversarial;
pub mod gaussian;

pub use adversarial::{AdvKind, Adversarial, fgsm, input_gradient, pgd_linf};
pub use gaussian::{
    CorruptionNoise, HostNoise, InputPerturbation, RngStream, gaussian_vec, stream_rng,
};
