//! Matrix products whose sums run in an order fixed by the shape alone.
//!
//! The gemm crate picks its kernel (AVX-512, FMA or scalar) and its depth blocking (from the
//! cache sizes) by the CPU, so one product gave other last bits on another host, and every
//! later step inherited them. Here every output c_ij = Σ_p a_ip·b_pj is summed over p in
//! blocks of [`KC`] terms: within a block one chain of fused multiply-adds from zero, in order
//! of p, then the blocks added to the output in order. Each lane of a vector holds one output,
//! so the vector width, the register tile, the cache blocking and the threads (which split
//! the outputs, never a sum) move the speed but not a bit of the result; the baseline build
//! takes libm's `fmaf`, as exact as the instruction.
//!
//! The blocking is Goto's: per task a block of A's rows and of B's columns, packed per depth
//! block into panels of the register tile, and a register tile of MR × [`NR`] outputs that
//! stays in registers across a depth block.

use std::cell::RefCell;

use rayon::prelude::*;

use crate::fused::isa::{Isa, Products, products, selected};

/// Terms of one block of every output's sum: this constant, not the CPU, fixes the order in
/// which the terms are added.
pub const KC: usize = 256;

/// Columns of the register tile (two AVX2 vectors, one AVX-512 vector).
const NR: usize = 16;

/// Most rows of a task's block of A; the blocks of one product are of equal size, rounded
/// up to [`MR_ALL`] rows.
const MC: usize = 120;

/// A multiple of every build's tile rows.
const MR_ALL: usize = 12;

/// Most columns of a task's block of B, in panels of [`NR`].
const NC_PANELS: usize = 64;

/// Multiply-adds from which a product may be split over the threads.
pub const PARALLEL_MACS: usize = 192 * 192 * 192;

/// A strided matrix operand: its values, its row stride and its column stride.
pub(crate) type View<'a> = (&'a [f32], isize, isize);

/// The output: a pointer with row and column strides, written by tasks that own disjoint
/// blocks of it.
#[derive(Clone, Copy)]
struct Dst {
    ptr: *mut f32,
    rs: usize,
    cs: usize,
}

// SAFETY: the tasks that share a `Dst` write disjoint outputs (one block each), and the
// buffer outlives them (`product_into` waits for every task).
unsafe impl Send for Dst {}
unsafe impl Sync for Dst {}

/// One task: a block of rows of A and of columns of B, all of the depth.
#[derive(Clone, Copy)]
struct Task {
    i0: usize,
    rows: usize,
    j0: usize,
    cols: usize,
}

/// dst (`[m, n]` at row and column strides `dst_strides`) = a·b, every output summed in the
/// order of the module's doc; over the threads when `parallel` and the product is large
/// (the same numbers either way).
pub(crate) fn product_into(
    dst: &mut [f32],
    dst_strides: [usize; 2],
    a: View<'_>,
    b: View<'_>,
    mnk: [usize; 3],
    parallel: bool,
) {
    match products() {
        Products::Fixed => product_on(selected(), dst, dst_strides, a, b, mnk, parallel),
        Products::Fast => gemm_into(dst, dst_strides, a, b, mnk, parallel),
    }
}

/// [`product_into`] by the gemm crate (`LADDER_NUMERICS=fast`): its kernels and depth
/// blocking follow the CPU, so the last bits do too.
fn gemm_into(
    dst: &mut [f32],
    dst_strides: [usize; 2],
    a: View<'_>,
    b: View<'_>,
    mnk: [usize; 3],
    parallel: bool,
) {
    let [m, n, k] = mnk;
    if !check_product(dst, dst_strides, a, b, mnk) {
        return;
    }
    let [rs, cs] = dst_strides;
    let threads = if parallel && m.saturating_mul(n).saturating_mul(k) >= PARALLEL_MACS {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the views and the output were checked to hold every element at their strides;
    // with `read_dst` false gemm writes every output (zeros when k = 0) without reading it.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            cs as isize,
            rs as isize,
            false,
            a.0.as_ptr(),
            a.2,
            a.1,
            b.0.as_ptr(),
            b.2,
            b.1,
            0.0,
            1.0,
            false,
            false,
            false,
            threads,
        );
    }
}

