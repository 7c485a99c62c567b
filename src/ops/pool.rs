//! The max-pooling layers of convolutional encoders (`maxpool:PY:PX`, stride PY×PX) and the
//! decoder's upsampling that mirrors them (paper 001 Sec. 3.4), on `[batch, C·H·W]`
//! activations.

use burn::prelude::*;
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;

use crate::fused::pool as kernel;
pub use crate::fused::pool::PoolGeom;
use crate::ops::fusable;

/// The max-pooling `geom` of `x`: the fused kernel on the CPU, burn's `max_pool2d` elsewhere.
pub fn max_pool(x: Tensor<2>, geom: PoolGeom) -> Tensor<2> {
    if fusable(&x) {
        return kernel::max_pool(x, geom);
    }
    tensor_form(x, geom)
}

/// [`max_pool`] with burn's pooling, for every backend.
fn tensor_form(x: Tensor<2>, g: PoolGeom) -> Tensor<2> {
    let n = x.dims()[0];
    let image = x.reshape([n, g.channels, g.height, g.width]);
    let out = max_pool2d(image, MaxPoolOptions::new(g.size));
    let [oh, ow] = [g.height / g.size[0], g.width / g.size[1]];
    out.reshape([n, g.channels * oh * ow])
}

/// The decoder's map through a max-pooling layer `geom`: each value of `z` copied over its
/// window, the rows and columns pooling dropped at the border given zeros. The fused kernel on
/// the CPU, tensor operations elsewhere.
pub fn upsample(z: Tensor<2>, geom: PoolGeom) -> Tensor<2> {
    if fusable(&z) {
        return kernel::upsample(z, geom);
    }
    upsample_tensor_form(z, geom)
}

/// [`upsample`] with tensor operations, for every backend.
fn upsample_tensor_form(z: Tensor<2>, g: PoolGeom) -> Tensor<2> {
    let n = z.dims()[0];
    let [py, px] = g.size;
    let [oh, ow] = [g.height / py, g.width / px];
    let up = z
        .reshape([n, g.channels, oh, 1, ow, 1])
        .expand([n, g.channels, oh, py, ow, px])
        .reshape([n, g.channels, oh * py, ow * px]);
    pad_to(up, g.height, g.width).reshape([n, g.channels * g.height * g.width])
}

/// Zero rows and columns appended at the bottom and the right up to `height` × `width`.
fn pad_to(x: Tensor<4>, height: usize, width: usize) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    let device = x.device();
    let x = if height > h {
        let zeros = Tensor::zeros([n, c, height - h, w], &device);
        Tensor::cat(vec![x, zeros], 2)
    } else {
        x
    };
    if width > w {
        let zeros = Tensor::zeros([n, c, height, width - w], &device);
        Tensor::cat(vec![x, zeros], 3)
    } else {
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::test_support::vals;
    use burn::tensor::Distribution;

    /// Batch sizes and poolings of the tests: maps the windows tile, maps with rows and columns
    /// left over, non-square windows, and batches of several parallel tasks.
    fn cases() -> [(usize, PoolGeom); 4] {
        let geom = |channels, height, width, size| PoolGeom {
            channels,
            height,
            width,
            size,
        };
        [
            (3, geom(2, 4, 6, [2, 2])),
            (5, geom(3, 7, 5, [2, 2])),
            (70, geom(2, 9, 9, [3, 2])),
            // Windows three wide take the general path of the kernel.
            (4, geom(2, 6, 7, [2, 3])),
        ]
    }

    /// Values and gradient equal burn's pooling (exactly: both pick the same winner and pass
    /// its gradient unchanged), on maps the windows tile and maps with rows and columns left
    /// over, with ties (rounded values) that the first maximum must win.
    #[test]
    fn fused_max_pool_equals_its_tensor_form() {
        let device = Device::flex().autodiff();
        for (n, g) in cases() {
            let units = g.channels * g.height * g.width;
            let x = Tensor::<2>::random([n, units], Distribution::Uniform(0.0, 4.0), &device)
                .floor()
                .require_grad();
            let out = g.channels * (g.height / g.size[0]) * (g.width / g.size[1]);
            let w = Tensor::<2>::random([n, out], Distribution::Normal(0.0, 1.0), &device);
            let fused = max_pool(x.clone(), g);
            let plain = tensor_form(x.clone(), g);
            assert_eq!(vals(fused.clone()), vals(plain.clone()), "{g:?}");
            let gf = (fused * w.clone()).sum().backward();
            let gp = (plain * w).sum().backward();
            assert_eq!(
                vals(x.grad(&gf).unwrap()),
                vals(x.grad(&gp).unwrap()),
                "{g:?}"
            );
        }
    }

    /// The upsampling and its gradient equal the tensor form (exactly: both copy, and sum
    /// each window of at most 6 values in the same order), with and without a border.
    #[test]
    fn fused_upsampling_equals_its_tensor_form() {
        let device = Device::flex().autodiff();
        for (n, g) in cases() {
            let small = g.channels * (g.height / g.size[0]) * (g.width / g.size[1]);
            let normal = Distribution::Normal(0.0, 1.0);
            let z = Tensor::<2>::random([n, small], normal, &device).require_grad();
            let w = Tensor::<2>::random([n, g.channels * g.height * g.width], normal, &device);
            let fused = upsample(z.clone(), g);
            let plain = upsample_tensor_form(z.clone(), g);
            assert_eq!(vals(fused.clone()), vals(plain.clone()), "{g:?}");
            let gf = (fused * w.clone()).sum().backward();
            let gp = (plain * w).sum().backward();
            let (a, b) = (vals(z.grad(&gf).unwrap()), vals(z.grad(&gp).unwrap()));
            crate::fused::test_support::assert_close(&a, &b, 1e-6, "window sums");
        }
    }

    /// 2×2 max-pooling of one 2×4 map `values`: the two maxima, and the gradient of
    /// 1·(first maximum) + 2·(second).
    fn pool_2x4(values: Vec<f32>) -> (Vec<f32>, Vec<f32>) {
        let device = Device::flex().autodiff();
        let x = Tensor::<2>::from_data(TensorData::new(values, [1, 8]), &device).require_grad();
        let g = PoolGeom {
            channels: 1,
            height: 2,
            width: 4,
            size: [2, 2],
        };
        let y = max_pool(x.clone(), g);
        let out = vals(y.clone());
        let grads =
            (y * Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 2.0], [1, 2]), &device))
                .sum()
                .backward();
        (out, vals(x.grad(&grads).unwrap()))
    }

    /// By hand: the 2×4 map [1 5 2 2; 3 0 2 1] pools to [5, 2]; the gradient goes to the 5 and
    /// to the first 2 (ties go to the first).
    #[test]
    fn max_pool_by_hand() {
        let (out, grad) = pool_2x4(vec![1.0, 5., 2., 2., 3., 0., 2., 1.]);
        assert_eq!(out, vec![5.0, 2.0]);
        assert_eq!(grad, vec![0., 1., 2., 0., 0., 0., 0., 0.]);
    }

    /// A NaN wins its window over any number (the last NaN where there are several), as in
    /// Flex and PyTorch, so a diverging activation is not hidden by pooling.
    #[test]
    fn max_pool_passes_nan_on() {
        let nan = f32::NAN;
        let (out, grad) = pool_2x4(vec![1.0, nan, 2., 9., nan, 0., 2., 1.]);
        assert!(out[0].is_nan() && out[1] == 9.0, "{out:?}");
        assert_eq!(grad, vec![0., 0., 0., 2., 1., 0., 0., 0.]);
    }
}
