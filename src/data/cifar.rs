//! CIFAR-10 and CIFAR-100 in their binary formats, as distributed at
//! <https://www.cs.toronto.edu/~kriz/cifar.html>:
//!
//! - CIFAR-10: `data_batch_1.bin` … `data_batch_5.bin` and `test_batch.bin`, each a sequence of
//!   3,073-byte records (one label byte, then 1,024 red, 1,024 green and 1,024 blue bytes of a
//!   32×32 image, row-major);
//! - CIFAR-100: `train.bin` and `test.bin`, 3,074-byte records (the coarse label byte, the fine
//!   label byte, then the pixels); the 100 fine classes are the labels.
//!
//! Pixels are scaled to `[0, 1]`; images keep their `[3, 32, 32]` channel-major layout, which
//! is the layout the convolutional layers read.

use std::path::Path;

use super::DataError;
use super::dataset::{Dataset, TrainTest};
use super::pixels::Pixels;

pub const CIFAR_SIDE: usize = 32;
pub const CIFAR_CHANNELS: usize = 3;
pub const CIFAR_PIXELS: usize = CIFAR_CHANNELS * CIFAR_SIDE * CIFAR_SIDE;
/// One label byte and the pixels.
pub const CIFAR_RECORD: usize = 1 + CIFAR_PIXELS;
pub const CIFAR_CLASSES: usize = 10;
pub const CIFAR_TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
pub const CIFAR_TEST_FILE: &str = "test_batch.bin";

/// CIFAR-100's files.
pub const CIFAR100_TRAIN_FILE: &str = "train.bin";
pub const CIFAR100_TEST_FILE: &str = "test.bin";
pub const CIFAR100_CLASSES: usize = 100;

/// The two record layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CifarLayout {
    /// CIFAR-10: a label byte and the pixels.
    Ten,
    /// CIFAR-100: a coarse and a fine label byte and the pixels (the fine label is read).
    Hundred,
}

impl CifarLayout {
    fn name(self) -> &'static str {
        match self {
            CifarLayout::Ten => "CIFAR-10",
            CifarLayout::Hundred => "CIFAR-100",
        }
    }

    /// Label bytes before the pixels.
    fn label_bytes(self) -> usize {
        match self {
            CifarLayout::Ten => 1,
            CifarLayout::Hundred => 2,
        }
    }

    pub fn record(self) -> usize {
        self.label_bytes() + CIFAR_PIXELS
    }

    pub fn classes(self) -> usize {
        match self {
            CifarLayout::Ten => CIFAR_CLASSES,
            CifarLayout::Hundred => CIFAR100_CLASSES,
        }
    }
}

/// Whether `dir` looks like a CIFAR-10 binary directory (it has the first training batch).
pub fn is_cifar_dir(dir: &Path) -> bool {
    dir.join(CIFAR_TRAIN_FILES[0]).is_file()
}

/// Whether `dir` looks like a CIFAR-100 binary directory (`train.bin` and `test.bin`).
pub fn is_cifar100_dir(dir: &Path) -> bool {
    dir.join(CIFAR100_TRAIN_FILE).is_file() && dir.join(CIFAR100_TEST_FILE).is_file()
}

/// Decodes the records of one CIFAR-10 batch file's bytes; `file` names it in errors.
pub fn parse_cifar(bytes: &[u8], file: &str) -> Result<Dataset, DataError> {
    parse_records(bytes, file, CifarLayout::Ten)
}

