//! Winograd's minimal filtering F(2×2, 3×3) (Lavin and Gray, "Fast Algorithms for
//! Convolutional Neural Networks", 2016) for the 3×3 stride-1 convolutions of the
//! convolutional Ladders: 16 multiplications per 2×2 block of outputs and channel instead of
//! the 36 of the patch products, in 16 products of `[F, C]` by `[C, tiles]`.
//!
//! The output map is cut into 2×2 tiles, each read from a 4×4 window d of the (zero-padded)
//! input, and
//!
//! Y = Aᵀ [ Σ_c (G g_c Gᵀ) ⊙ (Bᵀ d_c B) ] A,
//!
//! with
//!
//! ```text
//!      | 1  0 -1  0 |        | 1    0    0  |
//! Bᵀ = | 0  1  1  0 |,   G = | 1/2  1/2  1/2 |,   Aᵀ = | 1  1  1  0 |
//!      | 0 -1  1  0 |        | 1/2 -1/2  1/2 |         | 0  1 -1 -1 |
//!      | 0  1  0 -1 |        | 0    0    1  |
//! ```
//!
//! The sum over channels of each of the 16 elementwise products ξ is a matrix product:
//! M_ξ (`[F, tiles]`) = U_ξ (`[F, C]`, the filters' G g Gᵀ) · V_ξ (`[C, tiles]`, the
//! inputs' Bᵀ d B). The input's gradient of such a convolution, and the forward pass of the
//! transposed convolution that mirrors it, is again a 3×3 stride-1 convolution (of the
//! gradient, with the filters turned by 180° and their two channel axes swapped, padding
//! 2 − pad), so it runs here too. The weight's gradient stays with the patch products.
//!
//! The numbers differ from the patch products in the last digits (other sums, in another
//! order), never with the number of threads: blocks hold whole examples, as many as the shapes
//! alone decide.

use rayon::prelude::*;

use crate::fused::conv::{ConvGeom, with_buffers};
use crate::fused::matmul::product_into;
use crate::fused::widest;

/// The 16 elements of a transformed 4×4 tile.
const XI: usize = 16;

/// Tiles of one block: the products `[F, C]·[C, tiles]` run at the product kernels' speed from
/// a few hundred columns on, and the block's transformed inputs and products (16 × channels ×
/// tiles each) stay a few megabytes.
const BLOCK_TILES: usize = 512;

/// Channels (input and output) from which the transforms pay: below that the products are
/// too thin for the 16 of them to beat one product over the whole patch.
const MIN_CHANNELS: usize = 16;

/// Whether the convolution `geom` and the transposed one mirroring it run here: 3×3 filters,
/// stride 1, padding at most 2 (so that the input's gradient has padding 2 − pad ≥ 0), and
/// enough channels on both sides.
pub fn applies(geom: &ConvGeom) -> bool {
    geom.size == 3
        && geom.stride == [1, 1]
        && geom.pad <= 2
        && geom.channels >= MIN_CHANNELS
        && geom.filters >= MIN_CHANNELS
}

/// The output map's 2×2 tiles, `rows` × `cols`, laid out with one tile more per row: tile
/// (i, j) at column i·(cols + 1) + j of its example's span. The extra tile of each row (j =
/// cols) is computed and dropped; it lets every transform below run as a few long vector
/// passes over the whole map instead of short ones per tile row.
#[derive(Debug, Clone, Copy)]
struct Tiles {
    rows: usize,
    cols: usize,
}

impl Tiles {
    fn of(geom: &ConvGeom) -> Self {
        Tiles {
            rows: geom.out_height.div_ceil(2),
            cols: geom.out_width.div_ceil(2),
        }
    }

    /// Tiles per row, the dropped one included.
    fn pitch(&self) -> usize {
        self.cols + 1
    }

    /// Product columns of one example.
    fn span(&self) -> usize {
        self.rows * self.pitch()
    }

    /// Examples per block.
    fn block(&self) -> usize {
        BLOCK_TILES.div_ceil(self.span().max(1)).max(1)
    }

    /// Values of one of the four planes of the padded input (rows and columns split by
    /// parity): (rows + 1) × (cols + 1), and one more that the passes below read past the
    /// last tile.
    fn plane(&self) -> usize {
        (self.rows + 1) * self.pitch() + 1
    }
}

