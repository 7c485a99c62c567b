//! PNG and JPEG files as inputs: one file, or every such file of a directory (in name order),
//! all of one size, scaled to [0, 1] like the IDX and CIFAR readers. Grey (one value per pixel)
//! or colour (the red, green and blue planes, as CIFAR-10 stores them), as the model needs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::DynamicImage;

use super::DataError;
use super::dataset::Dataset;
use super::pixels::Pixels;

/// Whether `path` names a PNG or JPEG file by its extension.
pub fn is_image_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
    move |source| DataError::Io {
        path: path.into(),
        source,
    }
}

/// The PNG and JPEG files in `dir`, sorted by name.
pub fn images_in(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && is_image_file(p))
        .collect();
    files.sort();
    Ok(files)
}

/// The image files `path` names: itself, or those in the directory, sorted.
pub fn image_files(path: &Path) -> Result<Vec<PathBuf>, DataError> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let files = images_in(path)?;
    if files.is_empty() {
        return Err(DataError::Image {
            path: path.into(),
            reason: "holds no .png, .jpg or .jpeg file".into(),
        });
    }
    Ok(files)
}

fn decode(f: &Path) -> Result<DynamicImage, DataError> {
    image::open(f).map_err(|e| DataError::Image {
        path: f.into(),
        reason: format!("not a readable PNG or JPEG image: {e}"),
    })
}

/// What [`scan`] found: every image's `(height, width)` and whether any is in colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scanned {
    pub size: (usize, usize),
    pub colour: bool,
}

/// Decodes `files` once to check that they all have the first one's size and to tell whether
/// any is in colour, keeping none of them (a folder of 100,000 images is then read a second
/// time straight into bytes, never held decoded).
pub fn scan(files: &[PathBuf]) -> Result<Scanned, DataError> {
    let mut size = None;
    let mut colour = false;
    for f in files {
        let bad = |reason: String| DataError::Image {
            path: f.clone(),
            reason,
        };
        let img = decode(f)?;
        colour |= img.color().has_color();
        let hw = (img.height() as usize, img.width() as usize);
        match size {
            None => size = Some(hw),
            Some((h0, w0)) if (h0, w0) != hw => {
                return Err(bad(format!(
                    "is {}×{} but {} is {w0}×{h0}: every image must have one size",
                    hw.1,
                    hw.0,
                    files[0].display()
                )));
            }
            _ => {}
        }
    }
    Ok(Scanned {
        size: size.unwrap_or((0, 0)),
        colour,
    })
}

/// Writes the bytes of `img` to `out` (`channels` × its pixels): one plane for `channels` 1
/// (luminance), the red, green and blue planes for 3.
fn write_pixels(img: &DynamicImage, channels: usize, out: &mut [u8]) {
    match channels {
        1 => {
            for (o, p) in out.iter_mut().zip(img.to_luma8().pixels()) {
                *o = p.0[0];
            }
        }
        _ => {
            let rgb = img.to_rgb8();
            for (c, plane) in out.chunks_exact_mut((out.len() / 3).max(1)).enumerate() {
                for (o, p) in plane.iter_mut().zip(rgb.pixels()) {
                    *o = p.0[c];
                }
            }
        }
    }
}

/// The bytes of `files` (each of `scanned.size`, as [`scan`] checked), decoded one at a time
/// straight into the buffer the data set keeps. A file whose size changed since the scan is
/// an error.
pub fn read_pixels(
    files: &[PathBuf],
    channels: usize,
    scanned: Scanned,
) -> Result<Pixels, DataError> {
    let (h, w) = scanned.size;
    let per_image = channels * h * w;
    let needed = files.len() * per_image;
    if let Some(first) = files.first() {
        let what = format!("{} images like {}", files.len(), first.display());
        super::memory::check(&what, needed as u64)?;
    }
    let mut pixels: Arc<[u8]> = std::iter::repeat_n(0, needed).collect();
    let out = Arc::get_mut(&mut pixels).expect("not shared while filled");
    for (f, out) in files.iter().zip(out.chunks_exact_mut(per_image.max(1))) {
        let img = decode(f)?;
        let size = (img.height() as usize, img.width() as usize);
        if size != (h, w) {
            return Err(DataError::Image {
                path: f.into(),
                reason: format!(
                    "is {}×{} now, but was {w}×{h} when the images were scanned",
                    size.1, size.0
                ),
            });
        }
        write_pixels(&img, channels, out);
    }
    Ok(Pixels::Bytes(pixels))
}

/// `[H, W]` for grey, `[3, H, W]` for colour.
pub fn image_shape(channels: usize, (h, w): (usize, usize)) -> Vec<usize> {
    match channels {
        1 => vec![h, w],
        c => vec![c, h, w],
    }
}

/// Reads `files` as one data set of `channels` (1: grey, 3: colour) for a model of
/// `num_classes`; every file must decode and have the first one's size.
pub fn load_images(
    files: &[PathBuf],
    channels: usize,
    num_classes: usize,
) -> Result<Dataset, DataError> {
    if !matches!(channels, 1 | 3) {
        return Err(DataError::Preprocess(format!(
            "{channels} channels: only grey or colour images"
        )));
    }
    let scanned = scan(files)?;
    let images = read_pixels(files, channels, scanned)?;
    Ok(Dataset {
        n: files.len(),
        dim: images.len() / files.len().max(1),
        images,
        labels: vec![0; files.len()],
        image_shape: image_shape(channels, scanned.size),
        num_classes,
    })
}
