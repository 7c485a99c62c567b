//! Where a run's data comes from, recorded so that it can never be silently replaced.
//!
//! A [`DataSource`] names the data (the embedded MNIST-10k, an IDX or CIFAR-10 directory, a CSV
//! file with the options that shape it). Loading it gives the train/test pair and a
//! [`DataRecord`]: the source with absolute paths and the size and sha256 of every file read.
//! A run directory keeps that record (`data.json`); every command that reads the run loads the
//! recorded data again and refuses it when a file is gone or its content changed. A moved copy
//! may be named instead, and it must have the same fingerprint.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::DataError;
use super::cifar::{
    CIFAR_TEST_FILE, CIFAR_TRAIN_FILES, CIFAR100_TEST_FILE, CIFAR100_TRAIN_FILE, is_cifar_dir,
    is_cifar100_dir, load_cifar_dir, load_cifar100_dir,
};
use super::csv::{CsvSpec, Standardiser, load_csv};
use super::dataset::{TrainTest, embedded_files, idx_files, load_dir, load_embedded};
use super::image_folder::{self, is_image_folder, load_image_folder};

/// The share of a CSV file's rows held out as the test set when there is no test file.
pub const DEFAULT_TEST_FRACTION: f64 = 0.2;

/// The data a run trains on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum DataSource {
    /// The 10,000 MNIST digits compiled into the binary.
    Embedded,
    /// A directory of `train-*` and `t10k-*` IDX files.
    Idx { dir: PathBuf },
    /// A CIFAR-10 binary directory.
    Cifar10 { dir: PathBuf },
    /// A CIFAR-100 binary directory (`train.bin`, `test.bin`; fine labels).
    Cifar100 { dir: PathBuf },
    /// Image folders: `train/<class>/*.png` and `test/<class>/…` ([`super::image_folder`]).
    ImageFolder { dir: PathBuf },
    /// A CSV file of numeric features and a class column.
    Csv {
        train: PathBuf,
        /// A separate test file; without it a seeded `test_fraction` of `train`'s rows.
        test: Option<PathBuf>,
        test_fraction: f64,
        /// 0-based column of the class; `None` = the last.
        label_column: Option<usize>,
        /// The smallest class value.
        first_label: i64,
        /// The first line is a header.
        header: bool,
    },
}

/// The options of a CSV source; `None` where the user did not say.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CsvOptions {
    pub test: Option<PathBuf>,
    pub test_fraction: Option<f64>,
    pub label_column: Option<usize>,
    pub first_label: Option<i64>,
    pub header: Option<bool>,
}

impl CsvOptions {
    fn any_given(&self) -> Option<&'static str> {
        [
            (self.test.is_some(), "--test-data"),
            (self.test_fraction.is_some(), "--test-fraction"),
            (self.label_column.is_some(), "--label-column"),
            (self.first_label.is_some(), "--first-label"),
            (self.header.is_some(), "--csv-header"),
        ]
        .into_iter()
        .find_map(|(given, flag)| given.then_some(flag))
    }
}

/// What a user asks for: a path (or nothing, for the embedded data) and CSV options.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DataRequest {
    pub path: Option<PathBuf>,
    pub csv: CsvOptions,
}

