//! Batched decoding with a KV cache: greedy or sampled (temperature, top-k, top-p),
//! stopping at EOS, a stop string or the token limit; seeded and reproducible.

use crate::kernels::FusedOps;
use burn::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use std::collections::HashMap;

use super::kv_cache::SlotId;
use super::llama::LlamaForCausalLM;
use super::tokenizer::{Tokenizer, TokenizerError};

/// How the next token is chosen and when decoding ends.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// 0 means greedy.
    pub temperature: f32,
    /// Nucleus sampling mass; 1.0 disables it.
    pub top_p: f32,
    /// Keep only the k most likely tokens; 0 disables it.
    pub top_k: usize,
    pub max_new_tokens: usize,
    pub stop: Vec<String>,
}

impl SamplingParams {
    pub fn greedy(max_new_tokens: usize) -> Self {
        Self {
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            max_new_tokens,
            stop: Vec::new(),
        }
    }

    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FinishReason {
    Eos,
    Stop,
    Length,
}

/// One generated continuation.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// Generated ids, the EOS token included when decoding stopped on it.
    pub ids: Vec<u32>,
    /// The text, without the EOS token and cut before a stop string.
    pub text: String,
    pub finish: FinishReason,
}

impl Completion {
    /// Nothing generated (a token limit of 0).
    fn empty() -> Self {
        Self {
            ids: Vec::new(),
            text: String::new(),
            finish: FinishReason::Length,
        }
    }

    pub fn truncated(&self) -> bool {
        self.finish == FinishReason::Length
    }
}

/// The tokens one sequence has generated, and how much of their text was handed out:
/// text that could be the start of a stop string is held back until it is not.
#[derive(Debug, Clone, Default)]
pub struct SeqText {
    ids: Vec<u32>,
    shown: usize,
}

impl SeqText {
    /// Tokens generated so far.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// Add the next token (`last`: the token limit is reached with it). Returns the text
    /// newly safe to show (possibly empty) and, when the sequence ended with this token,
    /// its completion; the pieces returned add up to the completion's text.
    pub fn push(
        &mut self,
        token: u32,
        tok: &Tokenizer,
        eos: &[u32],
        params: &SamplingParams,
        last: bool,
    ) -> Result<(String, Option<Completion>), TokenizerError> {
        self.ids.push(token);
        let finished_eos = eos.contains(&token);
        let text_ids: &[u32] = if finished_eos {
            &self.ids[..self.ids.len() - 1]
        } else {
            &self.ids
        };
        let mut text = tok.decode(text_ids, true)?;
        let mut finish = finished_eos.then_some(FinishReason::Eos);
        if finish.is_none()
            && let Some(cut) = earliest_stop(&text, &params.stop, self.shown)
        {
            text.truncate(cut);
            finish = Some(FinishReason::Stop);
        }
        if finish.is_none() && last {
            finish = Some(FinishReason::Length);
        }
        // Hold back text that could be the start of a stop string, and a character still
        // split across tokens (decoded as U+FFFD until its last byte arrives).
        let safe = match finish {
            Some(_) => text.len(),
            None => safe_prefix(text.trim_end_matches('\u{FFFD}'), &params.stop),
        };
        let mut delta = String::new();
        if safe > self.shown && text.is_char_boundary(self.shown) && text.is_char_boundary(safe) {
            delta.push_str(&text[self.shown..safe]);
            self.shown = safe;
        }
        let done = finish.map(|finish| Completion {
            ids: self.ids.clone(),
            text,
            finish,
        });
        Ok((delta, done))
    }
}