/// The convolution `geom` (3×3, stride 1: [`applies`]) of every example of `x`
/// (`[N, C·H·W]`) with `w` (`[F, C·3·3]`): `[N, F·Ho·Wo]`.
pub fn convolve(geom: &ConvGeom, x: &[f32], w: &[f32], n: usize) -> Vec<f32> {
    assert!(
        geom.size == 3 && geom.stride == [1, 1],
        "F(2×2, 3×3) needs 3×3 stride 1"
    );
    let (c, f) = (geom.channels, geom.filters);
    let (units_in, units_out) = (
        c * geom.height * geom.width,
        f * geom.out_height * geom.out_width,
    );
    let tiles = Tiles::of(geom);
    let u = filters_transformed(w, f, c);
    let mut out = vec![0f32; n * units_out];
    out.par_chunks_mut(tiles.block() * units_out)
        .zip(x.par_chunks(tiles.block() * units_in))
        .for_each(|(out, x)| {
            let t = out.len() / units_out * tiles.span();
            with_buffers(XI * c * t, XI * f * t, |v, m| {
                for (j, xj) in x.chunks(units_in).enumerate() {
                    input_transformed(geom, tiles, xj, v, t, j * tiles.span());
                }
                for xi in 0..XI {
                    let (ux, vx) = (&u[xi * f * c..][..f * c], &v[xi * c * t..][..c * t]);
                    let mx = &mut m[xi * f * t..][..f * t];
                    let (ua, vb) = ((ux, c as isize, 1), (vx, t as isize, 1));
                    product_into(mx, [t, 1], ua, vb, [f, t, c], false);
                }
                for (j, oj) in out.chunks_mut(units_out).enumerate() {
                    output_transformed(geom, tiles, m, t, j * tiles.span(), oj);
                }
            });
        });
    out
}

/// The input's gradient of the convolution `geom` for the output gradient `g`
/// (`[N, F·Ho·Wo]`), `[N, C·H·W]`: the convolution of g with the filters turned by 180° and
/// their channel axes swapped, padding 2 − pad.
pub fn convolve_transposed(geom: &ConvGeom, g: &[f32], w: &[f32], n: usize) -> Vec<f32> {
    assert!(applies(geom), "F(2×2, 3×3) of {geom:?}");
    let adjoint = ConvGeom {
        channels: geom.filters,
        height: geom.out_height,
        width: geom.out_width,
        filters: geom.channels,
        size: 3,
        stride: [1, 1],
        pad: 2 - geom.pad,
        out_height: geom.height,
        out_width: geom.width,
    };
    let (c, f) = (geom.channels, geom.filters);
    let mut turned = vec![0f32; w.len()];
    for fi in 0..f {
        for ci in 0..c {
            let src = &w[(fi * c + ci) * 9..][..9];
            let dst = &mut turned[(ci * f + fi) * 9..][..9];
            for (d, s) in dst.iter_mut().zip(src.iter().rev()) {
                *d = *s;
            }
        }
    }
    convolve(&adjoint, g, &turned, n)
}

/// U_ξ = G g Gᵀ of every filter and channel, `[16][F][C]`.
fn filters_transformed(w: &[f32], f: usize, c: usize) -> Vec<f32> {
    let mut u = vec![0f32; XI * f * c];
    for fi in 0..f {
        for ci in 0..c {
            let g = &w[(fi * c + ci) * 9..][..9];
            // G g: 4 rows of 3.
            let mut gg = [[0f32; 3]; 4];
            for col in 0..3 {
                let (a, b, d) = (g[col], g[3 + col], g[6 + col]);
                gg[0][col] = a;
                gg[1][col] = 0.5 * (a + b + d);
                gg[2][col] = 0.5 * (a - b + d);
                gg[3][col] = d;
            }
            // (G g) Gᵀ: 4 columns of each row.
            for (r, [a, b, d]) in gg.into_iter().enumerate() {
                let row = [a, 0.5 * (a + b + d), 0.5 * (a - b + d), d];
                for (k, value) in row.into_iter().enumerate() {
                    u[((4 * r + k) * f + fi) * c + ci] = value;
                }
            }
        }
    }
    u
}

/// out[i] = a[i] ∘ b[i] over the common length, as one vector pass.
#[inline(always)]
fn combine(out: &mut [f32], a: &[f32], b: &[f32], op: impl Fn(f32, f32) -> f32) {
    for ((o, &a), &b) in out.iter_mut().zip(a).zip(b) {
        *o = op(a, b);
    }
}

