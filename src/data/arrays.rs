//! Data sets from arrays a caller already holds (the Python package's numpy arrays): pixels as
//! bytes, standing for `byte / 255` as an IDX file's do, or as floats taken as they are;
//! labels with `-1` for unlabelled examples (scikit-learn's semi-supervised convention).

use super::DataError;
use super::dataset::{Dataset, check_label_range};
use super::pixels::Pixels;

/// The pixels of `n × shape…` examples, row-major.
#[derive(Debug, Clone, Copy)]
pub enum PixelSlice<'a> {
    /// Bytes, scaled to `[0, 1]` as `byte / 255` (the IDX loader's scaling).
    Bytes(&'a [u8]),
    /// Values the network takes as they are.
    Floats(&'a [f32]),
}

/// The label of an unlabelled example.
pub const UNLABELLED: i64 = -1;

/// `pixels` of the array shape `dims` (`n` then 1 to 3 image dimensions) with one class per
/// example; `name` names the array in errors.
pub fn dataset_of(
    pixels: PixelSlice<'_>,
    dims: &[usize],
    labels: Vec<u32>,
    num_classes: usize,
    name: &str,
) -> Result<Dataset, DataError> {
    if !(2..=4).contains(&dims.len()) {
        return Err(DataError::Source(format!(
            "{name} has {} dimension(s); expected 2 to 4 (examples, then the image shape: \
             features, height × width or channels × height × width)",
            dims.len()
        )));
    }
    let n = dims[0];
    let dim: usize = dims[1..].iter().product();
    if n == 0 || dim == 0 {
        return Err(DataError::Source(format!(
            "{name} of shape {dims:?} holds no values"
        )));
    }
    if labels.len() != n {
        return Err(DataError::Source(format!(
            "{name} holds {n} examples but {} labels were given",
            labels.len()
        )));
    }
    check_label_range(&labels, num_classes, name)?;
    let len = match pixels {
        PixelSlice::Bytes(b) => b.len(),
        PixelSlice::Floats(v) => v.len(),
    };
    if len != n * dim {
        return Err(DataError::Source(format!(
            "{name} of shape {dims:?} should hold {} values, not {len}",
            n * dim
        )));
    }
    if let PixelSlice::Floats(values) = pixels
        && let Some(i) = values.iter().position(|v| !v.is_finite())
    {
        return Err(DataError::Source(format!(
            "{name} holds a value that is not finite ({}) at example {}",
            values[i],
            i / dim
        )));
    }
    let images = match pixels {
        PixelSlice::Bytes(bytes) => Pixels::bytes(bytes.to_vec()),
        PixelSlice::Floats(values) => values.to_vec().into(),
    };
    Ok(Dataset {
        images,
        labels,
        n,
        dim,
        image_shape: dims[1..].to_vec(),
        num_classes,
    })
}

/// Labels in which [`UNLABELLED`] marks an example without one: the classes (0 where there
/// is none) and the indices of the labelled examples. Other negative values and classes from
/// `num_classes` on are errors naming the example.
pub fn known_labels(
    labels: &[i64],
    num_classes: usize,
    name: &str,
) -> Result<(Vec<u32>, Vec<usize>), DataError> {
    let mut classes = Vec::with_capacity(labels.len());
    let mut known = Vec::new();
    for (i, &y) in labels.iter().enumerate() {
        if y == UNLABELLED {
            classes.push(0);
            continue;
        }
        if y < 0 || y >= num_classes as i64 {
            return Err(DataError::Source(format!(
                "{name}[{i}] = {y}: labels must lie in 0..{num_classes} (the configuration's \
                 num_classes), or be {UNLABELLED} for an unlabelled example"
            )));
        }
        classes.push(y as u32);
        known.push(i);
    }
    Ok((classes, known))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_scaled_as_the_idx_loader_scales_them() {
        let ds = dataset_of(
            PixelSlice::Bytes(&[0, 255, 51, 102]),
            &[2, 2],
            vec![1, 0],
            2,
            "X",
        )
        .unwrap();
        assert_eq!(ds.images, vec![0.0, 1.0, 0.2, 0.4]);
        assert_eq!((ds.n, ds.dim, ds.image_shape.clone()), (2, 2, vec![2]));
        assert_eq!(ds.labels, vec![1, 0]);
    }

    #[test]
    fn floats_are_taken_as_they_are_and_images_keep_their_shape() {
        let v: Vec<f32> = (0..12).map(|i| i as f32 - 3.5).collect();
        let ds = dataset_of(PixelSlice::Floats(&v), &[2, 2, 3], vec![0, 0], 1, "X").unwrap();
        assert_eq!(ds.images, v);
        assert_eq!((ds.dim, ds.image_shape.clone()), (6, vec![2, 3]));
    }

    #[test]
    fn bad_arrays_are_refused_with_what_is_wrong() {
        let err = |r: Result<Dataset, DataError>| r.unwrap_err().to_string();
        let v = [0.0f32; 6];
        assert!(
            err(dataset_of(PixelSlice::Floats(&v), &[6], vec![0; 6], 2, "X")).contains("1 dim")
        );
        assert!(
            err(dataset_of(
                PixelSlice::Floats(&v),
                &[3, 2],
                vec![0; 2],
                2,
                "X"
            ))
            .contains("3 examples but 2 labels")
        );
        assert!(
            err(dataset_of(
                PixelSlice::Floats(&v),
                &[2, 3],
                vec![0, 5],
                2,
                "X"
            ))
            .contains('5')
        );
        let nan = [0.0, f32::NAN, 0.0, 0.0];
        assert!(
            err(dataset_of(
                PixelSlice::Floats(&nan),
                &[2, 2],
                vec![0, 0],
                2,
                "X"
            ))
            .contains("not finite (NaN) at example 0")
        );
    }

    #[test]
    fn minus_one_marks_the_unlabelled_examples() {
        let (classes, known) = known_labels(&[2, -1, 0, -1], 3, "y").unwrap();
        assert_eq!(classes, vec![2, 0, 0, 0]);
        assert_eq!(known, vec![0, 2]);
        for bad in [-2, 3] {
            let e = known_labels(&[0, bad], 3, "y").unwrap_err().to_string();
            assert!(e.contains(&format!("y[1] = {bad}")), "{e}");
        }
    }
}
