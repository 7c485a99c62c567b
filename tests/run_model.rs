//! The run model's guarantees, end to end: a run records its data and every command that reads
//! it uses that data; one writer per run directory; `--force` and failed starts never lose or
//! block a run; sweeps cannot mislabel their cells; outputs never overwrite inputs or earlier
//! results.

mod common;

use std::path::Path;

use common::{
    TINY, assert_fails, ladder, predict_three, read, stderr, summary, train, write_dataset,
};
use ladder::data::write_idx_file;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The test error `evaluate` prints.
fn evaluated(args: &[&str]) -> f64 {
    let o = ladder(&[&["evaluate"], args].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    String::from_utf8_lossy(&o.stdout)
        .trim()
        .strip_prefix("test_error_percent: ")
        .unwrap()
        .parse()
        .unwrap()
}

/// `evaluate` prints four decimals.
fn assert_close(printed: f64, recorded: f64) {
    assert!((printed - recorded).abs() < 1e-4, "{printed} vs {recorded}");
}

fn recorded_error(run: &Path) -> f64 {
    summary(run)["test_error_percent"].as_f64().unwrap()
}

/// `robustness.csv` of `run` measured at FGSM steps `epsilons` (and no Gaussian noise).
fn robustness_csv(run: &Path, epsilons: &str, out: &Path) -> String {
    let args = [
        "robustness",
        s(run),
        "--epsilons",
        epsilons,
        "--sigmas",
        "0",
        "--out",
        s(out),
    ];
    let o = ladder(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    read(out.join("robustness.csv"))
}

/// The flags of a 2-epoch plain network with 20 hidden units.
const TINY_PLAIN: [&str; 7] = [
    "train-plain",
    "--layers",
    "20",
    "--epochs",
    "2",
    "--validation-samples",
    "200",
];

/// `train-plain` with [`TINY_PLAIN`] and `extra`, quietly.
fn tiny_plain(extra: &[&str]) -> std::process::Output {
    ladder(&[&TINY_PLAIN[..], extra, &["--quiet"]].concat())
}

/// A tiny plain network in `out` (with `extra` flags).
fn train_tiny_plain_with(out: &Path, extra: &[&str]) {
    let o = tiny_plain(&[&["--out", s(out)][..], extra].concat());
    assert!(o.status.success(), "{}", stderr(&o));
}

fn train_tiny_plain(out: &Path) {
    train_tiny_plain_with(out, &[]);
}

/// A 1-epoch class-conditional semantic-noise run of `layers` in the grid `grid`: its directory.
fn tiny_semantic(grid: &Path, layers: &str) -> std::path::PathBuf {
    let o = ladder(&[
        "train-semantic",
        "--layers",
        layers,
        "--models",
        "perturb-class",
        "--epochs",
        "1",
        "--validation-samples",
        "200",
        "--out",
        s(grid),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    grid.join("k10/perturb-class/seed-1")
}

/// The accuracy (last column) of line `line` of a robustness table.
fn accuracy(csv: &str, line: usize) -> f64 {
    let row = csv.lines().nth(line).unwrap();
    row.rsplit(',').next().unwrap().parse().unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn a_run_records_its_data_and_every_reader_uses_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("digits");
    std::fs::create_dir(&data).unwrap();
    write_dataset(&data, &[60; 10]);
    let run = tmp.path().join("run");
    let o = train(&run, &["--data", s(&data)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let record: serde_json::Value = serde_json::from_str(&read(run.join("data.json"))).unwrap();
    assert_eq!(record["source"]["kind"], "idx");
    assert_eq!(record["files"].as_array().unwrap().len(), 4);
    assert_eq!(
        record["files"][0]["sha256"].as_str().unwrap().len(),
        64,
        "{record}"
    );

    // evaluate without --data reads the recorded data, not the embedded digits.
    let recorded = recorded_error(&run);
    assert_close(evaluated(&[s(&run)]), recorded);

    // A resumed run continues on the recorded data too.
    std::fs::remove_file(run.join("summary.json")).unwrap();
    let o = ladder(&["train", "--resume", s(&run), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(recorded_error(&run), recorded);

    // robustness measures on the recorded test set.
    let csv = robustness_csv(&run, "0", &tmp.path().join("rob"));
    let clean = accuracy(&csv, 1);
    assert!(
        (clean - (100.0 - recorded)).abs() < 0.006,
        "{csv} vs {recorded}"
    );

    // A moved copy is accepted; a changed one, other data or a missing file is refused.
    let moved = tmp.path().join("moved");
    copy_dir(&data, &moved);
    std::fs::remove_dir_all(&data).unwrap();
    assert_fails(&ladder(&["evaluate", s(&run)]), "is gone");
    assert_close(evaluated(&[s(&run), "--data", s(&moved)]), recorded);
    let o = ladder(&["evaluate", s(&run), "--data", "rows.csv"]);
    assert_fails(&o, "trained on the IDX directory");
    let o = ladder(&[
        "evaluate",
        s(&run),
        "--data",
        s(&moved),
        "--label-column",
        "2",
    ]);
    assert_fails(&o, "--label-column is for CSV files");
    let images = moved.join("train-images-idx3-ubyte");
    let mut bytes = std::fs::read(&images).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    std::fs::write(&images, bytes).unwrap();
    let o = ladder(&["evaluate", s(&run), "--data", s(&moved)]);
    assert_fails(
        &o,
        "train-images-idx3-ubyte: the run was trained on other data",
    );
    let sha = record["files"][0]["sha256"].as_str().unwrap();
    assert!(stderr(&o).contains(sha), "{}", stderr(&o));
}

#[test]
fn a_multi_seed_run_resumes_on_its_recorded_data() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("digits");
    std::fs::create_dir(&data).unwrap();
    write_dataset(&data, &[60; 10]);
    let seeds = tmp.path().join("seeds");
    let o = train(&seeds, &["--data", s(&data), "--seeds", "1-2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for dir in [seeds.clone(), seeds.join("seed-1"), seeds.join("seed-2")] {
        assert!(dir.join("data.json").exists(), "{}", dir.display());
    }
    let summary = read(seeds.join("summary.json"));
    std::fs::remove_file(seeds.join("summary.json")).unwrap();
    std::fs::remove_file(seeds.join("seed-2/summary.json")).unwrap();
    let o = ladder(&["train", "--resume", s(&seeds), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read(seeds.join("summary.json")), summary);
}

#[test]
fn a_run_written_before_data_records_reads_as_the_embedded_data_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    assert!(train(&run, &[]).status.success());
    std::fs::remove_file(run.join("data.json")).unwrap();
    let o = ladder(&["evaluate", s(&run)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("has no data.json") && stderr(&o).contains("embedded MNIST-10k"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_second_writer_is_refused_and_the_run_is_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    assert!(train(&run, &[]).status.success());
    let metrics = read(run.join("metrics.jsonl"));
    std::fs::remove_file(run.join("summary.json")).unwrap();
    // This test process holds the run's lock as a running trainer would.
    let lock = std::fs::File::open(run.join(".lock")).unwrap();
    lock.try_lock().unwrap();
    let o = ladder(&["train", "--resume", s(&run), "--quiet"]);
    assert_fails(&o, "another process is writing it");
    assert_fails(&train(&run, &["--force"]), "another process is writing it");
    assert_eq!(read(run.join("metrics.jsonl")), metrics);
    drop(lock);
    let o = ladder(&["train", "--resume", s(&run), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read(run.join("metrics.jsonl")), metrics);
}

#[test]
fn force_checks_the_new_settings_before_it_removes_a_finished_run() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    assert!(train(&run, &[]).status.success());
    let summary = read(run.join("summary.json"));
    let o = train(&run, &["--force", "--labeled-samples", "9000"]);
    assert_fails(&o, "impossible split");
    assert_eq!(read(run.join("summary.json")), summary);
    assert_close(evaluated(&[s(&run)]), recorded_error(&run));
    let seeds = tmp.path().join("seeds");
    assert!(train(&seeds, &["--seeds", "1-2"]).status.success());
    let summary = read(seeds.join("summary.json"));
    let o = train(
        &seeds,
        &["--seeds", "1-2", "--force", "--labeled-samples", "9000"],
    );
    assert_fails(&o, "impossible split");
    assert_eq!(read(seeds.join("summary.json")), summary);
}

#[test]
fn a_failed_start_leaves_nothing_that_blocks_a_rerun() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    assert_fails(
        &train(&run, &["--labeled-samples", "9000"]),
        "impossible split",
    );
    assert!(!run.exists(), "the failed start left {}", run.display());
    let o = train(&run, &[]);
    assert!(o.status.success(), "{}", stderr(&o));

    // A convolution on vector data (CSV rows), and a multi-seed run with an impossible split.
    let rows = tmp.path().join("rows.csv");
    let text: String = (0..200)
        .map(|i| format!("{},{},{}\n", i % 7, i % 3, i % 2))
        .collect();
    std::fs::write(&rows, text).unwrap();
    let conv = tmp.path().join("conv");
    let args = |layers: &str| {
        vec![
            "train",
            "--out",
            s(&conv),
            "--data",
            s(&rows),
            "--num-classes",
            "2",
            "--encoder-layers",
            layers,
            "--denoising-cost-x",
            "1,0,0",
            "--labeled-samples",
            "20",
            "--unlabeled-samples",
            "100",
            "--batch-size",
            "20",
            "--epochs",
            "1",
            "--quiet",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>()
    };
    let run_with = |layers: &str| {
        let a = args(layers);
        ladder(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    assert_fails(&run_with("convv:4:3:1:1-2"), "not images");
    assert!(!conv.exists());
    let o = run_with("8-2");
    assert!(o.status.success(), "{}", stderr(&o));
    let seeds = tmp.path().join("seeds");
    let o = train(&seeds, &["--seeds", "1-2", "--labeled-samples", "9000"]);
    assert_fails(&o, "impossible split");
    let o = train(&seeds, &["--seeds", "1-2"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

fn sweep(out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["sweep", "--out", s(out), "--validation-samples", "300"];
    args.extend_from_slice(TINY);
    args.extend_from_slice(extra);
    ladder(&args)
}

#[test]
fn sweeps_refuse_mislabelled_grids_and_record_diverged_cells() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sweep");
    assert_fails(&sweep(&out, &["--grid", "seed=1,2"]), "--seeds 1,2");
    assert_fails(
        &sweep(&out, &["--grid", "lr=0.001,0.002", "--grid", "lr=0.003"]),
        "grid axis 'lr' is given twice",
    );
    assert_fails(&sweep(&out, &["--grid", "lr=0.001,0.001"]), "twice");
    assert!(!out.exists());
    // A first cell that cannot start (an impossible split) leaves nothing behind.
    let o = sweep(
        &out,
        &["--grid", "lr=0.001,0.002", "--labeled-samples", "9000"],
    );
    assert_fails(&o, "impossible split");
    assert!(!out.exists(), "the failed sweep left {}", out.display());

    // lr = 1e30 diverges: the cell is reported as such and the sweep chooses among the rest.
    let o = sweep(&out, &["--grid", "lr=0.002,1e30"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let md = read(out.join("grid.md"));
    assert!(md.contains("| 1e30 | diverged | diverged |"), "{md}");
    let csv = read(out.join("grid.csv"));
    let rows: Vec<&str> = csv.lines().collect();
    assert!(
        rows[1].starts_with("0.002,") && rows[1].ends_with(",false,true"),
        "{csv}"
    );
    assert!(
        rows[2].starts_with("1e30,") && rows[2].ends_with(",true,false"),
        "{csv}"
    );
    assert!(out.join("lr=1e30/diverged.json").exists());

    // --resume finishes it (the diverged cell is not trained again).
    std::fs::remove_file(out.join("grid.csv")).unwrap();
    std::fs::remove_file(out.join("summary.json")).unwrap();
    let o = ladder(&["sweep", "--resume", s(&out), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read(out.join("grid.csv")), csv);
}

#[test]
fn outputs_never_overwrite_inputs_or_earlier_results() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    assert!(train(&run, &[]).status.success());
    let images = tmp.path().join("images-idx3-ubyte");
    let pixels: Vec<u8> = (0..3 * 784).map(|i| (i % 256) as u8).collect();
    write_idx_file(&images, &[3, 28, 28], &pixels).unwrap();
    let input = std::fs::read(&images).unwrap();
    let predict = |out: &Path, extra: &[&str]| {
        ladder(&[&["predict", s(&run), s(&images), "--out", s(out)], extra].concat())
    };
    assert_fails(&predict(&images, &["--force"]), "is the images file");
    assert_eq!(std::fs::read(&images).unwrap(), input);
    let checkpoint = std::fs::read(run.join("checkpoint.bin")).unwrap();
    assert_fails(
        &predict(&run.join("checkpoint.bin"), &["--force"]),
        "inside the run directory",
    );
    assert_eq!(
        std::fs::read(run.join("checkpoint.bin")).unwrap(),
        checkpoint
    );
    let labels = tmp.path().join("labels.txt");
    assert!(predict(&labels, &[]).status.success());
    assert_eq!(read(labels.clone()).lines().count(), 3);
    std::fs::write(&labels, "mine\n").unwrap();
    assert_fails(&predict(&labels, &[]), "--force");
    assert_eq!(read(labels.clone()), "mine\n");
    assert!(predict(&labels, &["--force"]).status.success());
    assert_eq!(read(labels).lines().count(), 3);

    let weights = tmp.path().join("w");
    let draw =
        |extra: &[&str]| ladder(&[&["weights", s(&run), "--out", s(&weights)], extra].concat());
    assert!(draw(&[]).status.success());
    assert_fails(&draw(&[]), "already holds first-layer.png");
    assert!(draw(&["--force"]).status.success());

    let rob = tmp.path().join("rob");
    let measure = |extra: &[&str]| {
        let args = [
            "robustness",
            s(&run),
            "--epsilons",
            "0",
            "--sigmas",
            "0",
            "--out",
            s(&rob),
        ];
        ladder(&[&args[..], extra].concat())
    };
    assert!(measure(&[]).status.success());
    std::fs::write(rob.join("robustness.md"), "mine\n").unwrap();
    assert_fails(&measure(&[]), "already holds robustness.csv");
    assert_eq!(read(rob.join("robustness.md")), "mine\n");
    assert!(measure(&["--force"]).status.success());
    assert_ne!(read(rob.join("robustness.md")), "mine\n");
}

#[test]
fn one_seed_flag_and_one_seed_list_never_silently_disagree() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    assert_fails(&train(&out, &["--seed", "1", "--seeds", "1-2"]), "not both");
    assert_fails(
        &sweep(&out, &["--seed", "3", "--grid", "lr=0.001,0.002"]),
        "give --seeds, not --seed",
    );
    assert!(!out.exists());
    // run.py's flag names are accepted: --num-epochs is --epochs.
    let o = ladder(&[
        "train",
        "--out",
        s(&out),
        "--encoder-layers",
        "30-10",
        "--denoising-cost-x",
        "10,1,0.1",
        "--unlabeled-samples",
        "500",
        "--num-epochs",
        "1",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read(out.join("metrics.jsonl")).lines().count(), 1);
}

#[test]
fn evaluate_predict_and_robustness_take_a_run_of_any_method() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("plain");
    train_tiny_plain(&plain);
    let semantic = tiny_semantic(&tmp.path().join("grid"), "fc:20");
    for run in [&plain, &semantic] {
        let recorded = recorded_error(run);
        assert_close(evaluated(&[s(run)]), recorded);
        predict_three(run);
        let rob = tmp.path().join(format!(
            "rob-{}",
            run.file_name().unwrap().to_str().unwrap()
        ));
        let csv = robustness_csv(run, "0,0.3", &rob);
        assert!(
            (accuracy(&csv, 1) - (100.0 - recorded)).abs() < 0.006,
            "{csv} vs {recorded}"
        );
        // FGSM at ε = 0.3 costs accuracy on any undefended network.
        assert!(accuracy(&csv, 2) < accuracy(&csv, 1), "{csv}");
    }
}

#[test]
fn plain_runs_take_seeds_and_resume_like_every_method() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("seeds");
    let plain = tiny_plain;
    assert_fails(
        &plain(&["--out", s(&out), "--seed", "1", "--seeds", "1-2"]),
        "not both",
    );
    let o = plain(&["--out", s(&out), "--seeds", "1-2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary = summary(&out);
    assert_eq!(summary["seeds"], serde_json::json!([1, 2]));
    let errors: Vec<f64> = (1..=2)
        .map(|k| recorded_error(&out.join(format!("seed-{k}"))))
        .collect();
    assert!((summary["mean"].as_f64().unwrap() - (errors[0] + errors[1]) / 2.0).abs() < 1e-9);
    assert_ne!(errors[0], errors[1], "two seeds, two runs");
    // Resumed, the finished seed is read back and the other continues to the same numbers.
    let whole = read(out.join("summary.json"));
    std::fs::remove_file(out.join("summary.json")).unwrap();
    std::fs::remove_file(out.join("seed-2/summary.json")).unwrap();
    let o = ladder(&["train-plain", "--resume", s(&out), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let strip = |t: &str| {
        let mut v: serde_json::Value = serde_json::from_str(t).unwrap();
        for r in v["runs"].as_array_mut().unwrap() {
            r.as_object_mut().unwrap().remove("train_seconds");
        }
        v
    };
    assert_eq!(strip(&read(out.join("summary.json"))), strip(&whole));
    // A multi-seed directory is not one network: a seed's directory is named.
    let o = ladder(&["evaluate", s(&out)]);
    assert_fails(&o, "seed-1");
}

/// Every method writes the same `config.toml` (plain and semantic runs name their method in
/// it); a command for one method refuses another's run, and runs written with the older
/// per-method names (`plain.toml`) still evaluate and resume.
#[test]
fn every_method_writes_one_config_file_and_older_layouts_still_load() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("plain");
    train_tiny_plain(&plain);
    let config = read(plain.join("config.toml"));
    assert!(config.starts_with("method = \"plain\"\n"), "{config}");
    assert!(!plain.join("plain.toml").exists());
    assert_fails(
        &ladder(&["train", "--resume", s(&plain), "--quiet"]),
        "holds a Plain run, not a Ladder run",
    );
    let ladder_run = tmp.path().join("ladder");
    assert!(train(&ladder_run, &[]).status.success());
    assert!(!read(ladder_run.join("config.toml")).contains("method"));
    assert_fails(
        &ladder(&["train-plain", "--resume", s(&ladder_run), "--quiet"]),
        "holds a Ladder run, not a Plain run",
    );
    // The older layout: the configuration in plain.toml, without the method line.
    let old = tmp.path().join("old");
    copy_dir(&plain, &old);
    std::fs::remove_file(old.join("config.toml")).unwrap();
    let body = config.strip_prefix("method = \"plain\"\n").unwrap();
    std::fs::write(old.join("plain.toml"), body).unwrap();
    assert_close(evaluated(&[s(&old)]), recorded_error(&plain));
    let o = ladder(&["train-plain", "--resume", s(&old), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(recorded_error(&old), recorded_error(&plain));
}

/// The Ladder and plain networks `ladder export` writes run, from the file alone, to the test
/// error their runs recorded, and read back by `evaluate` and `robustness` they give the run's
/// numbers: the names, shapes and metadata are those `experiment::export`
/// documents. Outputs inside the run, or over an earlier file without --force, are refused.
#[test]
fn exported_networks_reproduce_their_runs_test_error() {
    use safetensors::SafeTensors;
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("ladder");
    assert!(train(&run, &[]).status.success());
    let plain = tmp.path().join("plain");
    train_tiny_plain(&plain);
    let test = ladder::data::load_embedded(10).unwrap().test;
    for (dir, method) in [(&run, "ladder"), (&plain, "plain")] {
        let file = tmp.path().join(format!("{method}.safetensors"));
        let o = ladder(&["export", s(dir), "--out", s(&file)]);
        assert!(o.status.success(), "{}", stderr(&o));
        let bytes = std::fs::read(&file).unwrap();
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        let meta = header.metadata().clone().unwrap();
        assert_eq!(meta["format"], "ladder-export/2");
        assert_eq!(meta["method"], method);
        let arch: Vec<usize> = meta["architecture"]
            .split('-')
            .map(|d| d.parse().unwrap())
            .collect();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let get = |name: String| -> Vec<f32> {
            let t = st
                .tensor(&name)
                .unwrap_or_else(|_| panic!("{name} missing"));
            t.data()
                .chunks(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect()
        };
        let depth = arch.len() - 1;
        let mut wrong = 0;
        for i in 0..test.len() {
            let mut h: Vec<f32> = test.row(i).into_owned();
            for l in 1..=depth {
                let (din, dout) = (arch[l - 1], arch[l]);
                let prefix = if method == "plain" {
                    "layers"
                } else {
                    "encoder"
                };
                let w = get(format!("{prefix}.{l}.weight"));
                let mut z: Vec<f32> = (0..dout)
                    .map(|j| (0..din).map(|k| h[k] * w[k * dout + j]).sum())
                    .collect();
                if method == "plain" {
                    for (v, b) in z.iter_mut().zip(get(format!("layers.{l}.bias"))) {
                        *v += b;
                    }
                } else {
                    let (m, var, beta) = (
                        get(format!("encoder.{l}.mean")),
                        get(format!("encoder.{l}.var")),
                        get(format!("encoder.{l}.beta")),
                    );
                    for j in 0..dout {
                        z[j] = (z[j] - m[j]) / (var[j] + 1e-10).sqrt() + beta[j];
                    }
                    if l == depth && meta["top_gamma"] == "true" {
                        for (v, g) in z.iter_mut().zip(get(format!("encoder.{l}.gamma"))) {
                            *v *= g;
                        }
                    }
                }
                h = if l < depth {
                    z.iter().map(|v| v.max(0.0)).collect()
                } else {
                    z
                };
            }
            let best = (0..h.len()).fold(0, |b, j| if h[j] > h[b] { j } else { b });
            wrong += usize::from(best != test.labels[i] as usize);
        }
        let error = 100.0 * wrong as f64 / test.len() as f64;
        assert!(
            (error - recorded_error(dir)).abs() < 0.06,
            "{method}: {error} vs {}",
            recorded_error(dir)
        );
        // Imported back, the file evaluates and is attacked as its run is.
        assert_close(evaluated(&[s(&file)]), recorded_error(dir));
        let rob = |input: &Path, out: &str| {
            let out = tmp.path().join(out);
            let o = ladder(&[
                "robustness",
                s(input),
                "--name",
                "m",
                "--epsilons",
                "0,0.1",
                "--sigmas",
                "0",
                "--attacks",
                "fgsm,pgd",
                "--attack-epsilons",
                "0.1",
                "--attack-examples",
                "300",
                "--out",
                s(&out),
            ]);
            assert!(o.status.success(), "{}", stderr(&o));
            (
                read(out.join("robustness.csv")),
                read(out.join("attacks.csv")),
            )
        };
        assert_eq!(
            rob(dir, &format!("rob-run-{method}")),
            rob(&file, &format!("rob-file-{method}"))
        );
    }
    assert_fails(
        &ladder(&["export", s(&run), "--out", s(&run.join("x.safetensors"))]),
        "inside the run directory",
    );
    let file = tmp.path().join("ladder.safetensors");
    assert_fails(&ladder(&["export", s(&run), "--out", s(&file)]), "--force");
    let bad = tmp.path().join("bad.safetensors");
    std::fs::write(&bad, b"not safetensors").unwrap();
    assert_fails(&ladder(&["evaluate", s(&bad)]), "not a safetensors file");
}

/// Convolutional Ladders with contrast normalisation, ZCA and crops, and convolutional
/// semantic-noise networks export too: the file evaluates to the run's test error, and it
/// carries the fitted whitening, so that it predicts on new images as the run does and is
/// attacked where the run directory cannot be (robustness does not fit a run's ZCA).
#[test]
fn conv_semantic_and_whitened_runs_export_and_import() {
    let tmp = tempfile::tempdir().unwrap();
    let conv = tmp.path().join("conv");
    let o = ladder(&[
        "train",
        "--out",
        s(&conv),
        "--encoder-layers",
        "convv:4:5:1:1-maxpool:2:2-globalmeanpool:0-10",
        "--denoising-cost-x",
        "1,0.1,0.1,0.1,0.1",
        "--labeled-samples",
        "100",
        "--unlabeled-samples",
        "200",
        "--epochs",
        "1",
        "--contrast-norm",
        "55",
        "--zca",
        "true",
        "--crop",
        "24",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let semantic = tiny_semantic(&tmp.path().join("grid"), "convv:4:5:2:2-fc:20");
    for (run, method, steps) in [
        (&conv, "ladder", "contrast-norm:55,zca:0.1,crop:24"),
        (&semantic, "semantic", "none"),
    ] {
        let file = tmp.path().join(format!("{method}.safetensors"));
        let o = ladder(&["export", s(run), "--out", s(&file)]);
        assert!(o.status.success(), "{}", stderr(&o));
        let bytes = std::fs::read(&file).unwrap();
        // One network exports to the same bytes every time.
        let again = tmp.path().join(format!("{method}-again.safetensors"));
        assert!(
            ladder(&["export", s(run), "--out", s(&again)])
                .status
                .success()
        );
        assert!(
            std::fs::read(&again).unwrap() == bytes,
            "{method}: two exports differ"
        );
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        let meta = header.metadata().clone().unwrap();
        assert_eq!(
            (meta["method"].as_str(), meta["preprocessing"].as_str()),
            (method, steps)
        );
        assert_close(evaluated(&[s(&file)]), recorded_error(run));
        predict_three(&file);
    }
    let st_bytes = std::fs::read(tmp.path().join("ladder.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&st_bytes).unwrap();
    assert_eq!(
        st.tensor("encoder.1.weight").unwrap().shape(),
        &[4, 1, 5, 5]
    );
    assert_eq!(st.tensor("encoder.2.mean").unwrap().shape(), &[4]);
    assert!(
        st.tensor("encoder.2.beta").is_err(),
        "pooling layers have no β"
    );
    assert_eq!(
        st.tensor("preprocessing.zca.matrix").unwrap().shape(),
        &[784, 784]
    );
    // The run directory whitens new images with the ZCA of its recorded training data, as its
    // export does with the whitening it carries.
    let images = tmp.path().join("ladder.images-idx3-ubyte");
    let labels = |model: &Path| {
        let o = ladder(&["predict", s(model), s(&images), "--probabilities"]);
        assert!(o.status.success(), "{}", stderr(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert_eq!(
        labels(&conv),
        labels(&tmp.path().join("ladder.safetensors"))
    );
    let out = tmp.path().join("rob");
    let o = ladder(&[
        "robustness",
        s(&tmp.path().join("ladder.safetensors")),
        "--epsilons",
        "0",
        "--sigmas",
        "0",
        "--attacks",
        "none",
        "--out",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        (accuracy(&read(out.join("robustness.csv")), 1) - (100.0 - recorded_error(&conv))).abs()
            < 0.006
    );
}

/// `ladder plot` draws a Ladder run and a multi-seed plain run (mean of the seeds with a band)
/// as PNG and SVG; earlier figures are kept without --force, and a directory without metrics
/// is an error naming it.
#[test]
fn learning_curves_of_runs_and_multi_seed_runs_are_drawn() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("ladder");
    assert!(train(&run, &[]).status.success());
    let seeds = tmp.path().join("seeds");
    train_tiny_plain_with(&seeds, &["--seeds", "1-2"]);
    let out = tmp.path().join("curves");
    let o = ladder(&[
        "plot",
        s(&run),
        s(&seeds),
        "--name",
        "ladder",
        "--name",
        "plain",
        "--out",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in ["costs.png", "errors.png"] {
        assert_eq!(&std::fs::read(out.join(f)).unwrap()[1..4], b"PNG");
    }
    for f in ["costs.svg", "errors.svg"] {
        let svg = read(out.join(f));
        assert!(
            svg.contains("<svg")
                && svg.contains("plain: validation_error_percent") == (f == "errors.svg")
        );
    }
    // The multi-seed curve is the mean of its seeds, with a band where they differ.
    let curves = ladder::experiment::curves::run_curves("plain", &seeds, 0).unwrap();
    let val = curves
        .iter()
        .find(|c| c.name == "plain: validation_error_percent")
        .unwrap();
    let seed_val = |k: u32| -> f64 {
        let line = read(seeds.join(format!("seed-{k}/metrics.jsonl")));
        let first: serde_json::Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
        first["validation_error_percent"].as_f64().unwrap()
    };
    assert!((val.mean[0].1 - (seed_val(1) + seed_val(2)) / 2.0).abs() < 1e-9);
    assert_eq!(val.band.len(), 2);
    assert_fails(&ladder(&["plot", s(&run), "--out", s(&out)]), "--force");
    assert_fails(
        &ladder(&["plot", s(tmp.path()), "--out", s(&out), "--force"]),
        "metrics.jsonl",
    );
}

/// `predict` takes PNG files or a directory of them as well as IDX files, with the same labels
/// for the same pixels, and with --probabilities writes CSV rows whose probabilities sum to 1
/// and whose label is their argmax; a file that is not an image, or of another size, is named.
#[test]
fn predict_reads_png_files_and_writes_probabilities() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("ladder");
    assert!(train(&run, &[]).status.success());
    let test = ladder::data::load_embedded(10).unwrap().test;
    let pngs = tmp.path().join("pngs");
    std::fs::create_dir(&pngs).unwrap();
    let mut bytes = Vec::new();
    for i in 0..4 {
        let px: Vec<u8> = test
            .row(i)
            .iter()
            .map(|v| (v * 255.0).round() as u8)
            .collect();
        bytes.extend(&px);
        image::GrayImage::from_raw(28, 28, px)
            .unwrap()
            .save(pngs.join(format!("digit-{i}.png")))
            .unwrap();
    }
    let idx = tmp.path().join("four-idx3-ubyte");
    write_idx_file(&idx, &[4, 28, 28], &bytes).unwrap();
    let labels = |o: std::process::Output| -> Vec<String> {
        assert!(o.status.success(), "{}", stderr(&o));
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(String::from)
            .collect()
    };
    let from_idx = labels(ladder(&["predict", s(&run), s(&idx)]));
    let from_dir = labels(ladder(&["predict", s(&run), s(&pngs)]));
    assert_eq!(from_idx, from_dir);
    let one = labels(ladder(&["predict", s(&run), s(&pngs.join("digit-2.png"))]));
    assert_eq!(one, vec![from_idx[2].clone()]);
    let csv = labels(ladder(&["predict", s(&run), s(&pngs), "--probabilities"]));
    assert_eq!(
        csv[0],
        format!(
            "input,label,{}",
            (0..10)
                .map(|c| format!("p_{c}"))
                .collect::<Vec<_>>()
                .join(",")
        )
    );
    for (row, label) in csv[1..].iter().zip(&from_idx) {
        let f: Vec<&str> = row.split(',').collect();
        assert_eq!(f[1], label);
        let p: Vec<f64> = f[2..].iter().map(|v| v.parse().unwrap()).collect();
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-4, "{row}");
        let best = (0..10).fold(0, |b, j| if p[j] > p[b] { j } else { b });
        assert_eq!(best.to_string(), f[1]);
    }
    std::fs::write(pngs.join("broken.png"), b"not a png").unwrap();
    assert_fails(&ladder(&["predict", s(&run), s(&pngs)]), "broken.png");
    std::fs::remove_file(pngs.join("broken.png")).unwrap();
    image::GrayImage::new(20, 20)
        .save(pngs.join("small.png"))
        .unwrap();
    assert_fails(
        &ladder(&["predict", s(&run), s(&pngs)]),
        "every image must have one size",
    );
}
