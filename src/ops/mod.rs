//! The operations the models are written in, between the model code and the fused CPU kernels
//! of [`crate::fused`]. Each operation is one function with its tensor form beside it: the
//! function runs the fused kernel where one serves (`f32` tensors on the Flex backend, and the
//! shapes the kernel covers) and the tensor form everywhere else, and the tests here hold each
//! kernel to its tensor form. So model code never decides between kernel and fallback, and it
//! stays backend-independent.
//!
//! - [`batch_norm`]: N_B of Algorithm 1 (paper 001), moments and normalisation per channel;
//! - [`activation`]: φ(z + β), the encoder's activation;
//! - [`conv`]: the convolutions of convolutional layers and the decoder's transposed ones;
//! - [`denoising`]: the per-layer denoising cost of eq. (3);
//! - [`gauss`]: the combinator g of eq. (2);
//! - [`linear`]: the matrix products of fully connected layers;
//! - [`pool`]: the max-pooling of convolutional encoders;
//! - [`adam`]: Adam's update (Kingma and Ba 2015), in place on the CPU.

pub mod activation;
pub mod adam;
pub mod batch_norm;
pub mod conv;
pub mod denoising;
pub mod gauss;
pub mod linear;
pub mod pool;

use burn::prelude::*;
use burn::tensor::DType;
use serde::{Deserialize, Serialize};

use crate::error::{LadderError, Result};

thread_local! {
    /// Set while [`with_tensor_forms`] runs: every operation then takes its tensor form.
    static TENSOR_FORMS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with every operation of this module in its tensor form on the calling thread,
/// the fused kernels left aside: the yardstick the kernels are held to (the model code runs
/// on the calling thread; the kernels' own threads never call back into it).
pub fn with_tensor_forms<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            TENSOR_FORMS.set(self.0);
        }
    }
    let _restore = Restore(TENSOR_FORMS.replace(true));
    f()
}

/// Whether the fused kernels serve this tensor: `f32` on the Flex backend, outside
/// [`with_tensor_forms`].
fn fusable<const D: usize>(t: &Tensor<D>) -> bool {
    t.device() == Device::flex() && t.dtype() == DType::F32 && !TENSOR_FORMS.get()
}

/// Channels × height × width of one layer's activation; a vector of d units is d × 1 × 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shape {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl Shape {
    pub fn vector(units: usize) -> Shape {
        Shape {
            channels: units,
            height: 1,
            width: 1,
        }
    }

    /// Values per example.
    pub fn units(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Positions per channel; batch statistics and combinator parameters are shared over them.
    pub fn spatial(&self) -> usize {
        self.height * self.width
    }

    /// The input shape of a data set: `[d]` is a vector, `[H, W]` a grey image, `[C, H, W]`.
    pub fn of_input(image_shape: &[usize]) -> Result<Shape> {
        match *image_shape {
            [d] => Ok(Shape::vector(d)),
            [height, width] => Ok(Shape {
                channels: 1,
                height,
                width,
            }),
            [channels, height, width] => Ok(Shape {
                channels,
                height,
                width,
            }),
            _ => Err(LadderError::Spec(format!(
                "inputs of shape {image_shape:?} are neither vectors nor images"
            ))),
        }
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}×{}×{}", self.channels, self.height, self.width)
    }
}

/// x + b with b `[1, channels]` repeated over every position of its channel.
pub fn add_per_channel(x: Tensor<2>, b: Tensor<2>, shape: Shape) -> Tensor<2> {
    if shape.spatial() == 1 {
        return x + b;
    }
    let [n, units] = x.dims();
    let c = shape.channels;
    (x.reshape([n, c, shape.spatial()]) + b.reshape([1, c, 1])).reshape([n, units])
}

/// x + n for noise `n` covering the first rows of `x` (the corrupted ones); the rows after
/// them pass unchanged.
pub fn add_to_leading_rows(x: Tensor<2>, n: Tensor<2>) -> Tensor<2> {
    let [rows, cols] = x.dims();
    let k = n.dims()[0];
    if k == rows {
        return x + n;
    }
    let clean = Tensor::zeros([rows - k, cols], &x.device());
    x + Tensor::cat(vec![n, clean], 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Noise over the first rows leaves the others as they were.
    #[test]
    fn noise_covering_the_leading_rows_leaves_the_rest() {
        let device = Device::flex();
        let x = Tensor::<2>::from_data(
            TensorData::new(vec![1.0f32, 2., 3., 4., 5., 6.], [3, 2]),
            &device,
        );
        let n = Tensor::<2>::from_data(TensorData::new(vec![0.5f32, -0.5], [1, 2]), &device);
        let y = add_to_leading_rows(x.clone(), n)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(y, vec![1.5, 1.5, 3., 4., 5., 6.]);
        let all = add_to_leading_rows(x.clone(), x)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(all, vec![2., 4., 6., 8., 10., 12.]);
    }
}
