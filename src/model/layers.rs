//! Encoder layers of the authors' `--encoder-layers` grammar (paper 001 Sec. 3.4, Table 4),
//! their shapes, and the maps the encoder and the decoder apply with them.
//!
//! Grammar, layers joined by `-`:
//! - `1000` or `fc:1000`: fully connected;
//! - `convv:F:K:SY:SX` / `convf:F:K:SY:SX` / `convs:F:K:SY:SX`: F filters of K×K with stride
//!   SY×SX, 'valid', 'full' or 'same' border ('same' pads (K − 1)/2 on every side, so a stride
//!   of 1 keeps the map's size and a stride of 2 halves it, rounding up, as TensorFlow's `SAME`);
//! - `maxpool:PY:PX`: PY×PX max-pooling with stride PY×PX, a layer of its own with its own batch
//!   normalisation and a linear activation;
//! - `globalmeanpool:0` (or `globalmeanpool:H:W`, H×W being the whole map): the mean of each
//!   channel, also linear.
//!
//! Activations travel between layers as `[batch, C·H·W]` matrices in channel-major order, so a
//! fully connected network is the special case H = W = 1 and needs no reshaping at all.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{LadderError, Result};
use crate::ops::conv::{self, ConvGeom};
use crate::ops::pool::{self, PoolGeom};
use crate::ops::{Shape, linear};

/// Border mode of a convolution, as in Theano's `conv2d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Border {
    /// Only positions where the filter fits inside the map: the map shrinks by K − 1.
    Valid,
    /// Every position where filter and map overlap (zero padding K − 1): it grows by K − 1.
    Full,
    /// Zero padding (K − 1)/2 on every side: the map keeps its size at stride 1 (odd K).
    Same,
}

/// One encoder layer above the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerKind {
    Fc {
        units: usize,
    },
    Conv {
        border: Border,
        filters: usize,
        size: usize,
        stride: [usize; 2],
    },
    MaxPool {
        size: [usize; 2],
    },
    /// `None`: the whole map; `Some`: a size that must equal the map's.
    GlobalMeanPool {
        size: Option<[usize; 2]>,
    },
}

/// The most values one layer may hold per example, and the most weights one layer may have:
/// beyond this a typo in a spec would try to allocate terabytes.
pub const MAX_VALUES: usize = 1 << 31;

/// A layer with the shapes it maps between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerGeom {
    pub kind: LayerKind,
    pub input: Shape,
    pub output: Shape,
}

impl LayerKind {
    pub fn is_spatial(&self) -> bool {
        !matches!(self, LayerKind::Fc { .. })
    }

    /// Fully connected and convolution layers have weights; pooling layers do not.
    pub fn has_weights(&self) -> bool {
        matches!(self, LayerKind::Fc { .. } | LayerKind::Conv { .. })
    }

    /// Pooling layers have a linear activation and, as the thesis 000 Sec. 5.3.4 notes, no β.
    pub fn is_linear(&self) -> bool {
        !self.has_weights()
    }

    /// The shape this layer makes of `input`, or why it cannot (including sizes beyond
    /// [`MAX_VALUES`] values per example or weights per layer).
    pub fn output_shape(&self, input: Shape) -> Result<Shape> {
        let out = self.unchecked_output_shape(input)?;
        let values = [out.channels, out.height, out.width]
            .iter()
            .try_fold(1usize, |a, &b| a.checked_mul(b));
        let weights = match *self {
            LayerKind::Fc { units } => input.units().checked_mul(units),
            LayerKind::Conv { filters, size, .. } => [input.channels, size, size]
                .iter()
                .try_fold(filters, |a, &b| a.checked_mul(b)),
            _ => Some(0),
        };
        match (values, weights) {
            (Some(v), Some(w)) if v <= MAX_VALUES && w <= MAX_VALUES => Ok(out),
            _ => Err(LadderError::Spec(format!(
                "{self:?} on a {input} input is too large: more than {MAX_VALUES} values per \
                 example or weights"
            ))),
        }
    }

