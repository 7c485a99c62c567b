//! The convolutions of convolutional layers (paper 001 Sec. 3.4) and the decoder's transposed
//! convolutions that mirror them, on `[batch, C·H·W]` activations and `[F, C·K·K]` weights.

use burn::prelude::*;
use burn::tensor::module::{conv_transpose2d, conv2d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};

use crate::fused::conv as kernel;
pub use crate::fused::conv::ConvGeom;
use crate::ops::fusable;

/// The convolution `geom` of `x` with the filters `w`: the fused products on the CPU, burn's
/// `conv2d` elsewhere.
pub fn convolve(x: Tensor<2>, w: Tensor<2>, geom: ConvGeom) -> Tensor<2> {
    if fusable(&x) && fusable(&w) {
        return kernel::conv(x, w, geom);
    }
    tensor_form(x, w, geom)
}

/// The transposed convolution mirroring `geom` (from its output's map back to its input's),
/// of `z` with the filters `v`: the fused products on the CPU, burn's `conv_transpose2d`
/// elsewhere.
pub fn convolve_transposed(z: Tensor<2>, v: Tensor<2>, geom: ConvGeom) -> Tensor<2> {
    if fusable(&z) && fusable(&v) {
        return kernel::conv_transposed(z, v, geom);
    }
    transposed_tensor_form(z, v, geom)
}

fn filters(w: Tensor<2>, g: &ConvGeom) -> Tensor<4> {
    w.reshape([g.filters, g.channels, g.size, g.size])
}

/// [`convolve`] with burn's convolution, for every backend.
fn tensor_form(x: Tensor<2>, w: Tensor<2>, g: ConvGeom) -> Tensor<2> {
    let n = x.dims()[0];
    let image = x.reshape([n, g.channels, g.height, g.width]);
    let options = ConvOptions::new(g.stride, [g.pad, g.pad], [1, 1], 1);
    conv2d(image, filters(w, &g), None, options)
        .reshape([n, g.filters * g.out_height * g.out_width])
}

