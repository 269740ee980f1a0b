//! `rmtk verify` throughput: the rules engine on IFEval's 541 prompts and on IFBench's
//! 294, and the yes/no judge on SmolLM2-135M-Instruct.
//!
//! `cargo bench --bench verify -- [--reps 20] [--judge-rows 32] [--judge-batch 8]
//! [--model DIR] [--device cpu|cuda] [--no-judge]`
//!
//! Rules: each of the 541 prompts of `data/ifeval/input_data.jsonl` is paired with the
//! text-bison response on the same line of `input_response_data_text_bison.jsonl`
//! (real responses to similar prompts: every instruction id is exercised), and for
//! each row the instructions are built from their kwargs and checked strict and loose,
//! as the official `evaluation_main.py` does. Measured on one thread and on all.
//! IFBench: each of the 294 prompts of `data/ifbench/IFBench_test.jsonl` with its
//! response in `sample_output.jsonl` (same line), built and checked strict and loose
//! on one thread (`scripts/bench-ifbench-python.py` times the official checker on the
//! same rows).
//! Judge: the instructions of the first rows whose text-bison response matches its
//! prompt, phrased as text, one forward pass per batch. Prints one JSON line per
//! measurement (scripts/bench-verify.sh tabulates them).

use std::time::Instant;

use rayon::prelude::*;
use rmtk::verify::judge::{BurnJudge, BurnJudgeOptions, Judge, JudgeQuery};
use rmtk::verify::rules::ifbench::{self, IfbenchInstruction};
use rmtk::verify::rules::{self, Instruction};
use serde_json::{Map, Value, json};

struct Args {
    reps: usize,
    judge_rows: usize,
    judge_batch: usize,
    model: String,
    device: String,
    judge: bool,
}

fn parse() -> Args {
    let mut a = Args {
        reps: 20,
        judge_rows: 32,
        judge_batch: 8,
        model: "models/smollm2-135m-instruct".into(),
        device: "cpu".into(),
        judge: true,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let v = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--reps" => a.reps = v.parse().expect("--reps"),
            "--judge-rows" => a.judge_rows = v.parse().expect("--judge-rows"),
            "--judge-batch" => a.judge_batch = v.parse().expect("--judge-batch"),
            "--model" => a.model = v,
            "--device" => a.device = v,
            "--no-judge" => {
                a.judge = false;
                i += 1;
                continue;
            }
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

fn json_lines(path: &str) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect()
}

/// (ids, kwargs, response) for the 541 rows.
type Row = (Vec<String>, Vec<Map<String, Value>>, String);

fn rows() -> (Vec<Row>, Vec<(String, Row)>) {
    let prompts = json_lines("data/ifeval/input_data.jsonl");
    let responses = json_lines("data/ifeval/input_response_data_text_bison.jsonl");
    let by_prompt: std::collections::HashMap<&str, &str> = responses
        .iter()
        .map(|r| {
            (
                r["prompt"].as_str().unwrap(),
                r["response"].as_str().unwrap(),
            )
        })
        .collect();
    let row = |p: &Value, response: &str| -> Row {
        let ids = p["instruction_id_list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        let kwargs = p["kwargs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_object().cloned().unwrap())
            .collect();
        (ids, kwargs, response.to_owned())
    };
    let paired = prompts
        .iter()
        .zip(&responses)
        .map(|(p, r)| row(p, r["response"].as_str().unwrap()))
        .collect();
    let matched = prompts
        .iter()
        .filter_map(|p| {
            let prompt = p["prompt"].as_str().unwrap();
            by_prompt
                .get(prompt)
                .map(|r| (prompt.to_owned(), row(p, r)))
        })
        .collect();
    (paired, matched)
}

/// Builds a row's instructions and checks them strict and loose; returns the
/// instructions followed (strict + loose), so nothing is optimised away.
fn evaluate((ids, kwargs, response): &Row) -> usize {
    let instructions: Vec<Instruction> = ids
        .iter()
        .zip(kwargs)
        .map(|(id, kw)| Instruction::new(id, kw).expect("IFEval's own kwargs build"))
        .collect();
    let v = rules::evaluate(&instructions, response);
    v.strict.iter().filter(|c| c.pass).count() + v.loose.iter().filter(|c| c.pass).count()
}

fn rules_bench(rows: &[Row], reps: usize) {
    // Warm-up (lazy tables: Punkt, langdetect profiles).
    let expected: usize = rows.iter().map(evaluate).sum();
    for (threads, name) in [(1, "rules, 1 thread"), (0, "rules, all threads")] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a thread pool");
        let threads = pool.current_num_threads();
        let started = Instant::now();
        for _ in 0..reps {
            let followed: usize = if threads == 1 {
                rows.iter().map(evaluate).sum()
            } else {
                pool.install(|| rows.par_iter().map(evaluate).sum())
            };
            assert_eq!(followed, expected);
        }
        let secs = started.elapsed().as_secs_f64();
        let n = rows.len() * reps;
        println!(
            "{}",
            json!({"bench": name, "threads": threads, "rows": rows.len(), "reps": reps,
                   "seconds": secs, "rows_per_s": n as f64 / secs})
        );
    }
}

