//! rmtk: a reward-modeling toolkit for post-training writing models (RLMR).
//!
//! - [`rm`]: Bradley-Terry writing reward models (`train-rm`, `score`, `eval-rm`);
//! - [`verify`]: constraint verification (IFEval rules, LLM judges);
//! - [`grpo`]: GRPO with RLMR's dynamic mixed reward;
//! - [`models`]: the transformer backbones they stand on, [`data`]: rows in and out.
//!
//! Data flows one way: rows -> tokens -> model -> scores -> advantages -> update.

pub mod cli;
pub mod data;
pub mod device;
pub mod generate;
pub mod grpo;
pub mod info;
pub mod kernels;
pub mod models;
pub mod plot;
pub mod rm;
pub mod serve;
pub mod train;
pub mod util;
pub mod verify;