/// Bᵀ d B of every tile of one example's map `x` into `v` (`[16][C][t]`), its tiles at
/// columns `first..first + span` of each row.
fn input_transformed(
    geom: &ConvGeom,
    tiles: Tiles,
    x: &[f32],
    v: &mut [f32],
    t: usize,
    first: usize,
) {
    widest!(run, input_body, (geom: &ConvGeom, tiles: Tiles, x: &[f32], v: &mut [f32], t: usize, first: usize));
    run(geom, tiles, x, v, t, first)
}

/// The padded map (tile (i, j) reads its rows 2i..2i + 3 and columns 2j..2j + 3) is split
/// into four planes by the parity of row and column, plane (p, q) holding (2i + p, 2k + q) at
/// i·pitch + k. Window value (kr, kc) of every tile is then plane (kr % 2, kc % 2) read from
/// (kr / 2)·pitch + kc / 2 on, so Bᵀ over rows and B over columns are each a few passes of
/// the span's length.
#[inline(always)]
fn input_body(geom: &ConvGeom, tiles: Tiles, x: &[f32], v: &mut [f32], t: usize, first: usize) {
    let (h, w, pad, pitch) = (geom.height, geom.width, geom.pad, tiles.pitch());
    let (plane, span) = (tiles.plane(), tiles.span());
    let mut planes = vec![0f32; 4 * plane];
    // Bᵀ d: rows combined, for each column parity (a, parity) at (2a + parity)·(span + 1).
    let mut rows = vec![0f32; 8 * (span + 1)];
    let (padded_h, padded_w) = (2 * tiles.rows + 2, 2 * tiles.cols + 2);
    for ch in 0..geom.channels {
        planes.fill(0.0);
        let map = &x[ch * h * w..][..h * w];
        for (iy, row) in map.chunks_exact(w).enumerate() {
            let py = iy + pad;
            if py >= padded_h {
                break;
            }
            // Input column ix lies at padded column ix + pad: the even ones in the plane of
            // parity pad % 2 from pad / 2 on, the odd ones in the other from (pad + 1) / 2.
            let row = &row[..w.min(padded_w - pad)];
            let (p0, p1) = planes[2 * (py % 2) * plane..][..2 * plane].split_at_mut(plane);
            let (lead, other) = if pad % 2 == 0 { (p0, p1) } else { (p1, p0) };
            let at = (py / 2) * pitch;
            let lead = &mut lead[at + pad / 2..];
            let other = &mut other[at + pad.div_ceil(2)..];
            deinterleave(row, lead, other);
        }
        let len = span + 1;
        for q in 0..2 {
            let even = &planes[q * plane..][..plane];
            let odd = &planes[(2 + q) * plane..][..plane];
            let (e0, e1, o0, o1) = (&even[..len], &even[pitch..], &odd[..len], &odd[pitch..]);
            let r = |a: usize| (2 * a + q) * len;
            combine(&mut rows[r(0)..][..len], e0, e1, |a, b| a - b);
            combine(&mut rows[r(1)..][..len], o0, e1, |a, b| a + b);
            combine(&mut rows[r(2)..][..len], e1, o0, |a, b| a - b);
            combine(&mut rows[r(3)..][..len], o0, o1, |a, b| a - b);
        }
        for a in 0..4 {
            let even = &rows[2 * a * len..][..len];
            let odd = &rows[(2 * a + 1) * len..][..len];
            let out = |b: usize| ((4 * a + b) * geom.channels + ch) * t + first;
            combine(&mut v[out(0)..][..span], even, &even[1..], |a, b| a - b);
            combine(&mut v[out(1)..][..span], odd, &even[1..], |a, b| a + b);
            combine(&mut v[out(2)..][..span], &even[1..], odd, |a, b| a - b);
            combine(&mut v[out(3)..][..span], odd, &odd[1..], |a, b| a - b);
        }
    }
}

/// Aᵀ M A of the tiles at columns `first..first + span` of `m` (`[16][F][t]`) into one
/// example's output map `out` (`[F, Ho·Wo]`), dropping the extra tile of each row and the
/// row and column of the last tiles that lie outside the map.
fn output_transformed(
    geom: &ConvGeom,
    tiles: Tiles,
    m: &[f32],
    t: usize,
    first: usize,
    out: &mut [f32],
) {
    widest!(run, output_body, (geom: &ConvGeom, tiles: Tiles, m: &[f32], t: usize, first: usize, out: &mut [f32]));
    run(geom, tiles, m, t, first, out)
}

