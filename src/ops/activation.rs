//! The encoder's activation h = φ(z + β) (Algorithm 1 of paper 001), φ being ReLU or the leaky
//! ReLU.

use burn::prelude::*;
use burn::tensor::activation::{leaky_relu, relu};

use crate::fused::bias_relu as kernel;
use crate::ops::{Shape, add_per_channel, fusable};

/// φ(z + β) for a layer of `shape`, β `[1, channels]` shared by every position of a channel, with
/// φ(x) = max(x, slope·x) (`slope` 0 for ReLU, 0.1 for the leaky ReLU). One fused operation on
/// the CPU for fully connected layers.
pub fn bias_activation(z: Tensor<2>, beta: Tensor<2>, slope: f64, shape: Shape) -> Tensor<2> {
    if fusable(&z) && shape.spatial() == 1 {
        return kernel::bias_relu(z, beta, slope as f32);
    }
    tensor_form(z, beta, slope, shape)
}

/// [`bias_activation`] written with tensor operations, for every backend.
fn tensor_form(z: Tensor<2>, beta: Tensor<2>, slope: f64, shape: Shape) -> Tensor<2> {
    let shifted = add_per_channel(z, beta, shape);
    if slope == 0.0 {
        relu(shifted)
    } else {
        leaky_relu(shifted, slope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::test_support::vals;
    use burn::tensor::Distribution;

    /// The operation takes the kernel on the CPU and agrees with its tensor form there, for
    /// both activations; convolutional shapes take the tensor form.
    #[test]
    fn bias_activation_equals_its_tensor_form() {
        let device = Device::flex().autodiff();
        let z = Tensor::<2>::random([8, 12], Distribution::Normal(0.0, 1.0), &device);
        for slope in [0.0, 0.1] {
            let beta = Tensor::<2>::random([1, 12], Distribution::Normal(0.0, 1.0), &device);
            let fc = Shape::vector(12);
            let op = bias_activation(z.clone(), beta.clone(), slope, fc);
            assert_eq!(vals(op), vals(tensor_form(z.clone(), beta, slope, fc)));
            let conv = Shape {
                channels: 3,
                height: 2,
                width: 2,
            };
            let beta = Tensor::<2>::random([1, 3], Distribution::Normal(0.0, 1.0), &device);
            let op = bias_activation(z.clone(), beta.clone(), slope, conv);
            assert_eq!(vals(op), vals(tensor_form(z.clone(), beta, slope, conv)));
        }
    }
}