/// [`product_into`] on the kernel build `isa`, which the CPU must support (the tests run
/// every build this way).
fn product_on(
    isa: Isa,
    dst: &mut [f32],
    dst_strides: [usize; 2],
    a: View<'_>,
    b: View<'_>,
    mnk: [usize; 3],
    parallel: bool,
) {
    assert!(
        isa.supported(),
        "{} kernels on a CPU without them",
        isa.name()
    );
    let [m, n, k] = mnk;
    if !check_product(dst, dst_strides, a, b, mnk) {
        return;
    }
    let [rs, cs] = dst_strides;
    if rs == 1 && cs != 1 {
        // A column-major output: compute its transpose bᵀ·aᵀ, row-major, whose tiles store
        // whole rows. Each output's terms and their order are the same (a·b = b·a exactly).
        let (at, bt) = ((b.0, b.2, b.1), (a.0, a.2, a.1));
        return product_on(isa, dst, [cs, 1], at, bt, [n, m, k], parallel);
    }
    let out = Dst {
        ptr: dst.as_mut_ptr(),
        rs,
        cs,
    };
    let split = parallel && m.saturating_mul(n).saturating_mul(k) >= PARALLEL_MACS;
    let tasks = plan(
        m,
        n,
        if split {
            rayon::current_num_threads()
        } else {
            1
        },
    );
    let mut packed = PACKED_B.take();
    let b = BPanels::pack(b, k, n, &mut packed);
    let run = |t: &Task| run_task(isa, out, a, &b, k, *t);
    if split {
        tasks.par_iter().for_each(run);
    } else {
        tasks.iter().for_each(run);
    }
    PACKED_B.set(packed);
}

/// The tasks of an `m × n` product: blocks of at most [`MC`] rows (equal, rounded up to
/// [`MR_ALL`]) and of whole panels of columns, at most [`NC_PANELS`] of them, in blocks
/// enough for two tasks per thread. Which outputs a task computes moves no term of a sum.
fn plan(m: usize, n: usize, threads: usize) -> Vec<Task> {
    let mc = m.div_ceil(m.div_ceil(MC)).next_multiple_of(MR_ALL);
    let (row_blocks, panels) = (m.div_ceil(mc), n.div_ceil(NR));
    let col_blocks = panels
        .div_ceil(NC_PANELS)
        .max((2 * threads).div_ceil(row_blocks))
        .min(panels);
    let nc = panels.div_ceil(col_blocks) * NR;
    (0..m)
        .step_by(mc)
        .flat_map(|i0| {
            (0..n).step_by(nc).map(move |j0| Task {
                i0,
                rows: mc.min(m - i0),
                j0,
                cols: nc.min(n - j0),
            })
        })
        .collect()
}

/// Panics unless the output and both operands hold every element of the product at their
/// strides; false when the product has no outputs.
fn check_product(
    dst: &[f32],
    [rs, cs]: [usize; 2],
    a: View<'_>,
    b: View<'_>,
    [m, n, k]: [usize; 3],
) -> bool {
    if m == 0 || n == 0 {
        return false;
    }
    assert!(
        dst.len() > (m - 1) * rs + (n - 1) * cs,
        "product output too small"
    );
    check_view(a, m, k, "left operand");
    check_view(b, k, n, "right operand");
    true
}

/// Panics unless every element of a `rows × cols` view lies inside its slice (the kernels
/// index it without further checks' help).
fn check_view(v: View<'_>, rows: usize, cols: usize, what: &str) {
    if rows == 0 || cols == 0 {
        return;
    }
    let (values, rs, cs) = v;
    assert!(rs >= 0 && cs >= 0, "{what}: negative strides");
    let last = (rows - 1) * rs as usize + (cols - 1) * cs as usize;
    assert!(last < values.len(), "{what}: view past its values");
}

