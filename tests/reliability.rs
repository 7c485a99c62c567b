//! Interrupted runs resume exactly, and nothing finished is lost: SIGKILL at any point,
//! Ctrl-C, unreadable checkpoints and failing writes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
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
    command_of(ARGS, extra)
}

/// The command `base` with `extra` flags, on one thread, its output captured.
fn command_of(base: &[&str], extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ladder"));
    c.args(base)
        .args(extra)
        .env("RAYON_NUM_THREADS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

fn run(extra: &[&str]) -> Output {
    command(extra).output().unwrap()
}

/// `train --resume dir`: the run's own configuration (configuration flags are refused).
const RESUME: &[&str] = &["train", "--quiet", "--resume"];

fn resume_output(dir: &Path) -> Output {
    command_of(RESUME, &[dir.to_str().unwrap()])
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// Waits until `dir` has finished `epochs` epochs and saved their checkpoint (which follows
/// the epoch's metrics line): the run is then a few steps into the next epoch, however fast
/// it trains.
fn wait_for_epochs(child: &mut Child, dir: &Path, epochs: usize) {
    let start = Instant::now();
    let saved = || {
        std::fs::metadata(dir.join("checkpoint.bin"))
            .and_then(|m| m.modified())
            .ok()
    };
    let alive = |child: &mut Child| {
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "no epoch finished"
        );
        std::thread::sleep(Duration::from_millis(1));
    };
    // The checkpoint as it was before the line appeared, hence before the epoch's save.
    let mut before = None;
    loop {
        let checkpoint = saved();
        if lines(&dir.join("metrics.jsonl")) >= epochs {
            break;
        }
        before = checkpoint;
        alive(child);
    }
    while saved() == before {
        alive(child);
    }
}

/// Ctrl-C to `child`; its output once it has ended.
fn interrupt(child: Child) -> Output {
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    child.wait_with_output().unwrap()
}

/// The summary without its timing.
fn summary(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v.as_object_mut().unwrap().remove("train_seconds");
    v
}

/// The metrics lines without their timing (semantic runs time each epoch).
fn metrics(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("seconds");
            v
        })
        .collect()
}

fn assert_same_run(a: &Path, b: &Path) {
    assert_eq!(metrics(a), metrics(b));
    assert_eq!(summary(a), summary(b));
}

/// Ends with exit `code` and a message containing every one of `needles`, without a panic.
fn assert_exits(o: &Output, code: i32, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "expected '{n}' in: {err}");
    }
}

