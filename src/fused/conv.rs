//! The convolutions of the convolutional Ladders, and the decoder's transposed convolutions,
//! as products into the fixed-order kernels of [`crate::fused::matmul`], with their gradients.
//!
//! Flex's convolution converts every input to channels-last order, gathers the patches with
//! scalar loops into zero-filled tiles and runs a product per tile; its gradients go through
//! the generic transposed convolution. Activations here are already channel-major
//! `[batch, C·H·W]` matrices and weights `[F, C·K·K]`, so a block of examples becomes one
//! product: the patches of the block gathered row by row (im2col, whole rows copied where the
//! stride is 1) into a `[C·K·K, block·P]` matrix, P = Ho·Wo, and
//!
//! - forward, each example's out = W·cols (`[F, P]`, its P columns of the block's patches);
//! - the input's gradient, col2im(Wᵀ·g): the adjoint of the gather adds every patch value
//!   back where it came from;
//! - the weight's gradient, Σ over blocks of g·colsᵀ, one partial sum per block added in order.
//!
//! The transposed convolution of the decoder is the input's gradient of the convolution it
//! mirrors, so its forward pass is col2im(Vᵀ·z), its input's gradient the convolution of the
//! incoming gradient with V, and its weight's gradient the convolution's weight gradient with
//! the roles of the two maps swapped.
//!
//! The 3×3 stride-1 convolutions with 16 channels or more on both sides (most of Conv-Small's
//! and Conv-Large's), and their input gradients, run by Winograd's transforms instead
//! ([`crate::fused::winograd`]); their weight gradients stay here.
//!
//! Blocks hold whole examples, as many as make about [`BLOCK_COLUMNS`] product columns: the
//! split depends on the shapes alone, never on the number of threads, so neither do the
//! numbers.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Dispatch, Flex, backend_extension};
use burn::prelude::*;
use rayon::prelude::*;

use crate::fused::matmul::product_into;
use crate::fused::{dims, tensor, values, widest, winograd};

/// Product columns of one block (examples × positions): enough for the product kernels to run
/// at speed on the small maps of the upper layers, few enough that a block's patches stay in
/// the cache hierarchy.
const BLOCK_COLUMNS: usize = 2048;

/// A 2-D convolution of square K×K filters on a C×H×W map with zero padding `pad` on every
/// side and stride `stride` (rows, columns), giving an F×Ho×Wo map. The input's size is kept
/// as it is, so that a transposed convolution gives back rows and columns a floor division
/// dropped (as zeros), as the decoder needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeom {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub filters: usize,
    pub size: usize,
    pub stride: [usize; 2],
    pub pad: usize,
    pub out_height: usize,
    pub out_width: usize,
}

