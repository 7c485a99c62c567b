//! Input preprocessing of paper 001 Sec. 4.2 and paper 003 Sec. 4.2: grey conversion, global
//! contrast normalisation, ZCA whitening fitted on the training data, and crops.
//!
//! Whatever is fitted (the ZCA mean and matrix) is fitted on the training set only and then
//! applied unchanged to the test set, as the original implementation does.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par, Side};

use super::DataError;
use super::csv::Standardiser;
use super::dataset::{Dataset, TrainTest};

/// What to do to the inputs before training, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Preprocessing {
    pub grey: bool,
    /// L2 norm of every example after centring; 0 = off.
    pub contrast_norm: f64,
    /// The regulariser of ZCA whitening; `None` = off.
    pub zca_bias: Option<f64>,
    /// Side of the test-time centre crop (training uses random crops of the same side); 0 =
    /// off.
    pub crop: usize,
}

impl Preprocessing {
    /// Whether anything is to be done.
    pub fn is_identity(&self) -> bool {
        !self.grey && self.contrast_norm == 0.0 && self.zca_bias.is_none() && self.crop == 0
    }

    /// The steps that act on each example alone: grey conversion and contrast normalisation.
    fn per_example(&self, mut ds: Dataset) -> Result<Dataset, DataError> {
        if self.grey {
            ds = to_grey(&ds)?;
        }
        if self.contrast_norm > 0.0 {
            contrast_normalize(&mut ds, self.contrast_norm);
        }
        Ok(ds)
    }

    /// `p` applied to new examples on their own (for prediction): everything but ZCA, which
    /// needs the training data it was fitted on.
    pub fn apply_to_new(&self, ds: Dataset) -> Result<Dataset, DataError> {
        if self.zca_bias.is_some() {
            return Err(DataError::Preprocess(
                "this run whitens its inputs with ZCA fitted on its training data, which new \
                 images alone cannot reproduce: use `ladder evaluate --data DIR` with the \
                 training data instead"
                    .into(),
            ));
        }
        let ds = self.per_example(ds)?;
        match self.crop {
            0 => Ok(ds),
            side => centre_crop(&ds, side),
        }
    }
}

/// A run's preprocessing with what it fitted on its training set (a CSV source's
/// standardisation, the ZCA), when that is known: then it applies to new examples alone, as an
/// exported network's does.
#[derive(Debug, Clone)]
pub struct Fitted {
    /// The standardisation of a run on CSV data, which its data loader applied before `steps`.
    pub standardise: Option<Standardiser>,
    pub steps: Preprocessing,
    /// The whitening `steps.zca_bias` asks for, fitted; `None` until [`Fitted::fit`] ran (or
    /// when there is no ZCA).
    pub zca: Option<Zca>,
}

impl PartialEq for Fitted {
    fn eq(&self, other: &Fitted) -> bool {
        let same_zca = match (&self.zca, &other.zca) {
            (None, None) => true,
            (Some(a), Some(b)) => a.mean == b.mean && a.matrix == b.matrix,
            _ => false,
        };
        self.standardise == other.standardise && self.steps == other.steps && same_zca
    }
}

impl Fitted {
    /// `steps` with nothing fitted yet.
    pub fn unfitted(steps: Preprocessing) -> Fitted {
        Fitted {
            standardise: None,
            steps,
            zca: None,
        }
    }

    /// Whether the ZCA `steps` ask for is still to be fitted.
    pub fn needs_fit(&self) -> bool {
        self.steps.zca_bias.is_some() && self.zca.is_none()
    }

    /// Fits the ZCA on `train` (raw, as the run loaded it), as [`preprocess`] does.
    pub fn fit(&mut self, train: &Dataset) -> Result<(), DataError> {
        if let Some(bias) = self.steps.zca_bias {
            let train = self.steps.per_example(train.clone())?;
            self.zca = Some(Zca::fit(&train, bias)?);
        }
        Ok(())
    }

