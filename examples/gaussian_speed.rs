//! Times the corruption-noise sampler alone: one training step's 609,000 normal draws
//! (200 corrupted rows × 3,045 units of the 784-1000-500-250-250-250-10 network), best of 50.
//!
//! `cargo run --release --example gaussian_speed`

use ladder::noise::{RngStream, gaussian_vec, stream_rng};

/// Draws per step of the full Ladder on MNIST.
const DRAWS: usize = 609_000;

fn main() {
    // As `ladder` itself runs.
    ladder::keep_freed_memory();
    let best = (0..50)
        .map(|i| {
            let mut rng = stream_rng(1, RngStream::Corruption, 0, i);
            let start = std::time::Instant::now();
            std::hint::black_box(gaussian_vec(&mut rng, DRAWS, 0.3));
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);
    println!(
        "{DRAWS} draws: {:.3} ms ({:.2} ns per draw)",
        best * 1e3,
        best * 1e9 / DRAWS as f64
    );
}
