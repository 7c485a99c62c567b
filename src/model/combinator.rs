//! The denoising functions g of the decoder: ẑ = g(z̃, u), applied unit by unit.
//!
//! `Gauss` is the paper's proposal (eq. 2 of Rasmus et al. 2015); `G1`–`G4` are the comparison
//! functions of its Appendix B (eq. 5–8) and `Linear` is ẑ = a·z̃ + b (Sec. 5, the link to the
//! contractive cost). Each kind owns its parameter count, initial values and formula, so adding
//! one touches this file only.

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use serde::{Deserialize, Serialize};

use crate::error::{LadderError, Result};
use crate::ops::{Shape, gauss};

/// Which denoising function a decoder layer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CombinatorKind {
    /// Eq. (2): ẑ = (z̃ − μ(u))·υ(u) + μ(u), with μ and υ "expressive nonlinearities" of u.
    Gauss,
    /// Appendix B, eq. (5): a miniature MLP on ξ = [1, z̃, u, z̃u].
    G1,
    /// Appendix B, eq. (6): the same MLP without the product term, ξ′ = [1, z̃, u].
    G2,
    /// Appendix B, eq. (7): linear in ξ = [1, z̃, u, z̃u].
    G3,
    /// Appendix B, eq. (8): u shifts only the mean.
    G4,
    /// ẑ = a·z̃ + b, ignoring u.
    Linear,
}

impl CombinatorKind {
    /// Parses a decoder spec entry; `0` means "no decoder at this layer".
    pub fn parse(name: &str) -> Result<Option<CombinatorKind>> {
        Ok(Some(match name {
            "0" => return Ok(None),
            "gauss" => CombinatorKind::Gauss,
            "g1" | "mlp" => CombinatorKind::G1,
            "g2" => CombinatorKind::G2,
            "g3" => CombinatorKind::G3,
            "g4" => CombinatorKind::G4,
            "linear" => CombinatorKind::Linear,
            other => {
                return Err(LadderError::Spec(format!(
                    "unknown decoder '{other}' (expected gauss, g1, g2, g3, g4, linear or 0)"
                )));
            }
        }))
    }

    /// Initial value of each per-unit parameter, in the order the formula reads them.
    ///
    /// Gauss follows the authors' code: a2 = a7 = 1 and the rest 0, so ẑ starts at 0. The
    /// comparison functions start the same way: output 0, with a unit slope inside each sigmoid
    /// so that its gradient is not zero once the outer weight moves.
    fn initial_values(self) -> &'static [f32] {
        match self {
            CombinatorKind::Gauss => &[0., 1., 0., 0., 0., 0., 1., 0., 0., 0.],
            // a0..a3, b, c0..c3
            CombinatorKind::G1 => &[0., 0., 0., 0., 0., 0., 1., 0., 0.],
            // a0..a2, b, c0..c2
            CombinatorKind::G2 => &[0., 0., 0., 0., 0., 1., 0.],
            // a0..a3
            CombinatorKind::G3 => &[0., 0., 0., 0.],
            // a1..a9
            CombinatorKind::G4 => &[0., 0., 1., 0., 0., 0., 1., 0., 0.],
            // a, b
            CombinatorKind::Linear => &[0., 0.],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CombinatorKind::Gauss => "gauss",
            CombinatorKind::G1 => "g1",
            CombinatorKind::G2 => "g2",
            CombinatorKind::G3 => "g3",
            CombinatorKind::G4 => "g4",
            CombinatorKind::Linear => "linear",
        }
    }
}

/// One layer's denoising function with its parameters, each of shape `[1, units]` (one per
/// channel in convolutional layers).
#[derive(Module, Debug)]
pub struct Combinator {
    #[module(skip)]
    pub kind: CombinatorKind,
    pub a: Vec<Param<Tensor<2>>>,
}

impl Combinator {
    /// A combinator for `units` units with the kind's initial values (the authors' for Gauss).
    pub fn new(kind: CombinatorKind, units: usize, device: &Device) -> Self {
        let a = kind
            .initial_values()
            .iter()
            .map(|&v| Param::from_tensor(Tensor::full([1, units], v, device)))
            .collect();
        Combinator { kind, a }
    }

    /// Parameter i shaped to broadcast over a rank-D activation: `[1, channels]` for a
    /// `[batch, units]` matrix, `[1, channels, 1]` for `[batch, channels, positions]`.
    fn p<const D: usize>(&self, i: usize) -> Tensor<D> {
        let v = self.a[i].val();
        let mut dims = [1usize; D];
        dims[1] = v.dims()[1];
        v.reshape(dims)
    }

