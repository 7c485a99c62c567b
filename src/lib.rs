//! Semi-supervised and noise-robust classifier training: Ladder networks (Rasmus et al. 2015),
//! adversarial noise and training, and semantic noise modeling.
//!
//! The crate is a library with a thin command line on top (`ladder train`, `evaluate`,
//! `predict`, `bench`). Its modules follow the paper's concepts:
//!
//! - [`data`]: IDX readers, the embedded MNIST-10k, semi-supervised splits;
//! - [`model`]: the layer-spec grammar, encoder, decoder, combinators g, the Ladder and its cost,
//!   plain MLPs, the semantic-noise network with tied decoding paths;
//! - [`ops`]: the operations the models are written in, each choosing between its fused CPU
//!   kernel ([`fused`]) and its tensor form, so model code stays backend-independent;
//! - [`noise`]: Gaussian corruption and the run's random streams;
//! - [`train`]: configuration and presets, the one training loop and its methods, learning-rate schedules, checkpoints;
//! - [`eval`]: error rates with the training set's batch-norm statistics, predictions,
//!   robustness tables;
//! - [`attack`]: the threat model and the attacks (FGSM, PGD, APGD-CE, Square Attack);
//! - [`experiment`]: run directories, multi-seed runs with mean ± std, benchmarks.

pub mod attack;
pub mod choice;
pub mod data;
pub mod device;
pub mod error;
pub mod eval;
pub mod experiment;
pub mod fused;
pub mod model;
pub mod noise;
pub mod ops;
pub mod train;

#[cfg(all(test, feature = "wgpu"))]
mod agreement;

pub use error::{LadderError, Result};

/// Keeps freed memory in the process. By default glibc serves blocks above 128 KiB with
/// `mmap`, hands them back on `free` and trims the heap's top, so every step's fresh
/// activations and gradients (the same large sizes, freed and reallocated hundreds of times
/// per step) fault in newly zeroed pages: 13 % of a two-thread step's profile went to page
/// faults and page clearing. With the blocks kept, `ladder bench` runs 10–20 % faster for a
/// few percent more resident memory (RESULTS.md, "Optimisation 2"). Blocks above 32 MiB (the
/// largest threshold glibc takes) stay off mmap too: Conv-Large's activations are 80 MiB
/// each, and faulting them in every step cost about 11 % of its step (RESULTS.md, issue 20).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn keep_freed_memory() {
    // SAFETY: mallopt only sets allocator parameters; it is to be called before any other thread
    // exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn keep_freed_memory() {}
