//! rmtk's integration tests, as modules of one test crate: one binary to build and link
//! instead of one per file (each linked all of burn; the suite's build time was mostly
//! that). Add a new file here as a `mod`, not as a new `tests/*.rs`.
//!
//! Data the tests read lives beside this folder: `tests/fixtures/` (tiny models and
//! inputs) and `tests/golden/` (values from the reference implementations in `scripts/`).

mod checkpointing;
mod cli_errors;
mod data_cli;
mod grpo_cli;
mod kernels_parity;
mod models_golden;
mod plot_cli;
mod real_models;
mod reward_url;
mod rm_cli;
mod rm_lora;
mod rm_lora_reference;
mod rm_minilm;
mod rm_reference;
mod rm_resume;
mod rm_support;
mod rubric;
mod serve;
mod verify_cli;
mod verify_judge;
mod verify_remote;
