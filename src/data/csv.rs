//! Tabular data (004 Sec. 3.6): CSV files of numeric features plus an integer class column, as
//! in the UCI Covertype file (54 features, classes 1–7). Features are standardised per column
//! with the mean and standard deviation of the training part only, so the test part carries
//! no information into training.

use std::path::Path;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_xoshiro::Xoshiro256PlusPlus;

use super::DataError;
use super::dataset::{Dataset, TrainTest};

/// How to read a CSV file.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvSpec {
    /// Column holding the class (0-based); `None` = the last one.
    pub label_column: Option<usize>,
    /// The first line names the columns.
    pub has_header: bool,
    /// The smallest class value (1 for Covertype); classes are `first_label..first_label +
    /// num_classes`.
    pub first_label: i64,
    pub num_classes: usize,
}

/// Features (row-major) and 0-based classes of a CSV file.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvTable {
    pub features: Vec<f32>,
    pub labels: Vec<u32>,
    pub columns: usize,
}

/// Reads `path`; a row with the wrong number of columns, a value that is not a finite number
/// or a class outside the range is an error naming its line.
pub fn read_csv(path: &Path, spec: &CsvSpec) -> Result<CsvTable, DataError> {
    let file = path.display().to_string();
    let mut table = CsvTable {
        features: Vec::new(),
        labels: Vec::new(),
        columns: 0,
    };
    let mut width = None;
    for (line, record) in records(path, spec.has_header)? {
        let bad = |reason: String| DataError::Csv {
            file: file.clone(),
            line,
            reason,
        };
        let w = *width.get_or_insert(record.len());
        if record.len() != w {
            return Err(bad(format!(
                "{} columns, but the first row has {w}",
                record.len()
            )));
        }
        if w < 2 {
            return Err(bad("a row needs at least one feature and a class".into()));
        }
        let label_col = spec.label_column.unwrap_or(w - 1);
        if label_col >= w {
            return Err(bad(format!(
                "no class column {label_col}: rows have {w} columns"
            )));
        }
        for (c, field) in record.iter().enumerate() {
            if c == label_col {
                table.labels.push(class_index(field, spec).map_err(&bad)?);
                continue;
            }
            let v: f32 = field
                .parse()
                .map_err(|_| bad(format!("column {}: '{field}' is not a number", c + 1)))?;
            if !v.is_finite() {
                return Err(bad(format!("column {}: '{field}' is not finite", c + 1)));
            }
            table.features.push(v);
        }
        table.columns = w - 1;
    }
    if table.labels.is_empty() {
        return Err(DataError::CsvFile {
            file,
            reason: "no data rows".into(),
        });
    }
    Ok(table)
}

/// The rows of `path` with their line numbers, trimmed, blank lines left out.
fn records(path: &Path, has_header: bool) -> Result<Vec<(u64, ::csv::StringRecord)>, DataError> {
    let file = path.display().to_string();
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(has_header)
        .flexible(true)
        .trim(::csv::Trim::All)
        .from_path(path)
        .map_err(|e| csv_error(&file, e))?;
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(&file, e))?;
        if !(record.len() == 1 && record[0].is_empty()) {
            rows.push((record.position().map_or(0, |p| p.line()), record));
        }
    }
    Ok(rows)
}

fn csv_error(file: &str, e: ::csv::Error) -> DataError {
    match e.position() {
        Some(p) => DataError::Csv {
            file: file.into(),
            line: p.line(),
            reason: e.to_string(),
        },
        None => DataError::CsvFile {
            file: file.into(),
            reason: e.to_string(),
        },
    }
}

fn class_index(field: &str, spec: &CsvSpec) -> Result<u32, String> {
    let v: i64 = field
        .parse()
        .map_err(|_| format!("class '{field}' is not an integer"))?;
    let last = spec.first_label + spec.num_classes as i64 - 1;
    if v < spec.first_label || v > last {
        return Err(format!(
            "class {v} is unknown: classes are {}..={last} ({} classes)",
            spec.first_label, spec.num_classes
        ));
    }
    Ok((v - spec.first_label) as u32)
}

fn dataset(features: Vec<f32>, labels: Vec<u32>, dim: usize, num_classes: usize) -> Dataset {
    Dataset {
        n: labels.len(),
        images: features.into(),
        labels,
        dim,
        image_shape: vec![dim],
        num_classes,
    }
}

