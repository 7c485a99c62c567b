//! A run killed with SIGKILL partway through an epoch and then resumed finishes with exactly
//! the metrics of the same run done without interruption.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ARGS: &[&str] = &[
    "train",
    "--encoder-layers",
    "200-50-10",
    "--denoising-cost-x",
    "100,1,0.1,0.1",
    "--unlabeled-samples",
    "3000",
    "--epochs",
    "4",
    "--seed",
    "3",
    "--quiet",
];

fn command(extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ladder"));
    c.args(ARGS)
        .args(extra)
        .env("RAYON_NUM_THREADS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// The summary without its timing.
fn summary(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v.as_object_mut().unwrap().remove("train_seconds");
    v
}

#[test]
fn killed_and_resumed_run_matches_the_uninterrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    let cut = tmp.path().join("cut");
    let status = command(&["--out", whole.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());

    // Kill the second run while it is inside its second epoch.
    let mut child = command(&["--out", cut.to_str().unwrap()]).spawn().unwrap();
    let start = Instant::now();
    while lines(&cut.join("metrics.jsonl")) < 1 {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "no epoch finished"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        !cut.join("summary.json").exists(),
        "killed too late: the run had finished"
    );

    let status = command(&["--resume", cut.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        std::fs::read_to_string(whole.join("metrics.jsonl")).unwrap(),
        std::fs::read_to_string(cut.join("metrics.jsonl")).unwrap()
    );
    assert_eq!(summary(&whole), summary(&cut));
}
