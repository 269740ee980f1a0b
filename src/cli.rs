//! The command line: one subcommand per job, each flattening its command's config.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::{data, generate, grpo, info, plot, rm, serve, verify};

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
    /// `grpo`'s arguments as given (config file expanded), saved with the run.
    #[arg(skip)]
    pub grpo_args: Vec<String>,
}

impl Cli {
    /// Parses the command line, expanding `grpo`'s `--config FILE` and `--resume DIR`
    /// into the flags they stand for.
    pub fn parse_args(args: Vec<std::ffi::OsString>) -> anyhow::Result<Cli> {
        let (args, grpo_args) = grpo::expand_args(args)?;
        let mut cli = match Cli::try_parse_from(args) {
            Ok(cli) => cli,
            Err(e) => e.exit(),
        };
        cli.grpo_args = grpo_args;
        Ok(cli)
    }
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
    /// GRPO policy training with RLMR's dynamic mixed reward (writing reward model +
    /// constraint verifier).
    #[command(args_override_self = true)]
    Grpo(grpo::GrpoConfig),
    /// Verify responses against constraints (IFEval rules, an LLM judge, or both), or
    /// run IFEval's (--ifeval) or IFBench's (--ifbench) evaluation.
    Verify(verify::VerifyConfig),
    /// Inspect, convert, split and deduplicate preference files.
    Data(data::commands::DataConfig),
    /// Serve a decoder, a reward model and the verifier over HTTP: OpenAI-compatible
    /// completions and chat (continuous batching, streaming), vLLM's runtime LoRA API,
    /// reward and verify endpoints.
    Serve(serve::ServeConfig),
    /// Draw training runs' curves (rmtk's metrics.jsonl, or TRL's trainer_state.json) to a
    /// PNG; several runs share the panels.
    Plot(PlotConfig),
}

/// Draw the curves of `RUN/metrics.jsonl` (train-rm or grpo) or of a TRL run's
/// `trainer_state.json` to a PNG; several runs are overlaid, one colour each.
#[derive(Debug, Clone, clap::Args)]
pub struct PlotConfig {
    /// Runs: rmtk output folders (or their metrics.jsonl), TRL output or checkpoint folders
    /// (or their trainer_state.json).
    #[arg(required = true, num_args = 1..)]
    pub runs: Vec<PathBuf>,
    /// Where to write the PNG; default: RUN/metrics.png for one run folder, RUN.png for a
    /// file, overlay.png (in the current folder) for several runs.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Metrics to draw, one panel each (`a+b` overlays b on a's panel); default: the
    /// first run kind's main curves, and its reward distributions or pass rate by
    /// constraint type.
    #[arg(long, value_delimiter = ',')]
    pub metrics: Option<Vec<String>>,
    /// Exponential-moving-average weight of the smoothed overlay; 0 draws raw lines only.
    #[arg(long, default_value_t = 0.1)]
    pub smooth: f64,
    #[arg(long, default_value_t = 1600)]
    pub width: u32,
    #[arg(long, default_value_t = 1000)]
    pub height: u32,
    #[arg(long)]
    pub title: Option<String>,
}

fn run_plot(cfg: PlotConfig) -> anyhow::Result<()> {
    let out = cfg
        .output
        .clone()
        .unwrap_or_else(|| match cfg.runs.as_slice() {
            [run] if run.is_dir() => run.join("metrics.png"),
            [run] => run.with_extension("png"),
            _ => PathBuf::from("overlay.png"),
        });
    let opts = plot::PlotOptions {
        metrics: cfg.metrics,
        width: cfg.width,
        height: cfg.height,
        title: cfg.title,
        smooth: (cfg.smooth > 0.0).then_some(cfg.smooth),
    };
    let summary = plot::plot_runs(&cfg.runs, &out, &opts)?;
    eprintln!(
        "wrote {} ({} panels: {}; {} points)",
        out.display(),
        summary.panels.len(),
        summary.panels.join(", "),
        summary.points
    );
    Ok(())
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Generate(cfg) => generate::run(cfg),
        Command::Info(cfg) => info::run(cfg),
        Command::TrainRm(cfg) => rm::train_rm(cfg),
        Command::Score(cfg) => rm::score(cfg),
        Command::EvalRm(cfg) => rm::eval_rm(cfg),
        Command::Verify(cfg) => verify::run(cfg),
        Command::Grpo(cfg) => grpo::run(cfg, cli.grpo_args),
        Command::Plot(cfg) => run_plot(cfg),
        Command::Data(cfg) => data::commands::run(cfg),
        Command::Serve(cfg) => serve::run(cfg),
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