impl ConvGeom {
    /// Values of one example's input map.
    fn input_units(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Positions of the output map, P.
    fn positions(&self) -> usize {
        self.out_height * self.out_width
    }

    fn output_units(&self) -> usize {
        self.filters * self.positions()
    }

    /// Rows of the patch matrix: C·K·K.
    fn patch_len(&self) -> usize {
        self.channels * self.size * self.size
    }

    /// Examples per block.
    fn block(&self) -> usize {
        BLOCK_COLUMNS.div_ceil(self.positions().max(1)).max(1)
    }

    /// The output columns `ox` whose input column `ox·s + kx − pad` lies inside the map, as
    /// a range (empty when none does).
    fn columns_inside(&self, kx: usize) -> std::ops::Range<usize> {
        let s = self.stride[1];
        let first = self.pad.saturating_sub(kx).div_ceil(s);
        // ix < W  ⇔  ox·s < W + pad − kx.
        let end = (self.width + self.pad)
            .checked_sub(kx)
            .map_or(0, |lim| lim.div_ceil(s))
            .min(self.out_width);
        first.min(end)..end
    }

    /// The input row of output row `oy` under filter row `ky`, if inside the map.
    fn input_row(&self, oy: usize, ky: usize) -> Option<usize> {
        (oy * self.stride[0] + ky)
            .checked_sub(self.pad)
            .filter(|&iy| iy < self.height)
    }

    /// Runs `f` over every patch row and output row (see [`PatchRow`]).
    #[inline(always)]
    fn for_each_row(&self, f: &mut impl PatchRow) {
        let k = self.size;
        for c in 0..self.channels {
            for ky in 0..k {
                for kx in 0..k {
                    let row = (c * k + ky) * k + kx;
                    let inside = self.columns_inside(kx);
                    let first_ix = (inside.start * self.stride[1] + kx).saturating_sub(self.pad);
                    for oy in 0..self.out_height {
                        let at = self
                            .input_row(oy, ky)
                            .filter(|_| !inside.is_empty())
                            .map(|iy| (c * self.height + iy) * self.width);
                        f.row(RowSpan {
                            row,
                            oy,
                            at,
                            inside: inside.clone(),
                            first_ix,
                        });
                    }
                }
            }
        }
    }
}

/// The work on one row of patches, for [`ConvGeom::for_each_row`]: a trait whose methods are
/// always inlined rather than a closure, which the compiler left as a call of its own per row,
/// compiled without the CPU's wider vectors.
trait PatchRow {
    fn row(&mut self, r: RowSpan);
}

/// One row of patches: patch row `row` (c, ky, kx) at output row `oy`.
struct RowSpan {
    row: usize,
    oy: usize,
    /// The offset in the map of the input row it reads, `None` where the filter row lies
    /// wholly over the padding.
    at: Option<usize>,
    /// The output columns whose input lies inside the map.
    inside: std::ops::Range<usize>,
    /// The input column of the first of them.
    first_ix: usize,
}

impl RowSpan {
    /// Where the row lies in a block's patch matrix (row stride `ld`) as example `j`'s.
    #[inline(always)]
    fn in_block(&self, geom: &ConvGeom, ld: usize, j: usize) -> std::ops::Range<usize> {
        let start = self.row * ld + j * geom.positions() + self.oy * geom.out_width;
        start..start + geom.out_width
    }
}

/// Gathers one example's patches into columns `j·P..(j + 1)·P` of `cols` (`[C·K·K, ld]`),
/// every one of them: zeros where the filter lies over the padding, so the buffer needs no
/// clearing beforehand.
fn im2col(geom: &ConvGeom, x: &[f32], cols: &mut [f32], ld: usize, j: usize) {
    widest!(gather, gather_body, (geom: &ConvGeom, x: &[f32], cols: &mut [f32], ld: usize, j: usize));
    gather(geom, x, cols, ld, j)
}

#[inline(always)]
fn gather_body(geom: &ConvGeom, x: &[f32], cols: &mut [f32], ld: usize, j: usize) {
    geom.for_each_row(&mut Gather {
        geom,
        x,
        cols,
        ld,
        j,
    });
}

/// im2col's rows: one example's map `x` into columns `j·P..(j + 1)·P` of `cols`.
struct Gather<'a> {
    geom: &'a ConvGeom,
    x: &'a [f32],
    cols: &'a mut [f32],
    ld: usize,
    j: usize,
}

impl PatchRow for Gather<'_> {
    #[inline(always)]
    fn row(&mut self, r: RowSpan) {
        let dst = &mut self.cols[r.in_block(self.geom, self.ld, self.j)];
        let Some(at) = r.at else {
            dst.fill(0.0);
            return;
        };
        let src = &self.x[at..][..self.geom.width];
        let inside = r.inside;
        dst[..inside.start].fill(0.0);
        dst[inside.end..].fill(0.0);
        let n = inside.len();
        let dst = &mut dst[inside];
        let s = self.geom.stride[1];
        if s == 1 {
            copy_row(dst, &src[r.first_ix..][..n]);
        } else {
            for (d, i) in dst.iter_mut().zip((r.first_ix..).step_by(s)) {
                *d = src[i];
            }
        }
    }
}

/// dst = src for the short rows of a map (a few dozen values): in blocks of 16 that compile
/// to vector moves, where `copy_from_slice` would call `memcpy` once per row.
#[inline(always)]
fn copy_row(dst: &mut [f32], src: &[f32]) {
    let mut d = dst.chunks_exact_mut(16);
    let mut s = src.chunks_exact(16);
    for (d, s) in (&mut d).zip(&mut s) {
        let d: &mut [f32; 16] = d.try_into().expect("a block of 16");
        *d = *<&[f32; 16]>::try_from(s).expect("a block of 16");
    }
    for (d, s) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *d = *s;
    }
}

/// The adjoint of [`im2col`]: adds columns `j·P..(j + 1)·P` of `cols` into one example's map.
fn col2im(geom: &ConvGeom, cols: &[f32], ld: usize, j: usize, x: &mut [f32]) {
    widest!(scatter, scatter_body, (geom: &ConvGeom, cols: &[f32], ld: usize, j: usize, x: &mut [f32]));
    scatter(geom, cols, ld, j, x)
}

#[inline(always)]
fn scatter_body(geom: &ConvGeom, cols: &[f32], ld: usize, j: usize, x: &mut [f32]) {
    geom.for_each_row(&mut Scatter {
        geom,
        cols,
        ld,
        j,
        x,
    });
}

