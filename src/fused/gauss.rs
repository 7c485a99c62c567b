//! The Gauss combinator (paper 001, eq. 2) as one fused operation on the CPU backend.
//!
//! Written with tensor operations, ẑ = g(z̃, u) is seventeen elementwise passes forward and
//! about forty-five backward, each allocating, and autodiff recomputes both sigmoids in the
//! backward pass. On the Flex backend this module computes the forward pass in one sweep
//! (saving the two sigmoids) and the backward pass in another, with the rows split over the
//! thread pool. It is registered as a backend extension with a hand-written backward step.
//! Other backends keep the tensor-operation form in [`crate::ops::gauss`]; both
//! compute the same function and the tests hold them to each other.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Dispatch, Flex, backend_extension};
use burn::prelude::*;
use rayon::prelude::*;

use crate::fused::math::sigmoid;
use crate::fused::{dims, row_chunk, tensor, values, widest};

/// Parameters of one unit, in the order of `crate::model::CombinatorKind::Gauss`:
/// μ(u) = a0·σ(a1·u + a2) + a3·u + a4 and υ(u) = a5·σ(a6·u + a7) + a8·u + a9.
pub const GAUSS_PARAMETERS: usize = 10;

#[backend_extension(Flex, Autodiff)]
pub trait GaussKernel: burn::backend::Backend {
    /// ẑ for `z_tilde` and `u` of shape `[rows, units]` and the parameters `a` stacked as
    /// `[10, units]`.
    fn gauss_combinator(
        z_tilde: FloatTensor<Self>,
        u: FloatTensor<Self>,
        a: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

/// ẑ = g(z̃, u) through the fused operation; `a` is `[10, units]`. Only for
/// `f32` tensors on the Flex backend (the operation of `crate::ops` chooses).
pub fn gauss(z_tilde: Tensor<2>, u: Tensor<2>, a: Tensor<2>) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as GaussKernel>::gauss_combinator(
        z_tilde.into_dispatch(),
        u.into_dispatch(),
        a.into_dispatch(),
    ))
}

impl GaussKernel for Flex {
    fn gauss_combinator(z_tilde: FlexTensor, u: FlexTensor, a: FlexTensor) -> FlexTensor {
        forward(&z_tilde, &u, &a).0
    }
}

impl<C: CheckpointStrategy> GaussKernel for Autodiff<Flex, C> {
    fn gauss_combinator(
        z_tilde: FloatTensor<Self>,
        u: FloatTensor<Self>,
        a: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        match GaussBackward
            .prepare::<C>([z_tilde.node(), u.node(), a.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (z, u, a) = (
                    z_tilde.primitive().clone(),
                    u.primitive().clone(),
                    a.primitive().clone(),
                );
                let (out, s1, s2) = forward(&z, &u, &a);
                prep.finish(Saved { z, u, a, s1, s2 }, out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(forward(z_tilde.primitive(), u.primitive(), a.primitive()).0)
            }
        }
    }
}

/// What the backward step needs: the inputs and the two sigmoids of the forward pass.
#[derive(Debug, Clone)]
struct Saved {
    z: FlexTensor,
    u: FlexTensor,
    a: FlexTensor,
    s1: FlexTensor,
    s2: FlexTensor,
}

#[derive(Debug)]
struct GaussBackward;

impl Backward<Flex, 3> for GaussBackward {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<Flex>(&ops.node);
        let s = ops.state;
        let (dz, du, da) = backward(&s, &grad);
        let [node_z, node_u, node_a] = ops.parents;
        for (node, g) in [(node_z, dz), (node_u, du), (node_a, da)] {
            if let Some(node) = node {
                grads.register::<Flex>(node.id, g);
            }
        }
    }
}

widest!(forward_row, forward_row_body, (a: &Rows<'_>, inputs: (&[f32], &[f32]), outputs: (&mut [f32], &mut [f32], &mut [f32])));
widest!(backward_row, backward_row_body, (a: &Rows<'_>, inputs: BackwardInputs<'_>, outputs: (&mut [f32], &mut [f32]), da: &mut [f32]));

/// The ten parameter rows of a layer, one value per unit each.
type Rows<'a> = [&'a [f32]; GAUSS_PARAMETERS];

/// One row of z̃, u, the two saved sigmoids and the gradient of ẑ.
type BackwardInputs<'a> = (&'a [f32], &'a [f32], &'a [f32], &'a [f32], &'a [f32]);

fn slice_of(v: &[f32], range: std::ops::Range<usize>) -> &[f32] {
    &v[range]
}

/// The stacked parameters `[10, units]` as ten per-unit rows.
fn parameter_rows(a: &[f32], units: usize) -> Rows<'_> {
    std::array::from_fn(|i| &a[i * units..(i + 1) * units])
}

/// Eq. (2) forward for one row: ẑ and the two sigmoids.
#[inline(always)]
fn forward_row_body(
    a: &Rows<'_>,
    (z, u): (&[f32], &[f32]),
    (out, s1, s2): (&mut [f32], &mut [f32], &mut [f32]),
) {
    // Every slice cut to one length, so the loop runs without bounds checks and vectorises.
    let n = z.len();
    let a: Rows<'_> = a.map(|row| &row[..n]);
    let (u, out, s1, s2) = (&u[..n], &mut out[..n], &mut s1[..n], &mut s2[..n]);
    for j in 0..n {
        let x = u[j];
        let g1 = sigmoid(a[1][j] * x + a[2][j]);
        let g2 = sigmoid(a[6][j] * x + a[7][j]);
        let mu = a[0][j] * g1 + a[3][j] * x + a[4][j];
        let v = a[5][j] * g2 + a[8][j] * x + a[9][j];
        (out[j], s1[j], s2[j]) = ((z[j] - mu) * v + mu, g1, g2);
    }
}