/// One task on the `isa` build.
fn run_task(isa: Isa, dst: Dst, a: View<'_>, b: &BPanels<'_>, k: usize, t: Task) {
    // SAFETY: `selected` runs only builds the CPU supports; `product_into` checked the views
    // and the output.
    unsafe {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => task_avx512(dst, a, b, k, t),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => task_avx2(dst, a, b, k, t),
            _ => task_scalar(dst, a, b, k, t),
        }
    }
}

thread_local! {
    /// Each thread's packed panels of A, kept between products.
    static PACKED_A: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// The panels of B a thread packed for its product's tasks, kept between products.
    static PACKED_B: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Defines `$name`, a task's block of outputs depth block by depth block in order, on the
/// register tile `$tile` of `$mr` rows, compiled with `$features`. A macro rather than a
/// generic function: the tile is built of intrinsics that inline only into a caller with the
/// same target features.
macro_rules! task_fn {
    ($name:ident, $mr:expr, $tile:ident $(, pair = $pair:ident)? $(, $features:literal)?) => {
        /// # Safety
        /// The CPU has the build's features; the views hold every element of the product's
        /// operands, and `dst` every output.
        $(#[target_feature(enable = $features)])?
        unsafe fn $name(dst: Dst, a: View<'_>, b: &BPanels<'_>, k: usize, t: Task) {
            const MR: usize = $mr;
            let row_panels = t.rows.div_ceil(MR);
            let col_panels = t.cols.div_ceil(NR);
            if k == 0 {
                let zeros = [[0f32; NR]; MR];
                for ip in 0..row_panels {
                    for jp in 0..col_panels {
                        let (i, j) = (ip * MR, jp * NR);
                        let (h, w) = (MR.min(t.rows - i), NR.min(t.cols - j));
                        // SAFETY: inside the task's block of the output.
                        unsafe { store(dst, t.i0 + i, t.j0 + j, [h, w], &zeros, false) };
                    }
                }
                return;
            }
            let mut ap = PACKED_A.take();
            for p0 in (0..k).step_by(KC) {
                let kc = KC.min(k - p0);
                let apacked = pack_a::<MR>(a, p0, kc, t, &mut ap);
                let mut jp = 0;
                while jp < col_panels {
                    // Two panels of B at once where the build has the registers for it: the
                    // same sums, fewer loads per multiply-add.
                    $(if jp + 1 < col_panels {
                        let pair = (b.panel(t.j0 / NR + jp, p0), b.panel(t.j0 / NR + jp + 1, p0));
                        for ip in 0..row_panels {
                            let apanel = &apacked[ip * kc * MR..][..kc * MR];
                            // SAFETY: as for one panel below.
                            let (c0, c1) = unsafe { $pair(apanel, pair, kc) };
                            let i = ip * MR;
                            let h = MR.min(t.rows - i);
                            for (q, c) in [(0, &c0), (1, &c1)] {
                                let j = (jp + q) * NR;
                                let w = NR.min(t.cols - j);
                                // SAFETY: inside the task's block of the output.
                                unsafe { store(dst, t.i0 + i, t.j0 + j, [h, w], c, p0 > 0) };
                            }
                        }
                        jp += 2;
                        continue;
                    })?
                    let bpanel = b.panel(t.j0 / NR + jp, p0);
                    for ip in 0..row_panels {
                        // SAFETY: the build's features are the caller's; B's panel holds the
                        // depths from p0 on.
                        let apanel = &apacked[ip * kc * MR..][..kc * MR];
                        let c = unsafe { $tile(apanel, bpanel, kc) };
                        let (i, j) = (ip * MR, jp * NR);
                        let (h, w) = (MR.min(t.rows - i), NR.min(t.cols - j));
                        // SAFETY: inside the task's block of the output.
                        unsafe { store(dst, t.i0 + i, t.j0 + j, [h, w], &c, p0 > 0) };
                    }
                    jp += 1;
                }
            }
            PACKED_A.set(ap);
        }
    };
}

#[cfg(target_arch = "x86_64")]
task_fn!(
    task_avx512,
    12,
    tile_avx512,
    pair = tile_pair_avx512,
    "avx512f"
);
#[cfg(target_arch = "x86_64")]
task_fn!(task_avx2, 6, tile_avx2, "avx2,fma");
task_fn!(task_scalar, 6, tile_scalar);

/// One depth block of a 12 × 16 tile in AVX-512 registers: per depth one vector of B and
/// twelve multiply-adds, each output in its own lane.
///
/// # Safety
/// The CPU has AVX-512F; B's panel holds `depth` depths of NR values at its stride.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn tile_avx512(a: &[f32], (b, bs): Panel, depth: usize) -> [[f32; NR]; 12] {
    use std::arch::x86_64::*;
    assert!(a.len() >= depth * 12);
    let mut c = [_mm512_setzero_ps(); 12];
    for p in 0..depth {
        // SAFETY: depth p of A's panel lies in it (checked above), of B's by the caller's.
        unsafe {
            // B's rows eight depths ahead (both cache lines of an unaligned row in place).
            _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add((p + 8) * bs) as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add((p + 8) * bs + 15) as *const i8);
            let bv = _mm512_loadu_ps(b.add(p * bs));
            let ap = a.as_ptr().add(p * 12);
            for (i, acc) in c.iter_mut().enumerate() {
                *acc = _mm512_fmadd_ps(_mm512_set1_ps(*ap.add(i)), bv, *acc);
            }
        }
    }
    // SAFETY: twelve vectors of sixteen f32 are twelve arrays of them.
    unsafe { std::mem::transmute::<[__m512; 12], [[f32; NR]; 12]>(c) }
}