    /// `data` as the run saw it, from a data loader (which standardises CSV data itself): with
    /// the fitted ZCA when there is one (the training set is then left as it was: only the test
    /// set is read), else refitted as [`preprocessed`] does.
    pub fn apply<'a>(
        &self,
        data: &'a TrainTest,
    ) -> Result<std::borrow::Cow<'a, TrainTest>, DataError> {
        match self.zca {
            None => preprocessed(std::borrow::Cow::Borrowed(data), &self.steps),
            Some(_) => Ok(std::borrow::Cow::Owned(TrainTest {
                train: data.train.clone(),
                test: self.apply_to_loaded(data.test.clone())?,
            })),
        }
    }

    /// New examples on their own (prediction, perturbed test sets): the standardisation when
    /// there is one, then every step, the ZCA only when it is fitted.
    pub fn apply_to_new(&self, mut ds: Dataset) -> Result<Dataset, DataError> {
        if let Some(s) = &self.standardise {
            s.apply(&mut ds)?;
        }
        self.apply_to_loaded(ds)
    }

    /// `steps` on examples as a data loader gives them (a CSV loader standardised them
    /// already), e.g. a test set to perturb.
    pub fn apply_to_loaded(&self, ds: Dataset) -> Result<Dataset, DataError> {
        let Some(zca) = &self.zca else {
            return self.steps.apply_to_new(ds);
        };
        let mut ds = self.steps.per_example(ds)?;
        if ds.dim != zca.mean.len() {
            return Err(DataError::Preprocess(format!(
                "the images have {} values each but the whitening was fitted on {}",
                ds.dim,
                zca.mean.len()
            )));
        }
        zca.apply(&mut ds);
        match self.steps.crop {
            0 => Ok(ds),
            side => centre_crop(&ds, side),
        }
    }
}

/// `data` as a run of `p` sees it, unchanged when there is nothing to do. Handed over
/// (`Cow::Owned`), the images as loaded are freed as each set's float copy is made, so that a
/// single run never holds both (176 MiB of CIFAR-10's bytes beside its 703 MiB of floats);
/// borrowed, they stay for the owner's other runs.
pub fn preprocessed<'a>(
    data: std::borrow::Cow<'a, TrainTest>,
    p: &Preprocessing,
) -> Result<std::borrow::Cow<'a, TrainTest>, DataError> {
    if p.is_identity() {
        return Ok(data);
    }
    preprocess(data.into_owned(), p).map(std::borrow::Cow::Owned)
}

/// `[C, H, W]` of a data set's images (a `[H, W]` image has one channel).
pub fn image_chw(ds: &Dataset) -> Result<[usize; 3], DataError> {
    match ds.image_shape[..] {
        [h, w] => Ok([1, h, w]),
        [c, h, w] => Ok([c, h, w]),
        _ => Err(DataError::Preprocess(format!(
            "images of shape {:?} are not 2-D images: grey conversion and crops need [H, W] or \
             [C, H, W]",
            ds.image_shape
        ))),
    }
}

/// Applies `p` to both sets: grey and contrast normalisation example by example, ZCA fitted on
/// the training set, and the centre crop to the test set only (training batches take random
/// crops of the full images).
pub fn preprocess(data: TrainTest, p: &Preprocessing) -> Result<TrainTest, DataError> {
    preprocess_fitted(data, p).map(|(data, _)| data)
}

/// [`preprocess`], also giving what it fitted, so that new examples can be preprocessed
/// alike (a network trained in memory and then asked to predict).
pub fn preprocess_fitted(
    data: TrainTest,
    p: &Preprocessing,
) -> Result<(TrainTest, Fitted), DataError> {
    let mut fitted = Fitted::unfitted(*p);
    if !p.is_identity() {
        // The preprocessed copy is floats, beside the set as loaded.
        let values = (data.train.images.len() + data.test.images.len()) as u64;
        super::memory::check("the preprocessed (float) copy of the data", values * 4)?;
    }
    let mut data = TrainTest {
        train: p.per_example(data.train)?,
        test: p.per_example(data.test)?,
    };
    if let Some(bias) = p.zca_bias {
        let zca = Zca::fit(&data.train, bias)?;
        zca.apply(&mut data.train);
        zca.apply(&mut data.test);
        fitted.zca = Some(zca);
    }
    if p.crop > 0 {
        data.test = centre_crop(&data.test, p.crop)?;
    }
    Ok((data, fitted))
}

/// Luminance 0.299 R + 0.587 G + 0.114 B of `[3, H, W]` images, as `[H, W]` images (paper
/// 004's grey CIFAR-10).
pub fn to_grey(ds: &Dataset) -> Result<Dataset, DataError> {
    let [c, h, w] = image_chw(ds)?;
    if c != 3 {
        return Err(DataError::Preprocess(format!(
            "grey conversion needs colour images of 3 channels; these have {c}"
        )));
    }
    let plane = h * w;
    let mut images = Vec::with_capacity(ds.n * plane);
    for i in 0..ds.n {
        let row = ds.row(i);
        images.extend(
            (0..plane)
                .map(|j| 0.299 * row[j] + 0.587 * row[plane + j] + 0.114 * row[2 * plane + j]),
        );
    }
    Ok(Dataset {
        images: images.into(),
        dim: plane,
        image_shape: vec![h, w],
        ..ds.clone_labels()
    })
}

