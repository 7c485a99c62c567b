//! The plain feed-forward classifier of the adversarial-training thesis (004, Sec. 3.4): input,
//! ReLU hidden layers with biases, a softmax output. No batch norm, no dropout: the point is to
//! isolate the effect of adversarial training.

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::activation::relu;
use rand::Rng;
use rand::seq::index::sample;

use crate::model::encoder::scaled_normal;
use crate::noise::gaussian_vec;

/// Weights W^(l) (`[d_{l−1}, d_l]`) and biases b^(l) (`[1, d_l]`).
#[derive(Module, Debug)]
pub struct Mlp {
    pub weights: Vec<Param<Tensor<2>>>,
    pub biases: Vec<Param<Tensor<2>>>,
}

/// How the hidden layers' weights start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MlpInit {
    /// Pylearn2's `sparse_init`: each hidden unit gets this many N(0, 1) incoming weights, the
    /// others 0 (the setting of 004's experiments, 15).
    Sparse(usize),
    /// Dense N(0, 1)/√fan_in.
    Scaled,
}

impl Mlp {
    /// `dims` = input, hidden…, classes. The softmax layer starts at zero (pylearn2's
    /// `irange: 0`), biases at zero.
    pub fn new(dims: &[usize], init: MlpInit, rng: &mut impl Rng, device: &Device) -> Self {
        let last = dims.len() - 2;
        let weights = dims
            .windows(2)
            .enumerate()
            .map(|(l, w)| {
                let t = if l == last {
                    Tensor::zeros([w[0], w[1]], device)
                } else {
                    match init {
                        MlpInit::Sparse(k) => sparse_normal(w[0], w[1], k, rng, device),
                        MlpInit::Scaled => scaled_normal(w[0], w[1], rng, device),
                    }
                };
                Param::from_tensor(t)
            })
            .collect();
        let biases = dims[1..]
            .iter()
            .map(|&d| Param::from_tensor(Tensor::zeros([1, d], device)))
            .collect();
        Mlp { weights, biases }
    }

    /// Layer widths, input first.
    pub fn dims(&self) -> Vec<usize> {
        let mut d = vec![self.weights[0].val().dims()[0]];
        d.extend(self.weights.iter().map(|w| w.val().dims()[1]));
        d
    }

    /// Class scores (softmax inputs): h^(l) = relu(h^(l−1) W^(l) + b^(l)), linear at the top.
    pub fn logits(&self, x: Tensor<2>) -> Tensor<2> {
        let depth = self.weights.len();
        let mut h = x;
        for l in 0..depth {
            h = crate::ops::linear::matmul(h, self.weights[l].val()) + self.biases[l].val();
            if l + 1 < depth {
                h = relu(h);
            }
        }
        h
    }
}

/// `[rows, cols]` with `k` (at most `rows`) N(0, 1) entries per column at random rows.
fn sparse_normal(
    rows: usize,
    cols: usize,
    k: usize,
    rng: &mut impl Rng,
    device: &Device,
) -> Tensor<2> {
    let k = k.min(rows);
    let mut w = vec![0f32; rows * cols];
    for c in 0..cols {
        let values = gaussian_vec(rng, k, 1.0);
        for (r, v) in sample(rng, rows, k).into_iter().zip(values) {
            w[r * cols + c] = v;
        }
    }
    Tensor::from_data(TensorData::new(w, [rows, cols]), device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::{RngStream, stream_rng};

    #[test]
    fn sparse_init_has_k_weights_per_unit_and_a_zero_top() {
        let device = Device::flex();
        let mut rng = stream_rng(1, RngStream::Init, 0, 0);
        let m = Mlp::new(&[20, 6, 3], MlpInit::Sparse(4), &mut rng, &device);
        assert_eq!(m.dims(), vec![20, 6, 3]);
        let w = m.weights[0].val().into_data().try_to_vec::<f32>().unwrap();
        for c in 0..6 {
            let nonzero = (0..20).filter(|r| w[r * 6 + c] != 0.0).count();
            assert_eq!(nonzero, 4, "unit {c}");
        }
        let top = m.weights[1].val().into_data().try_to_vec::<f32>().unwrap();
        assert!(top.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn logits_by_hand() {
        let device = Device::flex();
        let t = |v: Vec<f32>, r: usize, c: usize| {
            Param::from_tensor(Tensor::<2>::from_data(TensorData::new(v, [r, c]), &device))
        };
        // h = relu([1, 2]·[[1, −1], [1, 1]] + [0, −2]) = relu([3, −1]) = [3, 0];
        // logits = [3, 0]·[[1], [5]] + [0.5] = [3.5].
        let m = Mlp {
            weights: vec![t(vec![1.0, -1.0, 1.0, 1.0], 2, 2), t(vec![1.0, 5.0], 2, 1)],
            biases: vec![t(vec![0.0, -2.0], 1, 2), t(vec![0.5], 1, 1)],
        };
        let x = Tensor::<2>::from_data([[1.0, 2.0]], &device);
        assert_eq!(m.logits(x).into_scalar::<f32>(), 3.5);
    }
}
