//! Data sets bigger than the project's own: a 120,000-image IDX set trains, and a set over the
//! memory budget is refused before it is read, with the size it needs.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{assert_fails, stderr};
use ladder::data::write_idx_file;

/// An MNIST-format set of `n` training and 2,000 test images in `dir` (the training images
/// gzipped when `gz`).
fn mnist_format(dir: &Path, n: usize, gz: bool) {
    let pixels = |n: usize| -> Vec<u8> { (0..n * 784).map(|i| (i * 7 % 251) as u8).collect() };
    let labels = |n: usize| -> Vec<u8> { (0..n).map(|i| (i % 10) as u8).collect() };
    let train = if gz {
        "train-images-idx3-ubyte.gz"
    } else {
        "train-images-idx3-ubyte"
    };
    write_idx_file(&dir.join(train), &[n, 28, 28], &pixels(n)).unwrap();
    write_idx_file(&dir.join("train-labels-idx1-ubyte"), &[n], &labels(n)).unwrap();
    write_idx_file(
        &dir.join("t10k-images-idx3-ubyte"),
        &[2000, 28, 28],
        &pixels(2000),
    )
    .unwrap();
    write_idx_file(&dir.join("t10k-labels-idx1-ubyte"), &[2000], &labels(2000)).unwrap();
}

/// One timed step of a small Ladder on the set in `dir`, with `limit` as the memory budget.
fn bench_step(dir: &Path, limit: Option<&str>) -> Output {
    bench_step_with(dir, limit, &[])
}

fn bench_step_with(dir: &Path, limit: Option<&str>, extra: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ladder"));
    cmd.args(["bench", "--data", dir.to_str().unwrap()])
        .args(extra)
        .args([
            "--encoder-layers",
            "30-10",
            "--denoising-cost-x",
            "10,1,0.1",
        ])
        .args(["--warmup", "0", "--steps", "1", "--repeats", "1"])
        .env("RAYON_NUM_THREADS", "1")
        .env_remove("LADDER_MEMORY_LIMIT");
    if let Some(limit) = limit {
        cmd.env("LADDER_MEMORY_LIMIT", limit);
    }
    cmd.output().expect("the binary runs")
}

/// The number between `before` and `after` in `text`.
fn field(text: &str, before: &str, after: &str) -> f64 {
    let start = text.find(before).expect(before) + before.len();
    let len = text[start..].find(after).expect(after);
    text[start..start + len].parse().unwrap()
}

#[test]
fn a_120k_image_idx_set_trains_a_step() {
    let tmp = tempfile::tempdir().unwrap();
    mnist_format(tmp.path(), 120_000, false);
    let out = bench_step(tmp.path(), None);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("median step"), "{report}");
    // An epoch is a pass over the 120,000 unlabelled images: 1,200 steps of 100.
    let step_ms: f64 = field(&report, "median step: ", " ms");
    let epoch_s: f64 = field(&report, "of an epoch of ", " s)");
    let steps = epoch_s * 1000.0 / step_ms;
    assert!(
        (1150.0..1250.0).contains(&steps),
        "{steps} steps an epoch: {report}"
    );
}

