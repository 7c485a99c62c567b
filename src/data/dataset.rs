//! Labelled image datasets in memory, loaded from IDX files.
//!
//! Any unsigned-byte IDX dataset works (not only 28×28 MNIST): images are
//! `n × shape…` arrays with 1 to 3 shape dimensions, labels a length-`n`
//! vector. Pixels stand for `byte / 255` and stay bytes in memory ([`Pixels`]).

use std::io;
use std::path::{Path, PathBuf};

use std::borrow::Cow;

use super::DataError;
use super::idx::{self, IdxArray, MAX_IDX_BYTES};
use super::pixels::Pixels;

/// Images (row-major, `n × dim`, values in `[0, 1]`) with class labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// `n * dim` pixel values, example after example (bytes where the source gave bytes).
    pub images: Pixels,
    /// One class index in `0..num_classes` per example.
    pub labels: Vec<u32>,
    /// Number of examples.
    pub n: usize,
    /// Values per example: the product of `image_shape`.
    pub dim: usize,
    /// Shape of one image, e.g. `[28, 28]`.
    pub image_shape: Vec<usize>,
    /// Number of classes the labels index into.
    pub num_classes: usize,
}

/// The standard train/test pair of an IDX dataset directory.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainTest {
    pub train: Dataset,
    pub test: Dataset,
}

impl Dataset {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether the dataset has no examples.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Pixels of example `i`.
    ///
    /// # Panics
    ///
    /// If `i >= self.len()`, like slice indexing.
    pub fn row(&self, i: usize) -> Cow<'_, [f32]> {
        self.images.values(i * self.dim..(i + 1) * self.dim)
    }

    /// The values of examples `rows` (a range of example indices), as floats.
    pub fn rows(&self, rows: std::ops::Range<usize>) -> Cow<'_, [f32]> {
        self.images
            .values(rows.start * self.dim..rows.end * self.dim)
    }

    /// A new dataset holding the examples at `indices`, in that order, its pixels kept as
    /// this one's are; every example in order shares this one's pixels.
    ///
    /// # Panics
    ///
    /// If an index is out of range; indices come from splits of this
    /// dataset, so that is a bug in the caller.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let everything =
            indices.len() == self.n && indices.iter().enumerate().all(|(k, &i)| k == i);
        let images = match everything {
            true => self.images.clone(),
            false => self.images.gather(indices, self.dim),
        };
        Dataset {
            images,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            n: indices.len(),
            dim: self.dim,
            image_shape: self.image_shape.clone(),
            num_classes: self.num_classes,
        }
    }

    /// Number of examples of each class, indexed by class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes];
        for &label in &self.labels {
            if let Some(count) = counts.get_mut(label as usize) {
                *count += 1;
            }
        }
        counts
    }

    /// Builds a dataset from decoded image and label arrays.
    ///
    /// The names are used in error messages. Checks image rank, that counts
    /// agree and that every label is below `num_classes`.
    pub fn from_idx(
        images: IdxArray,
        labels: IdxArray,
        num_classes: usize,
        images_name: &str,
        labels_name: &str,
    ) -> Result<Dataset, DataError> {
        let (n, image_shape, dim) = image_layout(&images, images_name)?;
        let labels = checked_labels(&labels, num_classes, labels_name)?;
        if labels.len() != n {
            return Err(DataError::CountMismatch {
                images_file: images_name.to_owned(),
                labels_file: labels_name.to_owned(),
                images: n,
                labels: labels.len(),
            });
        }
        Ok(Dataset {
            images: Pixels::Bytes(images.data),
            labels,
            n,
            dim,
            image_shape,
            num_classes,
        })
    }
}

/// Checks that `images` is `n × shape` with a consistent payload and returns
/// `(n, shape, values per image)`. The payload check matters because the
/// fields of [`IdxArray`] are public and may not come from the parser.
fn image_layout(images: &IdxArray, file: &str) -> Result<(usize, Vec<usize>, usize), DataError> {
    if !(2..=4).contains(&images.dims.len()) {
        return Err(idx::bad_rank(
            file,
            images.dims.len(),
            "2 to 4 (example count followed by the image shape)",
        ));
    }
    let overflow = || DataError::DimensionOverflow {
        file: file.to_owned(),
        dims: images.dims.clone(),
    };
    let shape = images.dims[1..].to_vec();
    let dim = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(overflow)?;
    let n = images.dims[0];
    let expected = n.checked_mul(dim).ok_or_else(overflow)?;
    idx::check_len(file, expected, images.data.len())?;
    Ok((n, shape, dim))
}

