//! The command line: one subcommand per job, each flattening its command's config.

use clap::{Parser, Subcommand};

use crate::{generate, info, rm};

#[derive(Debug, Parser)]
#[command(
    name = "rmtk",
    version,
    about = "Reward-modeling toolkit: Bradley-Terry writing reward models, constraint verification, and RLMR GRPO",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
// Parsed once per process; boxing the configs would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Generate text with a decoder (batched, KV cache, greedy or sampled).
    Generate(generate::GenerateConfig),
    /// Describe a model folder: architecture, sizes, weights, tokenizer, chat template.
    Info(info::InfoConfig),
    /// Train a Bradley-Terry reward model on preference pairs.
    TrainRm(rm::TrainRmConfig),
    /// Score prompt + response rows with a reward model (adds a `reward` column).
    Score(rm::ScoreConfig),
    /// Evaluate a reward model on preference pairs: accuracy, margin, rewards.
    EvalRm(rm::EvalRmConfig),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Generate(cfg) => generate::run(cfg),
        Command::Info(cfg) => info::run(cfg),
        Command::TrainRm(cfg) => rm::train_rm(cfg),
        Command::Score(cfg) => rm::score(cfg),
        Command::EvalRm(cfg) => rm::eval_rm(cfg),
    }
}

/// One line per cause, outermost first: "model `x`: config.json: `hidden_size` is missing".
pub fn render_error(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        // anyhow contexts often already include their cause's text; don't repeat it.
        if parts.last().is_some_and(|p: &String| p.contains(&text)) {
            continue;
        }
        parts.push(text);
    }
    parts.join(": ")
}
