//! `rmtk generate`: text from a decoder, for one prompt or a file of them.

use crate::kernels::FusedOps;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};

use crate::data::{self, Table};
use crate::device::{DeviceSpec, Job, run_on};
use crate::models::generate::{SamplingParams, generate, row_rng};
use crate::models::load::ComputeDtype;
use crate::models::{ModelDir, Tokenizer, load_causal_lm_in};

/// Generate continuations: batched over rows of an input file, stops at EOS or stop
/// strings, seeded and reproducible; streams to the terminal or writes JSONL/parquet.
#[derive(Debug, Clone, clap::Args)]
pub struct GenerateConfig {
    /// A decoder folder in Hugging Face layout, or a hub id.
    #[arg(long)]
    pub model: String,
    /// One prompt.
    #[arg(long, conflicts_with = "input", required_unless_present = "input")]
    pub prompt: Option<String>,
    /// A parquet or JSONL file with a `prompt` column (text, or a list of {role, content} messages).
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// The column holding prompts.
    #[arg(long, default_value = "prompt")]
    pub prompt_column: String,
    /// Where to write results (.jsonl or .parquet); default: stdout.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Render prompts with the model's chat template (add_generation_prompt).
    #[arg(long)]
    pub chat: bool,
    /// A system message placed before each prompt (with --chat).
    #[arg(long, requires = "chat")]
    pub system: Option<String>,
    /// Always take the most likely token.
    #[arg(long, conflicts_with_all = ["temperature", "top_p", "top_k"])]
    pub greedy: bool,
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f32,
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// 0 keeps every token.
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    #[arg(long, default_value_t = 256)]
    pub max_new_tokens: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Stop when this text appears (repeatable); it is not included in the output.
    #[arg(long)]
    pub stop: Vec<String>,
    /// Samples per prompt.
    #[arg(long, default_value_t = 1)]
    pub num_samples: usize,
    /// Sequences decoded together.
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// The dtype the model computes in (weights loaded directly in it, the KV cache in
    /// it, logits and sampling in f32).
    #[arg(long, value_enum, default_value = "f32")]
    pub dtype: ComputeDtype,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceSpec,
}

impl GenerateConfig {
    pub fn sampling(&self) -> Result<SamplingParams> {
        if !self.greedy && self.temperature <= 0.0 {
            bail!("--temperature must be positive (use --greedy for greedy decoding)");
        }
        if !(0.0..=1.0).contains(&self.top_p) || self.top_p == 0.0 {
            bail!("--top-p must be in (0, 1]");
        }
        Ok(SamplingParams {
            temperature: if self.greedy { 0.0 } else { self.temperature },
            top_p: self.top_p,
            top_k: self.top_k,
            max_new_tokens: self.max_new_tokens,
            stop: self.stop.clone(),
        })
    }
}

pub use crate::data::{Prompt, encode_prompt};

pub fn run(cfg: GenerateConfig) -> Result<()> {
    let params = cfg.sampling()?;
    if cfg.batch_size == 0 || cfg.num_samples == 0 {
        bail!("--batch-size and --num-samples must be at least 1");
    }
    let model = ModelDir::open(&cfg.model)?;
    model.llama_config()?;
    let tok = model.tokenizer()?;
    let (prompts, table) = match (&cfg.prompt, &cfg.input) {
        (Some(p), _) => (vec![Prompt::Text(p.clone())], None),
        (None, Some(path)) => {
            let table = data::read_table(path)?;
            let prompts = table
                .rows
                .iter()
                .enumerate()
                .map(|(i, row)| data::prompt_cell(&table, i, row, &cfg.prompt_column))
                .collect::<Result<Vec<_>, _>>()?;
            (prompts, Some(table))
        }
        (None, None) => bail!("give --prompt or --input"),
    };
    let mut encoded = Vec::with_capacity(prompts.len());
    for (i, p) in prompts.iter().enumerate() {
        let ids =
            encode_prompt(&tok, p, cfg.chat, cfg.system.as_deref()).with_context(
                || match &table {
                    Some(t) => format!(
                        "{}: row {}, column `{}`",
                        t.path.display(),
                        i,
                        cfg.prompt_column
                    ),
                    None => "--prompt".to_string(),
                },
            )?;
        encoded.push(ids);
    }
    run_on(
        cfg.device,
        GenerateJob {
            cfg: &cfg,
            model,
            tok,
            params,
            encoded,
            table,
        },
    )
}

struct GenerateJob<'a> {
    cfg: &'a GenerateConfig,
    model: ModelDir,
    tok: Tokenizer,
    params: SamplingParams,
    encoded: Vec<Vec<u32>>,
    table: Option<Table>,
}

impl Job for GenerateJob<'_> {
    type Output = ();

    fn run<B: FusedOps>(self, device: B::Device) -> Result<()> {
        let lm = load_causal_lm_in::<B>(&self.model, &device, self.cfg.dtype.burn())?;
        let cfg = self.cfg;
        // Work items: (prompt index, sample index).
        let items: Vec<(usize, usize)> = (0..self.encoded.len())
            .flat_map(|p| (0..cfg.num_samples).map(move |s| (p, s)))
            .collect();
        let streaming = self.table.is_none() && cfg.num_samples == 1 && cfg.output.is_none();
        if streaming {
            let mut rngs = vec![row_rng(cfg.seed, 0)];
            let mut stdout = std::io::stdout();
            let done = generate(
                &lm,
                &self.tok,
                &self.encoded,
                &self.params,
                &mut rngs,
                |_, text| {
                    let _ = stdout.write_all(text.as_bytes());
                    let _ = stdout.flush();
                },
            )?;
            println!();
            if let Some(c) = done.first()
                && c.truncated()
            {
                eprintln!("(stopped at --max-new-tokens {})", cfg.max_new_tokens);
            }
            return Ok(());
        }
        let bar = crate::util::progress_bar(items.len() as u64, "generate");
        let mut rows_out: Vec<Map<String, Value>> = Vec::with_capacity(items.len());
        for chunk in items.chunks(cfg.batch_size) {
            let prompts: Vec<Vec<u32>> = chunk
                .iter()
                .map(|&(p, _)| self.encoded[p].clone())
                .collect();
            let mut rngs: Vec<_> = chunk
                .iter()
                .map(|&(p, s)| row_rng(cfg.seed, (p * cfg.num_samples + s) as u64))
                .collect();
            let done = generate(&lm, &self.tok, &prompts, &self.params, &mut rngs, |_, _| {})?;
            for (&(p, s), c) in chunk.iter().zip(done) {
                let mut row = match &self.table {
                    Some(t) => t.rows[p].clone(),
                    None => Map::new(),
                };
                if self.table.is_none() {
                    row.insert("prompt".into(), json!(cfg.prompt));
                }
                row.insert("sample".into(), json!(s));
                row.insert("completion".into(), json!(c.text));
                row.insert("finish_reason".into(), json!(c.finish));
                row.insert("completion_tokens".into(), json!(c.ids.len()));
                rows_out.push(row);
            }
            bar.inc(chunk.len() as u64);
        }
        bar.finish_and_clear();
        match &cfg.output {
            Some(path) => {
                data::write_rows(path, &rows_out)?;
                eprintln!("wrote {} rows to {}", rows_out.len(), path.display());
            }
            None => {
                let mut out = std::io::stdout().lock();
                for row in &rows_out {
                    writeln!(out, "{}", Value::Object(row.clone()))?;
                }
            }
        }
        Ok(())
    }
}
