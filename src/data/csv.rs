//! Tabular data (004 Sec. 3.6): CSV files of numeric features plus an integer class column, as
//! in the UCI Covertype file (54 features, classes 1–7). Features are standardised per column
//! with the mean and standard deviation of the training part only, so the test part carries
//! no information into training.

use std::path::Path;
use std::sync::Arc;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_xoshiro::Xoshiro256PlusPlus;

use super::DataError;
use super::dataset::{Dataset, TrainTest};
use super::pixels::Pixels;

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

/// Reads `path` as one set: the tests' and [`load_csv`]'s reader. A row with the wrong number of
/// columns, a value that is not a finite number or a class outside the range is an error naming
/// its line.
pub fn read_csv(path: &Path, spec: &CsvSpec) -> Result<Dataset, DataError> {
    let (n, width) = shape(path, spec)?;
    check_budget(&path.display().to_string(), n, width)?;
    let mut sets = read_rows(path, spec, width, &[n], |i| (0, i))?;
    Ok(sets.pop().expect("one set"))
}

/// The number of data rows of `path` and the width of its first one, every row checked: a
/// first pass that keeps nothing, so that the second writes every row straight to its place
/// in its set (no copy of the file as text, no growing buffers, no subsets copied out of the
/// whole), and a bad row is reported before anything else about the file.
fn shape(path: &Path, spec: &CsvSpec) -> Result<(usize, usize), DataError> {
    let file = path.display().to_string();
    let (mut n, mut width, mut scratch) = (0, 0, Vec::new());
    for_each_record(path, spec.has_header, |line, record| {
        if n == 0 {
            width = record.len();
            scratch = vec![0.0; width.saturating_sub(1)];
        }
        parse_row(record, width, spec, &mut scratch).map_err(|reason| DataError::Csv {
            file: file.clone(),
            line,
            reason,
        })?;
        n += 1;
        Ok(())
    })?;
    no_rows_is_an_error(&file, n)?;
    Ok((n, width))
}

fn no_rows_is_an_error(file: &str, n: usize) -> Result<(), DataError> {
    match n {
        0 => Err(DataError::CsvFile {
            file: file.into(),
            reason: "no data rows".into(),
        }),
        _ => Ok(()),
    }
}

/// Refuses `what` when `rows` rows `width` columns wide (held as f32 features and a u32
/// class each) need more memory than the budget: checked once for everything a load reads,
/// before any of it is allocated.
fn check_budget(what: &str, rows: usize, width: usize) -> Result<(), DataError> {
    super::memory::check(what, (rows * width.max(1) * 4) as u64)
}

/// The data rows of `path` (`sizes.iter().sum()` of them, the first `width` columns wide)
/// read into `sizes.len()` sets, its i-th data row to row `j` of set `k` where `place(i) = (k,
/// j)`.
fn read_rows(
    path: &Path,
    spec: &CsvSpec,
    width: usize,
    sizes: &[usize],
    place: impl Fn(usize) -> (usize, usize),
) -> Result<Vec<Dataset>, DataError> {
    let dim = width.saturating_sub(1);
    let parse = |record: &::csv::StringRecord, out: &mut [f32]| parse_row(record, width, spec, out);
    let sets = fill_rows(path, (spec.has_header, false), dim, sizes, place, parse)?;
    Ok(sets
        .into_iter()
        .map(|(features, labels)| dataset(features, labels, dim, spec.num_classes))
        .collect())
}

/// One set as [`fill_rows`] fills it: its features, row after row, and its classes.
type FilledSet = (Arc<[f32]>, Vec<u32>);

/// The second pass of both readers: the data rows of `path` (`sizes.iter().sum()` of them,
/// after the CSV header when `has_header` and then the first record when `skip_first`), each
/// parsed by `parse` into its `dim` features (returning its class) in row `j` of set `k`,
/// where `place(i) = (k, j)` for the i-th. The sets are allocated once, at their final size;
/// a file that changed since the first pass counted it is an error.
fn fill_rows(
    path: &Path,
    (has_header, skip_first): (bool, bool),
    dim: usize,
    sizes: &[usize],
    place: impl Fn(usize) -> (usize, usize),
    mut parse: impl FnMut(&::csv::StringRecord, &mut [f32]) -> Result<u32, String>,
) -> Result<Vec<FilledSet>, DataError> {
    let file = path.display().to_string();
    let rows: usize = sizes.iter().sum();
    let mut sets: Vec<FilledSet> = sizes
        .iter()
        .map(|&n| (std::iter::repeat_n(0.0, n * dim).collect(), vec![0; n]))
        .collect();
    let (mut i, mut skip) = (0, skip_first);
    for_each_record(path, has_header, |line, record| {
        if std::mem::take(&mut skip) {
            return Ok(());
        }
        let bad = |reason: String| DataError::Csv {
            file: file.clone(),
            line,
            reason,
        };
        if i == rows {
            return Err(bad("the file grew while it was read".into()));
        }
        let (k, j) = place(i);
        let (features, labels) = &mut sets[k];
        let features = Arc::get_mut(features).expect("not shared while filled");
        labels[j] = parse(record, &mut features[j * dim..(j + 1) * dim]).map_err(bad)?;
        i += 1;
        Ok(())
    })?;
    if i != rows {
        return Err(DataError::CsvFile {
            file,
            reason: "the file shrank while it was read".into(),
        });
    }
    Ok(sets)
}