/// col2im's rows: columns `j·P..(j + 1)·P` of `cols` added into one example's map `x`.
struct Scatter<'a> {
    geom: &'a ConvGeom,
    cols: &'a [f32],
    ld: usize,
    j: usize,
    x: &'a mut [f32],
}

impl PatchRow for Scatter<'_> {
    #[inline(always)]
    fn row(&mut self, r: RowSpan) {
        let Some(at) = r.at else { return };
        let src = &self.cols[r.in_block(self.geom, self.ld, self.j)][r.inside.clone()];
        let x = &mut self.x[at..];
        let s = self.geom.stride[1];
        if s == 1 {
            let dst = &mut x[r.first_ix..][..src.len()];
            dst.iter_mut().zip(src).for_each(|(d, v)| *d += v);
        } else {
            for (v, i) in src.iter().zip((r.first_ix..).step_by(s)) {
                x[i] += v;
            }
        }
    }
}

/// Copies a block's `[F, P]` maps (`src`, one after the other per example) into the columns of
/// `out`, a `[F, examples·P]` matrix.
fn gather_maps(src: &[f32], f: usize, p: usize, examples: usize, out: &mut [f32]) {
    let ld = examples * p;
    for j in 0..examples {
        for r in 0..f {
            out[r * ld + j * p..][..p].copy_from_slice(&src[(j * f + r) * p..][..p]);
        }
    }
}

/// Copies a block's `[F, P]` maps (`src`, one after the other per example) into the rows of
/// `out`, a `[examples·P, F]` matrix: the block's maps as an `[F, examples·P]` matrix that
/// runs down its columns.
fn gather_maps_transposed(src: &[f32], f: usize, p: usize, examples: usize, out: &mut [f32]) {
    for (j, maps) in src.chunks(f * p).take(examples).enumerate() {
        let out = &mut out[j * p * f..][..p * f];
        for (r, map) in maps.chunks(p).enumerate() {
            for (q, &v) in map.iter().enumerate() {
                out[q * f + r] = v;
            }
        }
    }
}

/// The block's patches, `[C·K·K, examples·P]`, into `cols`.
fn block_patches(geom: &ConvGeom, x: &[f32], examples: usize, cols: &mut [f32]) {
    let ld = examples * geom.positions();
    for (j, xj) in x.chunks(geom.input_units()).take(examples).enumerate() {
        im2col(geom, xj, cols, ld, j);
    }
}

thread_local! {
    /// Each thread's two work buffers (patches, and a block's maps or products), kept from
    /// block to block: fresh buffers of megabytes would cost a page fault per 4 KiB each time.
    static BUFFERS: std::cell::RefCell<[Vec<f32>; 2]> = const {
        std::cell::RefCell::new([Vec::new(), Vec::new()])
    };
}

/// Runs `f` with this thread's two work buffers, holding at least `a` and `b` values (whatever
/// an earlier block left in them: every use here writes all it reads).
pub(crate) fn with_buffers<R>(
    a: usize,
    b: usize,
    f: impl FnOnce(&mut [f32], &mut [f32]) -> R,
) -> R {
    BUFFERS.with(|cell| {
        let mut bufs = cell.borrow_mut();
        let [x, y] = &mut *bufs;
        for (buf, len) in [(&mut *x, a), (&mut *y, b)] {
            if buf.len() < len {
                buf.resize(len, 0.0);
            }
        }
        f(&mut x[..a], &mut y[..b])
    })
}

/// The convolution of every example of `x` (`[N, C·H·W]`) with `w` (`[F, C·K·K]`):
/// `[N, F·Ho·Wo]`.
fn convolve(geom: &ConvGeom, x: &[f32], w: &[f32], n: usize) -> Vec<f32> {
    if winograd::applies(geom) {
        return winograd::convolve(geom, x, w, n);
    }
    let (f, p, kk) = (geom.filters, geom.positions(), geom.patch_len());
    let block = geom.block();
    let mut out = vec![0f32; n * geom.output_units()];
    out.par_chunks_mut(block * geom.output_units())
        .zip(x.par_chunks(block * geom.input_units()))
        .for_each(|(out, x)| {
            let examples = out.len() / geom.output_units();
            let ld = examples * p;
            with_buffers(kk * ld, 0, |cols, _| {
                block_patches(geom, x, examples, cols);
                // One product per example, straight into its `[F, P]` output: the block's
                // patches are packed once per product either way.
                for (j, out) in out.chunks_mut(geom.output_units()).enumerate() {
                    let patches = (&cols[j * p..], ld as isize, 1);
                    product_into(out, [p, 1], (w, kk as isize, 1), patches, [f, p, kk], false);
                }
            });
        });
    out
}

