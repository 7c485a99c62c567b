//! Data pipeline: IDX, CIFAR-10 and CSV parsing, datasets in memory, preprocessing (grey,
//! contrast normalisation, ZCA, crops) and semi-supervised splits.
//!
//! Everything here validates untrusted input and reports problems as
//! [`DataError`] values that name the offending file, so a bad data directory
//! produces a message a user can act on instead of a panic.

pub mod arrays;
pub mod cifar;
pub mod csv;
pub mod dataset;
pub mod fetch;
pub mod idx;
pub mod image_folder;
pub mod images;
pub mod inputs;
pub mod memory;
pub mod pixels;
pub mod preprocess;
pub mod source;
pub mod split;

use std::path::PathBuf;

pub use cifar::{is_cifar_dir, load_cifar_dir, parse_cifar};
pub use csv::{CsvSpec, load_csv, read_csv};
pub use dataset::{Dataset, TrainTest, load_dir, load_embedded, load_idx_images};
pub use idx::{
    IdxArray, MAX_IDX_BYTES, gzip_bytes, parse_idx, read_idx_file, write_idx, write_idx_file,
    write_idx_gz,
};
pub use pixels::Pixels;
pub use source::{CsvOptions, DataRecord, DataRequest, DataSource, FileFingerprint, RecordedData};
pub use split::{SemiSupervisedSplit, SplitSpec, semi_supervised_split};

/// Everything that can go wrong while loading or splitting data.
///
/// `file` fields hold the path (or a descriptive name for in-memory and
/// embedded data) so that every message says where the problem is.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The first two bytes of an IDX magic number must be zero.
    #[error(
        "{file}: bad IDX magic number 0x{found:08x}; expected 0x0000TTNN (two zero bytes, type code TT, dimension count NN), e.g. 0x00000803 for images or 0x00000801 for labels"
    )]
    BadMagic { file: String, found: u32 },

    /// Only unsigned bytes (type code 0x08) are supported.
    #[error(
        "{file}: IDX element type 0x{code:02x} ({}) is not supported; only unsigned byte (0x08) is",
        idx::type_name(*.code)
    )]
    UnsupportedType { file: String, code: u8 },

    /// The number of dimensions is not what this use of the file needs.
    #[error("{file}: IDX array has {found} dimension(s); expected {expected}")]
    BadRank {
        file: String,
        found: usize,
        expected: &'static str,
    },

    /// The product of the dimensions does not fit in memory addresses.
    #[error("{file}: IDX dimensions {dims:?} describe more bytes than can be addressed")]
    DimensionOverflow { file: String, dims: Vec<usize> },

    /// The file is shorter than its header says.
    #[error("{file}: truncated IDX data: expected {expected} bytes, found {found}")]
    Truncated {
        file: String,
        expected: usize,
        found: usize,
    },

    /// The file is longer than its header says.
    #[error(
        "{file}: {} trailing byte(s) after the IDX payload: expected {expected} bytes, found {found}",
        .found - .expected
    )]
    TrailingBytes {
        file: String,
        expected: usize,
        found: usize,
    },

    /// Refused to read or decompress more than the size limit.
    #[error(
        "{file}: IDX data of {bytes} bytes exceeds the limit of {limit} bytes (refusing to load it; a corrupt header or gzip bomb?)"
    )]
    TooLarge {
        file: String,
        bytes: u64,
        limit: usize,
    },

    /// A data set (or its preprocessed copy) that needs more memory than the budget.
    #[error(
        "{what} needs {needed} in memory, more than the {limit} of {source_of_limit}: use a \
         machine with more memory or a smaller data set, or set LADDER_MEMORY_LIMIT if that limit \
         is wrong"
    )]
    OverMemory {
        what: String,
        needed: String,
        limit: String,
        source_of_limit: &'static str,
    },

    /// Image and label files disagree on the number of examples.
    #[error(
        "{images_file} holds {images} images but {labels_file} holds {labels} labels; the counts must match"
    )]
    CountMismatch {
        images_file: String,
        labels_file: String,
        images: usize,
        labels: usize,
    },

    /// A label is not a valid class index.
    #[error(
        "{file}: label {label} at index {index} is out of range for {num_classes} classes (valid: 0..{num_classes})"
    )]
    LabelOutOfRange {
        file: String,
        label: u32,
        index: usize,
        num_classes: usize,
    },

    /// Train and test images have different shapes.
    #[error(
        "image shape {train:?} in {train_file} differs from image shape {test:?} in {test_file}"
    )]
    ShapeMismatch {
        train_file: String,
        test_file: String,
        train: Vec<usize>,
        test: Vec<usize>,
    },

    /// None of the accepted names for a dataset file exists.
    #[error("{}: missing {what} file; tried {}", .dir.display(), .tried.join(", "))]
    MissingFile {
        dir: PathBuf,
        what: &'static str,
        tried: Vec<String>,
    },

    /// A balanced labelled subset needs more examples of a class than exist.
    #[error(
        "not enough examples of class {class} for a balanced labelled subset: have {have}, need {need}"
    )]
    NotEnoughExamples {
        class: usize,
        have: usize,
        need: usize,
    },

    /// The requested split sizes cannot be satisfied.
    #[error("impossible split: asked for {requested} {what}, but only {available} are available")]
    ImpossibleSplit {
        what: &'static str,
        requested: usize,
        available: usize,
    },

    /// Splits need at least one class.
    #[error("the number of classes must be at least 1")]
    NoClasses,

    /// The gzip stream is corrupt or cut short.
    #[error("{file}: gzip decode error: {source}")]
    Gzip {
        file: String,
        #[source]
        source: std::io::Error,
    },

    /// A CSV row that cannot be read, with its line number.
    #[error("{file}, line {line}: {reason}")]
    Csv {
        file: String,
        line: u64,
        reason: String,
    },

    /// A CSV file or setting that cannot give a data set.
    #[error("{file}: {reason}")]
    CsvFile { file: String, reason: String },

    /// A CIFAR-10 batch file or directory that cannot give a data set.
    #[error("{file}: {reason}")]
    Cifar { file: String, reason: String },

    /// Preprocessing that does not fit the data (e.g. a crop larger than the images).
    #[error("{0}")]
    Preprocess(String),

    /// A data file whose content is not the one a run recorded, or that is gone.
    #[error("{file}: {reason}")]
    Fingerprint { file: String, reason: String },

    /// Data options that contradict each other or the run's recorded data.
    #[error("{0}")]
    Source(String),

    /// An image file that cannot be read, or that does not fit the others.
    #[error("{}: {reason}", .path.display())]
    Image { path: PathBuf, reason: String },

    /// An image-folder data set whose layout cannot give a data set.
    #[error("{}: {reason}", .dir.display())]
    ImageFolder { dir: PathBuf, reason: String },

    /// Reading or writing a file failed.
    #[error("{}: I/O error: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