#[inline(always)]
fn output_body(geom: &ConvGeom, tiles: Tiles, m: &[f32], t: usize, first: usize, out: &mut [f32]) {
    let (ho, wo, f) = (geom.out_height, geom.out_width, geom.filters);
    let (span, pitch) = (tiles.span(), tiles.pitch());
    // Aᵀ M: s(r, b) at (2b + r)·span; then times A: y(r, c) at (2r + c)·span.
    let mut s = vec![0f32; 8 * span];
    let mut y = vec![0f32; 4 * span];
    for fi in 0..f {
        let mrow = |xi: usize| &m[(xi * f + fi) * t + first..][..span];
        for b in 0..4 {
            let (m0, m1, m2, m3) = (mrow(b), mrow(4 + b), mrow(8 + b), mrow(12 + b));
            let (s0, s1) = s[2 * b * span..][..2 * span].split_at_mut(span);
            let ms = m0.iter().zip(m1).zip(m2.iter().zip(m3));
            for ((s0, s1), ((&m0, &m1), (&m2, &m3))) in s0.iter_mut().zip(s1).zip(ms) {
                *s0 = m0 + m1 + m2;
                *s1 = m1 - m2 - m3;
            }
        }
        for r in 0..2 {
            let sb = |b: usize| &s[(2 * b + r) * span..][..span];
            let (sb0, sb1, sb2, sb3) = (sb(0), sb(1), sb(2), sb(3));
            let (y0, y1) = y[2 * r * span..][..2 * span].split_at_mut(span);
            let ss = sb0.iter().zip(sb1).zip(sb2.iter().zip(sb3));
            for ((y0, y1), ((&s0, &s1), (&s2, &s3))) in y0.iter_mut().zip(y1).zip(ss) {
                *y0 = s0 + s1 + s2;
                *y1 = s1 - s2 - s3;
            }
        }
        let map = &mut out[fi * ho * wo..][..ho * wo];
        for (oy, row) in map.chunks_exact_mut(wo).enumerate() {
            let yr = &y[2 * (oy % 2) * span + (oy / 2) * pitch..];
            interleave(&yr[..pitch], &yr[span..][..pitch], row);
        }
    }
}

/// even[i] = src[2i], odd[i] = src[2i + 1].
#[inline(always)]
fn deinterleave(src: &[f32], even: &mut [f32], odd: &mut [f32]) {
    let pairs = src.chunks_exact(2);
    if let [last] = pairs.remainder() {
        even[src.len() / 2] = *last;
    }
    for (pair, (e, o)) in pairs.zip(even.iter_mut().zip(odd.iter_mut())) {
        *e = pair[0];
        *o = pair[1];
    }
}

