//! Seed lists (`1-10`, `1,3,5`, `1-3,7`) and the mean ± std the paper's tables report.

use crate::error::{LadderError, Result};

/// More runs than anyone would wait for: a typo, not a plan.
pub const MAX_SEEDS: usize = 10_000;

/// Parses a comma list of seeds and inclusive ranges.
pub fn parse_seeds(s: &str) -> Result<Vec<u64>> {
    let bad = |part: &str| {
        LadderError::Setting(format!(
            "cannot parse seeds '{s}' at '{part}': expected a list like 1-10 or 1,2,5"
        ))
    };
    let mut seeds = Vec::new();
    for part in s.split(',').map(str::trim) {
        match part.split_once('-') {
            Some((a, b)) => {
                let a: u64 = a.trim().parse().map_err(|_| bad(part))?;
                let b: u64 = b.trim().parse().map_err(|_| bad(part))?;
                if b < a || b - a >= MAX_SEEDS as u64 {
                    return Err(bad(part));
                }
                seeds.extend(a..=b);
                if seeds.len() > MAX_SEEDS {
                    break;
                }
            }
            None => seeds.push(part.parse().map_err(|_| bad(part))?),
        }
    }
    if seeds.len() > MAX_SEEDS {
        return Err(LadderError::Setting(format!(
            "'{s}' lists {} seeds; at most {MAX_SEEDS} are allowed",
            seeds.len()
        )));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(d) = seeds.iter().find(|s| !seen.insert(**s)) {
        return Err(LadderError::Setting(format!(
            "seed {d} is listed twice in '{s}'"
        )));
    }
    Ok(seeds)
}

/// Mean and sample standard deviation (n − 1 in the denominator; 0 for a single value).
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_lists() {
        assert_eq!(parse_seeds("1-3").unwrap(), vec![1, 2, 3]);
        assert_eq!(parse_seeds("5, 2,7-8").unwrap(), vec![5, 2, 7, 8]);
        assert!(
            parse_seeds("0-9999,10000-10005")
                .unwrap_err()
                .to_string()
                .contains("at most")
        );
        for bad in ["", "a", "3-1", "1-2-3", "1,1"] {
            assert!(parse_seeds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mean_and_sample_std() {
        let (m, s) = mean_std(&[1.0, 2.0, 3.0]);
        assert_eq!(m, 2.0);
        assert!((s - 1.0).abs() < 1e-12);
        assert_eq!(mean_std(&[4.0]), (4.0, 0.0));
    }
}