/// Per-column standardisation x ↦ (x − mean)/std with the statistics of a training part: a
/// CSV run's features as its network saw them, for new rows too.
#[derive(Debug, Clone, PartialEq)]
pub struct Standardiser {
    pub mean: Vec<f64>,
    /// A constant column gets std 1.
    pub std: Vec<f64>,
}

impl Standardiser {
    /// The statistics of `train`.
    pub fn fit(train: &Dataset) -> Standardiser {
        let d = train.dim;
        let n = train.len().max(1) as f64;
        let mut mean = vec![0f64; d];
        let values = train.images.all();
        for r in values.chunks(d) {
            for (m, &v) in mean.iter_mut().zip(r) {
                *m += v as f64 / n;
            }
        }
        let mut var = vec![0f64; d];
        for r in values.chunks(d) {
            for ((s, &v), m) in var.iter_mut().zip(r).zip(&mean) {
                *s += (v as f64 - m).powi(2) / n;
            }
        }
        let std = var
            .into_iter()
            .map(|v| if v > 0.0 { v.sqrt() } else { 1.0 })
            .collect();
        Standardiser { mean, std }
    }

    /// Standardises `ds` in place; its rows must have the fitted width.
    pub fn apply(&self, ds: &mut Dataset) -> Result<(), DataError> {
        if ds.dim != self.mean.len() {
            return Err(DataError::Preprocess(format!(
                "rows of {} features, but the standardisation was fitted on {}",
                ds.dim,
                self.mean.len()
            )));
        }
        for r in ds.images.to_mut().chunks_mut(self.mean.len()) {
            for ((v, m), s) in r.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = ((*v as f64 - m) / s) as f32;
            }
        }
        Ok(())
    }
}

/// Training and test sets from CSV: the test rows come from `test` if given, otherwise a
/// seeded random `test_fraction` of `train`'s rows. Standardised with the training part's
/// statistics, which come back with them.
pub fn load_csv(
    train: &Path,
    test: Option<&Path>,
    test_fraction: f64,
    spec: &CsvSpec,
) -> Result<(TrainTest, Standardiser), DataError> {
    let t = read_csv(train, spec)?;
    let dim = t.columns;
    let mut pair = match test {
        Some(path) => {
            let u = read_csv(path, spec)?;
            if u.columns != dim {
                return Err(DataError::CsvFile {
                    file: path.display().to_string(),
                    reason: format!(
                        "{} feature columns, but {} has {dim}",
                        u.columns,
                        train.display()
                    ),
                });
            }
            TrainTest {
                train: dataset(t.features, t.labels, dim, spec.num_classes),
                test: dataset(u.features, u.labels, dim, spec.num_classes),
            }
        }
        None => {
            let n = t.labels.len();
            let n_test = (n as f64 * test_fraction).round() as usize;
            if !(0.0..1.0).contains(&test_fraction) || n_test == 0 || n_test >= n {
                return Err(DataError::CsvFile {
                    file: train.display().to_string(),
                    reason: format!(
                        "a test fraction of {test_fraction} of {n} rows leaves no test or no training rows"
                    ),
                });
            }
            let all = dataset(t.features, t.labels, dim, spec.num_classes);
            let mut order: Vec<usize> = (0..n).collect();
            order.shuffle(&mut Xoshiro256PlusPlus::seed_from_u64(0));
            let (test_idx, train_idx) = order.split_at(n_test);
            let sorted = |v: &[usize]| {
                let mut v = v.to_vec();
                v.sort_unstable();
                v
            };
            TrainTest {
                train: all.subset(&sorted(train_idx)),
                test: all.subset(&sorted(test_idx)),
            }
        }
    };
    let standardiser = Standardiser::fit(&pair.train);
    standardiser.apply(&mut pair.train)?;
    standardiser.apply(&mut pair.test)?;
    Ok((pair, standardiser))
}