/// Checks that `labels` is a vector of class indices below `num_classes`.
fn checked_labels(
    labels: &IdxArray,
    num_classes: usize,
    file: &str,
) -> Result<Vec<u32>, DataError> {
    if labels.dims.len() != 1 {
        return Err(idx::bad_rank(
            file,
            labels.dims.len(),
            "1 (one label per example)",
        ));
    }
    idx::check_len(file, labels.dims[0], labels.data.len())?;
    let labels: Vec<u32> = labels.data.iter().map(|&b| u32::from(b)).collect();
    check_label_range(&labels, num_classes, file)?;
    Ok(labels)
}

/// Errors on the first label that is not a valid class index.
pub(crate) fn check_label_range(
    labels: &[u32],
    num_classes: usize,
    file: &str,
) -> Result<(), DataError> {
    match labels.iter().position(|&l| l as usize >= num_classes) {
        Some(index) => Err(DataError::LabelOutOfRange {
            file: file.to_owned(),
            label: labels[index],
            index,
            num_classes,
        }),
        None => Ok(()),
    }
}

/// One of the four files of a dataset directory.
struct Part {
    /// Description for error messages.
    what: &'static str,
    /// File name before the IDX suffix, e.g. `train-images`.
    stem: &'static str,
    /// IDX suffix, e.g. `idx3-ubyte`.
    suffix: &'static str,
}

const TRAIN_IMAGES: Part = Part {
    what: "training images",
    stem: "train-images",
    suffix: "idx3-ubyte",
};
const TRAIN_LABELS: Part = Part {
    what: "training labels",
    stem: "train-labels",
    suffix: "idx1-ubyte",
};
const TEST_IMAGES: Part = Part {
    what: "test images",
    stem: "t10k-images",
    suffix: "idx3-ubyte",
};
const TEST_LABELS: Part = Part {
    what: "test labels",
    stem: "t10k-labels",
    suffix: "idx1-ubyte",
};

impl Part {
    /// Accepted file names in order of preference: the official dashed
    /// names, gzipped or not, then the dotted variant some mirrors use.
    fn candidates(&self) -> Vec<String> {
        let (stem, suffix) = (self.stem, self.suffix);
        vec![
            format!("{stem}-{suffix}"),
            format!("{stem}-{suffix}.gz"),
            format!("{stem}.{suffix}"),
            format!("{stem}.{suffix}.gz"),
        ]
    }

    /// The first candidate that exists in `dir`, or an error listing them.
    fn find(&self, dir: &Path) -> Result<PathBuf, DataError> {
        let tried = self.candidates();
        tried
            .iter()
            .map(|name| dir.join(name))
            .find(|path| path.is_file())
            .ok_or_else(|| DataError::MissingFile {
                dir: dir.to_path_buf(),
                what: self.what,
                tried,
            })
    }
}

/// Errors unless `dir` is an existing directory, so that a typo in the path
/// is not reported as four missing files.
fn check_dir(dir: &Path) -> Result<(), DataError> {
    let io_error = |source| DataError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(dir).map_err(io_error)?;
    if meta.is_dir() {
        Ok(())
    } else {
        Err(io_error(io::Error::other("not a directory")))
    }
}

/// Loads one images/labels pair from files; also returns the images path
/// for later error messages.
fn load_pair(
    dir: &Path,
    images: &Part,
    labels: &Part,
    num_classes: usize,
) -> Result<(Dataset, String), DataError> {
    let images_path = images.find(dir)?;
    let labels_path = labels.find(dir)?;
    let images_name = images_path.display().to_string();
    let dataset = Dataset::from_idx(
        idx::read_idx_file(&images_path)?,
        idx::read_idx_file(&labels_path)?,
        num_classes,
        &images_name,
        &labels_path.display().to_string(),
    )?;
    Ok((dataset, images_name))
}

/// Errors if train and test images differ in shape: a model trained on one
/// could not be evaluated on the other.
fn check_same_shape(pair: &TrainTest, train_file: &str, test_file: &str) -> Result<(), DataError> {
    if pair.train.image_shape == pair.test.image_shape {
        return Ok(());
    }
    Err(DataError::ShapeMismatch {
        train_file: train_file.to_owned(),
        test_file: test_file.to_owned(),
        train: pair.train.image_shape.clone(),
        test: pair.test.image_shape.clone(),
    })
}