fn is_csv(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

fn setting(reason: String) -> DataError {
    DataError::Source(reason)
}

impl DataRequest {
    /// The source this request names; CSV options on other data are an error.
    pub fn source(&self) -> Result<DataSource, DataError> {
        let path = match &self.path {
            Some(p) if is_csv(p) => {
                let o = &self.csv;
                return Ok(DataSource::Csv {
                    train: p.clone(),
                    test: o.test.clone(),
                    test_fraction: o.test_fraction.unwrap_or(DEFAULT_TEST_FRACTION),
                    label_column: o.label_column,
                    first_label: o.first_label.unwrap_or(0),
                    header: o.header.unwrap_or(false),
                });
            }
            Some(p) => p,
            None => {
                self.refuse_csv_options("the embedded data")?;
                return Ok(DataSource::Embedded);
            }
        };
        self.refuse_csv_options(&format!("{} (not a .csv file)", path.display()))?;
        Ok(if is_cifar_dir(path) {
            DataSource::Cifar10 { dir: path.clone() }
        } else if is_cifar100_dir(path) {
            DataSource::Cifar100 { dir: path.clone() }
        } else if is_image_folder(path) {
            DataSource::ImageFolder { dir: path.clone() }
        } else {
            DataSource::Idx { dir: path.clone() }
        })
    }

    fn refuse_csv_options(&self, what: &str) -> Result<(), DataError> {
        match self.csv.any_given() {
            Some(flag) => Err(setting(format!(
                "{flag} is for CSV files; {what} holds its own test set and labels"
            ))),
            None => Ok(()),
        }
    }

    /// The recorded source, or where the request says a copy of it now lies. Options that
    /// contradict the record are an error: they would train or evaluate on other data.
    pub fn relocate(&self, recorded: &DataSource) -> Result<DataSource, DataError> {
        if self.path.is_none() {
            if let DataSource::Csv { .. } = recorded {
                self.check_csv_options(recorded)?;
            } else {
                self.refuse_csv_options("the run's recorded data")?;
            }
            return Ok(recorded.clone());
        }
        let asked = self.source()?;
        let moved = match (recorded, asked) {
            (DataSource::Idx { .. }, DataSource::Idx { dir }) => DataSource::Idx { dir },
            (DataSource::Cifar10 { .. }, DataSource::Cifar10 { dir }) => {
                DataSource::Cifar10 { dir }
            }
            (DataSource::Cifar100 { .. }, DataSource::Cifar100 { dir }) => {
                DataSource::Cifar100 { dir }
            }
            (DataSource::ImageFolder { .. }, DataSource::ImageFolder { dir }) => {
                DataSource::ImageFolder { dir }
            }
            (DataSource::Csv { test, .. }, DataSource::Csv { train, .. }) => {
                self.check_csv_options(recorded)?;
                if let Some(test) = test
                    && self.csv.test.is_none()
                {
                    return Err(setting(format!(
                        "the run was trained with a separate test file ({}): give its copy with \
                         --test-data as well",
                        test.display()
                    )));
                }
                let mut moved = recorded.clone();
                if let DataSource::Csv { train: t, test, .. } = &mut moved {
                    *t = train;
                    test.clone_from(&self.csv.test);
                }
                moved
            }
            (recorded, asked) => {
                return Err(setting(format!(
                    "the run was trained on {}, but --data names {}",
                    recorded.describe(),
                    asked.describe()
                )));
            }
        };
        Ok(moved)
    }

    /// Every CSV option the request gives must equal the recorded one.
    fn check_csv_options(&self, recorded: &DataSource) -> Result<(), DataError> {
        let DataSource::Csv {
            test,
            test_fraction,
            label_column,
            first_label,
            header,
            ..
        } = recorded
        else {
            return Ok(());
        };
        let o = &self.csv;
        if self.path.is_none() && o.test.is_some() && o.test != *test {
            return Err(setting(format!(
                "--test-data {:?} differs from the run's recorded test file {test:?}: give \
                 --data too for a moved copy",
                o.test
            )));
        }
        let shown = |c: &Option<usize>| c.map_or("the last".to_string(), |c| c.to_string());
        let checks = [
            (
                "--test-fraction",
                o.test_fraction.map(|f| f.to_string()),
                test_fraction.to_string(),
            ),
            (
                "--label-column",
                o.label_column.is_some().then(|| shown(&o.label_column)),
                shown(label_column),
            ),
            (
                "--first-label",
                o.first_label.map(|f| f.to_string()),
                first_label.to_string(),
            ),
            (
                "--csv-header",
                o.header.map(|h| h.to_string()),
                header.to_string(),
            ),
        ];
        for (flag, given, recorded) in checks {
            if let Some(given) = given
                && given != recorded
            {
                return Err(setting(format!(
                    "{flag} {given} differs from the run's recorded {recorded}: the run's data \
                     is read with the options it was trained with"
                )));
            }
        }
        Ok(())
    }
}

/// Size and sha256 of one file a source reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileFingerprint {
    /// The file's name (its directory is the source's).
    pub name: String,
    pub bytes: u64,
    /// Lower-case hex.
    pub sha256: String,
}

/// What a run directory records about its data (`data.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataRecord {
    pub source: DataSource,
    pub files: Vec<FileFingerprint>,
}

