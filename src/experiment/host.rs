//! The machine a run computed on, recorded beside its results: the CPU, the instruction-set
//! features it has, the kernel build that ran, the threads and the binary's version.
//!
//! On the CPU backend the numbers do not depend on any of it (`crate::fused::isa`,
//! `docs/numerics.md`); the record is there so that a reader can see that two runs came
//! from two machines, and which kernels each ran.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::experiment::run::{read_json, write_json};
use crate::fused::isa;

/// The file of a run (or sweep) directory that lists every process that wrote it.
pub const HOST_FILE: &str = "host.json";

/// What a run's `summary.json` and `host.json` say about the machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Host {
    /// The CPU's model name (`/proc/cpuinfo`), or the architecture where none is found.
    pub cpu: String,
    /// The vector features the CPU has, of those the kernels can use.
    pub features: Vec<String>,
    /// The kernel build that ran (`avx512`, `avx2` or `scalar`; `LADDER_ISA` forces one).
    pub kernels: String,
    /// Threads of the compute pool (`RAYON_NUM_THREADS`, or one per core).
    pub threads: usize,
    /// The binary's version.
    pub version: String,
}

/// `host.json`: every process that wrote the directory, the first one first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostLog {
    pub hosts: Vec<Host>,
}

impl Host {
    /// This process's machine.
    pub fn current() -> Host {
        Host {
            cpu: cpu_model(),
            features: features(),
            kernels: isa::selected().name().into(),
            threads: rayon::current_num_threads(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }

    /// One line for logs and benchmarks.
    pub fn line(&self) -> String {
        format!(
            "{} [{}], kernels {}, {} threads, ladder {}",
            self.cpu,
            self.features.join(" "),
            self.kernels,
            self.threads,
            self.version
        )
    }
}

/// Whether a run's numbers are the same on every host, and if not why: the CPU backend's are
/// (its kernels fix every sum's order), except for a ZCA whitening fitted by faer, whose
/// kernels follow the CPU; burn's GPU kernels follow the device.
pub fn numerics(on_cpu: bool, zca: bool) -> String {
    use crate::fused::isa::{NUMERICS_VAR, Products, products};
    if on_cpu && products() == Products::Fast {
        return format!(
            "host-dependent: {NUMERICS_VAR}=fast, the matrix products are gemm's, whose kernels \
             and blocking follow the CPU"
        );
    }
    match (on_cpu, zca) {
        (true, false) => "host-independent".into(),
        (true, true) => {
            "host-dependent: the ZCA whitening is fitted with faer's CPU-dependent kernels".into()
        }
        (false, _) => {
            "host-dependent: burn's GPU kernels choose their own order of summation".into()
        }
    }
}

/// Adds this process's machine to `dir`'s [`HOST_FILE`] (creating it).
pub(crate) fn record(dir: &Path) -> Result<()> {
    let path = dir.join(HOST_FILE);
    let mut log = if path.exists() {
        read_json::<HostLog>(&path)?
    } else {
        HostLog { hosts: Vec::new() }
    };
    log.hosts.push(Host::current());
    write_json(&path, &log)
}

/// The features the kernel builds depend on, in that order, those this CPU has.
fn features() -> Vec<String> {
    #[cfg(target_arch = "x86_64")]
    {
        let has = [
            ("avx2", std::arch::is_x86_feature_detected!("avx2")),
            ("fma", std::arch::is_x86_feature_detected!("fma")),
            ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
            ("avx512bw", std::arch::is_x86_feature_detected!("avx512bw")),
            ("avx512vl", std::arch::is_x86_feature_detected!("avx512vl")),
        ];
        has.iter()
            .filter(|(_, on)| *on)
            .map(|(name, _)| name.to_string())
            .collect()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        Vec::new()
    }
}

/// The first `model name` of `/proc/cpuinfo`.
fn cpu_model() -> String {
    let Ok(text) = std::fs::read_to_string("/proc/cpuinfo") else {
        return std::env::consts::ARCH.to_string();
    };
    let field = |key: &str| {
        text.lines()
            .find(|l| l.split(':').next().is_some_and(|k| k.trim() == key))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    };
    let name = field("model name").unwrap_or_else(|| std::env::consts::ARCH.to_string());
    // A virtual machine's name can be as short as "AMD EPYC": the family and model tell
    // the generations apart.
    match (field("cpu family"), field("model")) {
        (Some(family), Some(model)) => format!("{name} (family {family}, model {model})"),
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The record names the build that runs, one the CPU has, and the pool's threads.
    #[test]
    fn the_record_names_the_running_build() {
        let host = Host::current();
        assert_eq!(host.kernels, isa::selected().name());
        assert_eq!(host.threads, rayon::current_num_threads());
        assert!(!host.cpu.is_empty());
        if host.kernels == "avx2" {
            assert!(host.features.iter().any(|f| f == "fma"), "{host:?}");
        }
        assert!(host.line().contains(&format!("kernels {}", host.kernels)));
    }

    /// Each writer of a directory adds itself; an unreadable log is an error, not replaced.
    #[test]
    fn each_writer_is_added_to_the_log() {
        let dir = tempfile::tempdir().unwrap();
        record(dir.path()).unwrap();
        record(dir.path()).unwrap();
        let log: HostLog = read_json(&dir.path().join(HOST_FILE)).unwrap();
        assert_eq!(log.hosts, vec![Host::current(), Host::current()]);
        std::fs::write(dir.path().join(HOST_FILE), "{").unwrap();
        assert!(record(dir.path()).is_err());
    }
}