/// The four IDX files `load_dir` reads from `dir`: training images and labels, test images and
/// labels (for the data record's fingerprint).
pub(crate) fn idx_files(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    check_dir(dir)?;
    [&TRAIN_IMAGES, &TRAIN_LABELS, &TEST_IMAGES, &TEST_LABELS]
        .iter()
        .map(|part| part.find(dir))
        .collect()
}

/// Loads `train-*` and `t10k-*` IDX files (raw or `.gz`) from `dir`.
///
/// Accepted names per file: `train-images-idx3-ubyte`, with `.gz`, or the
/// dotted `train-images.idx3-ubyte[.gz]`; likewise `train-labels-idx1-ubyte`,
/// `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`.
pub fn load_dir(dir: &Path, num_classes: usize) -> Result<TrainTest, DataError> {
    check_dir(dir)?;
    let (train, train_file) = load_pair(dir, &TRAIN_IMAGES, &TRAIN_LABELS, num_classes)?;
    let (test, test_file) = load_pair(dir, &TEST_IMAGES, &TEST_LABELS, num_classes)?;
    let pair = TrainTest { train, test };
    check_same_shape(&pair, &train_file, &test_file)?;
    Ok(pair)
}

/// The bundled 10,000-digit MNIST subset (see `data/mnist-10k/README.md`).
macro_rules! embedded {
    ($name:literal) => {
        (
            concat!("embedded data/mnist-10k/", $name),
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/data/mnist-10k/",
                $name
            ))
            .as_slice(),
        )
    };
}

/// `(name for errors, gzipped IDX bytes)` of the embedded files.
type Embedded = (&'static str, &'static [u8]);

const EMBEDDED_TRAIN_IMAGES: Embedded = embedded!("train-images-idx3-ubyte.gz");
const EMBEDDED_TRAIN_LABELS: Embedded = embedded!("train-labels-idx1-ubyte.gz");
const EMBEDDED_TEST_IMAGES: Embedded = embedded!("t10k-images-idx3-ubyte.gz");
const EMBEDDED_TEST_LABELS: Embedded = embedded!("t10k-labels-idx1-ubyte.gz");

/// The embedded files, `(name, gzipped bytes)`, in the order of [`idx_files`].
pub(crate) fn embedded_files() -> [(&'static str, &'static [u8]); 4] {
    [
        EMBEDDED_TRAIN_IMAGES,
        EMBEDDED_TRAIN_LABELS,
        EMBEDDED_TEST_IMAGES,
        EMBEDDED_TEST_LABELS,
    ]
}

/// Decodes one embedded images/labels pair.
fn load_embedded_pair(
    images: Embedded,
    labels: Embedded,
    num_classes: usize,
) -> Result<Dataset, DataError> {
    Dataset::from_idx(
        idx::decode_named(images.1, images.0, MAX_IDX_BYTES)?,
        idx::decode_named(labels.1, labels.0, MAX_IDX_BYTES)?,
        num_classes,
        images.0,
        labels.0,
    )
}

/// Loads the MNIST subset compiled into the binary: 8,000 training and
/// 2,000 test digits of 28×28, so the tool works with no data on disk.
pub fn load_embedded(num_classes: usize) -> Result<TrainTest, DataError> {
    let pair = TrainTest {
        train: load_embedded_pair(EMBEDDED_TRAIN_IMAGES, EMBEDDED_TRAIN_LABELS, num_classes)?,
        test: load_embedded_pair(EMBEDDED_TEST_IMAGES, EMBEDDED_TEST_LABELS, num_classes)?,
    };
    check_same_shape(&pair, EMBEDDED_TRAIN_IMAGES.0, EMBEDDED_TEST_IMAGES.0)?;
    Ok(pair)
}