/// Decodes the records of one batch file of `layout`; `file` names it in errors.
pub fn parse_records(bytes: &[u8], file: &str, layout: CifarLayout) -> Result<Dataset, DataError> {
    let bad = |reason: String| DataError::Cifar {
        file: file.to_owned(),
        reason,
    };
    let (record, name, skip) = (layout.record(), layout.name(), layout.label_bytes());
    if bytes.is_empty() {
        return Err(bad(format!(
            "empty file: a {name} batch holds {record}-byte records"
        )));
    }
    if !bytes.len().is_multiple_of(record) {
        return Err(bad(format!(
            "{} bytes is not a whole number of {record}-byte {name} records ({skip} label \
             byte(s) and 3,072 pixel bytes each): {} whole records and {} bytes left over; the \
             file is truncated or not a {name} binary batch",
            bytes.len(),
            bytes.len() / record,
            bytes.len() % record
        )));
    }
    let n = bytes.len() / record;
    let mut images = Vec::with_capacity(n * CIFAR_PIXELS);
    let mut labels = Vec::with_capacity(n);
    for (index, r) in bytes.chunks_exact(record).enumerate() {
        let label = u32::from(r[skip - 1]);
        if label as usize >= layout.classes() {
            return Err(DataError::LabelOutOfRange {
                file: file.to_owned(),
                label,
                index,
                num_classes: layout.classes(),
            });
        }
        labels.push(label);
        images.extend_from_slice(&r[skip..]);
    }
    Ok(Dataset {
        images: Pixels::bytes(images),
        labels,
        n,
        dim: CIFAR_PIXELS,
        image_shape: vec![CIFAR_CHANNELS, CIFAR_SIDE, CIFAR_SIDE],
        num_classes: layout.classes(),
    })
}

fn read_batch(dir: &Path, name: &str, layout: CifarLayout) -> Result<Dataset, DataError> {
    let path = dir.join(name);
    if let Ok(meta) = std::fs::metadata(&path) {
        super::memory::check(&path.display().to_string(), meta.len())?;
    }
    let bytes = std::fs::read(&path).map_err(|source| DataError::Io {
        path: path.clone(),
        source,
    })?;
    parse_records(&bytes, &path.display().to_string(), layout)
}

/// The 50,000 training and 10,000 test images of a CIFAR-100 directory, fine labels.
pub fn load_cifar100_dir(dir: &Path, num_classes: usize) -> Result<TrainTest, DataError> {
    if num_classes != CIFAR100_CLASSES {
        return Err(DataError::Cifar {
            file: dir.display().to_string(),
            reason: format!(
                "CIFAR-100 has {CIFAR100_CLASSES} (fine) classes, not {num_classes}: pass \
                 --num-classes {CIFAR100_CLASSES}"
            ),
        });
    }
    let layout = CifarLayout::Hundred;
    Ok(TrainTest {
        train: read_batch(dir, CIFAR100_TRAIN_FILE, layout)?,
        test: read_batch(dir, CIFAR100_TEST_FILE, layout)?,
    })
}

/// Concatenates data sets of the same image shape.
fn concat(parts: Vec<Dataset>) -> Dataset {
    let images: Vec<&Pixels> = parts.iter().map(|p| &p.images).collect();
    Dataset {
        images: Pixels::joined(&images),
        labels: parts
            .iter()
            .flat_map(|p| p.labels.iter().copied())
            .collect(),
        n: parts.iter().map(|p| p.n).sum(),
        ..parts[0].clone()
    }
}

/// The 50,000 training images of the five batches and the 10,000 test images.
pub fn load_cifar_dir(dir: &Path, num_classes: usize) -> Result<TrainTest, DataError> {
    if num_classes != CIFAR_CLASSES {
        return Err(DataError::Cifar {
            file: dir.display().to_string(),
            reason: format!("CIFAR-10 has {CIFAR_CLASSES} classes, not {num_classes}"),
        });
    }
    let train = CIFAR_TRAIN_FILES
        .iter()
        .map(|f| read_batch(dir, f, CifarLayout::Ten))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TrainTest {
        train: concat(train),
        test: read_batch(dir, CIFAR_TEST_FILE, CifarLayout::Ten)?,
    })
}

