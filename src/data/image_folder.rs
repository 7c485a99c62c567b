//! Image folders as a data set, torchvision's `ImageFolder` layout with a training and a test
//! split: `DIR/train/<class>/*.png` (or `.jpg`, `.jpeg`) and `DIR/test/<class>/…` (or
//! `DIR/val/<class>/…`). Classes are numbered 0, 1, … in the sorted order of the training
//! split's class folders, as `ImageFolder` numbers them; a test folder must be one of them.
//! Files of other kinds are ignored, as `ImageFolder` ignores them.
//!
//! Every image must have one size. The images are grey (`[H, W]`) when every file is grey,
//! otherwise colour (`[3, H, W]`, grey files repeated in the three planes); pixels in [0, 1].

use std::path::{Path, PathBuf};

use super::DataError;
use super::dataset::{Dataset, TrainTest};
use super::images::{image_shape, images_in, read_pixels, scan};

/// The training split's folder.
pub const TRAIN_SPLIT: &str = "train";
/// The test split's folder names, in the order they are looked for.
pub const TEST_SPLITS: [&str; 2] = ["test", "val"];

/// Whether `dir` has the layout: a `train` folder and a `test` or `val` folder.
pub fn is_image_folder(dir: &Path) -> bool {
    dir.join(TRAIN_SPLIT).is_dir() && TEST_SPLITS.iter().any(|s| dir.join(s).is_dir())
}

fn bad(dir: &Path, reason: String) -> DataError {
    DataError::ImageFolder {
        dir: dir.into(),
        reason,
    }
}

/// The sub-folders of `dir`, sorted by name.
fn folders(dir: &Path) -> Result<Vec<String>, DataError> {
    let entries = std::fs::read_dir(dir).map_err(|source| DataError::Io {
        path: dir.into(),
        source,
    })?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    Ok(names)
}

/// The test split's folder.
fn test_split(dir: &Path) -> Result<PathBuf, DataError> {
    TEST_SPLITS
        .iter()
        .map(|s| dir.join(s))
        .find(|p| p.is_dir())
        .ok_or_else(|| bad(dir, "has no test/ or val/ folder".into()))
}

/// The class names: the training split's folders, sorted.
pub fn classes(dir: &Path) -> Result<Vec<String>, DataError> {
    let names = folders(&dir.join(TRAIN_SPLIT))?;
    if names.is_empty() {
        return Err(bad(dir, "train/ holds no class folders".into()));
    }
    Ok(names)
}

/// Every image of one split with its class, by class and then by name.
fn split_files(
    dir: &Path,
    split: &Path,
    classes: &[String],
) -> Result<Vec<(PathBuf, u32)>, DataError> {
    let mut out = Vec::new();
    for name in folders(split)? {
        let Some(class) = classes.iter().position(|c| *c == name) else {
            return Err(bad(
                dir,
                format!(
                    "{} has the class folder {name}, which train/ does not have (its classes: {})",
                    split.display(),
                    classes.join(", ")
                ),
            ));
        };
        out.extend(
            images_in(&split.join(&name))?
                .into_iter()
                .map(|f| (f, class as u32)),
        );
    }
    if out.is_empty() {
        return Err(bad(dir, format!("{} holds no images", split.display())));
    }
    Ok(out)
}

/// The files the data set reads: the training split's, then the test split's.
pub fn files(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let classes = classes(dir)?;
    let train = split_files(dir, &dir.join(TRAIN_SPLIT), &classes)?;
    let test = split_files(dir, &test_split(dir)?, &classes)?;
    Ok(train.into_iter().chain(test).map(|(f, _)| f).collect())
}