/// Global contrast normalisation: each example minus its mean, scaled to L2 norm `scale`
/// (pylearn2's `global_contrast_normalize` with `use_std=False`, as the original uses; an
/// example of norm below 1e-8 is only centred).
pub fn contrast_normalize(ds: &mut Dataset, scale: f64) {
    let dim = ds.dim;
    for row in ds.images.to_mut().chunks_mut(dim) {
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / dim as f64;
        let norm = row
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            .sqrt();
        let factor = if norm < 1e-8 { 1.0 } else { scale / norm };
        for v in row.iter_mut() {
            *v = ((*v as f64 - mean) * factor) as f32;
        }
    }
}

/// ZCA whitening x ↦ (x − μ) W with W = U diag(1/√(λ + bias)) Uᵀ from the eigendecomposition
/// U diag(λ) Uᵀ of the training covariance.
#[derive(Debug, Clone)]
pub struct Zca {
    pub mean: Vec<f64>,
    /// W, `dim × dim`.
    pub matrix: Mat<f64>,
}

/// Rows per block when accumulating the covariance or whitening: bounds the f64 copies.
const BLOCK: usize = 1024;

fn centred_block(ds: &Dataset, start: usize, rows: usize, mean: &[f64]) -> Mat<f64> {
    let d = ds.dim;
    let values = ds.rows(start..start + rows);
    Mat::from_fn(rows, d, |i, j| values[i * d + j] as f64 - mean[j])
}