/// One depth block of two 12 × 16 tiles side by side (two panels of B) in 24 AVX-512
/// registers: per depth two vectors of B and 24 multiply-adds, each output in its own lane
/// and summed as in [`tile_avx512`].
///
/// # Safety
/// As [`tile_avx512`], for both panels.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn tile_pair_avx512(
    a: &[f32],
    ((b0, bs0), (b1, bs1)): (Panel, Panel),
    depth: usize,
) -> ([[f32; NR]; 12], [[f32; NR]; 12]) {
    use std::arch::x86_64::*;
    assert!(a.len() >= depth * 12);
    let mut c0 = [_mm512_setzero_ps(); 12];
    let mut c1 = [_mm512_setzero_ps(); 12];
    for p in 0..depth {
        // SAFETY: depth p of A's panel lies in it (checked above), of B's by the caller's.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(b0.wrapping_add((p + 8) * bs0) as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(b0.wrapping_add((p + 8) * bs0 + 15) as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(b1.wrapping_add((p + 8) * bs1) as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(b1.wrapping_add((p + 8) * bs1 + 15) as *const i8);
            let v0 = _mm512_loadu_ps(b0.add(p * bs0));
            let v1 = _mm512_loadu_ps(b1.add(p * bs1));
            let ap = a.as_ptr().add(p * 12);
            for i in 0..12 {
                let ai = _mm512_set1_ps(*ap.add(i));
                c0[i] = _mm512_fmadd_ps(ai, v0, c0[i]);
                c1[i] = _mm512_fmadd_ps(ai, v1, c1[i]);
            }
        }
    }
    // SAFETY: twelve vectors of sixteen f32 are twelve arrays of them.
    unsafe {
        (
            std::mem::transmute::<[__m512; 12], [[f32; NR]; 12]>(c0),
            std::mem::transmute::<[__m512; 12], [[f32; NR]; 12]>(c1),
        )
    }
}

