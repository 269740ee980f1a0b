//! The command line: one subcommand per job, each flattening its command's config.

use clap::{Parser, Subcommand};

use crate::{generate, info, verify};

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
    /// Verify responses against constraints (IFEval rules, an LLM judge, or both), or
    /// run IFEval's evaluation (--ifeval).
    Verify(verify::VerifyConfig),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Generate(cfg) => generate::run(cfg),
        Command::Info(cfg) => info::run(cfg),
        Command::Verify(cfg) => verify::run(cfg),
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