/// [`convolve_transposed`] with burn's transposed convolution, for every backend. Its output
/// padding gives back the rows and columns the convolution's floor division dropped.
fn transposed_tensor_form(z: Tensor<2>, v: Tensor<2>, g: ConvGeom) -> Tensor<2> {
    let n = z.dims()[0];
    let image = z.reshape([n, g.filters, g.out_height, g.out_width]);
    let covered = |o: usize, s: usize| (o - 1) * s + g.size - 2 * g.pad;
    let extra = [
        g.height - covered(g.out_height, g.stride[0]),
        g.width - covered(g.out_width, g.stride[1]),
    ];
    let options = ConvTransposeOptions::new(g.stride, [g.pad, g.pad], extra, [1, 1], 1);
    conv_transpose2d(image, filters(v, &g), None, options)
        .reshape([n, g.channels * g.height * g.width])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::test_support::{assert_close, vals};
    use burn::tensor::Distribution;

    /// A geometry of `channels`×`height`×`width` to `filters` maps, its output size computed
    /// as the layers do.
    fn geom(
        chw: [usize; 3],
        filters: usize,
        size: usize,
        stride: [usize; 2],
        pad: usize,
    ) -> ConvGeom {
        let out = |len: usize, s: usize| (len + 2 * pad - size) / s + 1;
        ConvGeom {
            channels: chw[0],
            height: chw[1],
            width: chw[2],
            filters,
            size,
            stride,
            pad,
            out_height: out(chw[1], stride[0]),
            out_width: out(chw[2], stride[1]),
        }
    }

    /// 'full', 'valid' and 'same' borders, strides 1 and 2 (with rows and columns the floor
    /// division drops), 1×1 filters, batches of one and of several product blocks, and the
    /// 3×3 stride-1 convolutions that run by Winograd's transforms.
    fn geometries() -> Vec<(usize, ConvGeom)> {
        vec![
            (3, geom([2, 7, 6], 3, 3, [1, 1], 2)),
            (4, geom([3, 6, 6], 2, 3, [1, 1], 0)),
            (5, geom([2, 7, 8], 3, 3, [2, 2], 1)),
            (2, geom([3, 9, 7], 4, 5, [2, 1], 2)),
            (6, geom([4, 5, 5], 3, 1, [1, 1], 0)),
            (70, geom([2, 8, 9], 3, 3, [1, 1], 0)),
            (1, geom([1, 4, 4], 1, 5, [1, 1], 4)),
            // Winograd's F(2×2, 3×3) (fused::winograd): 16 channels or more on both sides.
            (3, geom([16, 7, 6], 17, 3, [1, 1], 2)),
            (2, geom([17, 6, 7], 16, 3, [1, 1], 0)),
            (2, geom([16, 5, 5], 16, 3, [1, 1], 1)),
        ]
    }

    /// Both maps, their values and the gradients of Σ out·g with respect to both inputs, for
    /// the operation and its tensor form.
    fn compare(
        op: fn(Tensor<2>, Tensor<2>, ConvGeom) -> Tensor<2>,
        form: fn(Tensor<2>, Tensor<2>, ConvGeom) -> Tensor<2>,
        transposed: bool,
    ) {
        let device = Device::flex().autodiff();
        for (n, g) in geometries() {
            let dist = Distribution::Normal(0.0, 1.0);
            let (maps, filtered) = (
                g.channels * g.height * g.width,
                g.filters * g.out_height * g.out_width,
            );
            let (units_in, units_out) = if transposed {
                (filtered, maps)
            } else {
                (maps, filtered)
            };
            let x = Tensor::<2>::random([n, units_in], dist, &device).require_grad();
            let w = Tensor::<2>::random([g.filters, g.channels * g.size * g.size], dist, &device)
                .require_grad();
            let gy = Tensor::<2>::random([n, units_out], dist, &device);
            let fused = op(x.clone(), w.clone(), g);
            let plain = form(x.clone(), w.clone(), g);
            let what = format!("{g:?} of {n}");
            assert_close(&vals(fused.clone()), &vals(plain.clone()), 1e-5, &what);
            let gf = (fused * gy.clone()).sum().backward();
            let gp = (plain * gy).sum().backward();
            for t in [&x, &w] {
                let (a, b) = (vals(t.grad(&gf).unwrap()), vals(t.grad(&gp).unwrap()));
                assert_close(&a, &b, 1e-4, &format!("gradient, {what}"));
            }
        }
    }

    /// The fused convolution and its two gradients agree with burn's convolution.
    #[test]
    fn fused_convolution_equals_its_tensor_form() {
        compare(convolve, tensor_form, false);
    }

    /// The fused transposed convolution and its two gradients agree with burn's.
    #[test]
    fn fused_transposed_convolution_equals_its_tensor_form() {
        compare(convolve_transposed, transposed_tensor_form, true);
    }

    /// By hand: the 3×3 map 1..9 under the 2×2 filter [1 0; 0 −1] ('valid') is
    /// x[i][j] − x[i+1][j+1] = −4 everywhere; with g = 1 the filter's gradient is the sums of
    /// the four 2×2 windows' corners: [1+2+4+5, 2+3+5+6; 4+5+7+8, 5+6+8+9]; the input's
    /// gradient is the filter added at each window: +1 at the top-left 2×2, −1 at the
    /// bottom-right 2×2.
    #[test]
    fn convolution_by_hand() {
        let device = Device::flex().autodiff();
        let t = |v: Vec<f32>, s: [usize; 2]| {
            Tensor::<2>::from_data(TensorData::new(v, s), &device).require_grad()
        };
        let x = t((1..=9).map(|v| v as f32).collect(), [1, 9]);
        let w = t(vec![1.0, 0.0, 0.0, -1.0], [1, 4]);
        let g = geom([1, 3, 3], 1, 2, [1, 1], 0);
        let y = convolve(x.clone(), w.clone(), g);
        assert_eq!(vals(y.clone()), vec![-4.0; 4]);
        let grads = y.sum().backward();
        assert_eq!(vals(w.grad(&grads).unwrap()), vec![12.0, 16.0, 24.0, 28.0]);
        let dx = vec![1.0, 1.0, 0.0, 1.0, 0.0, -1.0, 0.0, -1.0, -1.0];
        assert_eq!(vals(x.grad(&grads).unwrap()), dx);
    }

    /// Finite differences: Σ y·g changes with one filter value and one input value at the
    /// rate the gradients say (the map is linear in each, so a step of 1 is exact up to
    /// rounding), through 'same' padding and stride 2.
    #[test]
    fn convolution_gradients_match_finite_differences() {
        let device = Device::flex().autodiff();
        let g = geom([2, 5, 6], 3, 3, [2, 2], 1);
        let dist = Distribution::Normal(0.0, 1.0);
        let x = Tensor::<2>::random([2, 60], dist, &device).require_grad();
        let w = Tensor::<2>::random([3, 18], dist, &device).require_grad();
        let gy = Tensor::<2>::random([2, 3 * g.out_height * g.out_width], dist, &device);
        let cost = |x: Tensor<2>, w: Tensor<2>| (convolve(x, w, g) * gy.clone()).sum();
        let grads = cost(x.clone(), w.clone()).backward();
        let base = vals(cost(x.clone(), w.clone()))[0];
        let bump = |t: &Tensor<2>, at: usize| {
            let mut v = vals(t.clone());
            v[at] += 1.0;
            Tensor::<2>::from_data(TensorData::new(v, t.dims()), &device)
        };
        for at in [0, 7, 17] {
            let moved = vals(cost(x.clone(), bump(&w, at)))[0] - base;
            let want = vals(w.grad(&grads).unwrap())[at];
            assert!((moved - want).abs() < 1e-3 * (1.0 + want.abs()), "w[{at}]");
        }
        for at in [0, 13, 59, 95] {
            let moved = vals(cost(bump(&x, at), w.clone()))[0] - base;
            let want = vals(x.grad(&grads).unwrap())[at];
            assert!((moved - want).abs() < 1e-3 * (1.0 + want.abs()), "x[{at}]");
        }
    }
}