/// col2im(Wᵀ·g) for every example of `g` (`[N, F·Ho·Wo]`): `[N, C·H·W]`, the input's gradient
/// of the convolution and the forward pass of the transposed one.
fn convolve_transposed(geom: &ConvGeom, g: &[f32], w: &[f32], n: usize) -> Vec<f32> {
    if winograd::applies(geom) {
        return winograd::convolve_transposed(geom, g, w, n);
    }
    let (f, p, kk) = (geom.filters, geom.positions(), geom.patch_len());
    let block = geom.block();
    let mut out = vec![0f32; n * geom.input_units()];
    out.par_chunks_mut(block * geom.input_units())
        .zip(g.par_chunks(block * geom.output_units()))
        .for_each(|(out, g)| {
            let examples = out.len() / geom.input_units();
            let ld = examples * p;
            with_buffers(kk * ld, f * ld, |cols, gs| {
                gather_maps(g, f, p, examples, gs);
                // Wᵀ: element (r, f) of the transpose at w[f·kk + r].
                let (wt, gb) = ((w, 1, kk as isize), (&*gs, ld as isize, 1));
                product_into(cols, [ld, 1], wt, gb, [kk, ld, f], false);
                for (j, xj) in out.chunks_mut(geom.input_units()).enumerate() {
                    col2im(geom, cols, ld, j, xj);
                }
            });
        });
    out
}

/// Σ over examples of g·patchesᵀ, `[F, C·K·K]`: the weight's gradient of the convolution of
/// `x` (`[N, C·H·W]`) whose output gradient is `g` (`[N, F·Ho·Wo]`).
///
/// Each block's product is taken as `[F, C·K·K]` in column-major order, with the block's
/// gradient maps gathered column-major too: the product kernels take it as its transpose,
/// patches·gᵀ, row-major, and read the gathered maps where they lie (with gemm, the row-major
/// order had taken twice the time of the product: RESULTS.md).
fn weight_gradient(geom: &ConvGeom, x: &[f32], g: &[f32]) -> Vec<f32> {
    let (f, p, kk) = (geom.filters, geom.positions(), geom.patch_len());
    let block = geom.block();
    let partials: Vec<Vec<f32>> = x
        .par_chunks(block * geom.input_units())
        .zip(g.par_chunks(block * geom.output_units()))
        .map(|(x, g)| {
            let examples = x.len() / geom.input_units();
            let ld = examples * p;
            let mut dw = vec![0f32; kk * f];
            with_buffers(kk * ld, f * ld, |cols, gs| {
                block_patches(geom, x, examples, cols);
                gather_maps_transposed(g, f, p, examples, gs);
                // g·colsᵀ: element (q, r) of colsᵀ at cols[r·ld + q].
                let (a, b) = ((&*gs, 1, f as isize), (&*cols, 1, ld as isize));
                product_into(&mut dw, [1, f], a, b, [f, kk, ld], false);
            });
            dw
        })
        .collect();
    let mut sum = vec![0f32; kk * f];
    for part in partials {
        sum.iter_mut().zip(part).for_each(|(d, v)| *d += v);
    }
    // Column-major to row-major.
    let mut dw = vec![0f32; f * kk];
    for (r, row) in dw.chunks_mut(kk).enumerate() {
        for (c, d) in row.iter_mut().enumerate() {
            *d = sum[c * f + r];
        }
    }
    dw
}

#[backend_extension(Flex, Autodiff)]
pub trait ConvKernel: burn::backend::Backend {
    /// The convolution of `x` (`[N, C·H·W]`) with `w` (`[F, C·K·K]`) of `geom`.
    fn conv(x: FloatTensor<Self>, w: FloatTensor<Self>, geom: ConvGeom) -> FloatTensor<Self>;
    /// The transposed convolution of `z` (`[N, F·Ho·Wo]`) with `v` (`[F, C·K·K]`) mirroring
    /// the convolution `geom`: `[N, C·H·W]`.
    fn conv_transposed(
        z: FloatTensor<Self>,
        v: FloatTensor<Self>,
        geom: ConvGeom,
    ) -> FloatTensor<Self>;
}