/// One depth block of a 6 × 16 tile in AVX2 registers: per depth two vectors of B and twelve
/// multiply-adds, each output in its own lane.
///
/// # Safety
/// The CPU has AVX2 and FMA; B's panel holds `depth` depths of NR values at its stride.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn tile_avx2(a: &[f32], (b, bs): Panel, depth: usize) -> [[f32; NR]; 6] {
    use std::arch::x86_64::*;
    assert!(a.len() >= depth * 6);
    let mut c = [[_mm256_setzero_ps(); 2]; 6];
    for p in 0..depth {
        // SAFETY: depth p of A's panel lies in it (checked above), of B's by the caller's.
        unsafe {
            // B's rows eight depths ahead (both cache lines of an unaligned row in place).
            _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add((p + 8) * bs) as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add((p + 8) * bs + 15) as *const i8);
            let b0 = _mm256_loadu_ps(b.add(p * bs));
            let b1 = _mm256_loadu_ps(b.add(p * bs + 8));
            let ap = a.as_ptr().add(p * 6);
            for (i, acc) in c.iter_mut().enumerate() {
                let ai = _mm256_set1_ps(*ap.add(i));
                acc[0] = _mm256_fmadd_ps(ai, b0, acc[0]);
                acc[1] = _mm256_fmadd_ps(ai, b1, acc[1]);
            }
        }
    }
    // SAFETY: six pairs of eight-f32 vectors are six arrays of sixteen.
    unsafe { std::mem::transmute::<[[__m256; 2]; 6], [[f32; NR]; 6]>(c) }
}

/// The same tile without target features, its multiply-adds libm's exact `fmaf`: for every
/// output one chain of multiply-adds from zero, in order of the depth.
///
/// # Safety
/// B's panel holds `depth` depths of NR values at its stride.
#[inline(always)]
unsafe fn tile_scalar(a: &[f32], (b, bs): Panel, depth: usize) -> [[f32; NR]; 6] {
    const MR: usize = 6;
    let mut c = [[0f32; NR]; MR];
    for (p, ap) in a.chunks_exact(MR).take(depth).enumerate() {
        // SAFETY: the caller's.
        let bp = unsafe { std::slice::from_raw_parts(b.add(p * bs), NR) };
        for (row, &ai) in c.iter_mut().zip(ap) {
            for (acc, &bj) in row.iter_mut().zip(bp) {
                *acc = ai.mul_add(bj, *acc);
            }
        }
    }
    c
}

/// Writes (or, after the first depth block, adds) the `h × w` valid part of a tile.
///
/// # Safety
/// Every output the tile covers lies in `dst`'s buffer.
#[inline(always)]
unsafe fn store<const MR: usize>(
    dst: Dst,
    i: usize,
    j: usize,
    [h, w]: [usize; 2],
    c: &[[f32; NR]; MR],
    add: bool,
) {
    for (r, row) in c.iter().enumerate().take(h) {
        // SAFETY: the caller's.
        let base = unsafe { dst.ptr.add((i + r) * dst.rs + j * dst.cs) };
        if dst.cs == 1 {
            // SAFETY: w outputs of one row, contiguous.
            let out = unsafe { std::slice::from_raw_parts_mut(base, w) };
            if add {
                out.iter_mut().zip(row).for_each(|(o, v)| *o += v);
            } else if w == NR {
                // A fixed length, so that the copy is inlined rather than a call.
                out.copy_from_slice(row);
            } else {
                out.iter_mut().zip(row).for_each(|(o, v)| *o = *v);
            }
        } else {
            for (col, v) in row.iter().enumerate().take(w) {
                // SAFETY: the caller's.
                let o = unsafe { &mut *base.add(col * dst.cs) };
                *o = if add { *o + v } else { *v };
            }
        }
    }
}

/// Fills a panel of `W` lines (the W values of each depth together) from lines that lie
/// along the depth: line `r < valid` from `line(r)`, written strided; zeros for the rest.
#[inline(always)]
fn interleave<'v, const W: usize>(
    panel: &mut [f32],
    valid: usize,
    line: impl Fn(usize) -> &'v [f32],
) {
    for r in 0..W {
        if r < valid {
            for (slots, &v) in panel.chunks_exact_mut(W).zip(line(r)) {
                slots[r] = v;
            }
        } else {
            panel.chunks_exact_mut(W).for_each(|slots| slots[r] = 0.0);
        }
    }
}