/// Both splits, for `num_classes` classes (the number of class folders).
pub fn load_image_folder(dir: &Path, num_classes: usize) -> Result<TrainTest, DataError> {
    let classes = classes(dir)?;
    if classes.len() != num_classes {
        return Err(bad(
            dir,
            format!(
                "train/ has {} class folders ({}), but {num_classes} classes were asked for: \
                 pass --num-classes {}",
                classes.len(),
                classes.join(", "),
                classes.len()
            ),
        ));
    }
    let splits = [
        split_files(dir, &dir.join(TRAIN_SPLIT), &classes)?,
        split_files(dir, &test_split(dir)?, &classes)?,
    ];
    let files: Vec<Vec<PathBuf>> = splits
        .iter()
        .map(|s| s.iter().map(|(f, _)| f.clone()).collect())
        .collect();
    let scanned = files
        .iter()
        .map(|f| scan(f))
        .collect::<Result<Vec<_>, _>>()?;
    let (train_size, test_size) = (scanned[0].size, scanned[1].size);
    if train_size != test_size {
        return Err(bad(
            dir,
            format!(
                "the training images are {}×{} but the test images {}×{}",
                train_size.1, train_size.0, test_size.1, test_size.0
            ),
        ));
    }
    let channels = if scanned.iter().any(|s| s.colour) {
        3
    } else {
        1
    };
    let mut sets = Vec::with_capacity(2);
    for ((split, paths), scan) in splits.iter().zip(&files).zip(&scanned) {
        let pixels = read_pixels(paths, channels, *scan)?;
        sets.push(Dataset {
            n: split.len(),
            dim: pixels.len() / split.len(),
            images: pixels,
            labels: split.iter().map(|(_, c)| *c).collect(),
            image_shape: image_shape(channels, scan.size),
            num_classes,
        });
    }
    let test = sets.pop().expect("two splits");
    let train = sets.pop().expect("two splits");
    Ok(TrainTest { train, test })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grey_png(path: &Path, value: u8, side: u32) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        image::GrayImage::from_pixel(side, side, image::Luma([value]))
            .save(path)
            .unwrap();
    }

    /// Pixels are read straight into their final buffer: an image that changed size after
    /// the scan is an error naming it, not a shifted set.
    #[test]
    fn an_image_resized_after_the_scan_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<PathBuf> = (0..3)
            .map(|i| dir.path().join(format!("{i}.png")))
            .collect();
        for (i, f) in files.iter().enumerate() {
            grey_png(f, 40 * i as u8, 4);
        }
        let scanned = scan(&files).unwrap();
        let pixels = read_pixels(&files, 1, scanned).unwrap();
        assert_eq!(pixels.len(), 3 * 16);
        let third = crate::data::pixels::Pixels::bytes(vec![80; 16]);
        assert_eq!(pixels.gather(&[2], 16), third);
        grey_png(&files[1], 7, 5);
        let err = read_pixels(&files, 1, scanned).unwrap_err().to_string();
        assert!(
            err.contains("1.png") && err.contains("when the images were scanned"),
            "{err}"
        );
    }

    #[test]
    fn classes_are_numbered_in_sorted_folder_order_and_grey_stays_grey() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        grey_png(&d.join("train/dog/b.png"), 255, 2);
        grey_png(&d.join("train/dog/a.png"), 51, 2);
        grey_png(&d.join("train/cat/x.png"), 0, 2);
        std::fs::write(d.join("train/cat/notes.txt"), "ignored").unwrap();
        grey_png(&d.join("val/dog/c.png"), 102, 2);
        assert!(is_image_folder(d));
        let data = load_image_folder(d, 2).unwrap();
        assert_eq!(data.train.labels, vec![0, 1, 1]);
        assert_eq!(data.train.image_shape, vec![2, 2]);
        assert_eq!(*data.train.row(1), [0.2; 4]);
        assert_eq!(
            (data.test.labels.clone(), data.test.row(0)[0]),
            (vec![1], 0.4)
        );
        assert_eq!(files(d).unwrap().len(), 4);
        let e = load_image_folder(d, 10).unwrap_err().to_string();
        assert!(
            e.contains("2 class folders (cat, dog)") && e.contains("--num-classes 2"),
            "{e}"
        );
        // A test class that training does not know, a colour image, another size.
        grey_png(&d.join("val/bird/z.png"), 0, 2);
        let e = load_image_folder(d, 2).unwrap_err().to_string();
        assert!(e.contains("bird"), "{e}");
        std::fs::remove_dir_all(d.join("val/bird")).unwrap();
        image::RgbImage::from_pixel(2, 2, image::Rgb([255, 0, 0]))
            .save(d.join("train/cat/red.png"))
            .unwrap();
        let data = load_image_folder(d, 2).unwrap();
        assert_eq!(data.train.image_shape, vec![3, 2, 2]);
        assert_eq!(data.train.row(0)[..4], [1.0; 4], "red plane of red.png");
        grey_png(&d.join("train/cat/big.png"), 0, 3);
        let e = load_image_folder(d, 2).unwrap_err().to_string();
        assert!(e.contains("big.png") && e.contains("one size"), "{e}");
    }
}
