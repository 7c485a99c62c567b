//! The matrix products of fully connected layers, y = x·W.

use burn::prelude::*;

use crate::fused::linear as kernel;
use crate::ops::fusable;

/// x·W: the fused, fixed-order product on the CPU (`crate::fused::matmul`), `Tensor::matmul`
/// elsewhere.
pub fn matmul(x: Tensor<2>, w: Tensor<2>) -> Tensor<2> {
    if fusable(&x) && fusable(&w) {
        return kernel::matmul(x, w);
    }
    x.matmul(w)
}