impl Zca {
    /// Fits the whitening on `train` (sequential linear algebra, so that a run repeats
    /// bit for bit).
    pub fn fit(train: &Dataset, bias: f64) -> Result<Zca, DataError> {
        let (n, d) = (train.n, train.dim);
        if n < 2 {
            return Err(DataError::Preprocess(
                "ZCA needs at least two training examples".into(),
            ));
        }
        if !(bias.is_finite() && bias > 0.0) {
            return Err(DataError::Preprocess(format!(
                "ZCA bias {bias} must be positive"
            )));
        }
        let mut mean = vec![0.0f64; d];
        for start in (0..n).step_by(BLOCK) {
            for row in train.rows(start..(start + BLOCK).min(n)).chunks(d) {
                for (m, &v) in mean.iter_mut().zip(row) {
                    *m += v as f64;
                }
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut cov = Mat::<f64>::zeros(d, d);
        for start in (0..n).step_by(BLOCK) {
            let x = centred_block(train, start, BLOCK.min(n - start), &mean);
            matmul(
                cov.as_mut(),
                Accum::Add,
                x.transpose(),
                x.as_ref(),
                1.0 / n as f64,
                Par::Seq,
            );
        }
        let eig = cov
            .self_adjoint_eigen(Side::Lower)
            .map_err(|e| DataError::Preprocess(format!("ZCA eigendecomposition failed: {e:?}")))?;
        let u = eig.U();
        let s = eig.S().column_vector();
        // U diag(1/√(λ + bias)): eigenvalues a hair below zero are round-off.
        let scaled = Mat::from_fn(d, d, |i, j| u[(i, j)] / (s[j].max(0.0) + bias).sqrt());
        let mut matrix = Mat::<f64>::zeros(d, d);
        matmul(
            matrix.as_mut(),
            Accum::Replace,
            scaled.as_ref(),
            u.transpose(),
            1.0,
            Par::Seq,
        );
        Ok(Zca { mean, matrix })
    }

    /// Whitens `ds` in place.
    pub fn apply(&self, ds: &mut Dataset) {
        let d = ds.dim;
        let mut out = Mat::<f64>::zeros(BLOCK, d);
        for start in (0..ds.n).step_by(BLOCK) {
            let rows = BLOCK.min(ds.n - start);
            let x = centred_block(ds, start, rows, &self.mean);
            matmul(
                out.as_mut().subrows_mut(0, rows),
                Accum::Replace,
                x.as_ref(),
                self.matrix.as_ref(),
                1.0,
                Par::Seq,
            );
            let values = ds.images.to_mut();
            for i in 0..rows {
                for j in 0..d {
                    values[(start + i) * d + j] = out[(i, j)] as f32;
                }
            }
        }
    }
}

/// The `height × width` window at (`top`, `left`) of one `[C, H, W]` image, mirrored
/// left–right when `flip`, appended to `out`.
pub fn crop_into(
    row: &[f32],
    [c, h, w]: [usize; 3],
    [height, width]: [usize; 2],
    (top, left): (usize, usize),
    flip: bool,
    out: &mut Vec<f32>,
) {
    debug_assert!(top + height <= h && left + width <= w);
    for ch in 0..c {
        for y in top..top + height {
            let start = ch * h * w + y * w + left;
            let line = &row[start..start + width];
            if flip {
                out.extend(line.iter().rev());
            } else {
                out.extend_from_slice(line);
            }
        }
    }
}

/// Rows `idx` of `ds`, each a random `crop × crop` window (the whole image for 0), mirrored
/// left–right with probability ½ when `flip`: the training-time augmentation of 001 Sec. 4 and
/// 003 Sec. 4.2. Returns the values and the width of a row.
pub fn augment_rows(
    ds: &Dataset,
    idx: &[usize],
    crop: usize,
    flip: bool,
    rng: &mut impl rand::Rng,
) -> Result<(Vec<f32>, usize), DataError> {
    // Flips alone keep the whole image, square or not.
    let [ch, h, w] = match crop {
        0 => image_chw(ds)?,
        side => crop_shape(ds, side)?,
    };
    let window = match crop {
        0 => [h, w],
        side => [side, side],
    };
    let dim = ch * window[0] * window[1];
    let mut v = Vec::with_capacity(idx.len() * dim);
    for &i in idx {
        let at = (
            rng.random_range(0..=h - window[0]),
            rng.random_range(0..=w - window[1]),
        );
        let flip = flip && rng.random_bool(0.5);
        crop_into(&ds.row(i), [ch, h, w], window, at, flip, &mut v);
    }
    Ok((v, dim))
}

/// Checks that `side` fits the images and returns their `[C, H, W]`.
pub fn crop_shape(ds: &Dataset, side: usize) -> Result<[usize; 3], DataError> {
    let [c, h, w] = image_chw(ds)?;
    if side == 0 || side > h || side > w {
        return Err(DataError::Preprocess(format!(
            "a {side}×{side} crop does not fit {h}×{w} images"
        )));
    }
    Ok([c, h, w])
}

/// The `[C, side, side]` shape of a crop of images of `image_shape`.
pub fn cropped_shape(image_shape: &[usize], side: usize) -> Vec<usize> {
    match image_shape {
        [_, _] => vec![side, side],
        [c, _, _] => vec![*c, side, side],
        other => other.to_vec(),
    }
}

/// The centre `side × side` crop of every image (the test-time view of random crops).
pub fn centre_crop(ds: &Dataset, side: usize) -> Result<Dataset, DataError> {
    let [c, h, w] = crop_shape(ds, side)?;
    let at = ((h - side) / 2, (w - side) / 2);
    let mut images = Vec::with_capacity(ds.n * c * side * side);
    for i in 0..ds.n {
        crop_into(&ds.row(i), [c, h, w], [side, side], at, false, &mut images);
    }
    Ok(Dataset {
        images: images.into(),
        dim: c * side * side,
        image_shape: cropped_shape(&ds.image_shape, side),
        ..ds.clone_labels()
    })
}

impl Dataset {
    /// The labels and counts of `self` with no pixels, for building a transformed copy.
    fn clone_labels(&self) -> Dataset {
        Dataset {
            images: Vec::new().into(),
            labels: self.labels.clone(),
            n: self.n,
            dim: self.dim,
            image_shape: self.image_shape.clone(),
            num_classes: self.num_classes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn dataset(images: Vec<f32>, image_shape: Vec<usize>) -> Dataset {
        let dim: usize = image_shape.iter().product();
        let n = images.len() / dim;
        Dataset {
            images: images.into(),
            labels: vec![0; n],
            n,
            dim,
            image_shape,
            num_classes: 1,
        }
    }

    #[test]
    fn contrast_normalisation_centres_and_scales_each_example() {
        let mut ds = dataset(vec![1.0, 2.0, 3.0, 5.0, 5.0, 5.0], vec![3]);
        contrast_normalize(&mut ds, 55.0);
        let row = ds.row(0);
        assert!(row.iter().sum::<f32>().abs() < 1e-4);
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 55.0).abs() < 1e-3, "{norm}");
        // −55/√2, 0, 55/√2 by hand.
        assert!((row[0] + 55.0 / 2f32.sqrt()).abs() < 1e-3);
        // A constant example is only centred.
        assert_eq!(*ds.row(1), [0.0, 0.0, 0.0]);
    }

    /// Whitened training data has covariance U diag(λ/(λ + bias)) Uᵀ: the identity up to the
    /// regulariser.
    #[test]
    fn zca_whitened_data_has_identity_covariance() {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(5);
        let (n, d) = (4000, 6);
        // Correlated features of very different scales, each with a little noise of its own
        // so that the covariance has full rank.
        let mut images = Vec::with_capacity(n * d);
        for _ in 0..n {
            let a: f32 = rng.random_range(-1.0..1.0);
            let b: f32 = rng.random_range(-1.0..1.0);
            let mut e = || rng.random_range(-0.1f32..0.1);
            let row = [
                a * 10.0 + e(),
                a * 10.0 + b + e(),
                b * 0.5 + e(),
                a - b + e(),
                e() * 20.0,
                3.0 * b + e(),
            ];
            images.extend(row);
        }
        let mut ds = dataset(images, vec![d]);
        // The smallest eigenvalue is about var(e) = 0.0033, so λ/(λ + bias) ≈ 1.
        let bias = 1e-6;
        let zca = Zca::fit(&ds, bias).unwrap();
        zca.apply(&mut ds);
        let cov = |j: usize, k: usize| {
            (0..n)
                .map(|i| ds.row(i)[j] as f64 * ds.row(i)[k] as f64)
                .sum::<f64>()
                / n as f64
        };
        for j in 0..d {
            let mean = (0..n).map(|i| ds.row(i)[j] as f64).sum::<f64>() / n as f64;
            assert!(mean.abs() < 1e-3, "mean of feature {j}: {mean}");
            for k in 0..d {
                let expected = if j == k { 1.0 } else { 0.0 };
                assert!(
                    (cov(j, k) - expected).abs() < 1e-2,
                    "covariance ({j}, {k}): {}",
                    cov(j, k)
                );
            }
        }
        // With a large bias the whitening shrinks every direction below unit variance.
        let mut ds2 = dataset(vec![0.0, 2.0, 0.0, -2.0], vec![2]);
        let strong = Zca::fit(&ds2, 4.0).unwrap();
        strong.apply(&mut ds2);
        // Variance 2 along feature 1 (values ±2: λ = 4), whitened by 1/√(4 + 4).
        assert!(
            (ds2.row(0)[1] - 2.0 / 8f32.sqrt()).abs() < 1e-5,
            "{:?}",
            ds2.images
        );
    }

    #[test]
    fn crops_and_flips_take_the_right_window() {
        // One 2-channel 3×3 image holding 0..18.
        let ds = dataset((0..18).map(|v| v as f32).collect(), vec![2, 3, 3]);
        let c = centre_crop(&ds, 1).unwrap();
        assert_eq!(
            (c.images.all().into_owned(), c.image_shape.clone()),
            (vec![4.0, 13.0], vec![2, 1, 1])
        );
        let mut out = Vec::new();
        crop_into(&ds.row(0), [2, 3, 3], [2, 2], (1, 0), true, &mut out);
        assert_eq!(out, vec![4.0, 3.0, 7.0, 6.0, 13.0, 12.0, 16.0, 15.0]);
        // A window that is not square: the whole 2×3 image of one channel, mirrored.
        let mut out = Vec::new();
        let wide = dataset((0..6).map(|v| v as f32).collect(), vec![2, 3]);
        crop_into(&wide.row(0), [1, 2, 3], [2, 3], (0, 0), true, &mut out);
        assert_eq!(out, vec![2.0, 1.0, 0.0, 5.0, 4.0, 3.0]);
        assert!(centre_crop(&ds, 4).is_err());
        assert!(centre_crop(&dataset(vec![0.0; 4], vec![4]), 2).is_err());
    }

    #[test]
    fn grey_uses_luminance_weights() {
        let ds = dataset(vec![1.0, 0.0, 0.5, 1.0, 0.0, 0.0], vec![3, 1, 2]);
        let g = to_grey(&ds).unwrap();
        assert_eq!(g.image_shape, vec![1, 2]);
        assert!((g.images.all()[0] - (0.299 + 0.5 * 0.587)).abs() < 1e-6);
        assert!((g.images.all()[1] - 0.587).abs() < 1e-6);
        assert!(to_grey(&dataset(vec![0.0; 4], vec![2, 2])).is_err());
    }
}