/// Feature rows to predict on: every column a number, no class column. A first line that is
/// not all numbers is a header and skipped. A ragged row or a value that is not a finite number
/// is an error naming its line.
pub fn read_feature_rows(path: &Path) -> Result<Dataset, DataError> {
    let file = path.display().to_string();
    let (mut features, mut width, mut n) = (Vec::new(), None, 0);
    for (line, record) in records(path, false)? {
        let bad = |reason: String| DataError::Csv {
            file: file.clone(),
            line,
            reason,
        };
        let header = width.is_none() && record.iter().any(|f| f.parse::<f32>().is_err());
        if header {
            width = Some(record.len());
            continue;
        }
        let w = *width.get_or_insert(record.len());
        if record.len() != w {
            return Err(bad(format!(
                "{} columns, but the first row has {w}",
                record.len()
            )));
        }
        for (c, field) in record.iter().enumerate() {
            let v: f32 = field
                .parse()
                .ok()
                .filter(|v: &f32| v.is_finite())
                .ok_or_else(|| {
                    bad(format!(
                        "column {}: '{field}' is not a finite number",
                        c + 1
                    ))
                })?;
            features.push(v);
        }
        n += 1;
    }
    let Some(dim) = width.filter(|_| n > 0) else {
        return Err(DataError::CsvFile {
            file,
            reason: "no data rows".into(),
        });
    };
    Ok(Dataset {
        images: features.into(),
        labels: vec![0; n],
        n,
        dim,
        image_shape: vec![dim],
        num_classes: 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covertype_like() -> CsvSpec {
        CsvSpec {
            label_column: None,
            has_header: false,
            first_label: 1,
            num_classes: 7,
        }
    }

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn reads_features_and_classes_and_standardises_on_the_training_part() {
        let dir = tempfile::tempdir().unwrap();
        let train = write(dir.path(), "train.csv", "1,10,1\n3,10,7\n\n5,10,2\n");
        let test = write(dir.path(), "test.csv", "7, 10, 3\n");
        let t = read_csv(&train, &covertype_like()).unwrap();
        assert_eq!((t.columns, t.labels.clone()), (2, vec![0, 6, 1]));
        let (pair, _) = load_csv(&train, Some(&test), 0.0, &covertype_like()).unwrap();
        // Column 1: mean 3, std √(8/3); the constant column 2 only loses its mean.
        let s = (8.0f64 / 3.0).sqrt();
        let expect = [(1.0 - 3.0) / s, 0.0, 0.0, 0.0, (5.0 - 3.0) / s, 0.0];
        for (a, b) in pair.train.images.all().iter().zip(expect) {
            assert!((*a as f64 - b).abs() < 1e-6, "{:?}", pair.train.images);
        }
        assert!((pair.test.images.all()[0] as f64 - 4.0 / s).abs() < 1e-6);
        assert_eq!(pair.test.labels, vec![2]);
    }

    #[test]
    fn a_header_and_another_class_column_are_honoured() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "h.csv",
            "class,a,b\n0,1.5,2\n1,2.5,3\n2,0,0\n3,1,1\n",
        );
        let spec = CsvSpec {
            label_column: Some(0),
            has_header: true,
            first_label: 0,
            num_classes: 4,
        };
        let (pair, _) = load_csv(&p, None, 0.25, &spec).unwrap();
        assert_eq!(
            (pair.train.len(), pair.test.len(), pair.train.dim),
            (3, 1, 2)
        );
    }

    #[test]
    fn bad_rows_name_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let spec = covertype_like();
        let err = |text: &str| {
            let p = write(dir.path(), "bad.csv", text);
            read_csv(&p, &spec).unwrap_err().to_string()
        };
        let e = err("1,2,3\n1,2\n");
        assert!(
            e.contains("line 2") && e.contains("2 columns, but the first row has 3"),
            "{e}"
        );
        let e = err("1,2,3\n1,x,3\n");
        assert!(
            e.contains("line 2") && e.contains("'x' is not a number"),
            "{e}"
        );
        let e = err("1,2,3\n1,2,9\n");
        assert!(
            e.contains("line 2") && e.contains("class 9 is unknown"),
            "{e}"
        );
        let e = err("1,2,2.5\n");
        assert!(e.contains("line 1") && e.contains("not an integer"), "{e}");
        let e = err("1,inf,3\n");
        assert!(e.contains("not finite"), "{e}");
        assert!(err("").contains("no data rows"));
        let e = load_csv(&dir.path().join("missing.csv"), None, 0.2, &spec)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.csv"), "{e}");
        let p = write(dir.path(), "two.csv", "1,1\n2,2\n");
        assert!(
            load_csv(&p, None, 0.9, &spec)
                .unwrap_err()
                .to_string()
                .contains("test fraction")
        );
    }
}