    fn unchecked_output_shape(&self, input: Shape) -> Result<Shape> {
        let err = |m: String| Err(LadderError::Spec(m));
        match *self {
            LayerKind::Fc { units } => Ok(Shape::vector(units)),
            LayerKind::Conv {
                border,
                filters,
                size,
                stride,
            } => {
                let pad = conv_padding(border, size);
                let out = |len: usize, s: usize| {
                    len.checked_add(pad.checked_mul(2)?)?
                        .checked_sub(size)
                        .map(|r| r / s + 1)
                };
                match (out(input.height, stride[0]), out(input.width, stride[1])) {
                    (Some(height), Some(width)) => {
                        let out = Shape {
                            channels: filters,
                            height,
                            width,
                        };
                        match transpose_extra(input, out, size, stride, pad) {
                            Some(_) => Ok(out),
                            None => err(format!(
                                "a {size}×{size} convolution with stride {}×{} on a {input} map \
                                 cannot be reversed by the decoder's transposed convolution",
                                stride[0], stride[1]
                            )),
                        }
                    }
                    _ => err(format!(
                        "a {size}×{size} convolution does not fit a {input} map"
                    )),
                }
            }
            LayerKind::MaxPool { size } => {
                if input.height < size[0] || input.width < size[1] {
                    return err(format!(
                        "{}×{} max-pooling does not fit a {input} map",
                        size[0], size[1]
                    ));
                }
                Ok(Shape {
                    channels: input.channels,
                    height: input.height / size[0],
                    width: input.width / size[1],
                })
            }
            LayerKind::GlobalMeanPool { size } => {
                if let Some([h, w]) = size
                    && (h != input.height || w != input.width)
                {
                    return err(format!(
                        "globalmeanpool:{h}:{w} is given a {input} map: the size must be the \
                         whole map (or 0)"
                    ));
                }
                Ok(Shape::vector(input.channels))
            }
        }
    }

    /// Values of this layer's weight matrix, stored as `[rows, cols]`: `[d_in, d_out]` for
    /// fully connected layers, `[F, C·K·K]` for convolutions (reshaped to `[F, C, K, K]`).
    pub fn weight_shape(&self, input: Shape) -> Option<[usize; 2]> {
        match *self {
            LayerKind::Fc { units } => Some([input.units(), units]),
            LayerKind::Conv { filters, size, .. } => Some([filters, input.channels * size * size]),
            _ => None,
        }
    }

    /// Inputs feeding one output unit: the scale of the initialisation.
    pub fn fan_in(&self, input: Shape) -> usize {
        match *self {
            LayerKind::Fc { .. } => input.units(),
            LayerKind::Conv { size, .. } => input.channels * size * size,
            _ => 0,
        }
    }

    /// Inputs feeding one unit of the decoder's transposed map (from this layer's output down
    /// to its input).
    pub fn fan_in_transposed(&self, input: Shape) -> usize {
        match *self {
            LayerKind::Fc { units } => units,
            LayerKind::Conv { filters, size, .. } => filters * size * size,
            _ => {
                let _ = input;
                0
            }
        }
    }
}

/// The output padding that makes the transposed convolution give back `input`'s map from
/// `output`'s: the rows and columns the encoder's floor division dropped, always in
/// `0..stride` for shapes that `output_shape` computed (`None` otherwise).
fn transpose_extra(
    input: Shape,
    output: Shape,
    size: usize,
    stride: [usize; 2],
    pad: usize,
) -> Option<[usize; 2]> {
    let one = |i: usize, o: usize, s: usize| {
        let base = (o as i128 - 1) * s as i128 + size as i128 - 2 * pad as i128;
        let extra = i as i128 - base;
        (0..s as i128).contains(&extra).then_some(extra as usize)
    };
    Some([
        one(input.height, output.height, stride[0])?,
        one(input.width, output.width, stride[1])?,
    ])
}

fn conv_padding(border: Border, size: usize) -> usize {
    match border {
        Border::Valid => 0,
        Border::Full => size - 1,
        Border::Same => (size - 1) / 2,
    }
}