/// The bytes of a batch file holding `labels` and `pixels` (3,072 bytes per image), for tests
/// and for users converting other data.
pub fn encode_cifar(labels: &[u8], pixels: &[u8]) -> Vec<u8> {
    assert_eq!(pixels.len(), labels.len() * CIFAR_PIXELS);
    labels
        .iter()
        .zip(pixels.chunks_exact(CIFAR_PIXELS))
        .flat_map(|(&l, p)| std::iter::once(l).chain(p.iter().copied()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pixels(n: usize) -> Vec<u8> {
        (0..n * CIFAR_PIXELS).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn records_decode_to_channel_major_images() {
        let bytes = encode_cifar(&[3, 9], &pixels(2));
        let d = parse_cifar(&bytes, "x").unwrap();
        assert_eq!((d.n, d.dim, d.labels.clone()), (2, 3072, vec![3, 9]));
        assert_eq!(d.image_shape, vec![3, 32, 32]);
        // Second image, green channel, row 0 column 1: pixel byte 3072 + 1024 + 1.
        let expected = ((3072 + 1024 + 1) % 251) as f32 / 255.0;
        assert_eq!(d.row(1)[1024 + 1], expected);
    }

    #[test]
    fn wrong_lengths_and_labels_are_refused() {
        let mut bytes = encode_cifar(&[1], &pixels(1));
        bytes.pop();
        let err = parse_cifar(&bytes, "data_batch_1.bin")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("data_batch_1.bin") && err.contains("3072 bytes is not a whole number"),
            "{err}"
        );
        assert!(
            parse_cifar(&[], "e")
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
        let bytes = encode_cifar(&[10], &pixels(1));
        let err = parse_cifar(&bytes, "t").unwrap_err().to_string();
        assert!(err.contains("label 10 at index 0"), "{err}");
    }

    #[test]
    fn cifar100_records_carry_the_fine_label_second() {
        let mut bytes = Vec::new();
        for (coarse, fine) in [(3u8, 42u8), (19, 99)] {
            bytes.extend([coarse, fine]);
            bytes.extend(pixels(1));
        }
        let d = parse_records(&bytes, "train.bin", CifarLayout::Hundred).unwrap();
        assert_eq!(
            (d.n, d.labels.clone(), d.num_classes),
            (2, vec![42, 99], 100)
        );
        assert_eq!(d.row(1)[0], 0.0, "pixels start after the two label bytes");
        bytes[1] = 100;
        let e = parse_records(&bytes, "train.bin", CifarLayout::Hundred).unwrap_err();
        assert!(e.to_string().contains("label 100 at index 0"), "{e}");
        let e = parse_records(&bytes[..3073], "t", CifarLayout::Hundred).unwrap_err();
        assert!(e.to_string().contains("3074-byte CIFAR-100 records"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        bytes[1] = 7;
        std::fs::write(dir.path().join(CIFAR100_TRAIN_FILE), &bytes).unwrap();
        std::fs::write(dir.path().join(CIFAR100_TEST_FILE), &bytes[..3074]).unwrap();
        assert!(is_cifar100_dir(dir.path()) && !is_cifar_dir(dir.path()));
        let pair = load_cifar100_dir(dir.path(), 100).unwrap();
        assert_eq!((pair.train.n, pair.test.labels.clone()), (2, vec![7]));
        let e = load_cifar100_dir(dir.path(), 10).unwrap_err().to_string();
        assert!(e.contains("--num-classes 100"), "{e}");
    }

    #[test]
    fn a_directory_loads_all_batches() {
        let dir = tempfile::tempdir().unwrap();
        for (i, f) in CIFAR_TRAIN_FILES.iter().enumerate() {
            std::fs::write(dir.path().join(f), encode_cifar(&[i as u8; 2], &pixels(2))).unwrap();
        }
        assert!(is_cifar_dir(dir.path()));
        let err = load_cifar_dir(dir.path(), 10).unwrap_err().to_string();
        assert!(err.contains("test_batch.bin"), "{err}");
        std::fs::write(
            dir.path().join(CIFAR_TEST_FILE),
            encode_cifar(&[7], &pixels(1)),
        )
        .unwrap();
        let pair = load_cifar_dir(dir.path(), 10).unwrap();
        assert_eq!((pair.train.n, pair.test.n), (10, 1));
        assert_eq!(pair.train.labels[8..], [4, 4]);
        assert!(load_cifar_dir(dir.path(), 5).is_err());
    }
}