/// Loads an IDX image file without labels (for prediction), returning
/// `(pixels, number of images, image shape)`.
pub fn load_idx_images(path: &Path) -> Result<(Pixels, usize, Vec<usize>), DataError> {
    let images = idx::read_idx_file(path)?;
    let (n, shape, _) = image_layout(&images, &path.display().to_string())?;
    Ok((Pixels::Bytes(images.data), n, shape))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::idx::{write_idx, write_idx_file};

    fn images(n: usize, shape: &[usize]) -> IdxArray {
        let mut dims = vec![n];
        dims.extend_from_slice(shape);
        let len: usize = dims.iter().product();
        IdxArray {
            dims,
            data: (0..len).map(|i| (i % 256) as u8).collect(),
        }
    }

    fn labels(values: &[u8]) -> IdxArray {
        IdxArray {
            dims: vec![values.len()],
            data: values.into(),
        }
    }

    #[test]
    fn from_idx_scales_and_rows_are_examples() {
        let data = Dataset::from_idx(images(3, &[2, 2]), labels(&[0, 2, 1]), 3, "i", "l").unwrap();
        assert_eq!(
            (data.len(), data.dim, data.image_shape.clone()),
            (3, 4, vec![2, 2])
        );
        assert!(!data.is_empty());
        assert_eq!(
            *data.row(1),
            [4.0 / 255.0, 5.0 / 255.0, 6.0 / 255.0, 7.0 / 255.0]
        );
        assert_eq!(data.labels, vec![0, 2, 1]);
        assert_eq!(data.class_counts(), vec![1, 1, 1]);
        let sub = data.subset(&[2, 0]);
        assert_eq!(sub.len(), 2);
        assert_eq!(sub.labels, vec![1, 0]);
        assert_eq!(sub.row(0), data.row(2));
        assert_eq!(sub.row(1), data.row(0));
    }

    #[test]
    fn pixel_extremes_map_to_zero_and_one() {
        let imgs = IdxArray {
            dims: vec![1, 2],
            data: vec![0, 255].into(),
        };
        let data = Dataset::from_idx(imgs, labels(&[0]), 1, "i", "l").unwrap();
        assert_eq!(data.images, vec![0.0, 1.0]);
    }

    #[test]
    fn count_mismatch_names_both_files() {
        let err = Dataset::from_idx(images(3, &[2]), labels(&[0, 1]), 2, "imgs.gz", "labs.gz")
            .unwrap_err();
        assert!(matches!(
            err,
            DataError::CountMismatch {
                images: 3,
                labels: 2,
                ..
            }
        ));
        let message = err.to_string();
        assert!(
            message.contains("imgs.gz") && message.contains("labs.gz"),
            "{message}"
        );
    }

    #[test]
    fn label_out_of_range_reports_value_index_and_classes() {
        let err =
            Dataset::from_idx(images(3, &[2]), labels(&[0, 1, 10]), 10, "i", "labs").unwrap_err();
        assert!(matches!(
            err,
            DataError::LabelOutOfRange {
                label: 10,
                index: 2,
                num_classes: 10,
                ..
            }
        ));
        assert!(err.to_string().starts_with("labs: label 10 at index 2"));
    }

    #[test]
    fn inconsistent_or_wrong_rank_arrays_are_rejected() {
        let mut bad = images(2, &[3]);
        bad.data = bad.data[1..].into();
        let err = Dataset::from_idx(bad, labels(&[0, 0]), 1, "i", "l").unwrap_err();
        assert!(matches!(err, DataError::Truncated { .. }));
        let flat = labels(&[0, 0]);
        let err = Dataset::from_idx(flat, labels(&[0, 0]), 1, "i", "l").unwrap_err();
        assert!(matches!(err, DataError::BadRank { found: 1, .. }));
        let err = Dataset::from_idx(images(2, &[3]), images(2, &[1]), 1, "i", "l").unwrap_err();
        assert!(matches!(err, DataError::BadRank { found: 2, .. }));
    }

    /// Writes a small dataset directory with the given file names.
    fn write_dir(dir: &Path, names: [&str; 4], test_shape: &[usize]) {
        let train = images(5, &[3, 2]);
        let test = images(4, test_shape);
        write_idx_file(&dir.join(names[0]), &train.dims, &train.data).unwrap();
        write_idx_file(&dir.join(names[1]), &[5], &[0, 1, 2, 1, 0]).unwrap();
        write_idx_file(&dir.join(names[2]), &test.dims, &test.data).unwrap();
        write_idx_file(&dir.join(names[3]), &[4], &[2, 2, 1, 0]).unwrap();
    }

    #[test]
    fn load_dir_reads_raw_gzipped_and_dotted_names() {
        let dir = tempfile::tempdir().unwrap();
        let names = [
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte",
            "t10k-images.idx3-ubyte",
            "t10k-labels.idx1-ubyte.gz",
        ];
        write_dir(dir.path(), names, &[3, 2]);
        let pair = load_dir(dir.path(), 3).unwrap();
        assert_eq!((pair.train.len(), pair.test.len()), (5, 4));
        assert_eq!(pair.train.image_shape, vec![3, 2]);
        assert_eq!(pair.train.labels, vec![0, 1, 2, 1, 0]);
        assert_eq!(pair.test.labels, vec![2, 2, 1, 0]);
        assert_eq!(pair.test.row(0)[1], 1.0 / 255.0);
    }

    #[test]
    fn load_dir_lists_names_tried_for_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let names = [
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte",
        ];
        write_dir(dir.path(), names, &[3, 2]);
        std::fs::remove_file(dir.path().join("t10k-images-idx3-ubyte")).unwrap();
        let err = load_dir(dir.path(), 3).unwrap_err();
        match &err {
            DataError::MissingFile { what, tried, .. } => {
                assert_eq!(*what, "test images");
                assert_eq!(tried.len(), 4);
            }
            other => panic!("expected MissingFile, got {other:?}"),
        }
        let message = err.to_string();
        for name in [
            "t10k-images-idx3-ubyte",
            "t10k-images-idx3-ubyte.gz",
            "t10k-images.idx3-ubyte",
            "t10k-images.idx3-ubyte.gz",
        ] {
            assert!(message.contains(name), "{message}");
        }
        assert!(message.contains(&dir.path().display().to_string()));
    }

    #[test]
    fn load_dir_rejects_missing_directory_and_shape_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("absent");
        assert!(matches!(load_dir(&missing, 3), Err(DataError::Io { .. })));

        let names = [
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte",
        ];
        write_dir(dir.path(), names, &[2, 3]);
        let err = load_dir(dir.path(), 3).unwrap_err();
        assert!(matches!(err, DataError::ShapeMismatch { .. }), "{err:?}");
        assert!(err.to_string().contains("t10k-images-idx3-ubyte"));
    }

    #[test]
    fn load_dir_propagates_file_errors_with_path() {
        let dir = tempfile::tempdir().unwrap();
        let names = [
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte",
        ];
        write_dir(dir.path(), names, &[3, 2]);
        let labels_path = dir.path().join("train-labels-idx1-ubyte");
        std::fs::write(&labels_path, write_idx(&[5], &[0, 1, 9, 1, 0])).unwrap();
        let err = load_dir(dir.path(), 3).unwrap_err();
        assert!(matches!(
            err,
            DataError::LabelOutOfRange {
                label: 9,
                index: 2,
                ..
            }
        ));
        assert!(err.to_string().contains(&labels_path.display().to_string()));
    }

    #[test]
    fn load_embedded_is_the_mnist_subset() {
        let pair = load_embedded(10).unwrap();
        for (set, n) in [(&pair.train, 8000), (&pair.test, 2000)] {
            assert_eq!(set.len(), n);
            assert_eq!((set.dim, set.image_shape.clone()), (784, vec![28, 28]));
            assert_eq!(set.images.len(), n * 784);
            assert!(set.images.all().iter().all(|p| (0.0..=1.0).contains(p)));
            assert!(set.images.all().contains(&1.0));
            assert!(set.class_counts().iter().all(|&c| c > 0));
        }
        assert_eq!(pair.train.class_counts()[1], 902);
        assert_eq!(pair.test.class_counts()[5], 173);
    }

    #[test]
    fn load_embedded_checks_num_classes() {
        let err = load_embedded(5).unwrap_err();
        assert!(matches!(
            err,
            DataError::LabelOutOfRange { num_classes: 5, .. }
        ));
        assert!(
            err.to_string()
                .contains("embedded data/mnist-10k/train-labels")
        );
    }

    #[test]
    fn load_idx_images_returns_scaled_pixels_and_shape() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x-idx3-ubyte.gz");
        write_idx_file(&path, &[2, 1, 2], &[0, 51, 102, 255]).unwrap();
        let (pixels, n, shape) = load_idx_images(&path).unwrap();
        assert_eq!((n, shape), (2, vec![1, 2]));
        assert_eq!(pixels, vec![0.0, 0.2, 0.4, 1.0]);

        let labels_path = dir.path().join("y-idx1-ubyte");
        write_idx_file(&labels_path, &[2], &[0, 1]).unwrap();
        let err = load_idx_images(&labels_path).unwrap_err();
        assert!(matches!(err, DataError::BadRank { found: 1, .. }));
        assert!(err.to_string().contains(&labels_path.display().to_string()));
    }
}
