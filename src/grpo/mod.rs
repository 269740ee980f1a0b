//! GRPO policy training with RLMR's dynamic mixed reward.
//!
//! `mixing` (rewards of a group -> mixed rewards, filtering, advantages) and `loss`
//! (clipped surrogate + KL) are the paper's math, as small functions with tests.

pub mod loss;
pub mod mixing;
pub mod rollout;
