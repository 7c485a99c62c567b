//! Adam's update (Kingma and Ba 2015, Algorithm 1) in one pass over memory, split over the
//! thread pool: the arithmetic of burn's `Adam`, in its order and precision, element by element
//! (`crate::ops::adam` chooses it for `f32` parameters on the CPU).

use rayon::prelude::*;

use crate::fused::widest;

/// Elements per parallel task: large enough that scheduling costs nothing next to the work.
pub const CHUNK: usize = 1 << 14;

/// One step's scalars, applied element by element.
#[derive(Clone, Copy)]
pub struct Update {
    pub beta_1: f32,
    pub beta_2: f32,
    pub combined: f32,
    pub eps: f32,
    pub lr: f32,
    /// The first step, where burn starts the moments from (1−β)·g rather than from zero.
    pub first: bool,
}

impl Update {
    /// Updates θ, m and v in place from g, in chunks over the thread pool.
    pub fn apply(self, theta: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
        theta
            .par_chunks_mut(CHUNK)
            .zip(m.par_chunks_mut(CHUNK))
            .zip(v.par_chunks_mut(CHUNK))
            .zip(g.par_chunks(CHUNK))
            .for_each(|(((theta, m), v), g)| update_chunk(self, theta, m, v, g));
    }
}

widest!(update_chunk, update_chunk_body, (u: Update, theta: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]));

/// The update of one chunk. Each line is one of burn's tensor operations, in its order, so
/// the results are bit for bit those of burn's Adam (no operation is fused into an FMA).
#[inline(always)]
fn update_chunk_body(u: Update, theta: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
    let (f1, f2) = (1.0 - u.beta_1, 1.0 - u.beta_2);
    let n = theta.len();
    let (m, v, g) = (&mut m[..n], &mut v[..n], &g[..n]);
    for i in 0..n {
        let (mg, vg) = (g[i] * f1, (g[i] * g[i]) * f2);
        if u.first {
            (m[i], v[i]) = (mg, vg);
        } else {
            m[i] = m[i] * u.beta_1 + mg;
            v[i] = v[i] * u.beta_2 + vg;
        }
        let step = (m[i] * u.combined) / (v[i].sqrt() + u.eps);
        theta[i] -= step * u.lr;
    }
}
