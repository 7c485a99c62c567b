//! The command line end to end: outputs of a run, and a clear error with a non-zero exit (never
//! a panic, never a half-written result) for each kind of bad input.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{
    TINY, assert_fails, ladder, predict_three, read, stderr, summary, train, write_dataset,
};
use ladder::data::write_idx_file;
use ladder::experiment::claim::{ClaimSettings, Claimed, claim, host_name};

#[test]
fn a_run_writes_its_directory_and_evaluates_back() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = train(&out, &["--seed", "4"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary = summary(&out);
    for key in [
        "test_error_percent",
        "seed",
        "epochs",
        "labeled",
        "train_seconds",
    ] {
        assert!(summary.get(key).is_some(), "summary lacks {key}: {summary}");
    }
    assert_eq!(summary["seed"], 4);
    assert_eq!(summary["labeled"], 100);
    let metrics = read(out.join("metrics.jsonl"));
    assert_eq!(metrics.lines().count(), 2);
    assert!(read(out.join("config.toml")).contains("seed = 4"));

    // evaluate recomputes the recorded test error from the checkpoint.
    let o = ladder(&["evaluate", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let printed = String::from_utf8_lossy(&o.stdout);
    let value: f64 = printed
        .trim()
        .strip_prefix("test_error_percent: ")
        .unwrap()
        .parse()
        .unwrap();
    let recorded = summary["test_error_percent"].as_f64().unwrap();
    assert!((value - recorded).abs() < 1e-9, "{value} vs {recorded}");

    // predict labels an IDX file, one label per line.
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    predict_three(&out);

    // An existing run directory is not overwritten unless asked.
    let before = read(out.join("summary.json"));
    let o = train(&out, &[]);
    assert_fails(&o, "already holds a run");
    assert_eq!(read(out.join("summary.json")), before);
    let o = train(&out, &["--force", "--seed", "5"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(read(out.join("summary.json")).contains("\"seed\": 5"));
}

#[test]
fn multi_seed_runs_report_mean_and_std() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("seeds");
    let o = train(&out, &["--seeds", "1-2", "--epochs", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = summary(&out);
    let errors: Vec<f64> = s["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["test_error_percent"].as_f64().unwrap())
        .collect();
    assert_eq!(errors.len(), 2);
    let mean = (errors[0] + errors[1]) / 2.0;
    assert!((s["mean"].as_f64().unwrap() - mean).abs() < 1e-9);
    let std = ((errors[0] - mean).powi(2) + (errors[1] - mean).powi(2)).sqrt();
    assert!((s["std"].as_f64().unwrap() - std).abs() < 1e-9);
    assert!(out.join("seed-1/summary.json").exists() && out.join("seed-2/summary.json").exists());
}

#[test]
fn a_diverging_run_stops_with_its_epoch_and_step_and_no_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("nan");
    let o = train(&out, &["--lr", "1e30"]);
    assert_fails(&o, "training diverged");
    let err = stderr(&o);
    assert!(err.contains("epoch 1, step"), "{err}");
    assert!(!out.join("summary.json").exists());
}

#[test]
fn bad_specifications_and_settings_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x");
    assert_fails(
        &train(&out, &["--encoder-layers", "100-x-10"]),
        "cannot parse 'x'",
    );
    assert_fails(
        &train(&out, &["--denoising-cost-x", "1,2"]),
        "has 2 values but the network needs 3",
    );
    assert_fails(
        &train(&out, &["--batch-size", "0"]),
        "batch size must be positive",
    );
    assert_fails(
        &train(&out, &["--decoder-spec", "gaussian"]),
        "unknown decoder 'gaussian'",
    );
    assert_fails(
        &train(&out, &["--preset", "mnist-7-full"]),
        "unknown preset",
    );
    assert_fails(
        &train(&out, &["--num-classes", "5", "--encoder-layers", "30-5"]),
        "out of range",
    );
    assert_fails(
        &train(&out, &["--labeled-samples", "9000"]),
        "asked for 9000 labelled",
    );
    assert!(!out.join("summary.json").exists());
}

#[test]
fn bad_data_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x");
    let missing = tmp.path().join("nowhere");
    assert_fails(
        &train(&out, &["--data", missing.to_str().unwrap()]),
        "nowhere",
    );

    // A class with too few examples for the balanced split.
    let few = tmp.path().join("few");
    std::fs::create_dir(&few).unwrap();
    write_dataset(&few, &[300, 300, 3]);
    let args = [
        "--data",
        few.to_str().unwrap(),
        "--num-classes",
        "3",
        "--encoder-layers",
        "8-3",
        "--labeled-samples",
        "30",
    ];
    assert_fails(&train(&out, &args), "class 2");

    // A truncated image file.
    let cut = tmp.path().join("cut");
    std::fs::create_dir(&cut).unwrap();
    write_dataset(&cut, &[300, 300, 300]);
    let images = cut.join("train-images-idx3-ubyte");
    let bytes = std::fs::read(&images).unwrap();
    std::fs::write(&images, &bytes[..bytes.len() - 100]).unwrap();
    let three = ["--num-classes", "3", "--encoder-layers", "8-3"];
    let o = train(
        &out,
        &[&["--data", cut.to_str().unwrap()], &three[..]].concat(),
    );
    assert_fails(&o, "train-images-idx3-ubyte");
    assert!(stderr(&o).contains("truncated"), "{}", stderr(&o));

    // Image and label counts that disagree.
    let mismatch = tmp.path().join("mismatch");
    std::fs::create_dir(&mismatch).unwrap();
    write_dataset(&mismatch, &[300, 300, 300]);
    write_idx_file(&mismatch.join("train-labels-idx1-ubyte"), &[10], &[0; 10]).unwrap();
    let o = train(
        &out,
        &[&["--data", mismatch.to_str().unwrap()], &three[..]].concat(),
    );
    assert_fails(&o, "train-labels-idx1-ubyte");
    assert!(!out.join("summary.json").exists());
}

#[test]
fn an_unfinished_run_cannot_be_evaluated() {
    let tmp = tempfile::tempdir().unwrap();
    let o = ladder(&["evaluate", tmp.path().to_str().unwrap()]);
    assert_fails(&o, "config.toml");
}

/// `--resume` continues a run as it was recorded, so a configuration or seed flag beside it
/// (which the run would not honour) is refused by name before anything is read or written.
#[test]
fn resume_refuses_flags_the_run_would_not_honour() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = train(&out, &["--epochs", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let before = read(out.join("metrics.jsonl"));
    let run = out.to_str().unwrap();
    // Configuration flags: the command's own error (exit 1), naming exactly those given.
    let configuration: &[(&str, &[&str], &str)] = &[
        ("train", &["--epochs", "3"], "--epochs cannot"),
        ("train", &["--preset", "mnist-100-gamma"], "--preset cannot"),
        ("train", &["--method", "vat"], "--method cannot"),
        ("train", &["--config", "other.toml"], "--config cannot"),
        (
            "train",
            &["--seed", "2", "--lr", "0.1"],
            "--lr, --seed cannot",
        ),
        ("train-plain", &["--layers", "50"], "--layers cannot"),
        ("train-plain", &["--config", "x.toml"], "--config cannot"),
        ("sweep", &["--lr", "0.1"], "--lr cannot"),
    ];
    for (command, flags, named) in configuration {
        let o = ladder(&[&[*command, "--resume", run], *flags].concat());
        assert_fails(&o, named);
        assert_fails(&o, "recorded configuration");
    }
    // Seeds, grid, --force: clap's conflict (exit 2), naming the flag.
    let conflicting: &[(&str, &[&str])] = &[
        ("train", &["--seeds", "1-2"]),
        ("train", &["--force"]),
        ("train-plain", &["--seeds", "1-2"]),
        ("sweep", &["--grid", "lr=0.1,0.2"]),
        ("sweep", &["--seeds", "1-2"]),
    ];
    for (command, flags) in conflicting {
        let o = ladder(&[&[*command, "--resume", run], *flags].concat());
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{command} {flags:?}: {err}");
        assert!(err.contains("cannot be used with"), "{err}");
        assert!(err.contains(flags[0]), "{flags:?} not named: {err}");
    }
    assert_eq!(read(out.join("metrics.jsonl")), before);
    assert!(read(out.join("config.toml")).contains("\nepochs = 1\n"));
    // Without such flags the finished run is read back, not retrained.
    let o = ladder(&["train", "--resume", run, "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read(out.join("metrics.jsonl")), before);
}

/// The preset a run started from is recorded in its config.toml (a comment, so the file still
/// configures a new run) and so reaches the summary of a resumed run too.
#[test]
fn a_resumed_run_still_records_its_preset() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = train(&out, &["--preset", "mnist-100-gamma", "--epochs", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let config = read(out.join("config.toml"));
    assert!(
        config.starts_with("# preset: mnist-100-gamma\n"),
        "{config}"
    );
    let preset = |dir: &Path| summary(dir)["preset"].clone();
    assert_eq!(preset(&out), "mnist-100-gamma");
    // Stopped after its last epoch, before the summary: resumed, it names the preset again.
    std::fs::remove_file(out.join("summary.json")).unwrap();
    let o = ladder(&["train", "--resume", out.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(preset(&out), "mnist-100-gamma");
    // The file configures a new run as it is; without a preset there is no comment.
    let again = tmp.path().join("again");
    let o = ladder(&[
        "train",
        "--config",
        out.join("config.toml").to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(preset(&again), serde_json::Value::Null);
    assert_eq!(
        read(again.join("config.toml")),
        config.split_once('\n').unwrap().1
    );
}

/// `sweep --gather` writes the table a single-process sweep writes, byte for byte, once every
/// cell is done, and names the cells that are missing, unfinished or running until then.
#[test]
fn a_gathered_sweep_is_the_single_process_table_and_names_open_cells() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    let outs = out.to_str().unwrap();
    let mut args = vec!["sweep", "--out", outs, "--validation-samples", "300"];
    args.extend_from_slice(&["--grid", "lr=0.002,0.004", "--seeds", "1-2"]);
    args.extend_from_slice(TINY);
    let o = ladder(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let tables = ["grid.md", "grid.csv"].map(|f| read(out.join(f)));
    for f in ["grid.md", "grid.csv", "summary.json"] {
        std::fs::remove_file(out.join(f)).unwrap();
    }
    let o = ladder(&["sweep", "--gather", outs]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(["grid.md", "grid.csv"].map(|f| read(out.join(f))), tables);
    assert!(String::from_utf8_lossy(&o.stdout).starts_with(&tables[0]));

    // A cell's summary comes back from its seeds' summaries, byte for byte.
    let cell = |lr: &str| out.join(format!("lr={lr}"));
    let cell_summary = read(cell("0.002").join("summary.json"));
    std::fs::remove_file(cell("0.002").join("summary.json")).unwrap();
    assert!(ladder(&["sweep", "--gather", outs]).status.success());
    assert_eq!(read(cell("0.002").join("summary.json")), cell_summary);

    // A cell stopped before its second seed finished, and one whose second seed a task holds.
    for lr in ["0.002", "0.004"] {
        std::fs::remove_file(cell(lr).join("summary.json")).unwrap();
        std::fs::remove_file(cell(lr).join("seed-2/summary.json")).unwrap();
    }
    let claims = ClaimSettings::default();
    let Claimed::Held(held) = claim(&cell("0.004").join("seed-2"), &claims).unwrap() else {
        panic!("the unit is free");
    };
    let o = ladder(&["sweep", "--gather", outs]);
    assert_fails(&o, "2 of 2 cells");
    let err = stderr(&o);
    assert!(err.contains("lr=0.002 (unfinished)"), "{err}");
    assert!(err.contains("lr=0.004 (running)"), "{err}");
    let table = String::from_utf8_lossy(&o.stdout);
    let me = format!(
        "seed 2 running on host {}, pid {}",
        host_name(),
        std::process::id()
    );
    assert!(table.contains(&me), "{table}");
    assert!(table.contains("seed 1 done"), "{table}");
    // A task that failed says why.
    held.fail("No space left on device");
    let o = ladder(&["sweep", "--gather", outs]);
    assert_fails(&o, "lr=0.004 (failed)");
    assert!(String::from_utf8_lossy(&o.stdout).contains("No space left on device"));
    std::fs::remove_dir_all(cell("0.004")).unwrap();
    assert_fails(&ladder(&["sweep", "--gather", outs]), "lr=0.004 (missing)");

    assert_fails(&ladder(&["sweep", "--gather", outs, "--lr", "0.1"]), "--lr");
    let nothing = dir.path().join("none");
    std::fs::create_dir(&nothing).unwrap();
    assert_fails(
        &ladder(&["sweep", "--gather", nothing.to_str().unwrap()]),
        "not a sweep",
    );
}

#[test]
fn a_sweep_tabulates_its_grid_and_resumes_without_redoing_finished_cells() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    let mut args = vec![
        "sweep",
        "--out",
        out.to_str().unwrap(),
        "--validation-samples",
        "300",
        "--grid",
        "adv_sup_tau=0,0.05",
        "--grid",
        "adv-unsup-kind=unit,sign",
        "--adv-unsup-tau",
        "0.01",
    ];
    args.extend_from_slice(TINY);
    let o = ladder(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let md = read(out.join("grid.md"));
    assert_eq!(
        md.matches('✔').count(),
        3,
        "chosen cell marked in both tables: {md}"
    );
    let csv = read(out.join("grid.csv"));
    assert_eq!(csv.lines().count(), 5, "{csv}");
    assert_eq!(csv.lines().filter(|l| l.ends_with(",true")).count(), 1);

    // As if the sweep had been stopped before its last cell: that cell and the tables are
    // missing. (A cell stopped within a run resumes from its checkpoint, like `train --resume`.)
    let cell = |name: &str| out.join(name);
    let done = cell("adv_sup_tau=0,adv_unsup_kind=unit").join("seed-1/metrics.jsonl");
    let before = std::fs::metadata(&done).unwrap().modified().unwrap();
    let broken = cell("adv_sup_tau=0.05,adv_unsup_kind=sign");
    let redo = broken.join("seed-1/metrics.jsonl");
    let old = read(redo.clone());
    std::fs::remove_dir_all(&broken).unwrap();
    std::fs::remove_file(out.join("grid.csv")).unwrap();
    // Without --resume an existing sweep is refused.
    assert_fails(&ladder(&args), "--resume");
    let o = ladder(&["sweep", "--resume", out.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::metadata(&done).unwrap().modified().unwrap(),
        before
    );
    assert!(broken.join("summary.json").exists());
    assert_eq!(
        read(redo),
        old,
        "the resumed cell ends as an uninterrupted one"
    );
    assert_eq!(read(out.join("grid.csv")), csv);

    assert_fails(
        &ladder(&[
            "sweep",
            "--grid",
            "nonsense=1",
            "--validation-samples",
            "10",
        ]),
        "nonsense",
    );
    assert_fails(&ladder(&["sweep", "--grid", "lr=0.1"]), "validation");
}

#[test]
fn plain_models_train_and_their_robustness_is_tabulated_and_drawn() {
    let dir = tempfile::tempdir().unwrap();
    let mut dirs = Vec::new();
    for m in ["a", "b"] {
        let out = dir.path().join(format!("model-{m}"));
        let o = ladder(&[
            "train-plain",
            "--model",
            m,
            "--hidden-layers",
            "30",
            "--max-epochs",
            "2",
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let summary = read(out.join("summary.json"));
        assert!(
            summary.contains(&format!("\"model\": \"{}\"", m.to_uppercase())),
            "{summary}"
        );
        assert_eq!(read(out.join("metrics.jsonl")).lines().count(), 2);
        dirs.push(out);
    }
    let rob = dir.path().join("rob");
    let o = ladder(&[
        "robustness",
        dirs[0].to_str().unwrap(),
        dirs[1].to_str().unwrap(),
        "--epsilons",
        "0,0.1",
        "--sigmas",
        "0,0.3",
        "--attack-epsilons",
        "0.1,0.3",
        "--attack-examples",
        "200",
        "--square-queries",
        "100",
        "--out",
        rob.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = read(rob.join("robustness.csv"));
    assert_eq!(csv.lines().count(), 1 + 2 * 4, "{csv}");
    assert!(csv.contains("model-b,fgsm,0.1,"), "{csv}");
    for png in [
        "fgsm.png",
        "gaussian.png",
        "attacks-square.png",
        "attacks-worst-case.png",
    ] {
        assert_eq!(&std::fs::read(rob.join(png)).unwrap()[1..4], b"PNG");
    }
    // Per model: the clean line, then four attacks and the worst case at each of two radii.
    let attacks = read(rob.join("attacks.csv"));
    assert_eq!(attacks.lines().count(), 1 + 2 * (1 + 2 * 5), "{attacks}");
    assert!(attacks.contains("model-b,linf,0.3,square,"), "{attacks}");
    assert!(read(rob.join("attacks.md")).contains("inputs clipped to [0, 1]"));
    let w = dir.path().join("w");
    let o = ladder(&[
        "weights",
        dirs[0].to_str().unwrap(),
        "--out",
        w.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(w.join("first-layer.png").exists() && w.join("class-patterns.png").exists());

    let d0 = dirs[0].to_str().unwrap();
    assert_fails(
        &ladder(&["robustness", d0, "--name", "x", "--name", "y"]),
        "2 names for 1",
    );
    assert_fails(
        &ladder(&["robustness", d0, "--epsilons", "0,abc"]),
        "'abc' is not a number",
    );
    assert_fails(
        &ladder(&["robustness", d0, "--attacks", "pgd,cw"]),
        "unknown attack 'cw'",
    );
    assert_fails(
        &ladder(&["robustness", d0, "--norm", "l2"]),
        "Square Attack is implemented for the L∞ norm only",
    );
    assert_fails(
        &ladder(&["robustness", dir.path().to_str().unwrap()]),
        "neither",
    );
    assert_fails(
        &ladder(&["weights", d0, "--image-shape", "20x20"]),
        "does not match the model's 784 inputs",
    );
    assert_fails(
        &ladder(&["train-plain", "--alpha", "2", "--out", d0, "--quiet"]),
        "alpha",
    );
    assert_fails(&ladder(&["train-plain", "--out", d0, "--quiet"]), "--force");
}

#[test]
fn tabular_csv_data_trains_plain_and_ladder_models_and_bad_rows_are_named() {
    let dir = tempfile::tempdir().unwrap();
    // Three classes (1..=3) told apart by the first feature; the second is constant.
    let rows: String = (0..600)
        .map(|i| {
            let c = i % 3 + 1;
            format!("{},{},{}\n", c as f64 * 2.0 + (i % 7) as f64 * 0.1, 5, c)
        })
        .collect();
    let csv = dir.path().join("t.csv");
    std::fs::write(&csv, rows).unwrap();
    let c = csv.to_str().unwrap();
    let common = [
        "--data",
        c,
        "--num-classes",
        "3",
        "--first-label",
        "1",
        "--quiet",
    ];
    let out = dir.path().join("plain");
    let mut args = vec!["train-plain", "--hidden-layers", "20", "--max-epochs", "20"];
    args.extend_from_slice(&["--validation-samples", "60", "--out", out.to_str().unwrap()]);
    args.extend_from_slice(&common);
    let o = ladder(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary = read(out.join("summary.json"));
    let v: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert!(
        v["test_error_percent"].as_f64().unwrap() < 10.0,
        "{summary}"
    );
    // The export carries the standardisation, so that it labels raw feature rows as the run
    // does; evaluated on the same CSV it gives the run's test error.
    let file = dir.path().join("plain.safetensors");
    let o = ladder(&[
        "export",
        out.to_str().unwrap(),
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let f = file.to_str().unwrap();
    let o = ladder(&["evaluate", f, "--data", c, "--first-label", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let printed = String::from_utf8_lossy(&o.stdout).to_string();
    let recorded = v["test_error_percent"].as_f64().unwrap();
    assert!(
        printed.contains(&format!("{recorded:.4}")),
        "{printed} vs {recorded}"
    );
    let rows = dir.path().join("rows.csv");
    std::fs::write(&rows, "feature,constant\n2.0,5\n4.0,5\n6.0,5\n").unwrap();
    for model in [out.to_str().unwrap(), f] {
        let o = ladder(&["predict", model, rows.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(String::from_utf8_lossy(&o.stdout), "0\n1\n2\n", "{model}");
    }

    let out = dir.path().join("ladder");
    let mut args = vec![
        "train",
        "--encoder-layers",
        "20-3",
        "--denoising-cost-x",
        "10,1,0.1",
    ];
    args.extend_from_slice(&["--labeled-samples", "30", "--epochs", "2"]);
    args.extend_from_slice(&["--out", out.to_str().unwrap()]);
    args.extend_from_slice(&common);
    let o = ladder(&args);
    assert!(o.status.success(), "{}", stderr(&o));

    std::fs::write(&csv, "1,2,1\n1,2,8\n").unwrap();
    let x = dir.path().join("x");
    let mut args = vec!["train-plain", "--out", x.to_str().unwrap()];
    args.extend_from_slice(&common);
    assert_fails(&ladder(&args), "t.csv, line 2: class 8 is unknown");
}

/// A small CIFAR-10 directory: five training batches of `per_batch` images and a test batch
/// of 40, pixels and labels from a fixed pattern.
fn write_cifar(dir: &Path, per_batch: usize) {
    use ladder::data::cifar::{CIFAR_PIXELS, CIFAR_TEST_FILE, CIFAR_TRAIN_FILES, encode_cifar};
    let batch = |n: usize, salt: usize| {
        let labels: Vec<u8> = (0..n).map(|i| ((i + salt) % 10) as u8).collect();
        let pixels: Vec<u8> = (0..n * CIFAR_PIXELS)
            .map(|i| ((i * 31 + salt * 7 + (i / CIFAR_PIXELS) * 13) % 256) as u8)
            .collect();
        encode_cifar(&labels, &pixels)
    };
    for (k, f) in CIFAR_TRAIN_FILES.iter().enumerate() {
        std::fs::write(dir.join(f), batch(per_batch, k)).unwrap();
    }
    std::fs::write(dir.join(CIFAR_TEST_FILE), batch(40, 9)).unwrap();
}

/// A conv Ladder trains on CIFAR-10 files with the paper's preprocessing (grey here, to keep
/// the ZCA small) and augmentation, repeats itself exactly, and evaluates back; a truncated
/// batch file is named.
#[test]
fn a_conv_ladder_trains_on_cifar_files_with_preprocessing_and_augmentation() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("cifar");
    std::fs::create_dir(&data).unwrap();
    write_cifar(&data, 40);
    let run = |out: &Path| {
        ladder(&[
            "train",
            "--data",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--encoder-layers",
            "convv:4:3:1:1-maxpool:2:2-convf:3:3:1:1-globalmeanpool:0-fc:10",
            "--denoising-cost-x",
            "1,0.1,0.1,0.1,0.1,1",
            "--labeled-samples",
            "50",
            "--batch-size",
            "50",
            "--epochs",
            "2",
            "--grey",
            "true",
            "--contrast-norm",
            "55",
            "--zca",
            "true",
            "--crop",
            "24",
            "--flip",
            "true",
            "--quiet",
        ])
    };
    let a = tmp.path().join("a");
    let o = run(&a);
    assert!(o.status.success(), "{}", stderr(&o));
    let b = tmp.path().join("b");
    assert!(run(&b).status.success());
    assert_eq!(read(a.join("metrics.jsonl")).lines().count(), 2);
    let strip = |p: PathBuf| {
        read(p)
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (v["cost"].to_string(), v["test_error_percent"].to_string())
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        strip(a.join("metrics.jsonl")),
        strip(b.join("metrics.jsonl"))
    );
    let summary = summary(&a);
    let o = ladder(&[
        "evaluate",
        a.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let recorded = summary["test_error_percent"].as_f64().unwrap();
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&format!("{recorded:.4}")),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );

    // Weight pictures are for fully connected networks: a conv run is refused clearly.
    assert_fails(
        &ladder(&[
            "weights",
            a.to_str().unwrap(),
            "--out",
            tmp.path().join("w").to_str().unwrap(),
        ]),
        "fully connected",
    );
    // A plain network on grey CIFAR-10 (004), and its robustness on grey test images.
    let plain = tmp.path().join("plain");
    let o = ladder(&[
        "train-plain",
        "--data",
        data.to_str().unwrap(),
        "--grey",
        "true",
        "--hidden-layers",
        "20",
        "--max-epochs",
        "2",
        "--validation-samples",
        "20",
        "--out",
        plain.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(read(plain.join("config.toml")).contains("grey = true"));
    let rob = tmp.path().join("rob");
    let o = ladder(&[
        "robustness",
        plain.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--epsilons",
        "0,0.1",
        "--sigmas",
        "0",
        "--out",
        rob.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // With a model that preprocesses differently, the shared test set is refused.
    let o = ladder(&[
        "robustness",
        plain.to_str().unwrap(),
        a.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--out",
        rob.to_str().unwrap(),
    ]);
    assert_fails(&o, "preprocess their inputs differently");

    // A batch file cut short is an error naming it.
    let f = data.join("data_batch_3.bin");
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..bytes.len() - 100]).unwrap();
    let o = run(&tmp.path().join("c"));
    assert_fails(&o, "data_batch_3.bin");
    assert!(
        stderr(&o).contains("not a whole number of 3073-byte"),
        "{}",
        stderr(&o)
    );
    assert!(!tmp.path().join("c").exists());
}

fn semantic_grid(root: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "train-semantic",
        "--models",
        "feedforward,perturb-class",
        "--per-class",
        "10",
        "--seeds",
        "1-2",
        "--epochs",
        "2",
        "--validation-samples",
        "300",
        "--out",
        root.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    ladder(&args)
}

fn is_png(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|b| b.len() > 100 && b.starts_with(b"\x89PNG"))
}

#[test]
fn a_semantic_grid_tabulates_resumes_and_draws_its_figures() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("grid");
    let first = semantic_grid(&root, &["--quiet"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let table = String::from_utf8_lossy(&first.stdout).into_owned();
    assert!(table.contains("| 10 per class |"), "{table}");
    assert!(table.contains("proposed-perturb (class-conditional); Fig. 1(c) |"));
    assert!(table.contains("feed-forward model; Fig. 2(a) |"));
    assert!(read(root.join("table.md")).contains("±"));
    let csv = read(root.join("table.csv"));
    assert_eq!(csv.lines().count(), 3, "{csv}");
    let cell = summary(&root.join("k10/perturb-class"));
    assert_eq!(cell["seeds"], serde_json::json!([1, 2]));
    assert_eq!(cell["runs"].as_array().unwrap().len(), 2);
    let run = root.join("k10/perturb-class/seed-1");
    assert_eq!(read(run.join("metrics.jsonl")).lines().count(), 2);
    assert!(read(run.join("config.toml")).contains("model = \"perturb-class\""));

    // Finished runs are read back, not retrained: the same table.
    let again = semantic_grid(&root, &[]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(stderr(&again).contains("finished earlier"));
    assert_eq!(String::from_utf8_lossy(&again.stdout), table);
    let rewritten = ladder(&["semantic-table", root.to_str().unwrap()]);
    assert!(rewritten.status.success(), "{}", stderr(&rewritten));
    assert!(table.starts_with(&*String::from_utf8_lossy(&rewritten.stdout)));
    // Other settings would mix with the finished runs: refused.
    assert_fails(
        &semantic_grid(&root, &["--epochs", "3"]),
        "different configuration",
    );

    let figures = dir.path().join("figures");
    let drawn = ladder(&[
        "semantic-figures",
        run.to_str().unwrap(),
        "--out",
        figures.to_str().unwrap(),
        "--background",
        "200",
        "--perplexity",
        "5",
        "--tsne-epochs",
        "250",
    ]);
    assert!(drawn.status.success(), "{}", stderr(&drawn));
    for f in [
        "figure5-random.png",
        "figure5-class-conditional.png",
        "figure6-tsne.png",
    ] {
        assert!(is_png(&figures.join(f)), "{f}");
    }
    let out = figures.to_str().unwrap();
    // Earlier figures are not replaced without --force.
    let before = std::fs::read(figures.join("figure6-tsne.png")).unwrap();
    assert_fails(
        &ladder(&["semantic-figures", run.to_str().unwrap(), "--out", out]),
        "--force",
    );
    assert_eq!(
        std::fs::read(figures.join("figure6-tsne.png")).unwrap(),
        before
    );
    assert_fails(
        &ladder(&[
            "semantic-figures",
            run.to_str().unwrap(),
            "--out",
            out,
            "--classes",
            "12",
        ]),
        "out of range",
    );
    assert_fails(
        &ladder(&[
            "semantic-figures",
            dir.path().to_str().unwrap(),
            "--out",
            out,
        ]),
        "model.bin",
    );
}

#[test]
fn bad_semantic_settings_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("grid");
    for (extra, needle) in [
        (&["--models", "perturb"][..], "unknown model 'perturb'"),
        (&["--per-class", "10,10"][..], "listed twice"),
        (
            &["--layers", "convs:8:3:1:1-maxpool:2:2-fc:16"][..],
            "layer 2 is a pooling layer",
        ),
        (&["--lr-decay-factor", "0.5"][..], "lr decay factor"),
        (&["--noise-std=-1"][..], "noise-std -1"),
        (&["--per-class", "900"][..], "9000 labelled examples"),
        (&["--preset", "svhn"][..], "unknown semantic preset"),
    ] {
        assert_fails(&semantic_grid(&root, extra), needle);
        // Refused before any training: nothing written.
        assert!(!root.exists(), "{extra:?}");
    }
}

/// The CIFAR-10 preset (Fig. 4's network for 32×32×3 images, 24×24 random crops and flips)
/// trains on CIFAR-format files and repeats itself exactly.
#[test]
fn the_cifar_semantic_preset_trains_on_cifar_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("cifar");
    std::fs::create_dir(&data).unwrap();
    write_cifar(&data, 20);
    let train = |root: &Path| {
        ladder(&[
            "train-semantic",
            "--preset",
            "cifar",
            "--data",
            data.to_str().unwrap(),
            "--models",
            "perturb-class",
            "--per-class",
            "2",
            "--validation-samples",
            "20",
            "--batch-size",
            "10",
            "--epochs",
            "2",
            "--quiet",
            "--out",
            root.to_str().unwrap(),
        ])
    };
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for root in [&a, &b] {
        let o = train(root);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let metrics = |root: &Path| {
        read(root.join("k2/perturb-class/seed-1/metrics.jsonl"))
            .lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["seconds"] = serde_json::json!(0);
                v
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(metrics(&a), metrics(&b));
    let config = read(a.join("k2/perturb-class/seed-1/config.toml"));
    assert!(
        config.contains("crop = 24") && config.contains("flip = true"),
        "{config}"
    );
    // Colour pictures of 24×24 centre crops, on the run's own data only.
    let figures = dir.path().join("figures");
    let run = a.join("k2/perturb-class/seed-1");
    let draw = |data: &Path| {
        ladder(&[
            "semantic-figures",
            run.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--out",
            figures.to_str().unwrap(),
            "--background",
            "50",
            "--perplexity",
            "5",
            "--tsne-epochs",
            "250",
        ])
    };
    let drawn = draw(&data);
    assert!(drawn.status.success(), "{}", stderr(&drawn));
    assert!(is_png(&figures.join("figure5-class-conditional.png")));
    assert!(is_png(&figures.join("figure6-tsne.png")));
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    write_cifar(&other, 30);
    assert_fails(&draw(&other), "trained on other data");
}

/// A semantic run whose cost turns NaN stops with its epoch and step, writes no summary, no
/// network and no table, and a finished run beside it is kept.
#[test]
fn a_diverging_semantic_run_stops_and_keeps_finished_runs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("grid");
    let ok = semantic_grid(
        &root,
        &["--models", "feedforward", "--seeds", "1", "--quiet"],
    );
    assert!(ok.status.success(), "{}", stderr(&ok));
    let finished = read(root.join("k10/feedforward/seed-1/summary.json"));
    let o = semantic_grid(
        &root,
        &[
            "--models",
            "feedforward",
            "--seeds",
            "2",
            "--lr",
            "1e30",
            "--quiet",
        ],
    );
    assert_fails(&o, "training diverged: the cost became NaN");
    let run = root.join("k10/feedforward/seed-2");
    assert!(!run.join("summary.json").exists());
    assert!(!run.join("model.bin").exists());
    assert_eq!(
        read(root.join("k10/feedforward/seed-1/summary.json")),
        finished
    );
}

/// `DIR/{train,test}/<class>/*.png`: two classes of 8×8 grey images, bright on the left or on
/// the right, with a little noise of their own.
fn write_image_folder(dir: &Path) {
    for (split, n) in [("train", 60), ("test", 20)] {
        for (class, name) in ["left", "right"].iter().enumerate() {
            let folder = dir.join(split).join(name);
            std::fs::create_dir_all(&folder).unwrap();
            for i in 0..n {
                let img = image::GrayImage::from_fn(8, 8, |x, y| {
                    let bright = (x < 4) == (class == 0);
                    let noise = ((x * 7 + y * 13 + i * 29) % 40) as u8;
                    image::Luma([if bright { 200 + noise / 2 } else { noise }])
                });
                img.save(folder.join(format!("{i:03}.png"))).unwrap();
            }
        }
    }
}

#[test]
fn image_folders_train_evaluate_and_a_renamed_class_folder_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("folders");
    write_image_folder(&data);
    let d = data.to_str().unwrap();
    let run = tmp.path().join("plain");
    let r = run.to_str().unwrap();
    let base = ["train-plain", "--layers", "10", "--max-epochs", "10"];
    let args = [&base[..], &["--validation-samples", "20", "--data", d]].concat();
    assert_fails(&ladder(&args), "pass --num-classes 2");
    let o = ladder(&[&args[..], &["--num-classes", "2", "--out", r, "--quiet"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let summary = summary(&run);
    let error = summary["test_error_percent"].as_f64().unwrap();
    assert!(error < 10.0, "{error}");
    assert!(read(run.join("data.json")).contains("\"image-folder\""));
    assert!(read(run.join("data.json")).contains("train/left/000.png"));
    let o = ladder(&["evaluate", r]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("{error:.4}")));
    // The test split's images as files to label: every "right" image is class 1.
    let o = ladder(&["predict", r, data.join("test/right").to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ones = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| *l == "1")
        .count();
    assert!(ones >= 18, "{ones} of 20");
    // Swapping the class folders' names swaps the labels: the run refuses the changed data.
    std::fs::rename(data.join("train/left"), data.join("train/tmp")).unwrap();
    std::fs::rename(data.join("train/right"), data.join("train/left")).unwrap();
    std::fs::rename(data.join("train/tmp"), data.join("train/right")).unwrap();
    assert_fails(
        &ladder(&["evaluate", r]),
        "the run was trained on other data",
    );
}

/// A `method` axis compares methods on one preset: each cell is the preset trained by its
/// method, with the other axes and flags applied.
#[test]
fn a_method_axis_sweeps_the_comparison_methods_on_one_preset() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("methods");
    let outs = out.to_str().unwrap();
    let mut args = vec!["sweep", "--preset", "mnist-100-full", "--out", outs];
    args.extend_from_slice(&["--grid", "method=ladder,VAT,mean-teacher", "--seeds", "1"]);
    args.extend_from_slice(&["--epochs", "1", "--unlabeled-samples", "500"]);
    args.extend_from_slice(&["--validation-samples", "100", "--quiet"]);
    let o = ladder(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = read(out.join("grid.md"));
    assert!(table.contains("| method |"), "{table}");
    for m in ["ladder", "vat", "mean-teacher"] {
        assert!(table.contains(&format!("| {m} |")) || table.contains(&format!("**{m}**")));
    }
    let config = |m: &str| read(out.join(format!("method={m}/config.toml")));
    assert!(config("vat").contains("vat_epsilon = 5.0"));
    assert!(config("vat").contains("denoising_cost_x = \"0\""));
    assert!(config("mean-teacher").contains("mean_teacher_decay = 0.99"));
    assert!(config("ladder").contains("vat_epsilon = 0.0"));
    // Every cell ran its epochs once; resuming the finished sweep trains nothing.
    let o = ladder(&["sweep", "--resume", outs, "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read(out.join("grid.md")), table);

    let refused = |extra: &[&str], why: &str| {
        let mut a = vec![
            "sweep",
            "--preset",
            "mnist-100-full",
            "--validation-samples",
            "100",
        ];
        a.extend_from_slice(extra);
        assert_fails(&ladder(&a), why);
    };
    refused(
        &["--grid", "method=ladder,vat", "--method", "pi"],
        "--method cannot",
    );
    refused(
        &["--grid", "method=ladder,nonsense"],
        "unknown method 'nonsense'",
    );
}
