//! Helpers shared by the command-line tests: the binary, its output, a tiny configuration and
//! small data sets on disk.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ladder::data::write_idx_file;

pub fn ladder(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ladder"))
        .args(args)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .expect("the binary runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Fails with a message containing `needle`, without panicking.
pub fn assert_fails(o: &Output, needle: &str) {
    let err = stderr(o);
    assert!(!o.status.success(), "expected failure, got success: {err}");
    assert_eq!(o.status.code(), Some(1), "exit code: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    assert!(err.contains(needle), "expected '{needle}' in: {err}");
}

/// A tiny, fast configuration on the embedded data.
pub const TINY: &[&str] = &[
    "--encoder-layers",
    "30-10",
    "--denoising-cost-x",
    "10,1,0.1",
    "--labeled-samples",
    "100",
    "--unlabeled-samples",
    "500",
    "--epochs",
    "2",
    "--quiet",
];

pub fn train(out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["train", "--out", out.to_str().unwrap()];
    args.extend_from_slice(TINY);
    args.extend_from_slice(extra);
    ladder(&args)
}

/// A small IDX data set of 4×4 images in `dir`: `per_class[c]` training examples of class c.
pub fn write_dataset(dir: &Path, per_class: &[usize]) {
    let labels: Vec<u8> = per_class
        .iter()
        .enumerate()
        .flat_map(|(c, &n)| std::iter::repeat_n(c as u8, n))
        .collect();
    let n = labels.len();
    let pixels: Vec<u8> = (0..n * 16).map(|i| (i * 37 % 256) as u8).collect();
    write_idx_file(&dir.join("train-images-idx3-ubyte"), &[n, 4, 4], &pixels).unwrap();
    write_idx_file(&dir.join("train-labels-idx1-ubyte"), &[n], &labels).unwrap();
    write_idx_file(&dir.join("t10k-images-idx3-ubyte.gz"), &[n, 4, 4], &pixels).unwrap();
    write_idx_file(&dir.join("t10k-labels-idx1-ubyte.gz"), &[n], &labels).unwrap();
}

pub fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `summary.json` of the run (or multi-seed run, or grid cell) in `dir`.
pub fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&read(dir.join("summary.json"))).unwrap()
}

/// A run's metrics lines without their timings.
pub fn metrics(dir: &Path) -> Vec<serde_json::Value> {
    read(dir.join("metrics.jsonl"))
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("seconds");
            v
        })
        .collect()
}

/// `predict`'s labels for three 28×28 images, each checked to be a class of MNIST.
pub fn predict_three(run: &Path) {
    let images = run.with_extension("images-idx3-ubyte");
    let pixels: Vec<u8> = (0..3 * 784).map(|i| (i % 256) as u8).collect();
    write_idx_file(&images, &[3, 28, 28], &pixels).unwrap();
    let o = ladder(&["predict", run.to_str().unwrap(), images.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let labels: Vec<u32> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(labels.len(), 3);
    assert!(labels.iter().all(|&l| l < 10));
}