/// `bench --memory` times the steps only and says how much the data takes as loaded.
#[test]
fn the_memory_bench_reports_the_data_and_the_peak_without_evaluating() {
    let tmp = tempfile::tempdir().unwrap();
    mnist_format(tmp.path(), 20_000, false);
    let out = bench_step_with(tmp.path(), None, &["--memory"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = String::from_utf8_lossy(&out.stdout);
    // 22,000 images of 784 bytes, kept as bytes.
    assert!(
        report.contains("data as loaded: 20000 + 2000 images, 16.4 MiB"),
        "{report}"
    );
    assert!(report.contains("not timed (--memory)"), "{report}");
    assert!(!report.contains("final, once"), "{report}");
    let peak = field(&report, "peak memory after the timed steps: ", " MiB");
    assert!(peak > 16.4, "{report}");
}

#[test]
fn a_set_over_the_memory_budget_is_refused_with_the_size_it_needs() {
    let tmp = tempfile::tempdir().unwrap();
    mnist_format(tmp.path(), 20_000, false);
    // 20,000 × 784 bytes = 14.95 MiB.
    assert_fails(
        &bench_step(tmp.path(), Some("10M")),
        "train-images-idx3-ubyte needs 15.0 MiB in memory, more than the 10.0 MiB of \
         LADDER_MEMORY_LIMIT",
    );
    assert!(bench_step(tmp.path(), Some("64M")).status.success());
    assert_fails(&bench_step(tmp.path(), Some("lots")), "is not a size");
    // A gzipped file is refused on its header's size, before it is decompressed.
    let gz = tempfile::tempdir().unwrap();
    mnist_format(gz.path(), 20_000, true);
    assert_fails(
        &bench_step(gz.path(), Some("10M")),
        "train-images-idx3-ubyte.gz needs 15.0 MiB in memory",
    );
}

/// `rows` rows of 50 features and a class in 1..=3 (51 × 4 bytes a row in memory) at `path`.
fn write_csv_rows(path: &Path, rows: usize) {
    let row: String = (0..50).map(|c| format!("{c},")).collect();
    let text: String = (0..rows).map(|i| format!("{row}{}\n", i % 3 + 1)).collect();
    std::fs::write(path, text).unwrap();
}

/// One epoch of a small plain network on CSV data (`data`: `--data` and any `--test-data`)
/// into `out`, under a memory budget of `limit`.
fn train_plain_csv(data: &[&str], out: &Path, limit: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ladder"))
        .arg("train-plain")
        .args(data)
        .args(["--num-classes", "3", "--first-label", "1"])
        .args(["--max-epochs", "1", "--hidden-layers", "10", "--quiet"])
        .args(["--out", out.to_str().unwrap()])
        .env("RAYON_NUM_THREADS", "1")
        .env("LADDER_MEMORY_LIMIT", limit)
        .output()
        .expect("the binary runs")
}

/// A CSV file is measured in a first pass that keeps nothing: over the budget, it is refused
/// with the size its rows need before they are read into memory.
#[test]
fn a_csv_file_over_the_memory_budget_is_refused_before_it_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("rows.csv");
    // 20,000 rows: 20,000 × 51 × 4 bytes = 3.89 MiB.
    write_csv_rows(&csv, 20_000);
    let run = tmp.path().join("run");
    let data = ["--data", csv.to_str().unwrap()];
    assert_fails(
        &train_plain_csv(&data, &run, "2M"),
        "rows.csv needs 3.9 MiB in memory, more than the 2.0 MiB of LADDER_MEMORY_LIMIT",
    );
    assert!(!run.join("summary.json").exists());
    let o = train_plain_csv(&data, &run, "64M");
    assert!(o.status.success(), "{}", stderr(&o));
}

/// A separate test file counts with the training file: two files that each fit the budget but
/// together do not are refused together, before either is read.
#[test]
fn a_training_and_a_test_csv_are_checked_against_the_budget_together() {
    let tmp = tempfile::tempdir().unwrap();
    // 10,000 rows a file: 10,000 × 51 × 4 bytes = 1.95 MiB each.
    let (train, test) = (tmp.path().join("train.csv"), tmp.path().join("test.csv"));
    write_csv_rows(&train, 10_000);
    write_csv_rows(&test, 10_000);
    let run = tmp.path().join("run");
    let data = [
        "--data",
        train.to_str().unwrap(),
        "--test-data",
        test.to_str().unwrap(),
    ];
    let o = train_plain_csv(&data, &run, "3M");
    assert_fails(&o, "train.csv with its test file ");
    assert_fails(
        &o,
        "test.csv needs 3.9 MiB in memory, more than the 3.0 MiB of LADDER_MEMORY_LIMIT",
    );
    assert!(!run.join("summary.json").exists());
    let o = train_plain_csv(&data, &run, "64M");
    assert!(o.status.success(), "{}", stderr(&o));
}