/// The convolution `geom` of `x` (`[N, C·H·W]`) with `w` (`[F, C·K·K]`), `[N, F·Ho·Wo]`. Only
/// for `f32` tensors on the Flex backend (`crate::ops::conv` chooses).
pub fn conv(x: Tensor<2>, w: Tensor<2>, geom: ConvGeom) -> Tensor<2> {
    assert_eq!(x.dims()[1], geom.input_units(), "input of a convolution");
    assert_eq!(w.dims(), [geom.filters, geom.patch_len()], "filters");
    Tensor::from_dispatch(<Dispatch as ConvKernel>::conv(
        x.into_dispatch(),
        w.into_dispatch(),
        geom,
    ))
}

/// The transposed convolution mirroring `geom` of `z` (`[N, F·Ho·Wo]`) with `v`
/// (`[F, C·K·K]`), `[N, C·H·W]`.
pub fn conv_transposed(z: Tensor<2>, v: Tensor<2>, geom: ConvGeom) -> Tensor<2> {
    assert_eq!(
        z.dims()[1],
        geom.output_units(),
        "input of a transposed convolution"
    );
    assert_eq!(v.dims(), [geom.filters, geom.patch_len()], "filters");
    Tensor::from_dispatch(<Dispatch as ConvKernel>::conv_transposed(
        z.into_dispatch(),
        v.into_dispatch(),
        geom,
    ))
}

fn forward(x: &FlexTensor, w: &FlexTensor, geom: &ConvGeom) -> FlexTensor {
    let n = dims(x)[0];
    tensor(
        convolve(geom, &values(x), &values(w), n),
        [n, geom.output_units()],
    )
}

fn forward_transposed(z: &FlexTensor, v: &FlexTensor, geom: &ConvGeom) -> FlexTensor {
    let n = dims(z)[0];
    let y = convolve_transposed(geom, &values(z), &values(v), n);
    tensor(y, [n, geom.input_units()])
}

fn filters_gradient(x: &FlexTensor, g: &FlexTensor, geom: &ConvGeom) -> FlexTensor {
    let dw = weight_gradient(geom, &values(x), &values(g));
    tensor(dw, [geom.filters, geom.patch_len()])
}

impl ConvKernel for Flex {
    fn conv(x: FlexTensor, w: FlexTensor, geom: ConvGeom) -> FlexTensor {
        forward(&x, &w, &geom)
    }

    fn conv_transposed(z: FlexTensor, v: FlexTensor, geom: ConvGeom) -> FlexTensor {
        forward_transposed(&z, &v, &geom)
    }
}

impl<C: CheckpointStrategy> ConvKernel for Autodiff<Flex, C> {
    fn conv(x: FloatTensor<Self>, w: FloatTensor<Self>, geom: ConvGeom) -> FloatTensor<Self> {
        match ConvBackward
            .prepare::<C>([x.node(), w.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (xp, wp) = (x.primitive().clone(), w.primitive().clone());
                let out = forward(&xp, &wp, &geom);
                prep.finish((xp, wp, geom), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(x.primitive(), w.primitive(), &geom)),
        }
    }

    fn conv_transposed(
        z: FloatTensor<Self>,
        v: FloatTensor<Self>,
        geom: ConvGeom,
    ) -> FloatTensor<Self> {
        match ConvTransposedBackward
            .prepare::<C>([z.node(), v.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (zp, vp) = (z.primitive().clone(), v.primitive().clone());
                let out = forward_transposed(&zp, &vp, &geom);
                prep.finish((zp, vp, geom), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(forward_transposed(z.primitive(), v.primitive(), &geom))
            }
        }
    }
}

#[derive(Debug)]
struct ConvBackward;

impl Backward<Flex, 2> for ConvBackward {
    type State = (FlexTensor, FlexTensor, ConvGeom);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let g = grads.consume::<Flex>(&ops.node);
        let (x, w, geom) = ops.state;
        let [node_x, node_w] = ops.parents;
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, forward_transposed(&g, &w, &geom));
        }
        if let Some(node) = node_w {
            grads.register::<Flex>(node.id, filters_gradient(&x, &g, &geom));
        }
    }
}

#[derive(Debug)]
struct ConvTransposedBackward;

impl Backward<Flex, 2> for ConvTransposedBackward {
    type State = (FlexTensor, FlexTensor, ConvGeom);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let g = grads.consume::<Flex>(&ops.node);
        let (z, v, geom) = ops.state;
        let [node_z, node_v] = ops.parents;
        if let Some(node) = node_z {
            grads.register::<Flex>(node.id, forward(&g, &v, &geom));
        }
        if let Some(node) = node_v {
            // The transposed map's output is the convolution's input: the patches are g's.
            grads.register::<Flex>(node.id, filters_gradient(&g, &z, &geom));
        }
    }
}
