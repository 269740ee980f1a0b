//! How many updates a run makes: micro-batches per epoch, updates per epoch, total.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepPlan {
    /// Micro-batches in one pass over the data.
    pub micro_per_epoch: u64,
    /// Micro-batches whose gradients one update sums.
    pub grad_accum: u64,
    /// Updates per epoch (the last one of an epoch may sum fewer micro-batches).
    pub steps_per_epoch: u64,
    /// Updates in the whole run.
    pub total_steps: u64,
}

impl StepPlan {
    /// `examples` split in micro-batches of `batch_size`; `max_steps > 0` overrides the
    /// epoch count (the data is then cycled as often as needed).
    pub fn new(
        examples: usize,
        batch_size: usize,
        grad_accum: usize,
        epochs: u64,
        max_steps: u64,
    ) -> Self {
        let micro = (examples as u64).div_ceil(batch_size.max(1) as u64);
        let accum = grad_accum.max(1) as u64;
        let per_epoch = micro.div_ceil(accum);
        let total = if max_steps > 0 {
            max_steps
        } else {
            per_epoch * epochs
        };
        Self {
            micro_per_epoch: micro,
            grad_accum: accum,
            steps_per_epoch: per_epoch,
            total_steps: total,
        }
    }

    /// Micro-batch ranges `[start, end)` of update `k` within its epoch, and the epoch.
    pub fn micro_range(&self, step: u64) -> (u64, u64, u64) {
        let epoch = step / self.steps_per_epoch.max(1);
        let k = step % self.steps_per_epoch.max(1);
        let start = k * self.grad_accum;
        let end = (start + self.grad_accum).min(self.micro_per_epoch);
        (epoch, start, end)
    }

    /// Fractional epoch after `step` updates, as transformers logs it.
    pub fn epoch_at(&self, step: u64) -> f64 {
        step as f64 / self.steps_per_epoch.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_count_partial_batches_and_accumulations() {
        let p = StepPlan::new(10, 3, 2, 2, 0);
        assert_eq!(p.micro_per_epoch, 4);
        assert_eq!(p.steps_per_epoch, 2);
        assert_eq!(p.total_steps, 4);
        assert_eq!(p.micro_range(0), (0, 0, 2));
        assert_eq!(p.micro_range(1), (0, 2, 4));
        assert_eq!(p.micro_range(2), (1, 0, 2));
        let p = StepPlan::new(10, 3, 3, 1, 0);
        assert_eq!(p.micro_range(1), (0, 3, 4));
        assert_eq!(StepPlan::new(10, 3, 1, 5, 7).total_steps, 7);
        assert_eq!(p.epoch_at(1), 0.5);
    }
}
