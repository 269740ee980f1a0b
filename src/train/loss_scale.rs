//! Dynamic loss scaling for f16 training, by the rule of PyTorch's `GradScaler`.
//!
//! f16 keeps 5 exponent bits: gradients below ~6e-8 flush to zero and values above
//! 65504 overflow. The loss is multiplied by `scale` before the backward pass, so the
//! gradients flowing through the f16 activations are `scale` times larger and stay
//! representable; the f32 gradients of the trained parameters are divided by `scale`
//! again before clipping and the optimizer (`Updater::apply`). An update whose
//! gradients hold an infinity or a NaN is skipped (the weights, the optimizer's moments
//! and its step count stay as they were) and the scale halves; after `GROWTH_INTERVAL`
//! finite updates in a row it doubles. Scales are powers of two, so scaling and
//! unscaling are exact.

use serde::{Deserialize, Serialize};

use crate::models::load::ComputeDtype;

/// The first scale (PyTorch's `init_scale`).
pub const INIT_SCALE: f32 = 65536.0;
/// Finite updates in a row before the scale doubles (PyTorch's `growth_interval`).
pub const GROWTH_INTERVAL: u32 = 2000;
/// Below this the gradients overflow f16 whatever the scale: the run stops and says so.
pub const MIN_SCALE: f32 = 1.0;

/// The scale and how many finite updates in a row it has seen; saved in the trainer
/// state so that a resumed run scales as the uninterrupted one would.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LossScale {
    pub scale: f32,
    /// Finite updates since the scale last changed.
    pub good_updates: u32,
    /// Updates skipped so far (the optimizer's step count is the trainer's less these).
    #[serde(default)]
    pub skipped: u64,
}

impl Default for LossScale {
    fn default() -> Self {
        Self {
            scale: INIT_SCALE,
            good_updates: 0,
            skipped: 0,
        }
    }
}

impl LossScale {
    /// A scale starting at `initial` (`--initial-loss-scale`).
    pub fn new(initial: f32) -> Self {
        Self {
            scale: initial,
            ..Self::default()
        }
    }

    /// A run's scale: f16 scales from `initial`; f32 and bf16 (f32's range) do not scale.
    pub fn for_training(dtype: ComputeDtype, initial: f32) -> Option<Self> {
        (dtype == ComputeDtype::F16).then(|| Self::new(initial))
    }

    /// `--initial-loss-scale` must be a power of two of at least [`MIN_SCALE`], so that
    /// scaling and unscaling stay exact.
    pub fn check_initial(initial: f32) -> anyhow::Result<()> {
        let ok = initial.is_finite() && initial >= MIN_SCALE && initial.log2().fract() == 0.0;
        anyhow::ensure!(
            ok,
            "--initial-loss-scale {initial} must be a power of two of at least 1 (PyTorch's default: 65536)"
        );
        Ok(())
    }

    /// After an update whose gradients were `finite` (false: it was skipped).
    pub fn update(&mut self, finite: bool) {
        if finite {
            self.good_updates += 1;
            if self.good_updates == GROWTH_INTERVAL {
                self.scale *= 2.0;
                self.good_updates = 0;
            }
        } else {
            self.scale *= 0.5;
            self.good_updates = 0;
            self.skipped += 1;
        }
    }

    /// Whether the scale has fallen below [`MIN_SCALE`]: gradients that overflow at a
    /// scale of 1 overflow f16 itself (bf16 has f32's range).
    pub fn exhausted(&self) -> bool {
        self.scale < MIN_SCALE
    }
}

/// The error a trainer stops with once f16's scale is exhausted (`at`: where, e.g.
/// "update 12"); `Ok` otherwise, and always without loss scaling.
pub fn stop_if_exhausted(
    scale: Option<LossScale>,
    at: impl std::fmt::Display,
) -> anyhow::Result<()> {
    if scale.is_some_and(|s| s.exhausted()) {
        anyhow::bail!(
            "the f16 gradients overflowed at every loss scale down to 1 ({at}): train in --dtype bf16 (the last checkpoint is intact)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_on_overflow_and_doubles_after_the_interval() {
        let mut s = LossScale::default();
        s.update(false);
        assert_eq!(s.scale, INIT_SCALE / 2.0);
        for _ in 0..GROWTH_INTERVAL - 1 {
            s.update(true);
        }
        assert_eq!(s.scale, INIT_SCALE / 2.0);
        s.update(true);
        assert_eq!((s.scale, s.good_updates), (INIT_SCALE, 0));
        // An overflow restarts the count.
        for _ in 0..10 {
            s.update(true);
        }
        s.update(false);
        assert_eq!((s.scale, s.good_updates), (INIT_SCALE / 2.0, 0));
    }

    #[test]
    fn seventeen_overflows_in_a_row_exhaust_it() {
        let mut s = LossScale::default();
        for _ in 0..16 {
            s.update(false);
            assert!(!s.exhausted());
        }
        assert_eq!(s.scale, 1.0);
        assert!(stop_if_exhausted(Some(s), "update 16").is_ok());
        s.update(false);
        assert!(s.exhausted());
        let err = stop_if_exhausted(Some(s), "update 17")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("(update 17)") && err.contains("--dtype bf16"),
            "{err}"
        );
        assert!(stop_if_exhausted(None, "update 17").is_ok());
    }

    /// Any history: the scale stays a power of two, equal to the initial scale times
    /// 2^(intervals completed - overflows), and the count never reaches the interval
    /// (seeded random histories, one overflow in 10, 1000 or 3000 updates, each up to
    /// exhaustion, where a run stops).
    #[test]
    fn the_scale_is_the_history_in_powers_of_two() {
        use rand::{Rng, SeedableRng};
        for seed in 0..20u64 {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let mut s = LossScale::default();
            let (mut exponent, mut run) = (16i32, 0u32);
            let rate = [10, 1000, 3000][seed as usize % 3];
            for _ in 0..rng.random_range(0..6000) {
                if s.exhausted() {
                    break;
                }
                let finite = rng.random_range(0..rate) != 0;
                s.update(finite);
                if finite {
                    run += 1;
                    if run == GROWTH_INTERVAL {
                        exponent += 1;
                        run = 0;
                    }
                } else {
                    exponent -= 1;
                    run = 0;
                }
                assert!(s.good_updates < GROWTH_INTERVAL);
            }
            assert_eq!(s.scale, 2f32.powi(exponent), "seed {seed}");
            assert_eq!(s.good_updates, run, "seed {seed}");
        }
    }
}