impl LayerGeom {
    /// z_pre = this layer's map of h (`[batch, input units]` → `[batch, output units]`).
    pub fn encode(&self, h: Tensor<2>, weight: Option<Tensor<2>>) -> Tensor<2> {
        let n = h.dims()[0];
        match self.kind {
            LayerKind::Fc { .. } => linear::matmul(h, weight.expect("fc layers have weights")),
            LayerKind::Conv { .. } => conv::convolve(
                h,
                weight.expect("conv layers have weights"),
                self.conv_geom(),
            ),
            LayerKind::MaxPool { size } => pool::max_pool(h, self.pool_geom(size)),
            LayerKind::GlobalMeanPool { .. } => {
                let c = self.input.channels;
                h.reshape([n, c, self.input.spatial()])
                    .mean_dim(2)
                    .reshape([n, c])
            }
        }
    }

    /// The decoder's vertical map from this layer's output back to its input (paper 001
    /// Sec. 3.4): the transposed weights for fully connected layers, a transposed convolution
    /// mirroring the encoder's for convolutions, and upsampling by copying for pooling (rows and
    /// columns that pooling dropped at the border get zeros).
    pub fn decode(&self, z_hat: Tensor<2>, vertical: Option<Tensor<2>>) -> Tensor<2> {
        let n = z_hat.dims()[0];
        let inp = self.input;
        match self.kind {
            LayerKind::Fc { .. } => {
                linear::matmul(z_hat, vertical.expect("fc layers have a vertical map"))
            }
            LayerKind::Conv { .. } => conv::convolve_transposed(
                z_hat,
                vertical.expect("conv layers have a vertical map"),
                self.conv_geom(),
            ),
            LayerKind::MaxPool { size } => pool::upsample(z_hat, self.pool_geom(size)),
            LayerKind::GlobalMeanPool { .. } => {
                let c = inp.channels;
                z_hat
                    .reshape([n, c, 1])
                    .expand([n, c, inp.spatial()])
                    .reshape([n, inp.units()])
            }
        }
    }

    /// The geometry of a `size` max-pooling of this layer's input.
    fn pool_geom(&self, size: [usize; 2]) -> PoolGeom {
        PoolGeom {
            channels: self.input.channels,
            height: self.input.height,
            width: self.input.width,
            size,
        }
    }

    /// The geometry of a convolution layer (`plan()` admits only those the decoder's
    /// transposed convolution can reverse).
    fn conv_geom(&self) -> ConvGeom {
        let LayerKind::Conv {
            border,
            filters,
            size,
            stride,
        } = self.kind
        else {
            unreachable!("conv_geom of a {:?} layer", self.kind)
        };
        ConvGeom {
            channels: self.input.channels,
            height: self.input.height,
            width: self.input.width,
            filters,
            size,
            stride,
            pad: conv_padding(border, size),
            out_height: self.output.height,
            out_width: self.output.width,
        }
    }
}

/// The spec of `layers` in the grammar of the module docs, which [`parse_layer_kinds`] reads
/// back to the same kinds.
pub fn layer_kinds_spec(layers: &[LayerKind]) -> String {
    let one = |k: &LayerKind| match *k {
        LayerKind::Fc { units } => units.to_string(),
        LayerKind::Conv {
            border,
            filters,
            size,
            stride: [sy, sx],
        } => {
            let head = match border {
                Border::Valid => "convv",
                Border::Full => "convf",
                Border::Same => "convs",
            };
            format!("{head}:{filters}:{size}:{sy}:{sx}")
        }
        LayerKind::MaxPool { size: [py, px] } => format!("maxpool:{py}:{px}"),
        LayerKind::GlobalMeanPool { size: None } => "globalmeanpool:0".into(),
        LayerKind::GlobalMeanPool { size: Some([h, w]) } => format!("globalmeanpool:{h}:{w}"),
    };
    layers.iter().map(one).collect::<Vec<_>>().join("-")
}

/// Parses an encoder spec: widths `1000-500-10`, or the convolutional grammar of the module
/// docs, or a mix.
pub fn parse_layer_kinds(s: &str) -> Result<Vec<LayerKind>> {
    if s.trim().is_empty() {
        return Err(LadderError::Spec("empty encoder layer spec".into()));
    }
    s.split('-').map(|p| parse_kind(p.trim(), s)).collect()
}