/// A data set with the record of where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedData {
    pub sets: TrainTest,
    pub record: DataRecord,
    /// The standardisation a CSV source applied to both sets (`None` for images).
    pub standardiser: Option<Standardiser>,
}

impl DataSource {
    /// A short description for messages.
    pub fn describe(&self) -> String {
        match self {
            DataSource::Embedded => "the embedded MNIST-10k".into(),
            DataSource::Idx { dir } => format!("the IDX directory {}", dir.display()),
            DataSource::Cifar10 { dir } => format!("the CIFAR-10 directory {}", dir.display()),
            DataSource::Cifar100 { dir } => format!("the CIFAR-100 directory {}", dir.display()),
            DataSource::ImageFolder { dir } => format!("the image folders {}", dir.display()),
            DataSource::Csv { train, test, .. } => match test {
                Some(t) => format!("the CSV files {} and {}", train.display(), t.display()),
                None => format!("the CSV file {}", train.display()),
            },
        }
    }

    /// The directory or files the source names.
    fn roots(&self) -> Vec<&Path> {
        match self {
            DataSource::Embedded => Vec::new(),
            DataSource::Idx { dir }
            | DataSource::Cifar10 { dir }
            | DataSource::Cifar100 { dir }
            | DataSource::ImageFolder { dir } => vec![dir],
            DataSource::Csv { train, test, .. } => std::iter::once(train.as_path())
                .chain(test.as_deref())
                .collect(),
        }
    }

    /// The files this source reads, in a fixed order.
    fn files(&self) -> Result<Vec<PathBuf>, DataError> {
        Ok(match self {
            DataSource::Embedded => Vec::new(),
            DataSource::Idx { dir } => idx_files(dir)?,
            DataSource::Cifar10 { dir } => CIFAR_TRAIN_FILES
                .iter()
                .chain(std::iter::once(&CIFAR_TEST_FILE))
                .map(|f| dir.join(f))
                .collect(),
            DataSource::Cifar100 { dir } => [CIFAR100_TRAIN_FILE, CIFAR100_TEST_FILE]
                .iter()
                .map(|f| dir.join(f))
                .collect(),
            DataSource::ImageFolder { dir } => image_folder::files(dir)?,
            DataSource::Csv { train, test, .. } => {
                std::iter::once(train.clone()).chain(test.clone()).collect()
            }
        })
    }

    /// The fingerprint of every file the source reads.
    pub fn fingerprint(&self) -> Result<Vec<FileFingerprint>, DataError> {
        if let DataSource::Embedded = self {
            return Ok(embedded_files()
                .iter()
                .map(|(name, bytes)| FileFingerprint {
                    name: file_name(Path::new(name)),
                    bytes: bytes.len() as u64,
                    sha256: hex(&Sha256::digest(bytes)),
                })
                .collect());
        }
        let files = self.files()?;
        let mut prints = files
            .iter()
            .map(|p| fingerprint_file(p))
            .collect::<Result<Vec<_>, _>>()?;
        if let DataSource::ImageFolder { dir } = self {
            // The class is the folder: names relative to the data set, so that renaming a
            // class folder is a change of data.
            for (f, path) in prints.iter_mut().zip(&files) {
                f.name = path.strip_prefix(dir).unwrap_or(path).display().to_string();
            }
        }
        Ok(prints)
    }

    /// This source with absolute paths, so the record holds wherever the run is read from.
    fn absolute(&self) -> Result<DataSource, DataError> {
        let abs = |p: &Path| {
            std::path::absolute(p).map_err(|source| DataError::Io {
                path: p.into(),
                source,
            })
        };
        let mut source = self.clone();
        match &mut source {
            DataSource::Embedded => {}
            DataSource::Idx { dir }
            | DataSource::Cifar10 { dir }
            | DataSource::Cifar100 { dir }
            | DataSource::ImageFolder { dir } => *dir = abs(dir)?,
            DataSource::Csv { train, test, .. } => {
                *train = abs(train)?;
                if let Some(t) = test {
                    *t = abs(t)?;
                }
            }
        }
        Ok(source)
    }