/// Eq. (2) backward for one row, given the gradient `g` of ẑ: writes dz̃ and du and adds
/// this row's terms to the parameter gradients `da` (`[10, units]`).
#[inline(always)]
fn backward_row_body(
    a: &Rows<'_>,
    (z, u, s1, s2, g): BackwardInputs<'_>,
    (dz, du): (&mut [f32], &mut [f32]),
    da: &mut [f32],
) {
    let units = z.len();
    let a: Rows<'_> = a.map(|row| &row[..units]);
    let (u, s1, s2, g) = (&u[..units], &s1[..units], &s2[..units], &g[..units]);
    let (dz, du) = (&mut dz[..units], &mut du[..units]);
    let (da0, rest) = da.split_at_mut(units);
    let (da1, rest) = rest.split_at_mut(units);
    let (da2, rest) = rest.split_at_mut(units);
    let (da3, rest) = rest.split_at_mut(units);
    let (da4, rest) = rest.split_at_mut(units);
    let (da5, rest) = rest.split_at_mut(units);
    let (da6, rest) = rest.split_at_mut(units);
    let (da7, rest) = rest.split_at_mut(units);
    let (da8, da9) = rest.split_at_mut(units);
    let da9 = &mut da9[..units];
    for j in 0..units {
        let x = u[j];
        let mu = a[0][j] * s1[j] + a[3][j] * x + a[4][j];
        let v = a[5][j] * s2[j] + a[8][j] * x + a[9][j];
        // ẑ = (z̃ − μ)·υ + μ
        let d_mu = g[j] * (1.0 - v);
        let d_v = g[j] * (z[j] - mu);
        // through σ: dσ/dx = σ(1 − σ)
        let d_pre1 = d_mu * a[0][j] * s1[j] * (1.0 - s1[j]);
        let d_pre2 = d_v * a[5][j] * s2[j] * (1.0 - s2[j]);
        dz[j] = g[j] * v;
        du[j] = d_mu * a[3][j] + d_pre1 * a[1][j] + d_v * a[8][j] + d_pre2 * a[6][j];
        da0[j] += d_mu * s1[j];
        da1[j] += d_pre1 * x;
        da2[j] += d_pre1;
        da3[j] += d_mu * x;
        da4[j] += d_mu;
        da5[j] += d_v * s2[j];
        da6[j] += d_pre2 * x;
        da7[j] += d_pre2;
        da8[j] += d_v * x;
        da9[j] += d_v;
    }
}

/// Eq. (2) forward: (ẑ, σ(a1·u + a2), σ(a6·u + a7)), each `[rows, units]`.
fn forward(z: &FlexTensor, u: &FlexTensor, a: &FlexTensor) -> (FlexTensor, FlexTensor, FlexTensor) {
    let [rows, units] = dims(z);
    let (zv, uv, av) = (values(z), values(u), values(a));
    let a = parameter_rows(&av, units);
    let n = rows * units;
    let (mut out, mut s1, mut s2) = (vec![0f32; n], vec![0f32; n], vec![0f32; n]);
    let chunk = row_chunk(rows, units);
    out.par_chunks_mut(chunk)
        .zip(s1.par_chunks_mut(chunk))
        .zip(s2.par_chunks_mut(chunk))
        .enumerate()
        .for_each(|(task, ((out, s1), s2))| {
            let outputs = out
                .chunks_mut(units)
                .zip(s1.chunks_mut(units))
                .zip(s2.chunks_mut(units));
            for (r, ((out, s1), s2)) in outputs.enumerate() {
                let row = task * chunk + r * units..task * chunk + (r + 1) * units;
                let inputs = (&zv[row.clone()], &uv[row]);
                forward_row(&a, inputs, (out, s1, s2));
            }
        });
    let shape = [rows, units];
    (tensor(out, shape), tensor(s1, shape), tensor(s2, shape))
}

/// Eq. (2) backward: the gradients with respect to z̃, u and the stacked parameters, given
/// the gradient `grad` of ẑ. Parameter gradients are summed over rows, per task and then
/// across tasks in task order.
fn backward(s: &Saved, grad: &FlexTensor) -> (FlexTensor, FlexTensor, FlexTensor) {
    let [rows, units] = dims(&s.z);
    let (zv, uv, av) = (values(&s.z), values(&s.u), values(&s.a));
    let (s1v, s2v, gv) = (values(&s.s1), values(&s.s2), values(grad));
    let a = parameter_rows(&av, units);
    let n = rows * units;
    let (mut dz, mut du) = (vec![0f32; n], vec![0f32; n]);
    let chunk = row_chunk(rows, units);
    let partial: Vec<Vec<f32>> = dz
        .par_chunks_mut(chunk)
        .zip(du.par_chunks_mut(chunk))
        .enumerate()
        .map(|(task, (dz, du))| {
            let mut da = vec![0f32; GAUSS_PARAMETERS * units];
            for (r, (dz, du)) in dz.chunks_mut(units).zip(du.chunks_mut(units)).enumerate() {
                let row = task * chunk + r * units..task * chunk + (r + 1) * units;
                let at = |v| slice_of(v, row.clone());
                let inputs = (at(&zv), at(&uv), at(&s1v), at(&s2v), at(&gv));
                backward_row(&a, inputs, (dz, du), &mut da);
            }
            da
        })
        .collect();
    let mut da = vec![0f32; GAUSS_PARAMETERS * units];
    for part in partial {
        da.iter_mut().zip(part).for_each(|(a, p)| *a += p);
    }
    let shape = [rows, units];
    (
        tensor(dz, shape),
        tensor(du, shape),
        tensor(da, [GAUSS_PARAMETERS, units]),
    )
}