/// A seeded random source for sampling.
pub fn rng_from_seed(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// A random source for one row: the run's seed, and the row's own stream, so that what a
/// row samples does not depend on which rows share its batch.
pub fn row_rng(seed: u64, row: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(row);
    rng
}

/// Decode continuations of `prompts` (token ids) in one batch, row `i` sampling from
/// `rngs[i]`. `on_text(row, new_text)` is called as text is produced (for streaming).
///
/// Rows with the same prompt (the samples of one GRPO group) share its prefill: each
/// distinct prompt runs through the model once, the rows pick their first tokens from its
/// logits with their own random sources, and the prompt's KV cache slot is copied to the
/// rows that go on. An empty prompt is read as one padding token.
pub fn generate<B: FusedOps>(
    model: &LlamaForCausalLM<B>,
    tok: &Tokenizer,
    prompts: &[Vec<u32>],
    params: &SamplingParams,
    rngs: &mut [ChaCha8Rng],
    mut on_text: impl FnMut(usize, &str),
) -> Result<Vec<Completion>, TokenizerError> {
    let n = prompts.len();
    assert_eq!(rngs.len(), n, "one random source per prompt");
    if n == 0 || params.max_new_tokens == 0 {
        return Ok(vec![Completion::empty(); n]);
    }
    let eos = tok.eos_ids().to_vec();
    let pad = [tok.pad_id()];
    let prompt_of = |p: &[u32]| -> Vec<u32> {
        if p.is_empty() {
            pad.to_vec()
        } else {
            p.to_vec()
        }
    };
    // Distinct prompts, in order of first use, and each row's prompt among them.
    let mut distinct: Vec<Vec<u32>> = Vec::new();
    let mut seen: HashMap<&[u32], usize> = HashMap::new();
    let of: Vec<usize> = prompts
        .iter()
        .map(|p| {
            *seen.entry(p.as_slice()).or_insert_with(|| {
                distinct.push(prompt_of(p));
                distinct.len() - 1
            })
        })
        .collect();
    let longest = distinct.iter().map(Vec::len).max().unwrap_or(1);
    let mut cache = model.new_cache(n.max(distinct.len()), longest + params.max_new_tokens);
    let prompt_slots: Vec<SlotId> = distinct
        .iter()
        .map(|_| cache.alloc().expect("a slot per prompt"))
        .collect();
    let rows: Vec<(SlotId, &[u32])> = prompt_slots
        .iter()
        .zip(&distinct)
        .map(|(&s, p)| (s, p.as_slice()))
        .collect();
    let mut logits = host_logits(model.step(&mut cache, &rows));
    let vocab = logits.len() / distinct.len();
    // Row of `logits` each active sequence reads.
    let mut logit_row: Vec<usize> = of.clone();
    let mut slot_of: Vec<Option<SlotId>> = vec![None; n];

    let mut out: Vec<Option<Completion>> = vec![None; n];
    let mut texts: Vec<SeqText> = vec![SeqText::default(); n];
    // `active[i]` is the row (prompt index) of the i-th sequence still decoding.
    let mut active: Vec<usize> = (0..n).collect();
    for step in 0..params.max_new_tokens {
        let mut next = Vec::with_capacity(active.len());
        let mut keep = Vec::with_capacity(active.len());
        for (a, &p) in active.iter().enumerate() {
            let r = logit_row[a];
            let token = pick(&logits[r * vocab..(r + 1) * vocab], params, &mut rngs[p]);
            let last = step + 1 == params.max_new_tokens;
            let (delta, done) = texts[p].push(token, tok, &eos, params, last)?;
            if !delta.is_empty() {
                on_text(p, &delta);
            }
            match done {
                Some(c) => {
                    if let Some(slot) = slot_of[p].take() {
                        cache.free(slot);
                    }
                    out[p] = Some(c);
                }
                None => {
                    keep.push(p);
                    next.push(token);
                }
            }
        }
        if keep.is_empty() {
            break;
        }
        if step == 0 {
            // The first sequence of each prompt goes on in the prompt's slot; the others
            // get copies of it.
            let mut claimed = vec![false; distinct.len()];
            for &p in &keep {
                let d = of[p];
                slot_of[p] = Some(if claimed[d] {
                    cache.fork(prompt_slots[d], 1).expect("a slot per row")[0]
                } else {
                    claimed[d] = true;
                    prompt_slots[d]
                });
            }
            for (d, &slot) in prompt_slots.iter().enumerate() {
                if !claimed[d] {
                    cache.free(slot);
                }
            }
        }
        active = keep;
        let singles: Vec<[u32; 1]> = next.iter().map(|&t| [t]).collect();
        let rows: Vec<(SlotId, &[u32])> = active
            .iter()
            .zip(&singles)
            .map(|(&p, t)| (slot_of[p].expect("a decoding row has a slot"), t.as_slice()))
            .collect();
        logits = host_logits(model.step(&mut cache, &rows));
        logit_row = (0..active.len()).collect();
    }
    Ok(out
        .into_iter()
        .map(|c| c.unwrap_or_else(Completion::empty))
        .collect())
}

/// Logits on the host, row-major `[rows * vocab]`.
fn host_logits<B: FusedOps>(logits: Tensor<B, 2>) -> Vec<f32> {
    logits
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .expect("logits are floats")
}

/// Byte offset of the earliest stop string that ends after `from`, if any.
fn earliest_stop(text: &str, stops: &[String], from: usize) -> Option<usize> {
    stops
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| {
            let start = from.saturating_sub(s.len());
            let start = (start..=from.min(text.len()))
                .find(|&i| text.is_char_boundary(i))
                .unwrap_or(0);
            text[start..].find(s.as_str()).map(|i| start + i)
        })
        .min()
}

