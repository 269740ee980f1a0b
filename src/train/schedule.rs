//! Learning-rate schedules with linear warmup, as transformers' `get_*_schedule_with_warmup`
//! compute them: the update numbered `k` (from 0) uses `base_lr * factor(k)`, so with a
//! warmup the first update has a learning rate of 0, exactly as in a `Trainer` run.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    /// Linear decay to 0 at the last step (transformers' default).
    Linear,
    /// Half a cosine from the base rate to 0.
    Cosine,
    /// The base rate after warmup.
    Constant,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LrSchedule {
    pub kind: ScheduleKind,
    pub base_lr: f64,
    pub warmup_steps: u64,
    pub total_steps: u64,
}

impl LrSchedule {
    /// Warmup steps from an explicit count, else from a ratio of the total (rounded up,
    /// as transformers' `warmup_ratio`).
    pub fn warmup_from(steps: u64, ratio: f64, total: u64) -> u64 {
        if steps > 0 {
            steps
        } else {
            (ratio * total as f64).ceil() as u64
        }
    }

    /// The multiplier of the base rate for update `step` (0-based).
    pub fn factor(&self, step: u64) -> f64 {
        let (s, w, t) = (
            step as f64,
            self.warmup_steps as f64,
            self.total_steps as f64,
        );
        if step < self.warmup_steps {
            return s / w.max(1.0);
        }
        match self.kind {
            ScheduleKind::Constant => 1.0,
            ScheduleKind::Linear => ((t - s) / (t - w).max(1.0)).max(0.0),
            ScheduleKind::Cosine => {
                let progress = (s - w) / (t - w).max(1.0);
                (0.5 * (1.0 + (std::f64::consts::PI * progress).cos())).max(0.0)
            }
        }
    }

    pub fn lr(&self, step: u64) -> f64 {
        self.base_lr * self.factor(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(kind: ScheduleKind, warmup: u64, total: u64) -> LrSchedule {
        LrSchedule {
            kind,
            base_lr: 1.0,
            warmup_steps: warmup,
            total_steps: total,
        }
    }

    #[test]
    fn linear_matches_transformers() {
        // get_linear_schedule_with_warmup(opt, 2, 10): lambdas for steps 0..=10.
        let s = sched(ScheduleKind::Linear, 2, 10);
        let got: Vec<f64> = (0..=10).map(|k| s.factor(k)).collect();
        let want = [
            0.0, 0.5, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125, 0.0,
        ];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{got:?}");
        }
    }

    #[test]
    fn cosine_matches_transformers() {
        // get_cosine_schedule_with_warmup(opt, 1, 5): 0, 1, cos halfway points, 0.
        let s = sched(ScheduleKind::Cosine, 1, 5);
        let want = [
            0.0,
            1.0,
            0.5 * (1.0 + (std::f64::consts::PI * 0.25).cos()),
            0.5,
            0.5 * (1.0 + (std::f64::consts::PI * 0.75).cos()),
            0.0,
        ];
        for (k, w) in want.iter().enumerate() {
            assert!((s.factor(k as u64) - w).abs() < 1e-12, "step {k}");
        }
    }

    #[test]
    fn constant_and_no_warmup() {
        let s = sched(ScheduleKind::Constant, 0, 4);
        assert!((0..6).all(|k| s.factor(k) == 1.0));
        let s = sched(ScheduleKind::Linear, 0, 4);
        assert_eq!(s.factor(0), 1.0);
        assert_eq!(LrSchedule::warmup_from(0, 0.1, 95), 10);
        assert_eq!(LrSchedule::warmup_from(3, 0.1, 95), 3);
    }
}
