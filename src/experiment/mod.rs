//! Experiments around the training loop: run directories with their outputs, multi-seed runs
//! reported as mean ± std, progress display and throughput benchmarks.

pub mod bench;
pub mod claim;
pub mod curves;
pub mod export;
pub mod fit;
pub mod host;
pub mod plain_run;
pub mod plots;
pub mod progress;
pub mod robustness;
pub mod run;
pub mod seeds;
pub mod semantic_figures;
pub mod semantic_run;
pub mod shard;
pub mod sweep;
pub mod trained;
pub mod tune;

pub use run::{RunOptions, RunSummary, SeedsSummary, train_run, train_seeds};
pub use seeds::{mean_std, parse_seeds};
pub use trained::evaluate_run;
