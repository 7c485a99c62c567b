//! Max-pooling of the convolutional encoders, PY×PX windows with stride PY×PX, and the
//! decoder's upsampling that mirrors it, each with its gradient.
//!
//! Flex pools a 5-D view with 64-bit indices, and its gradient reads and adds back every value
//! it scatters. The windows here never overlap, so the forward pass keeps each window's winner
//! as a 32-bit offset in its map, and the backward pass just stores each window's gradient at
//! its winner in a zeroed map. As in Flex (and PyTorch) the first maximum of a window wins,
//! and a NaN wins over any number.
//!
//! The upsampling copies every value over its window (zeros in the rows and columns pooling
//! dropped), where the tensor form expands a 6-D view, copies it to rows and concatenates
//! zeros; its gradient is each window's sum.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Dispatch, Flex, backend_extension};
use burn::prelude::*;
use rayon::prelude::*;

use crate::fused::{dims, tensor, values, widest};

/// Maps of one parallel task: the split depends on the shapes alone.
const MAPS_PER_TASK: usize = 64;

/// PY×PX max-pooling of `channels` maps of H×W; the rows and columns past the last whole
/// window are dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolGeom {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub size: [usize; 2],
}

impl PoolGeom {
    fn map(&self) -> usize {
        self.height * self.width
    }

    fn out_dims(&self) -> [usize; 2] {
        [self.height / self.size[0], self.width / self.size[1]]
    }

    fn out_map(&self) -> usize {
        let [h, w] = self.out_dims();
        h * w
    }
}

#[backend_extension(Flex, Autodiff)]
pub trait PoolKernel: burn::backend::Backend {
    /// The max-pooling `geom` of `x` (`[N, C·H·W]`): `[N, C·Ho·Wo]`.
    fn max_pool(x: FloatTensor<Self>, geom: PoolGeom) -> FloatTensor<Self>;
    /// The upsampling mirroring `geom` of `z` (`[N, C·Ho·Wo]`): `[N, C·H·W]`.
    fn upsample(z: FloatTensor<Self>, geom: PoolGeom) -> FloatTensor<Self>;
}

/// The max-pooling `geom` of `x` (`[N, C·H·W]`), `[N, C·Ho·Wo]`. Only for `f32` tensors on
/// the Flex backend (`crate::ops::pool` chooses).
pub fn max_pool(x: Tensor<2>, geom: PoolGeom) -> Tensor<2> {
    assert_eq!(
        x.dims()[1],
        geom.channels * geom.map(),
        "input of a max-pooling"
    );
    Tensor::from_dispatch(<Dispatch as PoolKernel>::max_pool(x.into_dispatch(), geom))
}

/// The decoder's upsampling mirroring the max-pooling `geom`: `z` (`[N, C·Ho·Wo]`) copied over
/// each window, `[N, C·H·W]`.
pub fn upsample(z: Tensor<2>, geom: PoolGeom) -> Tensor<2> {
    assert_eq!(
        z.dims()[1],
        geom.channels * geom.out_map(),
        "input of an upsampling"
    );
    Tensor::from_dispatch(<Dispatch as PoolKernel>::upsample(z.into_dispatch(), geom))
}

impl PoolKernel for Flex {
    fn max_pool(x: FlexTensor, geom: PoolGeom) -> FlexTensor {
        forward(&x, &geom).0
    }

    fn upsample(z: FlexTensor, geom: PoolGeom) -> FlexTensor {
        spread(&z, &geom)
    }
}

impl<C: CheckpointStrategy> PoolKernel for Autodiff<Flex, C> {
    fn max_pool(x: FloatTensor<Self>, geom: PoolGeom) -> FloatTensor<Self> {
        match MaxPoolBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (out, winners) = forward(x.primitive(), &geom);
                prep.finish((winners, geom), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(x.primitive(), &geom).0),
        }
    }

    fn upsample(z: FloatTensor<Self>, geom: PoolGeom) -> FloatTensor<Self> {
        match UpsampleBackward
            .prepare::<C>([z.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let out = spread(z.primitive(), &geom);
                prep.finish(geom, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(spread(z.primitive(), &geom)),
        }
    }
}

#[derive(Debug)]
struct UpsampleBackward;

impl Backward<Flex, 1> for UpsampleBackward {
    type State = PoolGeom;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let g = grads.consume::<Flex>(&ops.node);
        if let [Some(node)] = ops.parents {
            grads.register::<Flex>(node.id, window_sums(&g, &ops.state));
        }
    }
}

/// Runs `f(input map, output map)` for every map of `src` (maps of `from` values) and of a new
/// `[n, C·to]` array (maps of `to` values), maps split over the thread pool.
fn per_map(
    src: &FlexTensor,
    geom: &PoolGeom,
    [from, to]: [usize; 2],
    f: impl Fn(&[f32], &mut [f32]) + Sync,
) -> FlexTensor {
    let n = dims(src)[0];
    let sv = values(src);
    let mut out = vec![0f32; n * geom.channels * to];
    out.par_chunks_mut(MAPS_PER_TASK * to.max(1))
        .enumerate()
        .for_each(|(t, out)| {
            let first = t * MAPS_PER_TASK;
            for (i, out) in out.chunks_mut(to).enumerate() {
                f(&sv[(first + i) * from..][..from], out);
            }
        });
    tensor(out, [n, geom.channels * to])
}

/// Each value copied over its window; the rows and columns past the last window stay zero.
fn spread(z: &FlexTensor, geom: &PoolGeom) -> FlexTensor {
    let [py, px] = geom.size;
    let ow = geom.out_dims()[1];
    per_map(z, geom, [geom.out_map(), geom.map()], |z, out| {
        for (oy, zrow) in z.chunks(ow.max(1)).enumerate() {
            for ky in 0..py {
                let row = &mut out[(oy * py + ky) * geom.width..][..ow * px];
                for (window, &v) in row.chunks_mut(px).zip(zrow) {
                    window.fill(v);
                }
            }
        }
    })
}

