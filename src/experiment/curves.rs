//! `ladder plot`: learning curves from the `metrics.jsonl` of runs of any method. Every number
//! an epoch's line holds becomes a series (`cost.total`, `cost.denoising.0`, `train_cost`,
//! `validation_error_percent`, ...), except the epoch itself, timings and settings (`lr`,
//! `momentum`). Costs go into one figure (logarithmic axis), error rates into another. A
//! multi-seed directory is drawn as the mean over its seeds with a band of one standard
//! deviation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{LadderError, Result};
use crate::experiment::plots::{Curve, curve_chart};
use crate::experiment::run::{METRICS_FILE, SEEDS_FILE, output_dir, read_json};
use crate::experiment::seeds::mean_std;

/// The figures [`plot_runs`] writes.
pub const CURVE_FILES: [&str; 4] = ["costs.png", "costs.svg", "errors.png", "errors.svg"];

/// Top-level fields that are not learning curves (timings, `*seconds` at any depth, are not
/// either).
const SKIPPED: [&str; 4] = ["epoch", "lr", "momentum", "best"];

/// Every series of one run: name → (epoch, value).
type Series = BTreeMap<String, Vec<(f64, f64)>>;

fn flatten(prefix: &str, v: &serde_json::Value, epoch: f64, out: &mut Series) {
    match v {
        serde_json::Value::Number(n) => {
            if let Some(x) = n.as_f64() {
                out.entry(prefix.to_string()).or_default().push((epoch, x));
            }
        }
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                if prefix.is_empty() && SKIPPED.contains(&k.as_str()) || k.ends_with("seconds") {
                    continue;
                }
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&name, v, epoch, out);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten(&format!("{prefix}.{i}"), v, epoch, out);
            }
        }
        _ => {}
    }
}

/// The series of the run in `dir`.
pub fn read_series(dir: &Path) -> Result<Series> {
    let path = dir.join(METRICS_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| LadderError::io(&path, e))?;
    let mut out = Series::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let bad = |reason: String| LadderError::Format {
            path: path.clone(),
            reason: format!("line {}: {reason}", i + 1),
        };
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        let epoch = v
            .get("epoch")
            .and_then(serde_json::Value::as_f64)
            .ok_or_else(|| bad("no epoch number".into()))?;
        flatten("", &v, epoch, &mut out);
    }
    if out.is_empty() {
        return Err(LadderError::RunDir {
            path: dir.into(),
            reason: format!("its {METRICS_FILE} holds no epoch yet"),
        });
    }
    Ok(out)
}

/// The curves of `name`'s run (or multi-seed run) in `dir`: one per series, named
/// "NAME: series"; for several seeds the mean and the band of one standard deviation over the
/// seeds that reached each epoch.
pub fn run_curves(name: &str, dir: &Path, pattern: usize) -> Result<Vec<Curve>> {
    let seeds_path = dir.join(SEEDS_FILE);
    let runs: Vec<Series> = if seeds_path.exists() {
        let seeds: Vec<u64> = read_json(&seeds_path)?;
        seeds
            .iter()
            .map(|s| dir.join(format!("seed-{s}")))
            .filter(|d| d.join(METRICS_FILE).exists())
            .map(|d| read_series(&d))
            .collect::<Result<_>>()?
    } else {
        vec![read_series(dir)?]
    };
    if runs.is_empty() {
        return Err(LadderError::RunDir {
            path: dir.into(),
            reason: "no seed of this multi-seed run has trained an epoch yet".into(),
        });
    }
    let mut names: Vec<&String> = runs.iter().flat_map(|r| r.keys()).collect();
    names.sort();
    names.dedup();
    Ok(names
        .into_iter()
        .map(|series| {
            let mut by_epoch: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
            for r in &runs {
                for &(e, v) in r.get(series).into_iter().flatten() {
                    by_epoch.entry(e as u64).or_default().push(v);
                }
            }
            let mut curve = Curve {
                name: format!("{name}: {series}"),
                mean: Vec::new(),
                band: Vec::new(),
                color: 0,
                pattern,
            };
            for (e, values) in by_epoch {
                let (mean, std) = mean_std(&values);
                curve.mean.push((e as f64, mean));
                if values.len() > 1 {
                    curve.band.push((e as f64, mean - std, mean + std));
                }
            }
            curve
        })
        .collect())
}

fn is_error(curve: &Curve) -> bool {
    curve.name.contains("error")
}

/// The same quantity gets the same colour in every run (runs differ by line pattern).
fn colour_by_quantity(curves: &mut [Curve]) {
    let quantity = |c: &Curve| c.name.rsplit(": ").next().unwrap_or_default().to_string();
    let mut names: Vec<String> = curves.iter().map(quantity).collect();
    names.sort();
    names.dedup();
    for c in curves.iter_mut() {
        c.color = names.binary_search(&quantity(c)).unwrap_or(0);
    }
}

/// Draws the learning curves of every `(name, run directory)` into `out`: `costs.png`/`.svg`
/// and `errors.png`/`.svg`. An earlier figure there is kept unless `force`.
pub fn plot_runs(runs: &[(String, PathBuf)], out: &Path, force: bool) -> Result<Vec<PathBuf>> {
    let mut curves = Vec::new();
    for (i, (name, dir)) in runs.iter().enumerate() {
        curves.extend(run_curves(name, dir, i)?);
    }
    output_dir(out, &CURVE_FILES, force)?;
    let (mut errors, mut costs): (Vec<Curve>, Vec<Curve>) = curves.into_iter().partition(is_error);
    colour_by_quantity(&mut errors);
    colour_by_quantity(&mut costs);
    let mut written = Vec::new();
    if !costs.is_empty() {
        curve_chart(
            &out.join("costs"),
            "Training cost",
            "cost (log scale)",
            &costs,
            true,
        )?;
        written.extend([out.join("costs.png"), out.join("costs.svg")]);
    }
    if !errors.is_empty() {
        curve_chart(
            &out.join("errors"),
            "Error rate",
            "error (%)",
            &errors,
            false,
        )?;
        written.extend([out.join("errors.png"), out.join("errors.svg")]);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_number_of_a_metrics_line_is_a_series_but_the_settings() {
        let mut s = Series::new();
        let line: serde_json::Value = serde_json::from_str(
            r#"{"epoch":3,"lr":0.002,"cost":{"total":1.5,"denoising":[2.0,null]},
                "validation_error_percent":4.5,"test_error_percent":null,"seconds":9.0}"#,
        )
        .unwrap();
        flatten("", &line, 3.0, &mut s);
        let names: Vec<&str> = s.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            ["cost.denoising.0", "cost.total", "validation_error_percent"]
        );
        assert_eq!(s["cost.total"], vec![(3.0, 1.5)]);
    }
}