/// Writes `record`'s features to `out` and returns its 0-based class; rows must be `width`
/// wide, as the first one is.
fn parse_row(
    record: &::csv::StringRecord,
    width: usize,
    spec: &CsvSpec,
    out: &mut [f32],
) -> Result<u32, String> {
    if record.len() != width {
        return Err(format!(
            "{} columns, but the first row has {width}",
            record.len()
        ));
    }
    if width < 2 {
        return Err("a row needs at least one feature and a class".into());
    }
    let label_col = spec.label_column.unwrap_or(width - 1);
    if label_col >= width {
        return Err(format!(
            "no class column {label_col}: rows have {width} columns"
        ));
    }
    let mut label = 0;
    let mut out = out.iter_mut();
    for (c, field) in record.iter().enumerate() {
        if c == label_col {
            label = class_index(field, spec)?;
            continue;
        }
        let v: f32 = field
            .parse()
            .map_err(|_| format!("column {}: '{field}' is not a number", c + 1))?;
        if !v.is_finite() {
            return Err(format!("column {}: '{field}' is not finite", c + 1));
        }
        *out.next().expect("width - 1 features") = v;
    }
    Ok(label)
}

/// Calls `row` on each row of `path` with its line number, trimmed, blank lines left out; one
/// record is reused, so the file is never held in memory.
fn for_each_record(
    path: &Path,
    has_header: bool,
    mut row: impl FnMut(u64, &::csv::StringRecord) -> Result<(), DataError>,
) -> Result<(), DataError> {
    let file = path.display().to_string();
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(has_header)
        .flexible(true)
        .trim(::csv::Trim::All)
        .from_path(path)
        .map_err(|e| csv_error(&file, e))?;
    let mut record = ::csv::StringRecord::new();
    while reader
        .read_record(&mut record)
        .map_err(|e| csv_error(&file, e))?
    {
        if !(record.len() == 1 && record[0].is_empty()) {
            row(record.position().map_or(0, |p| p.line()), &record)?;
        }
    }
    Ok(())
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

fn dataset(features: Arc<[f32]>, labels: Vec<u32>, dim: usize, num_classes: usize) -> Dataset {
    Dataset {
        n: labels.len(),
        images: Pixels::Floats(features),
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
    let (n, width) = shape(train, spec)?;
    let mut sets = match test {
        Some(path) => {
            let (m, test_width) = shape(path, spec)?;
            if test_width != width {
                return Err(DataError::CsvFile {
                    file: path.display().to_string(),
                    reason: format!(
                        "{} feature columns, but {} has {}",
                        test_width.saturating_sub(1),
                        train.display(),
                        width.saturating_sub(1)
                    ),
                });
            }
            let what = format!("{} with its test file {}", train.display(), path.display());
            check_budget(&what, n + m, width)?;
            let mut sets = read_rows(train, spec, width, &[n], |i| (0, i))?;
            sets.extend(read_rows(path, spec, width, &[m], |i| (0, i))?);
            sets
        }
        None => {
            let n_test = (n as f64 * test_fraction).round() as usize;
            if !(0.0..1.0).contains(&test_fraction) || n_test == 0 || n_test >= n {
                return Err(DataError::CsvFile {
                    file: train.display().to_string(),
                    reason: format!(
                        "a test fraction of {test_fraction} of {n} rows leaves no test or no training rows"
                    ),
                });
            }
            check_budget(&train.display().to_string(), n, width)?;
            let place = fraction_split(n, n_test);
            read_rows(train, spec, width, &[n - n_test, n_test], |i| place[i])?
        }
    };
    let test = sets.pop().expect("two sets");
    let train = sets.pop().expect("two sets");
    let mut pair = TrainTest { train, test };
    let standardiser = Standardiser::fit(&pair.train);
    standardiser.apply(&mut pair.train)?;
    standardiser.apply(&mut pair.test)?;
    Ok((pair, standardiser))
}

/// Where each of `n` rows goes when a seeded random `n_test` of them are the test set: `(0,
/// j)` for the j-th training row, `(1, j)` for the j-th test row, both in file order.
fn fraction_split(n: usize, n_test: usize) -> Vec<(usize, usize)> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut Xoshiro256PlusPlus::seed_from_u64(0));
    let mut is_test = vec![false; n];
    for &i in &order[..n_test] {
        is_test[i] = true;
    }
    let mut counts = [0, 0];
    is_test
        .into_iter()
        .map(|t| {
            let k = usize::from(t);
            counts[k] += 1;
            (k, counts[k] - 1)
        })
        .collect()
}