    /// Loads the train/test pair with labels in `0..num_classes`, and its record.
    pub fn load(&self, num_classes: usize) -> Result<RecordedData, DataError> {
        let source = self.absolute()?;
        let files = source.fingerprint()?;
        let mut standardiser = None;
        let sets = match &source {
            DataSource::Embedded => load_embedded(num_classes)?,
            DataSource::Idx { dir } => load_dir(dir, num_classes)?,
            DataSource::Cifar10 { dir } => load_cifar_dir(dir, num_classes)?,
            DataSource::Cifar100 { dir } => load_cifar100_dir(dir, num_classes)?,
            DataSource::ImageFolder { dir } => load_image_folder(dir, num_classes)?,
            DataSource::Csv {
                train,
                test,
                test_fraction,
                label_column,
                first_label,
                header,
            } => {
                let spec = CsvSpec {
                    label_column: *label_column,
                    has_header: *header,
                    first_label: *first_label,
                    num_classes,
                };
                let (sets, s) = load_csv(train, test.as_deref(), *test_fraction, &spec)?;
                standardiser = Some(s);
                sets
            }
        };
        Ok(RecordedData {
            sets,
            record: DataRecord { source, files },
            standardiser,
        })
    }
}

impl DataRecord {
    /// Loads the recorded data (from `source`, the recorded one or a moved copy) and checks
    /// that every file has the recorded fingerprint.
    pub fn reload(
        &self,
        source: &DataSource,
        num_classes: usize,
    ) -> Result<RecordedData, DataError> {
        let source = source.absolute()?;
        if let Some(root) = source.roots().into_iter().find(|p| !p.exists()) {
            return Err(DataError::Fingerprint {
                file: root.display().to_string(),
                reason: format!(
                    "the run's data is gone ({}); give --data with a copy of it",
                    self.source.describe()
                ),
            });
        }
        for (path, want) in source.files()?.iter().zip(&self.files) {
            if !path.is_file() {
                return Err(DataError::Fingerprint {
                    file: path.display().to_string(),
                    reason: format!(
                        "the run's data file is gone (recorded: {} bytes, sha256 {}); give \
                         --data with a copy of it",
                        want.bytes, want.sha256
                    ),
                });
            }
        }
        let loaded = source.load(num_classes)?;
        self.check(&loaded.record)?;
        Ok(loaded)
    }