/// dst[2i] = even[i], dst[2i + 1] = odd[i].
#[inline(always)]
fn interleave(even: &[f32], odd: &[f32], dst: &mut [f32]) {
    let half = dst.len() / 2;
    let mut pairs = dst.chunks_exact_mut(2);
    for (pair, (&e, &o)) in (&mut pairs).zip(even.iter().zip(odd)) {
        pair[0] = e;
        pair[1] = o;
    }
    if let [last] = pairs.into_remainder() {
        *last = even[half];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::test_support::uniform;

    /// The convolution by its definition, in f64.
    fn direct(geom: &ConvGeom, x: &[f32], w: &[f32], n: usize) -> Vec<f64> {
        let (c, h, wd, f) = (geom.channels, geom.height, geom.width, geom.filters);
        let (ho, wo, k) = (geom.out_height, geom.out_width, geom.size);
        let mut out = vec![0f64; n * f * ho * wo];
        for e in 0..n {
            for fi in 0..f {
                for oy in 0..ho {
                    for ox in 0..wo {
                        let mut sum = 0f64;
                        for ci in 0..c {
                            for ky in 0..k {
                                for kx in 0..k {
                                    let iy = (oy + ky).checked_sub(geom.pad).filter(|&v| v < h);
                                    let ix = (ox + kx).checked_sub(geom.pad).filter(|&v| v < wd);
                                    if let (Some(iy), Some(ix)) = (iy, ix) {
                                        let xv = x[((e * c + ci) * h + iy) * wd + ix];
                                        let wv = w[((fi * c + ci) * k + ky) * k + kx];
                                        sum += f64::from(xv) * f64::from(wv);
                                    }
                                }
                            }
                        }
                        out[((e * f + fi) * ho + oy) * wo + ox] = sum;
                    }
                }
            }
        }
        out
    }

    fn geom(c: usize, hw: [usize; 2], f: usize, pad: usize) -> ConvGeom {
        ConvGeom {
            channels: c,
            height: hw[0],
            width: hw[1],
            filters: f,
            size: 3,
            stride: [1, 1],
            pad,
            out_height: hw[0] + 2 * pad - 2,
            out_width: hw[1] + 2 * pad - 2,
        }
    }

    fn assert_near(got: &[f32], want: &[f64], scale: f64, what: &str) {
        assert_eq!(got.len(), want.len(), "{what}");
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            assert!(
                (f64::from(g) - w).abs() <= 1e-5 * scale,
                "{what}[{i}]: {g} against {w}"
            );
        }
    }

    /// 'valid', 'same' and 'full' borders, even and odd output sizes (tiles half outside the
    /// map), non-square maps, and batches of one and of several blocks.
    fn cases() -> Vec<(usize, ConvGeom)> {
        vec![
            (1, geom(1, [3, 3], 1, 0)),
            (2, geom(2, [5, 6], 3, 0)),
            (3, geom(3, [6, 5], 2, 1)),
            (2, geom(2, [7, 4], 3, 2)),
            (3, geom(4, [4, 9], 5, 1)),
            (40, geom(2, [8, 9], 3, 0)),
            (2, geom(16, [5, 5], 17, 2)),
        ]
    }

    /// The forward pass agrees with the definition (in f64) to 1e-5 of the values' scale.
    #[test]
    fn forward_equals_the_definition() {
        for (n, g) in cases() {
            let x = uniform(n * g.channels * g.height * g.width, 1);
            let w = uniform(g.filters * g.channels * 9, 2);
            let want = direct(&g, &x, &w, n);
            let scale = (g.channels * 9) as f64;
            assert_near(&convolve(&g, &x, &w, n), &want, scale, &format!("{g:?}"));
        }
    }

    /// The input's gradient agrees with the adjoint by definition: ⟨conv(x), y⟩ = ⟨x, convᵀ(y)⟩
    /// for every x, so convᵀ(y) at an input position is Σ y·w over the outputs it feeds.
    #[test]
    fn input_gradient_is_the_adjoint() {
        for pad in 0..=2 {
            let g = geom(16, [6, 7], 16, pad);
            let n = 3;
            let (units_in, units_out) = (16 * 6 * 7, 16 * g.out_height * g.out_width);
            let w = uniform(16 * 16 * 9, 3);
            let y = uniform(n * units_out, 4);
            let got = convolve_transposed(&g, &y, &w, n);
            // ⟨conv(e_i), y⟩ for every unit vector e_i of one example, by definition.
            let mut want = vec![0f64; n * units_in];
            for i in 0..units_in {
                let mut e = vec![0f32; units_in];
                e[i] = 1.0;
                let col = direct(&g, &e, &w, 1);
                for ex in 0..n {
                    want[ex * units_in + i] = col
                        .iter()
                        .zip(&y[ex * units_out..][..units_out])
                        .map(|(a, &b)| a * f64::from(b))
                        .sum();
                }
            }
            assert_near(&got, &want, 16.0 * 9.0, &format!("pad {pad}"));
        }
    }

    /// By hand: the 4×4 map 1..16 under the 3×3 filter of ones ('valid') sums each 3×3
    /// window: [54 63; 90 99].
    #[test]
    fn box_filter_by_hand() {
        let g = geom(1, [4, 4], 1, 0);
        let x: Vec<f32> = (1..=16).map(|v| v as f32).collect();
        assert_eq!(convolve(&g, &x, &[1.0; 9], 1), vec![54.0, 63.0, 90.0, 99.0]);
    }

    /// Only 3×3 stride-1 convolutions with padding up to 2 and 16 channels or more on both
    /// sides take this path.
    #[test]
    fn applies_only_where_it_should() {
        assert!(applies(&geom(96, [32, 32], 96, 1)));
        assert!(!applies(&geom(3, [32, 32], 96, 0)));
        assert!(!applies(&geom(96, [32, 32], 10, 0)));
        let mut strided = geom(32, [9, 9], 32, 1);
        strided.stride = [2, 2];
        assert!(!applies(&strided));
        let mut wide = geom(32, [9, 9], 32, 1);
        wide.pad = 3;
        assert!(!applies(&wide));
    }
}
