//! `ladder tune`: a method's search space tried on a validation split, the setting of the
//! lowest validation error chosen and trained on the final seeds.

mod common;

use std::path::Path;

use common::{TINY, assert_fails, ladder, metrics, read, stderr, summary};

fn tune(out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "tune",
        "--out",
        out.to_str().unwrap(),
        "--validation-samples",
        "300",
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(TINY);
    ladder(&args)
}

#[test]
fn a_tune_chooses_on_validation_and_reports_its_final_seeds() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tune");
    let grid = [
        "--grid",
        "lr=0.0002,0.004",
        "--budget",
        "2",
        "--seeds",
        "1,2",
    ];
    let o = tune(&out, &grid);
    assert!(o.status.success(), "{}", stderr(&o));
    let report = summary(&out);

    // The chosen setting is the search cell of the lowest validation error, whatever its
    // test error.
    let cells = report["search"]["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 2);
    let best = cells
        .iter()
        .min_by(|a, b| {
            let v = |c: &serde_json::Value| c["validation_mean"].as_f64().unwrap();
            v(a).total_cmp(&v(b))
        })
        .unwrap();
    assert_eq!(report["chosen"], best["settings"]);
    let lr = best["settings"][0][1].as_str().unwrap().to_string();

    // The final runs: seed 1 reused from the search, seed 2 trained; their errors, median
    // and quartiles as reported.
    let final_cell = out.join("final").join(format!("lr={lr}"));
    let search_cell = out.join("search").join(format!("lr={lr}"));
    assert_eq!(
        metrics(&final_cell.join("seed-1")),
        metrics(&search_cell.join("seed-1"))
    );
    let errors: Vec<f64> = [1, 2]
        .iter()
        .map(|s| {
            summary(&final_cell.join(format!("seed-{s}")))["test_error_percent"]
                .as_f64()
                .unwrap()
        })
        .collect();
    let reported: Vec<f64> = report["test_errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_f64().unwrap())
        .collect();
    assert_eq!(reported, errors);
    let mid = (errors[0] + errors[1]) / 2.0;
    assert!((report["test_median"].as_f64().unwrap() - mid).abs() < 1e-9);
    let (lo, hi) = (errors[0].min(errors[1]), errors[0].max(errors[1]));
    let q = &report["test_quartiles"];
    assert!((q[0].as_f64().unwrap() - (lo + 0.25 * (hi - lo))).abs() < 1e-9);
    assert!((q[1].as_f64().unwrap() - (lo + 0.75 * (hi - lo))).abs() < 1e-9);
    assert!(read(out.join("tune.md")).contains(&format!("lr = {lr}")));

    // The reused run is the run `train` gives for the chosen setting and seed.
    let alone = dir.path().join("alone");
    let mut args = vec![
        "train",
        "--out",
        alone.to_str().unwrap(),
        "--validation-samples",
        "300",
        "--lr",
        &lr,
    ];
    args.extend_from_slice(TINY);
    let o = ladder(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(metrics(&alone), metrics(&final_cell.join("seed-1")));
    assert_eq!(
        read(alone.join("split.json")),
        read(final_cell.join("seed-1/split.json"))
    );

    // Resumed, a finished tune trains nothing and reports the same; a new tune is refused in
    // its directory; --status names every run done.
    let stamp = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let before = stamp(&final_cell.join("seed-2/metrics.jsonl"));
    let o = ladder(&["tune", "--resume", out.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stamp(&final_cell.join("seed-2/metrics.jsonl")), before);
    assert_eq!(summary(&out), report);
    assert_fails(&tune(&out, &grid), "--resume");
    let o = ladder(&["tune", "--status", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(text.matches(": done").count(), 3, "{text}");
}

#[test]
fn tunes_that_would_not_be_fair_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t");
    assert_fails(
        &tune(&out, &["--grid", "lr=0.001,0.002,0.004", "--budget", "2"]),
        "over the budget of 2",
    );
    assert_fails(&tune(&out, &["--seed", "3"]), "--select-seeds");
    assert_fails(&tune(&out, &["--grid", "method=pi,vat"]), "one method");
    assert_fails(
        &ladder(&["tune", "--preset", "mnist-100-lvan", "--quiet"]),
        "no built-in search space",
    );
    assert!(!out.exists(), "a refused tune writes nothing");
}