/// Resumes the run in `dir`, which must then finish.
fn resume(dir: &Path) {
    let o = resume_output(dir);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// The reference: the same run done without interruption, in `tmp/whole`.
fn uninterrupted(tmp: &Path) -> PathBuf {
    let whole = tmp.join("whole");
    let o = run(&["--out", whole.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    whole
}

/// A run killed partway through its second epoch, left in `dir`.
fn killed_run(dir: &Path, extra: &[&str]) {
    let child = command(&[&["--out", dir.to_str().unwrap()], extra].concat());
    kill_after_an_epoch(child, dir);
}

/// Starts `command`, whose run writes `dir`, and SIGKILLs it a little into its second epoch.
fn kill_after_an_epoch(mut command: Command, dir: &Path) {
    let mut child = command.spawn().unwrap();
    wait_for_epochs(&mut child, dir, 1);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(!dir.join("summary.json").exists(), "killed too late");
}

#[test]
fn killed_and_resumed_runs_match_the_uninterrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = uninterrupted(tmp.path());

    // Killed between epoch checkpoints: resumes from the end of epoch 1.
    let cut = tmp.path().join("cut");
    killed_run(&cut, &[]);
    resume(&cut);
    assert_same_run(&whole, &cut);

    // Checkpointing within epochs (every few milliseconds here): resumes mid-epoch.
    let mid = tmp.path().join("mid");
    killed_run(&mid, &["--checkpoint-minutes", "0.0001"]);
    resume(&mid);
    assert_same_run(&whole, &mid);
}

#[test]
fn ctrl_c_saves_and_says_how_to_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = uninterrupted(tmp.path());
    let dir = tmp.path().join("int");
    let mut child = command(&["--out", dir.to_str().unwrap()]).spawn().unwrap();
    wait_for_epochs(&mut child, &dir, 1);
    let o = interrupt(child);
    assert_exits(&o, 130, &["--resume"]);
    assert!(!dir.join("summary.json").exists());
    resume(&dir);
    assert_same_run(&whole, &dir);
}

#[test]
fn unreadable_checkpoints_are_errors_not_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    killed_run(&dir, &[]);
    let ck = dir.join("checkpoint.bin");
    let good = std::fs::read(&ck).unwrap();

    std::fs::write(&ck, &good[..good.len() / 2]).unwrap();
    let o = resume_output(&dir);
    assert_exits(&o, 1, &["checkpoint.bin", "truncated"]);
    assert_eq!(lines(&dir.join("metrics.jsonl")), 1, "the run restarted");

    // A checkpoint of another network (different layer widths) in the directory.
    let other = tmp.path().join("other");
    let o = run(&[
        "--out",
        other.to_str().unwrap(),
        "--epochs",
        "1",
        "--encoder-layers",
        "20-10",
        "--denoising-cost-x",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::copy(other.join("checkpoint.bin"), &ck).unwrap();
    let o = resume_output(&dir);
    assert_exits(&o, 1, &["checkpoint.bin"]);
    assert!(!dir.join("summary.json").exists());
}

#[test]
fn a_failed_write_is_an_error_and_keeps_the_last_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    killed_run(&dir, &[]);
    let ck = dir.join("checkpoint.bin");
    let before = std::fs::read(&ck).unwrap();
    // The temporary file cannot be created: the write fails as on a full or read-only disk.
    std::fs::create_dir(dir.join("checkpoint.bin.tmp")).unwrap();
    let o = resume_output(&dir);
    assert_exits(&o, 1, &["checkpoint.bin"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.matches("os error").count(), 1, "the cause once: {err}");
    assert_eq!(std::fs::read(&ck).unwrap(), before);
    assert!(!dir.join("summary.json").exists());

    // An output path below a regular file cannot be created at all.
    let file = tmp.path().join("plain");
    std::fs::write(&file, b"x").unwrap();
    let o = run(&["--out", file.join("run").to_str().unwrap()]);
    assert_exits(&o, 1, &["plain"]);
}

/// A disk that fills up mid-write: the kernel's file-size limit (`prlimit --fsize`, with
/// SIGXFSZ ignored as a shell `trap` leaves it) makes the checkpoint's write fail partway, as
/// a full disk does. The run stops with an error naming the file, the previous checkpoint is
/// intact and still resumes, and no temporary file is left behind.
#[test]
fn a_disk_that_fills_up_mid_write_keeps_the_last_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    killed_run(&dir, &[]);
    let ck = dir.join("checkpoint.bin");
    let before = std::fs::read(&ck).unwrap();
    // Room for the small files (config, metrics lines), not for a whole checkpoint.
    let limit = before.len() / 2;
    let o = Command::new("sh")
        .args([
            "-c",
            "trap '' XFSZ; exec prlimit --fsize=\"$0\" -- \"$@\"",
            &limit.to_string(),
            env!("CARGO_BIN_EXE_ladder"),
        ])
        .args(RESUME)
        .arg(&dir)
        .env("RAYON_NUM_THREADS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_exits(&o, 1, &["checkpoint.bin", "too large"]);
    assert_eq!(
        std::fs::read(&ck).unwrap(),
        before,
        "the last checkpoint changed"
    );
    assert!(
        !dir.join("checkpoint.bin.tmp").exists(),
        "a partial file was left behind"
    );
    assert!(!dir.join("summary.json").exists());
    // With room again, the run resumes from that checkpoint and finishes.
    resume(&dir);
    assert!(dir.join("summary.json").exists());
}

const PLAIN: &[&str] = &[
    "train-plain",
    "--epochs",
    "5",
    "--patience",
    "100",
    "--seed",
    "3",
    "--quiet",
];

const SEMANTIC: &[&str] = &[
    "train-semantic",
    "--layers",
    "fc:400-fc:200",
    "--per-class",
    "300",
    "--epochs",
    "4",
    "--seeds",
    "3",
];

/// Succeeds; returns what it said on stderr.
fn finished(o: Output) -> String {
    assert!(o.status.success(), "{}", stderr(&o));
    stderr(&o)
}

/// Plain and semantic runs go through the one epoch loop: killed at any point, they continue
/// from their last epoch's state to the numbers of an uninterrupted run.
#[test]
fn killed_plain_and_semantic_runs_resume_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let out = |name: &str| tmp.path().join(name);
    let s = |p: &Path| p.to_str().unwrap().to_string();

    finished(
        command_of(PLAIN, &["--out", &s(&out("plain-whole"))])
            .output()
            .unwrap(),
    );
    kill_after_an_epoch(
        command_of(PLAIN, &["--out", &s(&out("plain-cut"))]),
        &out("plain-cut"),
    );
    let o = command_of(&["train-plain", "--resume", &s(&out("plain-cut"))], &[]).output();
    let said = finished(o.unwrap());
    assert!(said.contains("continuing after epoch"), "{said}");
    assert_same_run(&out("plain-whole"), &out("plain-cut"));
    // A finished run resumed is read back.
    let o = command_of(&["train-plain", "--resume", &s(&out("plain-cut"))], &[]).output();
    finished(o.unwrap());
    assert_same_run(&out("plain-whole"), &out("plain-cut"));

    let run = "k300/perturb-class/seed-3";
    finished(
        command_of(SEMANTIC, &["--out", &s(&out("sem-whole")), "--quiet"])
            .output()
            .unwrap(),
    );
    let cut = command_of(SEMANTIC, &["--out", &s(&out("sem-cut")), "--quiet"]);
    kill_after_an_epoch(cut, &out("sem-cut").join(run));
    // The grid command again continues the stopped run.
    let again = command_of(SEMANTIC, &["--out", &s(&out("sem-cut"))]).output();
    let said = finished(again.unwrap());
    assert!(said.contains("continuing after epoch"), "{said}");
    assert_same_run(&out("sem-whole").join(run), &out("sem-cut").join(run));
}

#[test]
fn ctrl_c_stops_a_plain_run_after_its_epoch_and_it_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let (whole, int) = (tmp.path().join("whole"), tmp.path().join("int"));
    let quiet = |dir: &Path| command_of(PLAIN, &["--out", dir.to_str().unwrap(), "--quiet"]);
    finished(quiet(&whole).output().unwrap());
    let mut child = quiet(&int).spawn().unwrap();
    wait_for_epochs(&mut child, &int, 1);
    let o = interrupt(child);
    assert_exits(&o, 130, &["ladder train-plain --resume"]);
    assert!(!int.join("summary.json").exists());
    // The saved state continues only under the configuration it was written with.
    let config = std::fs::read_to_string(int.join("config.toml")).unwrap();
    std::fs::write(
        int.join("config.toml"),
        config.replace("lr = 0.01", "lr = 0.02"),
    )
    .unwrap();
    let mut resumed = command_of(&["train-plain", "--resume", int.to_str().unwrap()], &[]);
    assert_exits(&resumed.output().unwrap(), 1, &["another configuration"]);
    std::fs::write(int.join("config.toml"), config).unwrap();
    finished(resumed.output().unwrap());
    assert_same_run(&whole, &int);
}

/// A Mean Teacher run with VAT (the teacher's moving average and the power iteration's
/// random starts are state too) killed mid-epoch resumes to the uninterrupted run's numbers.
#[test]
fn mean_teacher_and_vat_runs_resume_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let methods = [
        "--denoising-cost-x",
        "0",
        "--consistency-weight",
        "10",
        "--consistency-rampup",
        "2",
        "--mean-teacher-decay",
        "0.9",
        "--vat-epsilon",
        "0.3",
    ];
    let whole = tmp.path().join("whole");
    let o = command(&[&methods[..], &["--out", whole.to_str().unwrap()]].concat())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let line = std::fs::read_to_string(whole.join("metrics.jsonl")).unwrap();
    assert!(line.contains("\"consistency\"") && line.contains("\"virtual_adversarial\""));
    let mid = tmp.path().join("mid");
    let extra = [
        "--checkpoint-minutes",
        "0.0001",
        "--out",
        mid.to_str().unwrap(),
    ];
    kill_after_an_epoch(command(&[&methods[..], &extra].concat()), &mid);
    resume(&mid);
    assert_same_run(&whole, &mid);
}
