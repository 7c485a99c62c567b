//! PNG and JPEG files as inputs for prediction: one file, or every such file of a directory
//! (in name order), all of one size, scaled to [0, 1] like the IDX and CIFAR readers. Grey
//! (one value per pixel) or colour (the red, green and blue planes, as CIFAR-10 stores them),
//! as the model needs.

use std::path::{Path, PathBuf};

use crate::data::Dataset;
use crate::error::{LadderError, Result};

/// Whether `path` names a PNG or JPEG file by its extension.
pub fn is_image_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
}

/// The image files `path` names: itself, or those in the directory, sorted.
pub fn image_files(path: &Path) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| LadderError::io(path, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| is_image_file(p))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(LadderError::Format {
            path: path.into(),
            reason: "holds no .png, .jpg or .jpeg file".into(),
        });
    }
    Ok(files)
}

/// Reads `files` as one data set of `channels` (1: grey, 3: colour) for a model of
/// `num_classes`; every file must decode and have the first one's size.
pub fn load_images(files: &[PathBuf], channels: usize, num_classes: usize) -> Result<Dataset> {
    let mut images = Vec::new();
    let mut size = None;
    for f in files {
        let bad = |reason: String| LadderError::Format {
            path: f.clone(),
            reason,
        };
        let img =
            image::open(f).map_err(|e| bad(format!("not a readable PNG or JPEG image: {e}")))?;
        let (w, h) = (img.width() as usize, img.height() as usize);
        match size {
            None => size = Some((h, w)),
            Some((h0, w0)) if (h0, w0) != (h, w) => {
                return Err(bad(format!(
                    "is {w}×{h} but {} is {w0}×{h0}: every image must have one size",
                    files[0].display()
                )));
            }
            _ => {}
        }
        match channels {
            1 => images.extend(img.to_luma8().pixels().map(|p| p.0[0] as f32 / 255.0)),
            3 => {
                let rgb = img.to_rgb8();
                for c in 0..3 {
                    images.extend(rgb.pixels().map(|p| p.0[c] as f32 / 255.0));
                }
            }
            other => return Err(bad(format!("{other} channels: only grey or colour images"))),
        }
    }
    let (h, w) = size.expect("at least one file");
    let image_shape = match channels {
        1 => vec![h, w],
        _ => vec![channels, h, w],
    };
    Ok(Dataset {
        n: files.len(),
        dim: images.len() / files.len(),
        images,
        labels: vec![0; files.len()],
        image_shape,
        num_classes,
    })
}