/// Feature rows to predict on: every column a number, no class column. A first line that is
/// not all numbers is a header and skipped. A ragged row or a value that is not a finite number
/// is an error naming its line.
pub fn read_feature_rows(path: &Path) -> Result<Dataset, DataError> {
    let file = path.display().to_string();
    // First pass: the width, whether the first line is a header, how many rows.
    let (mut records, mut width, mut header) = (0, 0, false);
    for_each_record(path, false, |_, record| {
        if records == 0 {
            width = record.len();
            header = record.iter().any(|f| f.parse::<f32>().is_err());
        }
        records += 1;
        Ok(())
    })?;
    let n = records - usize::from(header);
    no_rows_is_an_error(&file, n)?;
    check_budget(&file, n, width + 1)?;
    let parse = |record: &::csv::StringRecord, out: &mut [f32]| {
        if record.len() != width {
            return Err(format!(
                "{} columns, but the first row has {width}",
                record.len()
            ));
        }
        for ((c, field), v) in record.iter().enumerate().zip(out) {
            *v = field
                .parse()
                .ok()
                .filter(|v: &f32| v.is_finite())
                .ok_or_else(|| format!("column {}: '{field}' is not a finite number", c + 1))?;
        }
        Ok(0)
    };
    let (features, labels) = fill_rows(path, (false, header), width, &[n], |i| (0, i), parse)?
        .pop()
        .expect("one set");
    Ok(Dataset {
        images: Pixels::Floats(features),
        labels,
        n,
        dim: width,
        image_shape: vec![width],
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
        assert_eq!((t.dim, t.labels.clone()), (2, vec![0, 6, 1]));
        assert_eq!(*t.images.all(), [1.0, 10.0, 3.0, 10.0, 5.0, 10.0]);
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

    /// The split is written straight into both sets, and equals the seeded subsets of the
    /// whole file (how it was made before: same rows, same order).
    #[test]
    fn the_test_fraction_split_is_the_seeded_subsets_of_the_whole() {
        let dir = tempfile::tempdir().unwrap();
        let text: String = (0..40)
            .map(|i| format!("{i},{},{}\n", i * 3, i % 7 + 1))
            .collect();
        let p = write(dir.path(), "rows.csv", &text);
        let spec = covertype_like();
        let whole = read_csv(&p, &spec).unwrap();
        let mut order: Vec<usize> = (0..40).collect();
        order.shuffle(&mut Xoshiro256PlusPlus::seed_from_u64(0));
        let (test_idx, train_idx) = order.split_at(10);
        let sorted = |v: &[usize]| {
            let mut v = v.to_vec();
            v.sort_unstable();
            v
        };
        let (pair, s) = load_csv(&p, None, 0.25, &spec).unwrap();
        for (got, idx) in [(&pair.train, train_idx), (&pair.test, test_idx)] {
            let mut want = whole.subset(&sorted(idx));
            s.apply(&mut want).unwrap();
            assert_eq!(got.labels, want.labels);
            assert_eq!(*got.images.all(), *want.images.all());
        }
    }

    #[test]
    fn feature_rows_skip_a_header_and_name_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "in.csv", "\na,b\n1,2\n\n3,4\n");
        let ds = read_feature_rows(&p).unwrap();
        assert_eq!(
            (ds.n, ds.dim, ds.images.all().to_vec()),
            (2, 2, vec![1.0, 2.0, 3.0, 4.0])
        );
        let p = write(dir.path(), "bad.csv", "1,2\n3,nan\n");
        let e = read_feature_rows(&p).unwrap_err().to_string();
        assert!(
            e.contains("line 2") && e.contains("not a finite number"),
            "{e}"
        );
        let p = write(dir.path(), "ragged.csv", "1,2\n3\n");
        let e = read_feature_rows(&p).unwrap_err().to_string();
        assert!(e.contains("1 columns, but the first row has 2"), "{e}");
        let p = write(dir.path(), "header-only.csv", "a,b\n");
        assert!(
            read_feature_rows(&p)
                .unwrap_err()
                .to_string()
                .contains("no data rows")
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