/// `len` values of `buffer` that start on a cache line, so that no load of a packed panel
/// straddles two (their old values are left: the packing writes every one).
fn aligned(buffer: &mut Vec<f32>, len: usize) -> &mut [f32] {
    const LINE: usize = 64 / size_of::<f32>();
    buffer.resize(len + LINE, 0.0);
    let start = buffer.as_ptr().align_offset(64).min(LINE);
    &mut buffer[start..start + len]
}

/// Packs rows `t.i0..` of A, depth `p0..p0 + kc`, into panels of MR rows: panel by panel,
/// the MR values of each depth together, zeros past the last row.
#[inline(always)]
fn pack_a<'o, const MR: usize>(
    a: View<'_>,
    p0: usize,
    kc: usize,
    t: Task,
    out: &'o mut Vec<f32>,
) -> &'o [f32] {
    let (values, rs, cs) = (a.0, a.1 as usize, a.2 as usize);
    let panels = t.rows.div_ceil(MR);
    // Every slot is written below (padding with zeros), so old values need no clearing.
    let packed = aligned(out, panels * kc * MR);
    for (ip, panel) in packed.chunks_exact_mut(kc * MR).enumerate() {
        let rows = MR.min(t.rows - ip * MR);
        let first = (t.i0 + ip * MR) * rs + p0 * cs;
        if cs == 1 && rs != 1 {
            // Rows contiguous in memory: read each along the depth.
            interleave::<MR>(panel, rows, |r| &values[first + r * rs..][..kc]);
            continue;
        }
        for (p, slots) in panel.chunks_exact_mut(MR).enumerate() {
            let at = first + p * cs;
            if rs == 1 && rows == MR {
                // A fixed length, so that the copy is inlined rather than a call.
                slots.copy_from_slice(&values[at..at + MR]);
            } else {
                for (r, slot) in slots.iter_mut().enumerate() {
                    *slot = if r < rows { values[at + r * rs] } else { 0.0 };
                }
            }
        }
    }
    packed
}

/// A panel of B for a tile: its first value and the stride between its depths (NR values
/// each, side by side).
type Panel = (*const f32, usize);

/// B's panels of [`NR`] columns over all of the depth: read where they lie when B's rows are
/// contiguous (packing would only copy them), else packed once per product for every task.
struct BPanels<'a> {
    b: View<'a>,
    n: usize,
    k: usize,
    packed: &'a [f32],
}

impl<'a> BPanels<'a> {
    /// Packs the panels of `b` (`[k, n]`) that cannot be read in place into `buffer`.
    fn pack(b: View<'a>, k: usize, n: usize, buffer: &'a mut Vec<f32>) -> BPanels<'a> {
        let panels = n.div_ceil(NR);
        let first = (0..panels)
            .find(|&jp| !in_place(b, n, jp))
            .unwrap_or(panels);
        if k == 0 || first == panels {
            return BPanels {
                b,
                n,
                k,
                packed: &[],
            };
        }
        let packed = aligned(buffer, (panels - first) * k * NR);
        for (q, panel) in packed.chunks_exact_mut(k * NR).enumerate() {
            pack_panel(b, n, first + q, panel);
        }
        BPanels { b, n, k, packed }
    }

    /// Panel `jp` from depth `p0` on.
    #[inline(always)]
    fn panel(&self, jp: usize, p0: usize) -> Panel {
        let (values, rs, _) = self.b;
        if in_place(self.b, self.n, jp) {
            // `check_view` put every value of the product's B inside the slice.
            (values[p0 * rs as usize + jp * NR..].as_ptr(), rs as usize)
        } else {
            // Panels from the first packed one on are all packed (only a row-major B's last,
            // narrow panel, or every panel of another B).
            let first = if self.b.2 == 1 { self.n / NR } else { 0 };
            (
                self.packed[((jp - first) * self.k + p0) * NR..].as_ptr(),
                NR,
            )
        }
    }
}

