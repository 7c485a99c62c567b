//! Several processes on one sweep (or multi-seed run) directory, as the tasks of a job array
//! share it: each unit is trained exactly once, a task killed with SIGKILL mid-unit and
//! started again continues its unit exactly, and the table is the one a single process writes.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{assert_fails, ladder, metrics, read, stderr};

/// A sweep of 2 cells × 3 seeds: 6 units of 3 epochs each, a second or so apiece.
const SWEEP: &[&str] = &[
    "sweep",
    "--grid",
    "lr=0.002,0.004",
    "--seeds",
    "1-3",
    "--encoder-layers",
    "200-50-10",
    "--denoising-cost-x",
    "100,1,0.1,0.1",
    "--unlabeled-samples",
    "3000",
    "--validation-samples",
    "300",
    "--epochs",
    "3",
];

const UNITS: [(&str, u64); 6] = [
    ("lr=0.002", 1),
    ("lr=0.002", 2),
    ("lr=0.002", 3),
    ("lr=0.004", 1),
    ("lr=0.004", 2),
    ("lr=0.004", 3),
];

fn task(out: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ladder"));
    c.args(SWEEP)
        .args(["--out", out.to_str().unwrap()])
        .args(extra)
        .env("RAYON_NUM_THREADS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn finish(child: Child) -> Output {
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    o
}

/// Waits until the run in `dir` has saved its first epoch's checkpoint: the task training it
/// is then into its second epoch.
fn wait_for_first_epoch(child: &mut Child, dir: &Path) {
    let start = Instant::now();
    while std::fs::read_to_string(dir.join("metrics.jsonl"))
        .map(|t| t.lines().count())
        .unwrap_or(0)
        < 1
        || !dir.join("checkpoint.bin").exists()
    {
        assert!(child.try_wait().unwrap().is_none(), "the task ended early");
        assert!(start.elapsed() < Duration::from_secs(300), "no epoch ended");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The multi-seed runs in `shared` and `whole` have the same seeds, mean and std, and each of
/// `seeds` the same metrics.
fn assert_same_seeds_run(shared: &Path, whole: &Path, seeds: std::ops::RangeInclusive<u64>) {
    let errors = |dir: &Path| {
        let s = common::summary(dir);
        (s["seeds"].clone(), s["mean"].clone(), s["std"].clone())
    };
    assert_eq!(errors(shared), errors(whole));
    for seed in seeds {
        let unit = format!("seed-{seed}");
        assert_eq!(
            metrics(&shared.join(&unit)),
            metrics(&whole.join(&unit)),
            "{unit}"
        );
    }
}

/// How many of `outputs`' notes say that this unit was trained.
fn times_trained(outputs: &[&Output], cell: &str, seed: u64) -> usize {
    let note = format!("{cell}, seed {seed}: trained");
    outputs
        .iter()
        .map(|o| stderr(o).lines().filter(|l| *l == note).count())
        .sum()
}

#[test]
fn concurrent_tasks_and_a_killed_one_train_each_unit_once_as_one_process_does() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    let o = task(&whole, &[]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));

    // Task 0 of 3 is killed a little into its first unit.
    let shared = tmp.path().join("shared");
    let mut killed = task(&shared, &["--shard", "0/3"]).spawn().unwrap();
    let first = shared.join("lr=0.002/seed-1");
    wait_for_first_epoch(&mut killed, &first);
    let killed_pid = killed.id();
    killed.kill().unwrap(); // SIGKILL
    killed.wait().unwrap();
    assert!(!first.join("summary.json").exists(), "killed too late");

    // The other tasks, a second copy of task 2 (a resubmitted task while the first still
    // runs), and task 0 again, all at once.
    let children: Vec<Child> = [["--shard", "1/3"], ["--shard", "2/3"], ["--shard", "2/3"]]
        .iter()
        .chain(std::iter::once(&["--shard", "0/3"]))
        .map(|a| task(&shared, a).spawn().unwrap())
        .collect();
    let outputs: Vec<Output> = children.into_iter().map(finish).collect();
    let restarted = &outputs[3];
    let err = stderr(restarted);
    assert!(
        err.contains(&format!("pid {killed_pid}")) && err.contains("its process no longer runs"),
        "the restarted task says whose unit it took over: {err}"
    );

    let all: Vec<&Output> = outputs.iter().collect();
    for (cell, seed) in UNITS {
        assert_eq!(
            times_trained(&all, cell, seed),
            1,
            "{cell} seed {seed} trained once"
        );
        let unit = format!("{cell}/seed-{seed}");
        assert_eq!(
            metrics(&shared.join(&unit)),
            metrics(&whole.join(&unit)),
            "{unit}: the same numbers as one process's"
        );
    }
    // The killed unit's metrics have each epoch once: continued, not appended to.
    assert_eq!(metrics(&first).len(), 3);

    // Whichever task ended last wrote the table; gather writes it again, the same.
    for f in ["grid.md", "grid.csv"] {
        assert_eq!(read(shared.join(f)), read(whole.join(f)), "{f}");
    }
    std::fs::remove_file(shared.join("grid.md")).unwrap();
    let o = ladder(&["sweep", "--gather", shared.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read(shared.join("grid.md")), read(whole.join("grid.md")));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with(&read(whole.join("grid.md"))));

    // A task of another grid is refused the directory; --force cannot replace a shared sweep.
    let o = Command::new(env!("CARGO_BIN_EXE_ladder"))
        .args(SWEEP)
        .args([
            "--out",
            shared.to_str().unwrap(),
            "--shard",
            "0/2",
            "--lr",
            "0.1",
        ])
        .output()
        .unwrap();
    assert_fails(&o, "describes another sweep");
    let o = task(&shared, &["--shard", "0/2", "--force"])
        .output()
        .unwrap();
    assert_fails(&o, "--force cannot be given with --shard");
}

#[test]
fn a_task_share_is_reported_until_every_task_is_done() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("s");
    let o = task(&out, &["--shard", "1/2", "--epochs", "1", "--quiet"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    // Units 2, 4 and 6 are this share's: seed 2 of the first cell, seeds 1 and 3 of the second.
    assert!(
        text.contains("lr=0.002: unfinished (seed 1 missing; seed 2 done; seed 3 missing)"),
        "{text}"
    );
    assert!(text.contains("lr=0.004: unfinished (seed 1 done; seed 2 missing; seed 3 done)"));
    assert!(text.contains("ladder sweep --gather"), "{text}");
    assert!(!out.join("grid.md").exists());
    let o = ladder(&["sweep", "--gather", out.to_str().unwrap()]);
    assert_fails(&o, "2 of 2 cells");
    let o = task(&out, &["--shard", "0/2", "--epochs", "1", "--quiet"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        out.join("grid.md").exists(),
        "the last task writes the table"
    );
}

#[test]
fn shares_of_a_multi_seed_run_give_its_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let args = |out: &Path| {
        let mut a: Vec<String> = ["train", "--seeds", "1-3"].map(String::from).to_vec();
        a.extend(common::TINY.iter().map(|s| s.to_string()));
        a.extend(["--out".into(), out.to_str().unwrap().into()]);
        a
    };
    let whole = tmp.path().join("whole");
    let o = Command::new(env!("CARGO_BIN_EXE_ladder"))
        .args(args(&whole))
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let shared = tmp.path().join("shared");
    let children: Vec<Child> = ["0/2", "1/2"]
        .iter()
        .map(|s| {
            Command::new(env!("CARGO_BIN_EXE_ladder"))
                .args(args(&shared))
                .args(["--shard", s])
                .env("RAYON_NUM_THREADS", "1")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        finish(child);
    }
    assert_same_seeds_run(&shared, &whole, 1..=3);

    // Without Slurm's variables, auto says what it needs.
    let o = Command::new(env!("CARGO_BIN_EXE_ladder"))
        .args(args(&tmp.path().join("auto")))
        .args(["--shard", "auto"])
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("SLURM_ARRAY_TASK_COUNT")
        .output()
        .unwrap();
    assert_fails(&o, "SLURM_ARRAY_TASK_ID");
    assert!(
        !tmp.path().join("auto").exists(),
        "a refused task writes nothing"
    );
    // A share of one seed list does not join a run of another.
    let o = Command::new(env!("CARGO_BIN_EXE_ladder"))
        .args(["train", "--seeds", "1-2", "--shard", "0/2"])
        .args(common::TINY)
        .args(["--out", shared.to_str().unwrap()])
        .output()
        .unwrap();
    assert_fails(&o, "seeds");
}

#[test]
fn shares_of_a_multi_seed_plain_run_give_its_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = |out: &Path, extra: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ladder"));
        c.args(["train-plain", "--model", "b", "--hidden-layers", "30"])
            .args(["--max-epochs", "2", "--seeds", "1-3", "--quiet"])
            .args(["--out", out.to_str().unwrap()])
            .args(extra)
            .env("RAYON_NUM_THREADS", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    };
    let whole = tmp.path().join("whole");
    finish(plain(&whole, &[]).spawn().unwrap());
    let shared = tmp.path().join("shared");
    // Task 1 alone first: the run is not complete, and says which seeds are not.
    let o = finish(plain(&shared, &["--shard", "1/2"]).spawn().unwrap());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("seed 1: missing"), "{text}");
    assert!(text.contains("seed 2: done"), "{text}");
    assert!(!shared.join("summary.json").exists());
    let o = finish(plain(&shared, &["--shard", "0/2"]).spawn().unwrap());
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("test error over 3 seeds"),
        "the last task writes the summary"
    );
    assert_same_seeds_run(&shared, &whole, 1..=3);
    // The whole run resumes as one process's does.
    let o = ladder(&[
        "train-plain",
        "--resume",
        shared.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A task of another configuration is refused the directory.
    let o = plain(&shared, &["--shard", "0/2", "--alpha", "0.3"])
        .output()
        .unwrap();
    assert_fails(&o, "another configuration");
}
