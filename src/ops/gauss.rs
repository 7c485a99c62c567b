//! The combinator g of eq. (2) of paper 001, the decoder's proposed denoising function.

use burn::prelude::*;
use burn::tensor::activation::sigmoid;

use crate::fused::gauss as kernel;
use crate::ops::fusable;

/// ẑ = g(z̃, u) of eq. (2) for `[batch, units]` inputs, with the ten per-unit parameters `a`
/// (each `[1, units]`, in the order a1..a10): one fused operation on the CPU.
pub fn gauss(z_tilde: Tensor<2>, u: Tensor<2>, a: &[Tensor<2>]) -> Tensor<2> {
    if fusable(&z_tilde) {
        return kernel::gauss(z_tilde, u, Tensor::cat(a.to_vec(), 0));
    }
    tensor_form(z_tilde, u, a)
}

/// Eq. (2) with tensor operations, for every backend and any rank (the parameters shaped to
/// broadcast): μ(u) = a1·σ(a2·u + a3) + a4·u + a5, υ(u) = a6·σ(a7·u + a8) + a9·u + a10,
/// ẑ = (z̃ − μ)·υ + μ.
pub fn tensor_form<const D: usize>(z_tilde: Tensor<D>, u: Tensor<D>, a: &[Tensor<D>]) -> Tensor<D> {
    let p = |i: usize| a[i].clone();
    let mu = p(0) * sigmoid(p(1) * u.clone() + p(2)) + p(3) * u.clone() + p(4);
    let v = p(5) * sigmoid(p(6) * u.clone() + p(7)) + p(8) * u + p(9);
    (z_tilde - mu.clone()) * v + mu
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::test_support::{assert_close, vals};
    use burn::tensor::Distribution;

    /// Random parameters (the initial ones zero most terms).
    fn random_params(units: usize, device: &Device) -> Vec<Tensor<2>> {
        (0..10)
            .map(|_| {
                Tensor::random([1, units], Distribution::Normal(0.0, 1.0), device).require_grad()
            })
            .collect()
    }

    fn inputs(rows: usize, units: usize, device: &Device) -> (Tensor<2>, Tensor<2>) {
        let draw = || {
            Tensor::<2>::random([rows, units], Distribution::Normal(0.0, 2.0), device)
                .require_grad()
        };
        (draw(), draw())
    }

    /// The fused forward pass agrees with the tensor form, and its gradients with respect
    /// to z̃, u and all ten parameters agree with autodiff through the tensor form, on a
    /// batch small enough for one task and on one split over the pool.
    #[test]
    fn fused_gauss_matches_the_tensor_form_and_its_gradients() {
        let device = Device::flex().autodiff();
        for (rows, units) in [(3, 5), (96, 700)] {
            let params = random_params(units, &device);
            let (z, u) = inputs(rows, units, &device);
            let fused = gauss(z.clone(), u.clone(), &params);
            let plain = tensor_form(z.clone(), u.clone(), &params);
            let (f, p) = (vals(fused.clone()), vals(plain.clone()));
            assert_close(&f, &p, 1e-5, &format!("forward {rows}x{units}"));
            // A cost that weights every output differently.
            let w = Tensor::<2>::random([rows, units], Distribution::Normal(0.0, 1.0), &device);
            let gf = (fused * w.clone()).sum().backward();
            let gp = (plain * w).sum().backward();
            let grad = |t: &Tensor<2>, g| vals(t.grad(g).expect("tracked"));
            assert_close(&grad(&z, &gf), &grad(&z, &gp), 1e-5, "dz");
            assert_close(&grad(&u, &gf), &grad(&u, &gp), 1e-5, "du");
            for (i, p) in params.iter().enumerate() {
                let (f, q) = (grad(p, &gf), grad(p, &gp));
                assert_close(&f, &q, 2e-4, &format!("da{i}"));
            }
        }
    }

    /// Central differences in f64 of eq. (2) against the fused backward pass, for z̃, u and
    /// each of the ten parameters (summed over rows).
    #[test]
    fn fused_gauss_gradient_matches_finite_differences() {
        let device = Device::flex().autodiff();
        let (rows, units) = (4, 3);
        let params = random_params(units, &device);
        let (z, u) = inputs(rows, units, &device);
        let a: Vec<Vec<f32>> = params.iter().map(|p| vals(p.clone())).collect();
        let (zv, uv) = (vals(z.clone()), vals(u.clone()));
        let g = gauss(z.clone(), u.clone(), &params).sum().backward();
        let (dz, du) = (vals(z.grad(&g).unwrap()), vals(u.grad(&g).unwrap()));
        let f = |z: f64, u: f64, p: &[f64]| {
            let s = |x: f64| 1.0 / (1.0 + (-x).exp());
            let mu = p[0] * s(p[1] * u + p[2]) + p[3] * u + p[4];
            let v = p[5] * s(p[6] * u + p[7]) + p[8] * u + p[9];
            (z - mu) * v + mu
        };
        let unit = |j: usize| a.iter().map(|v| v[j] as f64).collect::<Vec<_>>();
        let close = |got: f32, fd: f64, what: String| {
            assert!(
                (got as f64 - fd).abs() < 1e-3 * (1.0 + fd.abs()),
                "{what}: {got} vs {fd}"
            );
        };
        let h = 1e-5;
        for e in 0..rows * units {
            let p = unit(e % units);
            let (z, u) = (zv[e] as f64, uv[e] as f64);
            close(
                dz[e],
                (f(z + h, u, &p) - f(z - h, u, &p)) / (2.0 * h),
                format!("dz[{e}]"),
            );
            close(
                du[e],
                (f(z, u + h, &p) - f(z, u - h, &p)) / (2.0 * h),
                format!("du[{e}]"),
            );
        }
        for (k, param) in params.iter().enumerate() {
            let da = vals(param.grad(&g).unwrap());
            for (j, &got) in da.iter().enumerate() {
                let fd: f64 = (0..rows)
                    .map(|r| {
                        let e = r * units + j;
                        let (z, u) = (zv[e] as f64, uv[e] as f64);
                        let (mut hi, mut lo) = (unit(j), unit(j));
                        hi[k] += h;
                        lo[k] -= h;
                        (f(z, u, &hi) - f(z, u, &lo)) / (2.0 * h)
                    })
                    .sum();
                close(got, fd, format!("da{k}[{j}]"));
            }
        }
    }
}
