//! Rollouts: `n` sampled completions per prompt, decoded in batches across prompts with
//! the KV cache. The completions of one prompt in a batch share its prefill (`generate`
//! runs each distinct prompt once and copies its cache slot). Every completion draws from
//! its own random stream, derived from the run's seed, the step, the generation round and
//! its slot, so a resumed run samples exactly what an uninterrupted one would have.

use crate::kernels::FusedOps;
use anyhow::Result;

use crate::models::LlamaForCausalLM;
use crate::models::Tokenizer;
use crate::models::generate::{Completion, SamplingParams, generate, row_rng};

/// The completions of one prompt.
#[derive(Debug, Clone)]
pub struct Group {
    /// Index of the prompt in the prompt set.
    pub prompt: usize,
    pub completions: Vec<Completion>,
}

/// Where a rollout's random streams come from.
#[derive(Debug, Clone, Copy)]
pub struct RolloutSeed {
    pub seed: u64,
    pub step: u64,
    pub round: u64,
}

impl RolloutSeed {
    /// The stream of the `sample`-th completion of the `slot`-th prompt of this round.
    /// The streams of one prompt's completions are consecutive: `stream_of(slot, s, n)
    /// == stream_of(slot, 0, n) + s`.
    pub fn stream_of(&self, slot: usize, sample: usize, n: usize) -> u64 {
        // Steps and rounds are far below 2^20; slots and samples below 2^24 together.
        (self.step << 44) ^ (self.round << 36) ^ (slot * n + sample) as u64
    }
}

/// Sample `n` completions for each of `prompts` (token ids; `indices` are their places
/// in the prompt set), `batch_size` sequences at a time. `on_batch(done)` reports progress.
#[allow(clippy::too_many_arguments)]
pub fn generate_groups<B: FusedOps>(
    lm: &LlamaForCausalLM<B>,
    tok: &Tokenizer,
    prompts: &[Vec<u32>],
    indices: &[usize],
    n: usize,
    params: &SamplingParams,
    batch_size: usize,
    seed: RolloutSeed,
    mut on_batch: impl FnMut(usize),
) -> Result<Vec<Group>> {
    assert_eq!(prompts.len(), indices.len());
    let items: Vec<(usize, usize)> = (0..prompts.len())
        .flat_map(|slot| (0..n).map(move |s| (slot, s)))
        .collect();
    let mut groups: Vec<Group> = indices
        .iter()
        .map(|&prompt| Group {
            prompt,
            completions: Vec::with_capacity(n),
        })
        .collect();
    for chunk in items.chunks(batch_size.max(1)) {
        let batch: Vec<Vec<u32>> = chunk
            .iter()
            .map(|&(slot, _)| prompts[slot].clone())
            .collect();
        let mut rngs: Vec<_> = chunk
            .iter()
            .map(|&(slot, s)| row_rng(seed.seed, seed.stream_of(slot, s, n)))
            .collect();
        let done = generate(lm, tok, &batch, params, &mut rngs, |_, _| {})?;
        for (&(slot, _), completion) in chunk.iter().zip(done) {
            groups[slot].completions.push(completion);
        }
        on_batch(chunk.len());
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_distinct_across_steps_rounds_and_slots() {
        let mut seen = std::collections::HashSet::new();
        for step in 0..20 {
            for round in 0..4 {
                let s = RolloutSeed {
                    seed: 0,
                    step,
                    round,
                };
                for slot in 0..16 {
                    for sample in 0..8 {
                        let stream = s.stream_of(slot, sample, 8);
                        assert!(seen.insert(stream));
                        // Consecutive within a prompt: one request's `seed_stream`.
                        assert_eq!(stream, s.stream_of(slot, 0, 8) + sample as u64);
                    }
                }
            }
        }
    }
}
