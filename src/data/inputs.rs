//! The files `predict` labels, other than PNG and JPEG images ([`super::images`]): an IDX image
//! file, a CIFAR-10 or CIFAR-100 binary batch (`.bin`, its labels ignored) or a CSV file of one example per
//! row (`.csv`).

use std::path::Path;

use super::DataError;
use super::cifar::{CifarLayout, parse_records};
use super::csv::read_feature_rows;
use super::dataset::{Dataset, load_idx_images};

/// What the values of a CSV file's rows are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowValues {
    /// Pixels in [0, 1], channel-major, of a model trained on images.
    Pixels,
    /// Features of a model trained on CSV data, standardised later with its statistics.
    Features,
}

fn has_extension(path: &Path, ext: &str) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case(ext))
}

/// The image shape of `d` pixels given as one row: `[3, s, s]` for 3·s² (colour, CIFAR-10's
/// layout), `[s, s]` for s², `[d]` otherwise.
pub fn flat_image_shape(d: usize) -> Vec<usize> {
    let side = |n: usize| {
        let s = (n as f64).sqrt().round() as usize;
        (s * s == n).then_some(s)
    };
    match (d.is_multiple_of(3).then(|| side(d / 3)).flatten(), side(d)) {
        (Some(s), _) => vec![3, s, s],
        (None, Some(s)) => vec![s, s],
        _ => vec![d],
    }
}

/// The layout of a `.bin` file of `len` bytes: the one whose records fill it, or, when both
/// would, the one of the model's class count.
fn cifar_layout(len: usize, num_classes: usize) -> CifarLayout {
    let fits = |l: CifarLayout| len.is_multiple_of(l.record());
    match (fits(CifarLayout::Ten), fits(CifarLayout::Hundred)) {
        (false, true) => CifarLayout::Hundred,
        (true, true) if num_classes == CifarLayout::Hundred.classes() => CifarLayout::Hundred,
        _ => CifarLayout::Ten,
    }
}

/// The examples of `path` for a model of `num_classes`; CSV rows hold `values`.
pub fn read_inputs(
    path: &Path,
    values: RowValues,
    num_classes: usize,
) -> Result<Dataset, DataError> {
    let mut ds = if has_extension(path, "csv") {
        let mut ds = read_feature_rows(path)?;
        if values == RowValues::Pixels {
            check_pixels(&ds, path)?;
            ds.image_shape = flat_image_shape(ds.dim);
        }
        ds
    } else if has_extension(path, "bin") {
        let bytes = std::fs::read(path).map_err(|source| DataError::Io {
            path: path.into(),
            source,
        })?;
        parse_records(
            &bytes,
            &path.display().to_string(),
            cifar_layout(bytes.len(), num_classes),
        )?
    } else {
        let (images, n, image_shape) = load_idx_images(path)?;
        Dataset {
            dim: image_shape.iter().product(),
            images,
            labels: vec![0; n],
            n,
            image_shape,
            num_classes,
        }
    };
    ds.labels = vec![0; ds.n];
    ds.num_classes = num_classes;
    Ok(ds)
}

/// Rows for an image model must be pixels in [0, 1]: 0–255 values would be classified
/// silently wrong.
fn check_pixels(ds: &Dataset, path: &Path) -> Result<(), DataError> {
    let values = ds.images.all();
    match values.iter().position(|v| !(0.0..=1.0).contains(v)) {
        None => Ok(()),
        Some(k) => Err(DataError::CsvFile {
            file: path.display().to_string(),
            reason: format!(
                "row {}, column {} is {}: a model trained on images takes pixels in [0, 1] \
                 (divide 0–255 values by 255)",
                k / ds.dim + 1,
                k % ds.dim + 1,
                values[k]
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_rows_get_the_image_shape_of_their_length() {
        assert_eq!(flat_image_shape(784), vec![28, 28]);
        assert_eq!(flat_image_shape(3072), vec![3, 32, 32]);
        assert_eq!(flat_image_shape(54), vec![54]);
    }

    #[test]
    fn csv_rows_skip_a_header_and_image_models_refuse_byte_values() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.csv");
        std::fs::write(&p, "pixel0,pixel1,pixel2,pixel3\n0,0.5,1,0.25\n1,1,0,0\n").unwrap();
        let ds = read_inputs(&p, RowValues::Pixels, 10).unwrap();
        assert_eq!((ds.n, ds.dim, ds.image_shape.clone()), (2, 4, vec![2, 2]));
        assert_eq!(ds.images, vec![0.0, 0.5, 1.0, 0.25, 1.0, 1.0, 0.0, 0.0]);
        std::fs::write(&p, "0,128,255,3\n").unwrap();
        let e = read_inputs(&p, RowValues::Pixels, 10)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("row 1, column 2 is 128") && e.contains("[0, 1]"),
            "{e}"
        );
        // Features of a CSV-trained model may take any value.
        let ds = read_inputs(&p, RowValues::Features, 10).unwrap();
        assert_eq!(
            (ds.image_shape.clone(), ds.images.all()[2]),
            (vec![4], 255.0)
        );
        std::fs::write(&p, "1,2\n3\n").unwrap();
        let e = read_inputs(&p, RowValues::Features, 10)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("1 columns"), "{e}");
        std::fs::write(&p, "1,2\n1,x\n").unwrap();
        let e = read_inputs(&p, RowValues::Features, 10)
            .unwrap_err()
            .to_string();
        assert!(e.contains("'x' is not a finite number"), "{e}");
    }

    #[test]
    fn cifar_batches_are_read_without_their_labels_mattering() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("test_batch.bin");
        let pixels: Vec<u8> = (0..2 * 3072).map(|i| (i % 256) as u8).collect();
        std::fs::write(&p, crate::data::cifar::encode_cifar(&[3, 7], &pixels)).unwrap();
        let ds = read_inputs(&p, RowValues::Pixels, 10).unwrap();
        assert_eq!((ds.n, ds.image_shape.clone()), (2, vec![3, 32, 32]));
        assert_eq!(ds.labels, vec![0, 0]);
        std::fs::write(&p, [0u8; 100]).unwrap();
        assert!(read_inputs(&p, RowValues::Pixels, 10).is_err());
        // CIFAR-100's records have two label bytes: the length tells them apart.
        let mut bytes = Vec::new();
        for fine in [5u8, 77] {
            bytes.extend([1, fine]);
            bytes.extend(&pixels[..3072]);
        }
        std::fs::write(&p, &bytes).unwrap();
        let ds = read_inputs(&p, RowValues::Pixels, 100).unwrap();
        assert_eq!((ds.n, ds.row(1)[1]), (2, 1.0 / 255.0));
    }
}