    /// Errors unless `other` holds the same files with the same content.
    pub fn check(&self, other: &DataRecord) -> Result<(), DataError> {
        let names = |r: &DataRecord| r.files.iter().map(|f| f.name.clone()).collect::<Vec<_>>();
        if self.files.len() != other.files.len() {
            return Err(DataError::Fingerprint {
                file: other.source.describe(),
                reason: format!(
                    "holds the files {:?}, but the run's data was {:?} ({})",
                    names(other),
                    names(self),
                    self.source.describe()
                ),
            });
        }
        let named = matches!(self.source, DataSource::ImageFolder { .. });
        for (want, got) in self.files.iter().zip(&other.files) {
            if named && want.name != got.name {
                return Err(DataError::Fingerprint {
                    file: got.name.clone(),
                    reason: format!(
                        "the run was trained on {}, whose file here was {}: a renamed file or \
                         class folder changes the labels",
                        self.source.describe(),
                        want.name
                    ),
                });
            }
            if want.sha256 != got.sha256 || want.bytes != got.bytes {
                return Err(DataError::Fingerprint {
                    file: got.name.clone(),
                    reason: format!(
                        "the run was trained on other data ({}): this file has sha256 {} ({} \
                         bytes), the recorded one {} ({} bytes)",
                        self.source.describe(),
                        got.sha256,
                        got.bytes,
                        want.sha256,
                        want.bytes
                    ),
                });
            }
        }
        Ok(())
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Size and sha256 of `path`, read in blocks.
pub fn fingerprint_file(path: &Path) -> Result<FileFingerprint, DataError> {
    let io = |source| DataError::Io {
        path: path.into(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok(FileFingerprint {
        name: file_name(path),
        bytes,
        sha256: hex(&hasher.finalize()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::write_idx_file;

    fn idx_dir(dir: &Path, first_pixel: u8) {
        let pixels: Vec<u8> = (0..20 * 4)
            .map(|i| (i as u8).wrapping_add(first_pixel))
            .collect();
        let labels: Vec<u8> = (0..20).map(|i| (i % 2) as u8).collect();
        write_idx_file(&dir.join("train-images-idx3-ubyte"), &[20, 2, 2], &pixels).unwrap();
        write_idx_file(&dir.join("train-labels-idx1-ubyte"), &[20], &labels).unwrap();
        write_idx_file(&dir.join("t10k-images-idx3-ubyte"), &[20, 2, 2], &pixels).unwrap();
        write_idx_file(&dir.join("t10k-labels-idx1-ubyte"), &[20], &labels).unwrap();
    }

    #[test]
    fn the_sha256_of_a_known_string() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("abc.txt");
        std::fs::write(&p, b"abc").unwrap();
        let f = fingerprint_file(&p).unwrap();
        assert_eq!(f.bytes, 3);
        assert_eq!(
            f.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_recorded_directory_reloads_and_a_changed_or_missing_file_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("d");
        std::fs::create_dir(&dir).unwrap();
        idx_dir(&dir, 0);
        let request = DataRequest {
            path: Some(dir.clone()),
            ..Default::default()
        };
        let first = request.source().unwrap().load(2).unwrap();
        assert_eq!(first.record.files.len(), 4);
        let again = first.record.reload(&first.record.source, 2).unwrap();
        assert_eq!(again.sets, first.sets);

        // A moved copy with the same content is accepted.
        let copy = tmp.path().join("copy");
        std::fs::create_dir(&copy).unwrap();
        idx_dir(&copy, 0);
        let moved = DataRequest {
            path: Some(copy.clone()),
            ..Default::default()
        }
        .relocate(&first.record.source)
        .unwrap();
        assert_eq!(first.record.reload(&moved, 2).unwrap().sets, first.sets);

        // Changed content is refused, naming the file and both fingerprints.
        idx_dir(&copy, 1);
        let err = first.record.reload(&moved, 2).unwrap_err().to_string();
        assert!(err.contains("train-images-idx3-ubyte"), "{err}");
        assert!(err.contains(&first.record.files[0].sha256), "{err}");

        // A file that is gone is named.
        std::fs::remove_file(dir.join("t10k-labels-idx1-ubyte")).unwrap();
        let err = first
            .record
            .reload(&first.record.source, 2)
            .unwrap_err()
            .to_string();
        assert!(err.contains("t10k-labels"), "{err}");
    }

    #[test]
    fn csv_options_are_recorded_and_contradictions_refused() {
        let request = DataRequest {
            path: Some("rows.csv".into()),
            csv: CsvOptions {
                first_label: Some(1),
                ..Default::default()
            },
        };
        let source = request.source().unwrap();
        let DataSource::Csv {
            first_label,
            test_fraction,
            ..
        } = &source
        else {
            panic!("{source:?}")
        };
        assert_eq!((*first_label, *test_fraction), (1, DEFAULT_TEST_FRACTION));
        // Nothing said: the recorded options hold.
        assert_eq!(DataRequest::default().relocate(&source).unwrap(), source);
        // The same option again is fine; another value is refused.
        assert_eq!(request.relocate(&source).unwrap(), source);
        let other = DataRequest {
            csv: CsvOptions {
                first_label: Some(0),
                ..Default::default()
            },
            ..Default::default()
        };
        let err = other.relocate(&source).unwrap_err().to_string();
        assert!(err.contains("--first-label 0"), "{err}");
        // CSV options on an IDX directory, and data of another kind, are refused.
        let idx = DataRequest {
            path: Some("mnist".into()),
            csv: CsvOptions {
                label_column: Some(3),
                ..Default::default()
            },
        };
        assert!(
            idx.source()
                .unwrap_err()
                .to_string()
                .contains("--label-column")
        );
        let err = DataRequest {
            path: Some("mnist".into()),
            ..Default::default()
        }
        .relocate(&source)
        .unwrap_err()
        .to_string();
        assert!(err.contains("trained on the CSV file"), "{err}");
    }

    #[test]
    fn the_embedded_data_has_a_fingerprint_of_its_four_files() {
        let r = DataSource::Embedded.load(10).unwrap().record;
        assert_eq!(r.files.len(), 4);
        assert_eq!(r.files[0].name, "train-images-idx3-ubyte.gz");
        assert!(r.files.iter().all(|f| f.sha256.len() == 64));
        assert!(
            r.check(&DataSource::Embedded.load(10).unwrap().record)
                .is_ok()
        );
    }
}
