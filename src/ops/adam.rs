//! Adam (Kingma and Ba 2015, Algorithm 1) with its update fused into one pass on the CPU.
//!
//! burn's `Adam` updates a parameter with thirteen tensor operations, each a separate pass
//! over memory with a fresh allocation, all on one thread: for the Ladder's 3.08 M parameters
//! that is a large share of a training step. [`FusedAdam`] computes the same arithmetic, in
//! the same order and precision, element by element in a single pass split over the thread
//! pool. It is used on the Flex (CPU) backend for `f32` parameters; on any other device or
//! dtype it hands the step to burn's `Adam`, so model code stays backend-independent and the
//! numbers are those of burn's Adam everywhere.
//!
//! The state is burn's own [`AdamState`], so checkpoints written with either optimizer read
//! back with the other.

use burn::optim::{
    Adam, AdamConfig, AdamState, AdaptiveMomentumState, LearningRate, ModuleOptimizer, Optimizer,
};
use burn::prelude::*;

use crate::fused::adam::Update;
use crate::ops::fusable;

/// Adam with β1, β2 and ε; the update of eq. (Algorithm 1) in burn's formulation:
/// m ← β1·m + (1−β1)·g, v ← β2·v + (1−β2)·g², θ ← θ − lr·(c·m) / (√v + ε·√(1−β2ᵗ)), with
/// c = √(1−β2ᵗ) / (1−β1ᵗ).
#[derive(Clone)]
pub struct FusedAdam {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    /// burn's Adam with the same settings, for devices and dtypes without the fused pass.
    fallback: Adam,
}

impl FusedAdam {
    pub fn new(beta_1: f32, beta_2: f32, epsilon: f32) -> Self {
        let fallback = AdamConfig::new()
            .with_beta_1(beta_1)
            .with_beta_2(beta_2)
            .with_epsilon(epsilon)
            .build();
        FusedAdam {
            beta_1,
            beta_2,
            epsilon,
            fallback,
        }
    }

    /// A module optimizer that applies this Adam to every parameter.
    pub fn init(self) -> ModuleOptimizer {
        ModuleOptimizer::from(self)
    }

    /// The per-step scalars of Algorithm 1 at step `time` (1-based), computed in `f32` as
    /// burn's Adam computes them: (c, ε·√(1−β2ᵗ)).
    fn step_factors(&self, time: usize) -> (f32, f32) {
        let t = time as i32;
        let bias_correction2_sqrt = (1.0 - self.beta_2.powi(t)).sqrt();
        let combined = bias_correction2_sqrt / (1.0 - self.beta_1.powi(t));
        (combined, self.epsilon * bias_correction2_sqrt)
    }
}

/// A tensor's values as host data; without a copy when the tensor owns its buffer alone.
fn host_data<const D: usize>(tensor: Tensor<D>) -> TensorData {
    tensor.into_data()
}

/// The `f32` values of fusable host data, in place.
fn values_mut(data: &mut TensorData) -> &mut [f32] {
    data.as_mut_slice::<f32>()
        .expect("fusable tensors hold f32")
}

impl Optimizer for FusedAdam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        if !(fusable(&tensor) && fusable(&grad)) {
            return self.fallback.step(lr, tensor, grad, state);
        }
        let device = tensor.device();
        let shape = tensor.shape();
        let mut theta = host_data(tensor);
        let mut g = host_data(grad);
        let (time, mut m, mut v, first) = match state {
            Some(s) => {
                let s = s.momentum;
                (
                    s.time + 1,
                    host_data(s.moment_1),
                    host_data(s.moment_2),
                    false,
                )
            }
            None => {
                let zeros = || TensorData::zeros::<f32, _>(shape.clone());
                (1, zeros(), zeros(), true)
            }
        };
        let (combined, eps) = self.step_factors(time);
        let update = Update {
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            combined,
            eps,
            lr: lr as f32,
            first,
        };
        update.apply(
            values_mut(&mut theta),
            values_mut(&mut m),
            values_mut(&mut v),
            values_mut(&mut g),
        );
        let tensor = |data: TensorData| Tensor::<D>::from_data(data, &device);
        let momentum = AdaptiveMomentumState::new(time, tensor(m), tensor(v));
        (tensor(theta), Some(AdamState::new(momentum)))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        Adam::to_device(state, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::adam::CHUNK;
    use burn::tensor::Distribution;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_into_vec::<f32>().unwrap()
    }

    /// Five steps of the fused pass and of burn's Adam from the same start agree exactly,
    /// for a tensor spanning several parallel chunks and for a small one.
    #[test]
    fn fused_steps_equal_burns_adam_bit_for_bit() {
        let device = Device::flex();
        for rows in [3, 2 * CHUNK / 7 + 5] {
            let fused = FusedAdam::new(0.9, 0.999, 1e-8);
            let reference = AdamConfig::new().with_epsilon(1e-8).build();
            let start = Tensor::<2>::random([rows, 7], Distribution::Normal(0.0, 1.0), &device);
            let (mut a, mut b) = (start.clone(), start);
            let (mut sa, mut sb) = (None, None);
            for step in 0..5 {
                let g = Tensor::<2>::random([rows, 7], Distribution::Normal(0.0, 1.0), &device);
                let lr = 0.002 / (step + 1) as f64;
                (a, sa) = fused.step(lr, a, g.clone(), sa);
                (b, sb) = reference.step(lr, b, g, sb);
                assert_eq!(
                    values(a.clone()),
                    values(b.clone()),
                    "step {step}, {rows} rows"
                );
            }
            let (sa, sb) = (sa.unwrap().momentum, sb.unwrap().momentum);
            assert_eq!(sa.time, sb.time);
            assert_eq!(values(sa.moment_1), values(sb.moment_1));
            assert_eq!(values(sa.moment_2), values(sb.moment_2));
        }
    }

    /// One step by hand: g = 2 at step 1 gives m = 0.2, v = 0.004, c = √0.001 / 0.1 and
    /// θ ← θ − lr·c·m / (√v + ε√0.001) ≈ θ − lr (Adam's first step has unit size).
    #[test]
    fn first_step_has_the_learning_rate_as_its_size() {
        let device = Device::flex();
        let theta = Tensor::<1>::from_floats([1.0, -1.0], &device);
        let g = Tensor::<1>::from_floats([2.0, -0.5], &device);
        let (theta, state) = FusedAdam::new(0.9, 0.999, 1e-8).step(0.01, theta, g, None);
        let theta = values(theta);
        assert!((theta[0] - 0.99).abs() < 1e-6, "{theta:?}");
        assert!((theta[1] + 0.99).abs() < 1e-6, "{theta:?}");
        let m = values(state.unwrap().momentum.moment_1);
        assert!(
            (m[0] - 0.2).abs() < 1e-7 && (m[1] + 0.05).abs() < 1e-7,
            "{m:?}"
        );
    }
}
