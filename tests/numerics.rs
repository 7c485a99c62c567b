//! The same numbers on every x86-64 host: a run's metrics do not depend on which kernel build
//! ran (AVX-512, AVX2 + FMA, or the baseline), nor on the number of threads; every run records
//! its host. Each build is forced with `LADDER_ISA`, so that one machine tests them all.
mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{assert_fails, read, stderr, summary};
use ladder::data::{read_idx_file, write_idx_file};
use ladder::fused::isa::Isa;

/// A 28×28 subset of the embedded MNIST: the first `train` training and `test` test images,
/// small enough for the baseline build's scalar kernels.
fn mnist_subset(dir: &Path, train: usize, test: usize) {
    let embedded = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist-10k");
    std::fs::create_dir_all(dir).unwrap();
    for (split, count) in [("train", train), ("t10k", test)] {
        for (kind, per) in [("images-idx3", 784), ("labels-idx1", 1)] {
            let name = format!("{split}-{kind}-ubyte");
            let all = read_idx_file(&embedded.join(format!("{name}.gz"))).unwrap();
            let mut dims = all.dims.clone();
            dims[0] = count;
            write_idx_file(&dir.join(&name), &dims, &all.data[..count * per]).unwrap();
        }
    }
}

/// `ladder train` with the kernel build `isa` on `threads` threads.
fn train(isa: Isa, threads: usize, out: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ladder"))
        .args(["train", "--quiet", "--out", out.to_str().unwrap()])
        .args(args)
        .env("LADDER_ISA", isa.name())
        .env("RAYON_NUM_THREADS", threads.to_string())
        .output()
        .expect("the binary runs")
}

/// Runs `args` with every build this CPU supports and with one and two threads, and checks
/// that every run's metrics.jsonl is the first one's, byte for byte, and that each summary
/// names the build and the threads that ran.
fn same_metrics_everywhere(name: &str, [train_images, test_images]: [usize; 2], args: &[&str]) {
    let dir = std::env::temp_dir().join(format!("ladder-numerics-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data = dir.join("data");
    mnist_subset(&data, train_images, test_images);
    let mut args = args.to_vec();
    args.extend(["--data", data.to_str().unwrap(), "--epochs", "2"]);
    let runs: Vec<(Isa, usize)> = Isa::available()
        .into_iter()
        .map(|isa| (isa, 1))
        .chain([(Isa::widest(), 2)])
        .collect();
    assert!(
        runs.len() >= 2,
        "at least the widest build and the baseline"
    );
    let mut first: Option<(String, String)> = None;
    for (isa, threads) in runs {
        let label = format!("{}-{threads}", isa.name());
        let out = dir.join(&label);
        let o = train(isa, threads, &out, &args);
        assert!(o.status.success(), "{label}: {}", stderr(&o));
        let metrics = read(out.join("metrics.jsonl"));
        assert_eq!(metrics.lines().count(), 2, "{label}: one line per epoch");
        let host = &summary(&out)["host"];
        assert_eq!(host["kernels"], isa.name(), "{label}: {host}");
        assert_eq!(host["threads"], threads, "{label}: {host}");
        assert_eq!(summary(&out)["numerics"], "host-independent", "{label}");
        match &first {
            None => first = Some((label, metrics)),
            Some((l0, m0)) => assert!(
                *m0 == metrics,
                "{label} differs from {l0}:\n{metrics}\nagainst\n{m0}"
            ),
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The full Ladder (784-1000-500-250-250-250-10, a denoising cost at every layer).
#[test]
fn a_full_ladder_run_is_the_same_on_every_kernel_build_and_thread_count() {
    same_metrics_everywhere("full", [300, 200], &["--preset", "mnist-100-full"]);
}

/// Conv-Small's Γ-model: convolutions (direct and Winograd), pooling and their gradients;
/// one step an epoch (100 unlabelled images), as the baseline build's scalar convolutions
/// are slow.
#[test]
fn a_conv_small_gamma_run_is_the_same_on_every_kernel_build_and_thread_count() {
    let args = [
        "--preset",
        "mnist-100-conv-gamma",
        "--unlabeled-samples",
        "100",
    ];
    same_metrics_everywhere("conv", [300, 100], &args);
}

/// A build the CPU lacks, or a name that is none, is refused before any work.
#[test]
fn an_unknown_or_unsupported_kernel_build_is_refused() {
    let dir = std::env::temp_dir().join(format!("ladder-numerics-isa-{}", std::process::id()));
    let o = Command::new(env!("CARGO_BIN_EXE_ladder"))
        .args(["train", "--quiet", "--out", dir.to_str().unwrap()])
        .env("LADDER_ISA", "sse9")
        .output()
        .unwrap();
    assert_fails(&o, "LADDER_ISA");
    assert!(stderr(&o).contains("sse9"), "{}", stderr(&o));
    assert!(!dir.exists(), "nothing written");
    if let Some(missing) = Isa::ALL.into_iter().find(|isa| !isa.supported()) {
        let o = Command::new(env!("CARGO_BIN_EXE_ladder"))
            .args(["train", "--quiet", "--out", dir.to_str().unwrap()])
            .env("LADDER_ISA", missing.name())
            .output()
            .unwrap();
        assert_fails(&o, "cannot run");
    }
}