fn parse_kind(p: &str, whole: &str) -> Result<LayerKind> {
    let bad = |why: &str| {
        LadderError::Spec(format!(
            "cannot parse '{p}' in encoder spec '{whole}': {why}"
        ))
    };
    let mut fields = p.split(':');
    let head = fields.next().unwrap_or_default();
    let nums = fields
        .map(|f| {
            f.trim()
                .parse::<usize>()
                .map_err(|_| bad("its fields must be whole numbers"))
        })
        .collect::<Result<Vec<usize>>>()?;
    let positive = |v: &[usize], what: &str| {
        if v.contains(&0) {
            Err(bad(&format!("{what} must be positive")))
        } else {
            Ok(())
        }
    };
    match head {
        "fc" | "" if nums.len() == 1 => {
            positive(&nums, "the layer width")?;
            Ok(LayerKind::Fc { units: nums[0] })
        }
        "convv" | "convf" | "convs" => {
            if nums.len() != 4 {
                return Err(bad(&format!(
                    "expected {head}:FILTERS:SIZE:STRIDE_Y:STRIDE_X (e.g. {head}:96:3:1:1)"
                )));
            }
            positive(&nums, "filters, size and strides")?;
            Ok(LayerKind::Conv {
                border: match head {
                    "convv" => Border::Valid,
                    "convf" => Border::Full,
                    _ => Border::Same,
                },
                filters: nums[0],
                size: nums[1],
                stride: [nums[2], nums[3]],
            })
        }
        "maxpool" => {
            if nums.len() != 2 {
                return Err(bad("expected maxpool:SIZE_Y:SIZE_X (e.g. maxpool:2:2)"));
            }
            positive(&nums, "pooling sizes")?;
            Ok(LayerKind::MaxPool {
                size: [nums[0], nums[1]],
            })
        }
        "globalmeanpool" => match nums[..] {
            [] | [0] => Ok(LayerKind::GlobalMeanPool { size: None }),
            [h, w] if h > 0 && w > 0 => Ok(LayerKind::GlobalMeanPool { size: Some([h, w]) }),
            _ => Err(bad("expected globalmeanpool:0 or globalmeanpool:H:W")),
        },
        _ => match p.parse::<usize>() {
            Ok(0) => Err(LadderError::Spec(format!(
                "layer width 0 in encoder spec '{whole}'"
            ))),
            Ok(units) => Ok(LayerKind::Fc { units }),
            Err(_) => Err(bad(
                "expected a width (1000), fc:N, convv/convf/convs:F:K:SY:SX, maxpool:PY:PX or \
                 globalmeanpool:0, joined by '-'",
            )),
        },
    }
}

/// The shapes of every layer for `input`: layer l maps `input` of layer l−1 to its output.
/// Convolutions and pooling need an image; a fully connected layer flattens whatever it gets.
pub fn plan(input: Shape, kinds: &[LayerKind]) -> Result<Vec<LayerGeom>> {
    let mut shape = input;
    kinds
        .iter()
        .enumerate()
        .map(|(i, kind)| {
            if kind.is_spatial() && shape.spatial() == 1 && shape.channels > 1 && i == 0 {
                return Err(LadderError::Spec(format!(
                    "layer 1 is convolutional or pooling but the inputs are {}-dimensional \
                     vectors, not images",
                    shape.units()
                )));
            }
            let output = kind.output_shape(shape).map_err(|e| match e {
                LadderError::Spec(m) => LadderError::Spec(format!("layer {}: {m}", i + 1)),
                other => other,
            })?;
            let g = LayerGeom {
                kind: *kind,
                input: shape,
                output,
            };
            shape = output;
            Ok(g)
        })
        .collect()
}

/// Shape of layer l's activation in a network of `layers` (1..=L): l = 0 is the input.
pub fn layer_shape(layers: &[LayerGeom], l: usize) -> Shape {
    match l {
        0 => layers[0].input,
        _ => layers[l - 1].output,
    }
}