    /// ẑ = g(z̃, u) for a batch: `z_tilde` and `u` are `[batch, units]`.
    pub fn forward(&self, z_tilde: Tensor<2>, u: Tensor<2>) -> Tensor<2> {
        if self.kind == CombinatorKind::Gauss {
            return gauss::gauss(z_tilde, u, &self.params());
        }
        self.apply(z_tilde, u)
    }

    /// The parameters, each shaped to broadcast over a rank-D activation.
    fn params<const D: usize>(&self) -> Vec<Tensor<D>> {
        (0..self.a.len()).map(|i| self.p(i)).collect()
    }

    /// ẑ = g(z̃, u) for a layer of `shape`, the parameters shared by every position of a
    /// channel (paper 001 Sec. 3.4): `[batch, C·H·W]` in and out.
    pub fn forward_shaped(&self, z_tilde: Tensor<2>, u: Tensor<2>, shape: Shape) -> Tensor<2> {
        if shape.spatial() == 1 {
            return self.forward(z_tilde, u);
        }
        let [n, units] = z_tilde.dims();
        let s = [n, shape.channels, shape.spatial()];
        self.apply(z_tilde.reshape(s), u.reshape(s))
            .reshape([n, units])
    }

    pub(crate) fn apply<const D: usize>(&self, z_tilde: Tensor<D>, u: Tensor<D>) -> Tensor<D> {
        match self.kind {
            CombinatorKind::Gauss => gauss::tensor_form(z_tilde, u, &self.params()),
            CombinatorKind::G1 => self.mlp(z_tilde.clone(), u.clone(), Some(z_tilde * u)),
            CombinatorKind::G2 => self.mlp(z_tilde, u, None),
            CombinatorKind::G3 => {
                let zu = z_tilde.clone() * u.clone();
                self.affine(0, z_tilde, u, Some(zu))
            }
            CombinatorKind::G4 => self.mean_only(z_tilde, u),
            CombinatorKind::Linear => z_tilde * self.p(0) + self.p(1),
        }
    }

    /// Σ_k a_k ξ_k for ξ = [1, z̃, u(, z̃u)], the parameters starting at index `first`.
    fn affine<const D: usize>(
        &self,
        first: usize,
        z_tilde: Tensor<D>,
        u: Tensor<D>,
        zu: Option<Tensor<D>>,
    ) -> Tensor<D> {
        let lin = self.p(first) + self.p(first + 1) * z_tilde + self.p(first + 2) * u;
        match zu {
            Some(zu) => lin + self.p(first + 3) * zu,
            None => lin,
        }
    }

    /// Eq. (5)/(6): ẑ = a·ξ + b·σ(c·ξ).
    fn mlp<const D: usize>(
        &self,
        z_tilde: Tensor<D>,
        u: Tensor<D>,
        zu: Option<Tensor<D>>,
    ) -> Tensor<D> {
        let k = if zu.is_some() { 4 } else { 3 };
        let outer = self.affine(0, z_tilde.clone(), u.clone(), zu.clone());
        let inner = self.affine(k + 1, z_tilde, u, zu);
        outer + self.p(k) * sigmoid(inner)
    }

    /// Eq. (8): ẑ = a1·u + a2·σ(a3·u + a4) + a5·z̃ + a6·σ(a7·z̃ + a8) + a9.
    fn mean_only<const D: usize>(&self, z_tilde: Tensor<D>, u: Tensor<D>) -> Tensor<D> {
        self.p(0) * u.clone()
            + self.p(1) * sigmoid(self.p(2) * u + self.p(3))
            + self.p(4) * z_tilde.clone()
            + self.p(5) * sigmoid(self.p(6) * z_tilde + self.p(7))
            + self.p(8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f32], device: &Device) -> Tensor<2> {
        Tensor::from_data(TensorData::new(v.to_vec(), [1, v.len()]), device)
    }

    fn values(x: Tensor<2>) -> Vec<f32> {
        x.into_data().try_to_vec::<f32>().unwrap()
    }

    fn set(c: &mut Combinator, vals: &[f32], device: &Device) {
        for (p, &v) in c.a.iter_mut().zip(vals) {
            *p = Param::from_tensor(t(&[v], device));
        }
    }

    fn sig(x: f32) -> f32 {
        1.0 / (1.0 + (-x).exp())
    }

    #[test]
    fn gauss_starts_at_zero() {
        let device = Device::flex();
        let c = Combinator::new(CombinatorKind::Gauss, 3, &device);
        let out = values(c.forward(t(&[1.0, -2.0, 0.5], &device), t(&[0.3, 0.1, -4.0], &device)));
        assert_eq!(out, vec![0.0; 3]);
    }