/// Whether B's panel `jp` is read where it lies: NR columns side by side in every row.
#[inline(always)]
fn in_place(b: View<'_>, n: usize, jp: usize) -> bool {
    b.2 == 1 && n - jp * NR >= NR
}

/// Packs B's columns `jp·NR..`, all of the depth, into `out`: the NR values of each depth
/// together, zeros past the last column.
fn pack_panel(b: View<'_>, n: usize, jp: usize, out: &mut [f32]) {
    let (values, rs, cs) = (b.0, b.1 as usize, b.2 as usize);
    let (j, cols) = (jp * NR, NR.min(n - jp * NR));
    if rs == 1 {
        // Columns contiguous in memory: read each along the depth.
        let k = out.len() / NR;
        interleave::<NR>(out, cols, |c| &values[(j + c) * cs..][..k]);
        return;
    }
    for (p, slots) in out.chunks_exact_mut(NR).enumerate() {
        let row = p * rs + j * cs;
        for (c, slot) in slots.iter_mut().enumerate() {
            *slot = if c < cols { values[row + c * cs] } else { 0.0 };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::test_support::uniform;

    /// A row-major `[rows, cols]` matrix of small integers and halves, whose products are
    /// exact in f32, so that any order of summation gives the same bits.
    fn exact(rows: usize, cols: usize, seed: usize) -> Vec<f32> {
        (0..rows * cols)
            .map(|i| (((i * 7 + seed * 13) % 17) as f32 - 8.0) * 0.5)
            .collect()
    }

    /// The sum in the documented order, one output at a time.
    fn reference(a: &[f32], b: &[f32], [m, n, k]: [usize; 3]) -> Vec<f32> {
        let mut out = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut total = 0f32;
                for p0 in (0..k).step_by(KC) {
                    let mut s = 0f32;
                    for p in p0..(p0 + KC).min(k) {
                        s = a[i * k + p].mul_add(b[p * n + j], s);
                    }
                    total = if p0 == 0 { s } else { total + s };
                }
                out[i * n + j] = total;
            }
        }
        out
    }

    /// a·b of row-major operands into a row-major output, over the threads.
    fn row_major(a: &[f32], b: &[f32], [m, n, k]: [usize; 3]) -> Vec<f32> {
        let mut out = vec![f32::NAN; m * n];
        let (av, bv) = ((a, k as isize, 1), (b, n as isize, 1));
        product_into(&mut out, [n, 1], av, bv, [m, n, k], true);
        out
    }

    /// By hand: [1 2; 3 4]·[5 6; 7 8] = [19 22; 43 50].
    #[test]
    fn product_by_hand() {
        let mut out = vec![0f32; 4];
        let (a, b) = ([1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]);
        product_into(&mut out, [2, 1], (&a, 2, 1), (&b, 2, 1), [2, 2, 2], false);
        assert_eq!(out, vec![19.0, 22.0, 43.0, 50.0]);
    }

    /// Every shape against the reference order bit for bit, with random values (so that the
    /// order shows): edges of the tile and of the blocks, several depth blocks, one row or
    /// column, an empty depth; with every kernel build the CPU has, sequential and split over
    /// the threads.
    #[test]
    fn products_follow_the_documented_order_bit_for_bit() {
        for (m, n, k) in [
            (1, 1, 1),
            (3, 5, 4),
            (7, 17, 300),
            (97, 257, 513),
            (200, 1, 784),
            (1, 300, 1000),
            (13, 33, 256),
            (5, 4, 0),
        ] {
            let (a, b) = (uniform(m * k, 1), uniform(k * n, 2));
            let want = reference(&a, &b, [m, n, k]);
            for (isa, parallel) in Isa::available()
                .into_iter()
                .flat_map(|i| [(i, false), (i, true)])
            {
                let mut out = vec![f32::NAN; m * n];
                let (av, bv) = ((&a[..], k as isize, 1), (&b[..], n as isize, 1));
                product_on(isa, &mut out, [n, 1], av, bv, [m, n, k], parallel);
                let what = format!("{m}x{n}x{k}, {} kernels, parallel {parallel}", isa.name());
                assert_eq!(out, want, "{what}");
            }
        }
    }

    /// Transposed views of both operands and a column-major output give the same bits as the
    /// row-major layout: the layout moves no term of a sum.
    #[test]
    fn layouts_do_not_move_the_sums() {
        let (m, n, k) = (37, 45, 600);
        let (a, b) = (uniform(m * k, 3), uniform(k * n, 4));
        let plain = row_major(&a, &b, [m, n, k]);
        let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
        let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        let mut strided = vec![0f32; m * n];
        product_into(
            &mut strided,
            [1, m],
            (&at, 1, m as isize),
            (&bt, 1, k as isize),
            [m, n, k],
            true,
        );
        let transposed: Vec<f32> = (0..m * n).map(|i| strided[(i % n) * m + i / n]).collect();
        assert_eq!(plain, transposed);
    }

    /// With exact values (every partial sum representable) the result is the true product,
    /// whatever the order: a check of the arithmetic independent of the reference above.
    #[test]
    fn exact_products_are_exact() {
        let (m, n, k) = (29, 40, 531);
        let (a, b) = (exact(m, k, 1), exact(k, n, 2));
        let out = row_major(&a, &b, [m, n, k]);
        for i in 0..m {
            for j in 0..n {
                let want: f64 = (0..k)
                    .map(|p| a[i * k + p] as f64 * b[p * n + j] as f64)
                    .sum();
                assert_eq!(out[i * n + j] as f64, want, "({i}, {j})");
            }
        }
    }

    /// The fast products (gemm) agree with the fixed order to rounding, in the row-major and
    /// the transposed, column-major layouts the kernels use, and exactly on exact values.
    #[test]
    fn fast_products_agree_with_the_fixed_order() {
        for (m, n, k) in [(3, 5, 4), (97, 257, 513), (200, 1, 784), (5, 4, 0)] {
            let (a, b) = (uniform(m * k, 5), uniform(k * n, 6));
            let want = reference(&a, &b, [m, n, k]);
            let mut out = vec![f32::NAN; m * n];
            let (av, bv) = ((&a[..], k as isize, 1), (&b[..], n as isize, 1));
            gemm_into(&mut out, [n, 1], av, bv, [m, n, k], true);
            for (g, w) in out.iter().zip(&want) {
                assert!(
                    (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
                    "{m}x{n}x{k}: {g} vs {w}"
                );
            }
            let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
            let mut cm = vec![f32::NAN; m * n];
            gemm_into(&mut cm, [1, m], (&at, 1, m as isize), bv, [m, n, k], false);
            for i in 0..m * n {
                let w = want[(i % m) * n + i / m];
                assert!(
                    (cm[i] - w).abs() <= 1e-5 * (1.0 + w.abs()),
                    "column-major {i}"
                );
            }
        }
        let (m, n, k) = (29, 40, 531);
        let (a, b) = (exact(m, k, 1), exact(k, n, 2));
        let mut out = vec![0f32; m * n];
        gemm_into(
            &mut out,
            [n, 1],
            (&a, k as isize, 1),
            (&b, n as isize, 1),
            [m, n, k],
            true,
        );
        assert_eq!(out, reference(&a, &b, [m, n, k]));
    }

    #[test]
    #[should_panic(expected = "right operand: view past its values")]
    fn short_operands_are_refused() {
        let mut out = vec![0f32; 4];
        let (a, b) = ([1.0; 4], [1.0; 3]);
        product_into(&mut out, [2, 1], (&a, 2, 1), (&b, 2, 1), [2, 2, 2], false);
    }
}
