//! What every trainer shares: the optimizer, the learning-rate schedule, gradient
//! accumulation and global-norm clipping ([`optim`], [`schedule`]), the step plan
//! ([`plan`]), checkpoints and resume ([`checkpoint`], [`state`]), the metrics log and
//! progress line ([`metrics`]), the run's random numbers ([`rng`]), block-level
//! activation checkpointing ([`checkpointing`]) and f16's dynamic loss scaling
//! ([`loss_scale`]).
//!
//! A trainer (the reward model's `train-rm`, GRPO) owns only its loss and its data:
//!
//! ```text
//! for each update:
//!     for each micro-batch:  loss * (its share of the update) * Updater::loss_scale()
//!                            -> backward -> Accumulator::add
//!     Updater::apply(model, accumulated grads)   // unscale (f16), clip, schedule, AdamW
//!     MetricsLog::log(record); if due: Checkpoints::save(step, |dir| { model, Updater::save, TrainerState::save })
//! ```
//!
//! Everything a resumed run needs is in a checkpoint folder: the weights (f32, so the
//! reload is exact), the optimizer moments by parameter name, and the trainer state
//! (step, epoch, data order and position, RNG state). Parameter ids derive from the
//! checkpoint keys (`models::load::param_id`), so a reloaded model's ids match the
//! optimizer's.

pub mod checkpoint;
pub mod checkpointing;
pub mod loss_scale;
pub mod memory;
pub mod metrics;
pub mod optim;
pub mod plan;
pub mod rng;
pub mod schedule;
pub mod state;

pub use checkpoint::Checkpoints;
pub use loss_scale::LossScale;
pub use metrics::MetricsLog;
pub use optim::{Accumulator, AdamW, AdamWConfig, UpdateStats, Updater};
pub use plan::StepPlan;
pub use rng::{RngState, TrainRng};
pub use schedule::{LrSchedule, ScheduleKind};
pub use state::TrainerState;