    #[test]
    fn gauss_matches_eq_2_by_hand() {
        let device = Device::flex();
        let mut c = Combinator::new(CombinatorKind::Gauss, 1, &device);
        let a = [0.5, 2.0, -1.0, 0.3, 0.1, 1.5, -0.5, 0.2, 0.4, 0.6];
        set(&mut c, &a, &device);
        let (z, u) = (0.7f32, -1.2f32);
        let mu = a[0] * sig(a[1] * u + a[2]) + a[3] * u + a[4];
        let v = a[5] * sig(a[6] * u + a[7]) + a[8] * u + a[9];
        let expected = (z - mu) * v + mu;
        let got = values(c.forward(t(&[z], &device), t(&[u], &device)))[0];
        assert!((got - expected).abs() < 1e-6, "{got} vs {expected}");
    }

    #[test]
    fn comparison_functions_match_appendix_b() {
        let device = Device::flex();
        let (z, u) = (0.4f32, 0.9f32);
        let cases: Vec<(CombinatorKind, Vec<f32>, f32)> = vec![
            (
                CombinatorKind::G1,
                vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
                {
                    let xi = [1.0, z, u, z * u];
                    let a = [0.1, 0.2, 0.3, 0.4];
                    let c = [0.6, 0.7, 0.8, 0.9];
                    let dot = |w: &[f32]| w.iter().zip(&xi).map(|(w, x)| w * x).sum::<f32>();
                    dot(&a) + 0.5 * sig(dot(&c))
                },
            ),
            (
                CombinatorKind::G2,
                vec![0.1, 0.2, 0.3, 0.5, 0.6, 0.7, 0.8],
                { 0.1 + 0.2 * z + 0.3 * u + 0.5 * sig(0.6 + 0.7 * z + 0.8 * u) },
            ),
            (CombinatorKind::G3, vec![0.1, 0.2, 0.3, 0.4], {
                0.1 + 0.2 * z + 0.3 * u + 0.4 * z * u
            }),
            (
                CombinatorKind::G4,
                vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
                { 0.1 * u + 0.2 * sig(0.3 * u + 0.4) + 0.5 * z + 0.6 * sig(0.7 * z + 0.8) + 0.9 },
            ),
            (CombinatorKind::Linear, vec![1.5, -0.2], 1.5 * z - 0.2),
        ];
        for (kind, params, expected) in cases {
            let mut c = Combinator::new(kind, 1, &device);
            assert_eq!(c.a.len(), params.len(), "{kind:?} parameter count");
            set(&mut c, &params, &device);
            let got = values(c.forward(t(&[z], &device), t(&[u], &device)))[0];
            assert!(
                (got - expected).abs() < 1e-6,
                "{kind:?}: {got} vs {expected}"
            );
        }
    }

    #[test]
    fn every_kind_starts_at_zero_output() {
        let device = Device::flex();
        for kind in [
            CombinatorKind::Gauss,
            CombinatorKind::G1,
            CombinatorKind::G2,
            CombinatorKind::G3,
            CombinatorKind::G4,
            CombinatorKind::Linear,
        ] {
            let c = Combinator::new(kind, 2, &device);
            let out = values(c.forward(t(&[0.3, -1.0], &device), t(&[2.0, 0.5], &device)));
            // G4's sigmoid terms have zero outer weight; every other term is zero too.
            assert!(out.iter().all(|v| v.abs() < 1e-7), "{kind:?}: {out:?}");
        }
    }

    /// Per-channel parameters act on every position of their channel.
    #[test]
    fn shaped_combinator_shares_parameters_per_channel() {
        let device = Device::flex();
        let mut c = Combinator::new(CombinatorKind::Linear, 2, &device);
        c.a[0] = Param::from_tensor(t(&[2.0, -1.0], &device));
        c.a[1] = Param::from_tensor(t(&[0.5, 3.0], &device));
        let shape = Shape {
            channels: 2,
            height: 1,
            width: 2,
        };
        let z = t(&[1.0, 2.0, 3.0, 4.0], &device);
        let out = values(c.forward_shaped(z.clone(), z, shape));
        assert_eq!(out, vec![2.5, 4.5, 0.0, -1.0]);
    }

    #[test]
    fn parse_names() {
        assert_eq!(CombinatorKind::parse("0").unwrap(), None);
        assert_eq!(
            CombinatorKind::parse("gauss").unwrap(),
            Some(CombinatorKind::Gauss)
        );
        assert!(CombinatorKind::parse("gaus").is_err());
    }
}
