//! The encoder's activation h = φ(z + β) (Algorithm 1 of paper 001), φ being ReLU or the leaky
//! ReLU.

use burn::prelude::*;
use burn::tensor::activation::{leaky_relu, relu};

use crate::fused::bias_relu as kernel;
use crate::ops::{Shape, add_per_channel, fusable};

/// φ(z + β) for a layer of `shape`, β `[1, channels]` shared by every position of a channel, with
/// φ(x) = max(x, slope·x) (`slope` 0 for ReLU, 0.1 for the leaky ReLU). One fused operation on
/// the CPU; for convolutional layers β is first spread over its channel's positions (a
/// `[1, C·S]` row, whose gradient autodiff sums back per channel).
pub fn bias_activation(z: Tensor<2>, beta: Tensor<2>, slope: f64, shape: Shape) -> Tensor<2> {
    if fusable(&z) {
        let beta = if shape.spatial() == 1 {
            beta
        } else {
            let (c, s) = (shape.channels, shape.spatial());
            beta.reshape([c, 1]).expand([c, s]).reshape([1, c * s])
        };
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

    /// The operation takes the kernel on the CPU and agrees with its tensor form there, values
    /// and gradients, for both activations and for fully connected and convolutional shapes.
    #[test]
    fn bias_activation_equals_its_tensor_form() {
        let device = Device::flex().autodiff();
        let normal = Distribution::Normal(0.0, 1.0);
        let z = Tensor::<2>::random([8, 12], normal, &device).require_grad();
        let g = Tensor::<2>::random([8, 12], normal, &device);
        let conv = Shape {
            channels: 3,
            height: 2,
            width: 2,
        };
        for slope in [0.0, 0.1] {
            for shape in [Shape::vector(12), conv] {
                let beta = Tensor::<2>::random([1, shape.channels], normal, &device).require_grad();
                let op = bias_activation(z.clone(), beta.clone(), slope, shape);
                let form = tensor_form(z.clone(), beta.clone(), slope, shape);
                assert_eq!(vals(op.clone()), vals(form.clone()), "{shape}");
                let go = (op * g.clone()).sum().backward();
                let gf = (form * g.clone()).sum().backward();
                for t in [&z, &beta] {
                    let (a, b) = (vals(t.grad(&go).unwrap()), vals(t.grad(&gf).unwrap()));
                    crate::fused::test_support::assert_close(&a, &b, 1e-6, "gradient");
                }
            }
        }
    }
}