/// (ids, kwargs, response) of IFBench's 294 rows.
type IfbenchRow = (Vec<String>, Vec<Map<String, Value>>, String);

fn ifbench_rows() -> Vec<IfbenchRow> {
    let prompts = json_lines("data/ifbench/IFBench_test.jsonl");
    let samples = json_lines("data/ifbench/sample_output.jsonl");
    prompts
        .iter()
        .zip(&samples)
        .map(|(p, s)| {
            let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
            let ids = list(&p["instruction_id_list"])
                .iter()
                .map(|v| v.as_str().unwrap_or_default().to_owned())
                .collect();
            let kwargs = list(&p["kwargs"])
                .iter()
                .map(|v| v.as_object().cloned().unwrap_or_default())
                .collect();
            let text = |v: &Value, name: &str| v[name].as_str().unwrap_or_default().to_owned();
            (ids, kwargs, text(s, "response"))
        })
        .collect()
}

/// Builds an IFBench row's instructions and checks them strict and loose; returns the
/// verdicts that pass (undecidable ones count as not passing).
fn evaluate_ifbench((ids, kwargs, response): &IfbenchRow) -> usize {
    let instructions: Vec<IfbenchInstruction> = ids
        .iter()
        .zip(kwargs)
        .map(|(id, kw)| IfbenchInstruction::new(id, kw).expect("IFBench's own kwargs build"))
        .collect();
    let v = ifbench::evaluate(&instructions, response);
    let passed =
        |checks: &[Option<rules::Check>]| checks.iter().flatten().filter(|c| c.pass).count();
    passed(&v.strict) + passed(&v.loose)
}

fn ifbench_bench(rows: &[IfbenchRow], reps: usize) {
    let expected: usize = rows.iter().map(evaluate_ifbench).sum();
    let started = Instant::now();
    for _ in 0..reps {
        let followed: usize = rows.iter().map(evaluate_ifbench).sum();
        assert_eq!(followed, expected);
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({"bench": "rules IFBench, 1 thread", "threads": 1, "rows": rows.len(), "reps": reps,
               "seconds": secs, "rows_per_s": (rows.len() * reps) as f64 / secs})
    );
}

fn judge_bench<B: rmtk::kernels::FusedOps>(
    args: &Args,
    matched: &[(String, Row)],
    device: &B::Device,
) {
    let model = rmtk::models::ModelDir::open(&args.model).expect("the judge model");
    let judge = BurnJudge::<B>::load(
        &model,
        BurnJudgeOptions {
            batch_size: args.judge_batch,
            ..BurnJudgeOptions::default()
        },
        device,
    )
    .expect("the judge loads");
    let mut texts = Vec::new();
    for (prompt, (ids, kwargs, response)) in matched {
        for (id, kw) in ids.iter().zip(kwargs) {
            let inst = Instruction::new(id, kw).expect("builds");
            texts.push((prompt.clone(), inst.describe(), response.clone()));
        }
    }
    texts.truncate(args.judge_rows);
    let queries: Vec<JudgeQuery> = texts
        .iter()
        .map(|(p, c, r)| JudgeQuery {
            instruction: p,
            constraint: c.as_str().into(),
            response: r,
        })
        .collect();
    // Warm-up on one batch (kernels, allocations).
    judge
        .judge(&queries[..args.judge_batch.min(queries.len())])
        .expect("judges");
    let started = Instant::now();
    let answers = judge.judge(&queries).expect("judges");
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(answers.len(), queries.len());
    let tokens: usize = queries
        .iter()
        .map(|q| judge.input_tokens(q).expect("encodes"))
        .sum();
    println!(
        "{}",
        json!({"bench": format!("judge ({})", args.device), "model": args.model,
               "rows": queries.len(), "batch": args.judge_batch, "seconds": secs,
               "rows_per_s": queries.len() as f64 / secs,
               "mean_tokens_per_row": tokens as f64 / queries.len() as f64})
    );
}

fn main() {
    let args = parse();
    let (paired, matched) = rows();
    assert_eq!(paired.len(), 541);
    rules_bench(&paired, args.reps);
    let ifbench = ifbench_rows();
    assert_eq!(ifbench.len(), 294);
    ifbench_bench(&ifbench, args.reps);
    if !args.judge {
        return;
    }
    match args.device.as_str() {
        "cpu" => judge_bench::<rmtk::device::Cpu>(&args, &matched, &Default::default()),
        #[cfg(feature = "cuda")]
        "cuda" => judge_bench::<rmtk::device::Gpu>(
            &args,
            &matched,
            &burn::backend::cuda::CudaDevice::new(0),
        ),
        other => panic!("--device {other}: cpu, or cuda with --features cuda"),
    }
}
