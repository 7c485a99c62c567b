//! CIFAR-10 in its binary format: `data_batch_1.bin` … `data_batch_5.bin` and `test_batch.bin`,
//! each a sequence of 3,073-byte records (one label byte, then 1,024 red, 1,024 green and 1,024
//! blue bytes of a 32×32 image, row-major), as distributed at
//! <https://www.cs.toronto.edu/~kriz/cifar.html>.
//!
//! Pixels are scaled to `[0, 1]`; images keep their `[3, 32, 32]` channel-major layout, which
//! is the layout the convolutional layers read.

use std::path::Path;

use super::DataError;
use super::dataset::{Dataset, TrainTest};

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

/// Whether `dir` looks like a CIFAR-10 binary directory (it has the first training batch).
pub fn is_cifar_dir(dir: &Path) -> bool {
    dir.join(CIFAR_TRAIN_FILES[0]).is_file()
}

/// Decodes the records of one batch file's bytes; `file` names it in errors.
pub fn parse_cifar(bytes: &[u8], file: &str) -> Result<Dataset, DataError> {
    let bad = |reason: String| DataError::Cifar {
        file: file.to_owned(),
        reason,
    };
    if bytes.is_empty() {
        return Err(bad(
            "empty file: a CIFAR-10 batch holds 3,073-byte records".into()
        ));
    }
    if !bytes.len().is_multiple_of(CIFAR_RECORD) {
        return Err(bad(format!(
            "{} bytes is not a whole number of {CIFAR_RECORD}-byte CIFAR-10 records (one label \
             byte and 3,072 pixel bytes each): {} whole records and {} bytes left over; the \
             file is truncated or not a CIFAR-10 binary batch",
            bytes.len(),
            bytes.len() / CIFAR_RECORD,
            bytes.len() % CIFAR_RECORD
        )));
    }
    let n = bytes.len() / CIFAR_RECORD;
    let mut images = Vec::with_capacity(n * CIFAR_PIXELS);
    let mut labels = Vec::with_capacity(n);
    for (index, record) in bytes.chunks_exact(CIFAR_RECORD).enumerate() {
        let label = u32::from(record[0]);
        if label as usize >= CIFAR_CLASSES {
            return Err(DataError::LabelOutOfRange {
                file: file.to_owned(),
                label,
                index,
                num_classes: CIFAR_CLASSES,
            });
        }
        labels.push(label);
        images.extend(record[1..].iter().map(|&b| f32::from(b) / 255.0));
    }
    Ok(Dataset {
        images,
        labels,
        n,
        dim: CIFAR_PIXELS,
        image_shape: vec![CIFAR_CHANNELS, CIFAR_SIDE, CIFAR_SIDE],
        num_classes: CIFAR_CLASSES,
    })
}

fn read_batch(dir: &Path, name: &str) -> Result<Dataset, DataError> {
    let path = dir.join(name);
    let bytes = std::fs::read(&path).map_err(|source| DataError::Io {
        path: path.clone(),
        source,
    })?;
    parse_cifar(&bytes, &path.display().to_string())
}

/// Concatenates data sets of the same image shape.
fn concat(parts: Vec<Dataset>) -> Dataset {
    let mut all = parts[0].clone();
    for p in &parts[1..] {
        all.images.extend_from_slice(&p.images);
        all.labels.extend_from_slice(&p.labels);
        all.n += p.n;
    }
    all
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
        .map(|f| read_batch(dir, f))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TrainTest {
        train: concat(train),
        test: read_batch(dir, CIFAR_TEST_FILE)?,
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