/// Fully connected layers of the given widths (input first): the MLP Ladder.
pub fn dense_plan(dims: &[usize]) -> Vec<LayerGeom> {
    dims.windows(2)
        .map(|w| LayerGeom {
            kind: LayerKind::Fc { units: w[1] },
            input: Shape::vector(w[0]),
            output: Shape::vector(w[1]),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sq(c: usize, s: usize) -> Shape {
        Shape {
            channels: c,
            height: s,
            width: s,
        }
    }

    fn shapes(input: Shape, spec: &str) -> Vec<Shape> {
        plan(input, &parse_layer_kinds(spec).unwrap())
            .unwrap()
            .iter()
            .map(|g| g.output)
            .collect()
    }

    #[test]
    fn layer_specs_read_back_to_the_same_layers() {
        let spec = "convv:32:5:1:1-maxpool:2:2-convf:64:3:2:1-convs:16:3:1:1-globalmeanpool:0-\
                    globalmeanpool:4:4-1000-10";
        let kinds = parse_layer_kinds(spec).unwrap();
        assert_eq!(layer_kinds_spec(&kinds), spec);
        assert_eq!(parse_layer_kinds(&layer_kinds_spec(&kinds)).unwrap(), kinds);
        assert_eq!(
            layer_kinds_spec(&parse_layer_kinds("fc:100-10").unwrap()),
            "100-10"
        );
    }

    #[test]
    fn valid_and_full_borders_shrink_and_grow_the_map() {
        assert_eq!(shapes(sq(1, 28), "convv:8:5:1:1"), vec![sq(8, 24)]);
        assert_eq!(shapes(sq(1, 28), "convf:8:5:1:1"), vec![sq(8, 32)]);
        assert_eq!(shapes(sq(3, 32), "convv:4:3:2:2"), vec![sq(4, 15)]);
        assert_eq!(shapes(sq(1, 7), "maxpool:2:2"), vec![sq(1, 3)]);
        assert_eq!(shapes(sq(6, 5), "globalmeanpool:0"), vec![Shape::vector(6)]);
    }

    #[test]
    fn same_borders_keep_or_halve_the_map_as_the_semantic_noise_networks_need() {
        // 003 Fig. 4: MNIST 28 → 14 → 7 → 4, CIFAR-10 crops 24 → 24 → 12 → 6 → 3.
        assert_eq!(
            shapes(
                sq(1, 28),
                "convs:32:3:2:2-convs:64:3:2:2-convs:96:3:2:2-fc:128"
            ),
            vec![sq(32, 14), sq(64, 7), sq(96, 4), Shape::vector(128)]
        );
        assert_eq!(
            shapes(
                sq(3, 24),
                "convs:64:5:1:1-convs:64:3:2:2-convs:64:3:2:2-convs:96:3:2:2"
            ),
            vec![sq(64, 24), sq(64, 12), sq(64, 6), sq(96, 3)]
        );
    }

    #[test]
    fn conv_small_and_conv_large_have_the_papers_shapes() {
        let small = "convf:32:5:1:1-maxpool:2:2-convv:64:3:1:1-convf:64:3:1:1-maxpool:2:2-\
                     convv:128:3:1:1-convv:10:1:1:1-globalmeanpool:6:6-fc:10";
        assert_eq!(
            shapes(sq(1, 28), small),
            vec![
                sq(32, 32),
                sq(32, 16),
                sq(64, 14),
                sq(64, 16),
                sq(64, 8),
                sq(128, 6),
                sq(10, 6),
                Shape::vector(10),
                Shape::vector(10)
            ]
        );
        let large = "convv:96:3:1:1-convf:96:3:1:1-convf:96:3:1:1-maxpool:2:2-convv:192:3:1:1-\
                     convf:192:3:1:1-convv:192:3:1:1-maxpool:2:2-convv:192:3:1:1-\
                     convv:192:1:1:1-convv:10:1:1:1-globalmeanpool:0";
        let out = shapes(sq(3, 32), large);
        assert_eq!(out[3], sq(96, 17));
        assert_eq!(out[7], sq(192, 7));
        assert_eq!(out[10], sq(10, 5));
        assert_eq!(out[11], Shape::vector(10));
    }

    #[test]
    fn bad_specs_are_named() {
        for (spec, needle) in [
            ("convv:96:3:1", "convv:FILTERS:SIZE"),
            ("convv:0:3:1:1", "must be positive"),
            ("maxpool:2", "maxpool:SIZE_Y"),
            ("conv:3", "expected a width"),
            ("fc:x", "whole numbers"),
            ("", "empty"),
            ("10--5", "cannot parse"),
        ] {
            let err = parse_layer_kinds(spec).unwrap_err().to_string();
            assert!(err.contains(needle), "{spec}: {err}");
        }
        let kinds = parse_layer_kinds("convv:4:9:1:1").unwrap();
        let err = plan(sq(1, 5), &kinds).unwrap_err().to_string();
        assert!(
            err.contains("layer 1") && err.contains("does not fit"),
            "{err}"
        );
        let kinds = parse_layer_kinds("globalmeanpool:6:6").unwrap();
        let err = plan(sq(2, 5), &kinds).unwrap_err().to_string();
        assert!(err.contains("whole map"), "{err}");
        let kinds = parse_layer_kinds("convv:4:3:1:1").unwrap();
        assert!(plan(Shape::vector(784), &kinds).is_err());
        // Sizes that would overflow or allocate terabytes are refused, not attempted.
        for spec in [
            "99999999999-10",
            "convf:4:18446744073709551615:1:1",
            "convv:100000:20:1:1-fc:100000",
        ] {
            let err = plan(sq(3, 32), &parse_layer_kinds(spec).unwrap())
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("too large") || err.contains("does not fit"),
                "{spec}: {err}"
            );
        }
        // A stride larger than the map still has a transposed convolution restoring it.
        let kinds = parse_layer_kinds("convf:2:3:5:5").unwrap();
        assert_eq!(plan(sq(1, 1), &kinds).unwrap()[0].output, sq(2, 1));
    }

    /// The decoder's vertical maps give back exactly the shape each encoder layer was fed,
    /// whatever the border, stride or leftover rows of pooling.
    #[test]
    fn vertical_maps_restore_every_input_shape() {
        let device = Device::flex();
        let spec = "convf:3:3:1:1-convv:4:3:2:2-maxpool:2:2-convv:2:2:1:1-globalmeanpool:0-fc:5";
        let geoms = plan(sq(2, 13), &parse_layer_kinds(spec).unwrap()).unwrap();
        for g in &geoms {
            let n = 3;
            let h = Tensor::<2>::ones([n, g.input.units()], &device);
            let w = g
                .kind
                .weight_shape(g.input)
                .map(|[r, c]| Tensor::<2>::ones([r, c], &device));
            let z = g.encode(h, w.clone());
            assert_eq!(z.dims(), [n, g.output.units()], "{:?}", g.kind);
            let v = w.map(|w| match g.kind {
                LayerKind::Fc { .. } => w.transpose(),
                _ => w,
            });
            let back = g.decode(z, v);
            assert_eq!(back.dims(), [n, g.input.units()], "{:?}", g.kind);
        }
    }

    #[test]
    fn max_pool_upsampling_copies_and_zero_fills_the_border() {
        let device = Device::flex();
        let g = plan(sq(1, 5), &[LayerKind::MaxPool { size: [2, 2] }]).unwrap()[0];
        let z = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 2., 3., 4.], [1, 4]), &device);
        let up: Vec<f32> = g.decode(z, None).into_data().try_to_vec::<f32>().unwrap();
        #[rustfmt::skip]
        let expected = vec![
            1., 1., 2., 2., 0.,
            1., 1., 2., 2., 0.,
            3., 3., 4., 4., 0.,
            3., 3., 4., 4., 0.,
            0., 0., 0., 0., 0.,
        ];
        assert_eq!(up, expected);
    }

    /// A 'full' convolution by hand: a 1×2 input, a 2×2 kernel, zero padding 1 on each side.
    #[test]
    fn full_convolution_matches_a_hand_computed_case() {
        let device = Device::flex();
        let g = plan(
            Shape {
                channels: 1,
                height: 1,
                width: 2,
            },
            &[LayerKind::Conv {
                border: Border::Full,
                filters: 1,
                size: 2,
                stride: [1, 1],
            }],
        )
        .unwrap()[0];
        let h = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 2.0], [1, 2]), &device);
        let w = Tensor::<2>::from_data(
            TensorData::new(vec![1.0f32, 10., 100., 1000.], [1, 4]),
            &device,
        );
        let z: Vec<f32> = g
            .encode(h, Some(w))
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        // Output 2×3; cross-correlation of the zero-padded [[0,0,0,0],[0,1,2,0],[0,0,0,0]].
        assert_eq!(z, vec![1000., 2100., 200., 10., 21., 2.]);
    }
}