/// Each window's sum: the upsampling's gradient.
fn window_sums(g: &FlexTensor, geom: &PoolGeom) -> FlexTensor {
    let [py, px] = geom.size;
    let ow = geom.out_dims()[1];
    per_map(g, geom, [geom.map(), geom.out_map()], |g, out| {
        for (oy, orow) in out.chunks_mut(ow.max(1)).enumerate() {
            for ky in 0..py {
                let row = &g[(oy * py + ky) * geom.width..][..ow * px];
                for (o, window) in orow.iter_mut().zip(row.chunks(px)) {
                    *o += window.iter().sum::<f32>();
                }
            }
        }
    })
}

#[derive(Debug)]
struct MaxPoolBackward;

impl Backward<Flex, 1> for MaxPoolBackward {
    /// Each window's winner (its offset in its map), and the geometry.
    type State = (Vec<u32>, PoolGeom);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let g = grads.consume::<Flex>(&ops.node);
        let (winners, geom) = ops.state;
        if let [Some(node)] = ops.parents {
            grads.register::<Flex>(node.id, backward(&g, &winners, &geom));
        }
    }
}

/// The pooled maps and each window's winner.
fn forward(x: &FlexTensor, geom: &PoolGeom) -> (FlexTensor, Vec<u32>) {
    let n = dims(x)[0];
    let xv = values(x);
    let (map, out_map) = (geom.map(), geom.out_map());
    let maps = n * geom.channels;
    let mut out = vec![0f32; maps * out_map];
    let mut winners = vec![0u32; maps * out_map];
    let task = MAPS_PER_TASK * out_map.max(1);
    out.par_chunks_mut(task)
        .zip(winners.par_chunks_mut(task))
        .enumerate()
        .for_each(|(t, (out, winners))| {
            let first = t * MAPS_PER_TASK;
            let maps = out.chunks_mut(out_map).zip(winners.chunks_mut(out_map));
            for (i, (out, winners)) in maps.enumerate() {
                pool_map(geom, &xv[(first + i) * map..][..map], out, winners);
            }
        });
    (tensor(out, [n, geom.channels * out_map]), winners)
}

widest!(pool_map, pool_map_body, (geom: &PoolGeom, x: &[f32], out: &mut [f32], winners: &mut [u32]));

/// One map's maxima and their offsets. Each row of windows is taken a window position at a
/// time across the whole row, with selects instead of branches so that it vectorises: the
/// first value of each window starts, and a later one takes over where it is greater or NaN
/// (so the first maximum wins, and the last NaN).
#[inline(always)]
fn pool_map_body(geom: &PoolGeom, x: &[f32], out: &mut [f32], winners: &mut [u32]) {
    let [py, px] = geom.size;
    let [oh, ow] = geom.out_dims();
    for oy in 0..oh {
        let best = &mut out[oy * ow..][..ow];
        let at = &mut winners[oy * ow..][..ow];
        for ky in 0..py {
            let row = (oy * py + ky) * geom.width;
            let x = &x[row..][..ow * px];
            if px == 2 {
                // The common 2×2 case, in a loop simple enough to vectorise.
                pairs_into(best, at, x, row, ky == 0);
                continue;
            }
            for kx in 0..px {
                let first = ky == 0 && kx == 0;
                let lanes = best.iter_mut().zip(at.iter_mut()).zip(x.chunks_exact(px));
                for (ox, ((b, w), window)) in lanes.enumerate() {
                    let v = window[kx];
                    let take = first | (v > *b) | v.is_nan();
                    *b = if take { v } else { *b };
                    *w = if take {
                        (row + ox * px + kx) as u32
                    } else {
                        *w
                    };
                }
            }
        }
    }
}

/// A row of windows two wide: each pair of `x` (at offset `row` of its map) taken into its
/// window's maximum and winner, in order; `first`: the pairs start the windows.
#[inline(always)]
fn pairs_into(best: &mut [f32], at: &mut [u32], x: &[f32], row: usize, first: bool) {
    let lanes = best.iter_mut().zip(at.iter_mut()).zip(x.chunks_exact(2));
    for (ox, ((b, w), pair)) in lanes.enumerate() {
        let (v0, v1) = (pair[0], pair[1]);
        let offset = (row + 2 * ox) as u32;
        let t0 = first | (v0 > *b) | v0.is_nan();
        let (b0, w0) = (if t0 { v0 } else { *b }, if t0 { offset } else { *w });
        let t1 = (v1 > b0) | v1.is_nan();
        *b = if t1 { v1 } else { b0 };
        *w = if t1 { offset + 1 } else { w0 };
    }
}

/// dx: each window's gradient at its winner, zeros everywhere else (also in the rows and
/// columns no window covers).
fn backward(g: &FlexTensor, winners: &[u32], geom: &PoolGeom) -> FlexTensor {
    let n = dims(g)[0];
    let gv = values(g);
    let (map, out_map) = (geom.map(), geom.out_map());
    let mut dx = vec![0f32; n * geom.channels * map];
    dx.par_chunks_mut(MAPS_PER_TASK * map.max(1))
        .enumerate()
        .for_each(|(t, dx)| {
            let first = t * MAPS_PER_TASK;
            for (i, dx) in dx.chunks_mut(map).enumerate() {
                let at = (first + i) * out_map;
                for (&w, &v) in winners[at..at + out_map].iter().zip(&gv[at..at + out_map]) {
                    dx[w as usize] = v;
                }
            }
        });
    tensor(dx, [n, geom.channels * map])
}