/// Length of the prefix of `text` that cannot be the start of a stop string.
fn safe_prefix(text: &str, stops: &[String]) -> usize {
    let mut safe = text.len();
    for s in stops.iter().filter(|s| !s.is_empty()) {
        for k in (1..s.len()).rev() {
            if k <= text.len()
                && text.is_char_boundary(text.len() - k)
                && s.is_char_boundary(k)
                && text.ends_with(&s[..k])
            {
                safe = safe.min(text.len() - k);
                break;
            }
        }
    }
    safe
}

/// Choose the next token from one row of logits.
pub fn pick(logits: &[f32], params: &SamplingParams, rng: &mut ChaCha8Rng) -> u32 {
    if params.is_greedy() {
        return argmax(logits);
    }
    let t = params.temperature;
    let mut cand: Vec<(u32, f32)> = logits
        .iter()
        .enumerate()
        .filter(|(_, l)| l.is_finite())
        .map(|(i, &l)| (i as u32, l / t))
        .collect();
    if cand.is_empty() {
        return argmax(logits);
    }
    // Sort by descending score; ties by id for determinism.
    cand.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    if params.top_k > 0 && params.top_k < cand.len() {
        cand.truncate(params.top_k);
    }
    let max = cand[0].1;
    let mut probs: Vec<f64> = cand.iter().map(|(_, l)| f64::from(l - max).exp()).collect();
    let total: f64 = probs.iter().sum();
    for p in &mut probs {
        *p /= total;
    }
    if params.top_p < 1.0 {
        // Keep the smallest prefix whose mass reaches top_p (at least one token).
        let mut mass = 0.0;
        let mut keep = probs.len();
        for (i, p) in probs.iter().enumerate() {
            mass += p;
            if mass >= f64::from(params.top_p) {
                keep = i + 1;
                break;
            }
        }
        probs.truncate(keep);
        cand.truncate(keep);
        let total: f64 = probs.iter().sum();
        for p in &mut probs {
            *p /= total;
        }
    }
    let u: f64 = rng.random();
    let mut acc = 0.0;
    for (i, p) in probs.iter().enumerate() {
        acc += p;
        if u < acc {
            return cand[i].0;
        }
    }
    cand[cand.len() - 1].0
}

fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] || logits[best].is_nan() {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_the_first_maximum() {
        let p = SamplingParams::greedy(1);
        let mut rng = rng_from_seed(0);
        assert_eq!(pick(&[0.1, 3.0, 3.0, -1.0], &p, &mut rng), 1);
    }

    #[test]
    fn top_k_one_is_greedy_and_sampling_is_seeded() {
        let mut p = SamplingParams::greedy(1);
        p.temperature = 1.0;
        p.top_k = 1;
        let mut rng = rng_from_seed(3);
        assert_eq!(pick(&[0.0, 0.5, 2.0, 1.9], &p, &mut rng), 2);
        p.top_k = 0;
        let logits = [0.0f32, 0.5, 2.0, 1.9];
        let a: Vec<u32> = {
            let mut r = rng_from_seed(7);
            (0..50).map(|_| pick(&logits, &p, &mut r)).collect()
        };
        let b: Vec<u32> = {
            let mut r = rng_from_seed(7);
            (0..50).map(|_| pick(&logits, &p, &mut r)).collect()
        };
        assert_eq!(a, b);
        assert!(a.iter().any(|&t| t != 2), "sampling should not be greedy");
    }

    #[test]
    fn top_p_keeps_the_nucleus() {
        let mut p = SamplingParams::greedy(1);
        p.temperature = 1.0;
        p.top_p = 0.5;
        // Token 0 alone has mass > 0.5: only it can be drawn.
        let logits = [5.0f32, 1.0, 1.0, 1.0];
        let mut rng = rng_from_seed(1);
        assert!((0..100).all(|_| pick(&logits, &p, &mut rng) == 0));
    }

    #[test]
    fn stop_strings_are_found_and_held_back() {
        let stops = vec!["</s>".to_string(), "\n\n".to_string()];
        assert_eq!(earliest_stop("hello</s>x", &stops, 0), Some(5));
        assert_eq!(earliest_stop("a\n\nb</s>", &stops, 0), Some(1));
        assert_eq!(earliest_stop("abc", &stops, 0), None);
        assert_eq!(safe_prefix("hello</", &stops), 5);
        assert_eq!(safe_prefix("hello\n", &stops), 5);
        assert_eq!(safe_prefix("hello", &stops), 5);
    }
}
