//! TRL's `GRPOTrainer` metrics, computed as TRL 1.16 computes them, so that a line of
//! `metrics.jsonl` reads on a TRL user's dashboard: pure functions over numbers (the
//! trainer gathers them), checked against TRL's own code (`tests/golden/trl-metrics.json`,
//! from `scripts/gen-trl-metrics-golden.py`, which runs the fragments cut out of TRL's
//! source).
//!
//! - [`completion_stats`]: `completions/{mean,min,max}_length`, `completions/clipped_ratio`
//!   and `completions/{mean,min,max}_terminated_length` (`_generate`);
//! - [`reward_stats`]: `reward`, `reward_std`, `frac_reward_zero_std`
//!   (`_generate_and_score_completions`);
//! - [`LossMetrics`]: `kl`, `entropy`, `clip_ratio/{low_mean,high_mean,region_mean}`,
//!   `clip_ratio/low_min`, `clip_ratio/high_max`: one value per `compute_loss` call (a
//!   micro-batch), averaged over the calls a logged line covers (`_compute_loss`, `log`).
//!
//! TRL computes them over every completion of its generation batch; rmtk's step generates
//! in rounds and drops groups (DAPO's dynamic sampling), so the trainer passes every
//! completion generated in the step, dropped groups included, to the first two, and the
//! micro-batches the update trained on to the third (the only tokens a loss sees).

/// `torch.isclose(x, 0)` with its default tolerances: `|x| <= 1e-8 + 1e-5 * 0`.
fn is_close_to_zero(x: f64) -> bool {
    x.abs() <= 1e-8
}

/// The mean of the values that are not NaN (`torch.nanmean`; NaN when none are).
pub fn nan_mean(x: &[f64]) -> f64 {
    let (sum, count) = x
        .iter()
        .filter(|v| !v.is_nan())
        .fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
    if count == 0 {
        f64::NAN
    } else {
        sum / count as f64
    }
}

/// The sample standard deviation of the values that are not NaN (TRL's `nanstd`: Bessel's
/// correction; NaN for fewer than two values).
pub fn nan_std(x: &[f64]) -> f64 {
    let m = nan_mean(x);
    let (sq, count) = x
        .iter()
        .filter(|v| !v.is_nan())
        .fold((0.0, 0usize), |(s, c), v| (s + (v - m) * (v - m), c + 1));
    if count < 2 {
        return f64::NAN;
    }
    (sq / (count - 1) as f64).sqrt()
}

/// TRL's completion statistics of one generation batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompletionStats {
    pub mean_length: f64,
    pub min_length: f64,
    pub max_length: f64,
    /// Share of completions that stopped at the token limit, not at an EOS token.
    pub clipped_ratio: f64,
    /// Lengths of the completions that ended with EOS; all 0 when none did.
    pub mean_terminated_length: f64,
    pub min_terminated_length: f64,
    pub max_terminated_length: f64,
}

impl CompletionStats {
    /// The metrics under TRL's names.
    pub fn named(&self) -> [(&'static str, f64); 7] {
        [
            ("completions/mean_length", self.mean_length),
            ("completions/min_length", self.min_length),
            ("completions/max_length", self.max_length),
            ("completions/clipped_ratio", self.clipped_ratio),
            (
                "completions/mean_terminated_length",
                self.mean_terminated_length,
            ),
            (
                "completions/min_terminated_length",
                self.min_terminated_length,
            ),
            (
                "completions/max_terminated_length",
                self.max_terminated_length,
            ),
        ]
    }
}

/// `completions/*` of completions of `lengths` tokens (the EOS included, as TRL counts
/// them), `truncated` where one stopped at the token limit. `None` for no completions (TRL
/// stops with an error there).
pub fn completion_stats(lengths: &[usize], truncated: &[bool]) -> Option<CompletionStats> {
    assert_eq!(lengths.len(), truncated.len(), "one flag per completion");
    if lengths.is_empty() {
        return None;
    }
    let all: Vec<f64> = lengths.iter().map(|&l| l as f64).collect();
    let mut terminated: Vec<f64> = lengths
        .iter()
        .zip(truncated)
        .filter(|(_, t)| !**t)
        .map(|(&l, _)| l as f64)
        .collect();
    if terminated.is_empty() {
        terminated.push(0.0);
    }
    let min = |x: &[f64]| x.iter().copied().fold(f64::INFINITY, f64::min);
    let max = |x: &[f64]| x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mean = |x: &[f64]| x.iter().sum::<f64>() / x.len() as f64;
    Some(CompletionStats {
        mean_length: mean(&all),
        min_length: min(&all),
        max_length: max(&all),
        clipped_ratio: truncated.iter().filter(|t| **t).count() as f64 / lengths.len() as f64,
        mean_terminated_length: mean(&terminated),
        min_terminated_length: min(&terminated),
        max_terminated_length: max(&terminated),
    })
}

/// Whose standard deviation `frac_reward_zero_std` tests: the reward's within each group
/// of `n` (TRL's `sum_then_normalize`, with `scale_rewards` `group` or `none`: rmtk's
/// mixings but GDPO), or over the whole batch (`normalize_then_sum`: GDPO).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZeroStdScope {
    Group(usize),
    Batch,
}

/// TRL's reward statistics of one generation batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RewardStats {
    /// Mean of the weighted sum of the rewards, over every completion.
    pub reward: f64,
    /// Its sample standard deviation over every completion (not within groups).
    pub reward_std: f64,
    /// Share of completions whose advantage's standard deviation is 0 (`torch.isclose`).
    pub frac_reward_zero_std: f64,
}

impl RewardStats {
    pub fn named(&self) -> [(&'static str, f64); 3] {
        [
            ("reward", self.reward),
            ("reward_std", self.reward_std),
            ("frac_reward_zero_std", self.frac_reward_zero_std),
        ]
    }
}

/// `reward`, `reward_std` and `frac_reward_zero_std` of a batch of whole groups.
/// `logged`: each completion's weighted sum of its rewards, as TRL logs it (rmtk's mixed
/// reward; under GDPO the raw `writing + w * verdict`, not the normalised sum).
/// `normalised`: the rewards TRL takes advantages of, whose standard deviation it tests
/// (the same as `logged` but under GDPO, where it is the sum of group-normalised rewards).
pub fn reward_stats(logged: &[f64], normalised: &[f64], scope: ZeroStdScope) -> RewardStats {
    assert_eq!(logged.len(), normalised.len(), "one reward per completion");
    let total = normalised.len();
    let zero = match scope {
        ZeroStdScope::Group(n) if n > 1 => normalised
            .chunks(n)
            .filter(|g| is_close_to_zero(nan_std(g)))
            .map(<[f64]>::len)
            .sum::<usize>(),
        // One completion per group (or in the batch): TRL takes the std as 0.
        ZeroStdScope::Group(_) => total,
        ZeroStdScope::Batch if total > 1 => {
            if is_close_to_zero(nan_std(normalised)) {
                total
            } else {
                0
            }
        }
        ZeroStdScope::Batch => total,
    };
    RewardStats {
        reward: nan_mean(logged),
        reward_std: nan_std(logged),
        frac_reward_zero_std: if total == 0 {
            f64::NAN
        } else {
            zero as f64 / total as f64
        },
    }
}

/// What one micro-batch's loss (TRL's one `compute_loss` call) contributes: sums over its
/// counted tokens, and per sequence the counted tokens and the clipped ones.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MicroBatch {
    /// Counted (unmasked) tokens.
    pub tokens: f64,
    /// Sum of the k3 KL to the reference, when there is one (`--beta > 0`).
    pub kl_sum: Option<f64>,
    /// Sum of the policy's per-token entropy.
    pub entropy_sum: f64,
    /// Per sequence: its counted tokens, and those clipped below (ratio < 1 - clip_low
    /// with a negative advantage) and above (ratio > 1 + clip_high, positive advantage).
    pub seq_tokens: Vec<f64>,
    pub seq_low: Vec<f64>,
    pub seq_high: Vec<f64>,
}

/// TRL's `global_masked_mean` of one call: the sum over its counted tokens, divided by
/// their number (at least 1).
fn masked_mean(sum: f64, tokens: f64) -> f64 {
    sum / tokens.max(1.0)
}

/// `torch.min`/`max` of the values that are not NaN; NaN when none are.
fn nan_fold(x: impl Iterator<Item = f64>, f: fn(f64, f64) -> f64) -> f64 {
    x.filter(|v| !v.is_nan()).reduce(f).unwrap_or(f64::NAN)
}

/// TRL's loss-side metrics over the micro-batches of a logged line: each call's value,
/// then the mean of the calls' values that are not NaN (TRL's `log`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LossMetrics {
    kl: Vec<f64>,
    entropy: Vec<f64>,
    low: Vec<f64>,
    high: Vec<f64>,
    region: Vec<f64>,
    low_min: Vec<f64>,
    high_max: Vec<f64>,
}

impl LossMetrics {
    pub fn push(&mut self, mb: &MicroBatch) {
        if let Some(kl) = mb.kl_sum {
            self.kl.push(masked_mean(kl, mb.tokens));
        }
        self.entropy.push(masked_mean(mb.entropy_sum, mb.tokens));
        let low: f64 = mb.seq_low.iter().sum();
        let high: f64 = mb.seq_high.iter().sum();
        self.low.push(masked_mean(low, mb.tokens));
        self.high.push(masked_mean(high, mb.tokens));
        // The two regions are disjoint: a token is clipped in one or the other.
        self.region.push(masked_mean(low + high, mb.tokens));
        // Per sequence, the share of its tokens clipped (NaN for a sequence without any).
        let share = |clipped: &[f64]| {
            clipped
                .iter()
                .zip(&mb.seq_tokens)
                .map(|(c, t)| c / t)
                .collect::<Vec<_>>()
        };
        self.low_min
            .push(nan_fold(share(&mb.seq_low).into_iter(), f64::min));
        self.high_max
            .push(nan_fold(share(&mb.seq_high).into_iter(), f64::max));
    }

    /// The metrics under TRL's names (`kl` only with a reference); a metric whose every
    /// value is NaN is left out, as TRL logs it as `None`.
    pub fn named(&self) -> Vec<(&'static str, f64)> {
        let mean = |x: &[f64]| {
            let valid: Vec<f64> = x.iter().copied().filter(|v| !v.is_nan()).collect();
            (!valid.is_empty()).then(|| valid.iter().sum::<f64>() / valid.len() as f64)
        };
        [
            ("kl", &self.kl),
            ("entropy", &self.entropy),
            ("clip_ratio/low_mean", &self.low),
            ("clip_ratio/high_mean", &self.high),
            ("clip_ratio/region_mean", &self.region),
            ("clip_ratio/low_min", &self.low_min),
            ("clip_ratio/high_max", &self.high_max),
        ]
        .into_iter()
        .filter_map(|(name, values)| Some((name, mean(values)?)))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpo::loss::{Aggregation, LossConfig, LossInputs, Normaliser, policy_loss};
    use crate::grpo::mixing::gdpo_group;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use serde_json::Value;

    fn golden() -> Value {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/trl-metrics.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn f64s(v: &Value) -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    }

    fn rows(v: &Value) -> Vec<Vec<f64>> {
        v.as_array().unwrap().iter().map(f64s).collect()
    }

    fn close(what: &str, got: f64, want: &Value) {
        let want = want.as_f64().unwrap_or_else(|| panic!("{what}: {want}"));
        assert!(
            (got - want).abs() < 1e-6,
            "{what}: rmtk {got} vs TRL {want}"
        );
    }

    #[test]
    fn completion_stats_match_trl() {
        let golden = golden();
        let cases = golden["completions"].as_array().unwrap();
        assert!(cases.len() >= 8);
        for (c, case) in cases.iter().enumerate() {
            let lengths: Vec<usize> = f64s(&case["lengths"]).iter().map(|&l| l as usize).collect();
            let truncated: Vec<bool> = case["truncated"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_bool().unwrap())
                .collect();
            let stats = completion_stats(&lengths, &truncated).unwrap();
            let want = case["metrics"].as_object().unwrap();
            assert_eq!(want.len(), 7, "case {c}");
            for (name, got) in stats.named() {
                close(&format!("case {c} {name}"), got, &want[name]);
            }
        }
    }

    #[test]
    fn reward_stats_match_trl_under_both_aggregations() {
        let golden = golden();
        let cases = golden["rewards"].as_array().unwrap();
        assert!(cases.len() >= 12);
        let mut gdpo = 0;
        for (c, case) in cases.iter().enumerate() {
            let n = case["num_generations"].as_u64().unwrap() as usize;
            let stats = match case["aggregation"].as_str().unwrap() {
                "sum_then_normalize" => {
                    // rmtk's mixed reward as TRL's one reward function.
                    let r = f64s(&case["rewards"]);
                    reward_stats(&r, &r, ZeroStdScope::Group(n))
                }
                _ => {
                    // GDPO: the trainer's group stage, then the batch's std.
                    gdpo += 1;
                    let w = case["constraint_weight"].as_f64().unwrap();
                    let (writing, verdict) = (f64s(&case["writing"]), f64s(&case["verdict"]));
                    let logged: Vec<f64> = writing
                        .iter()
                        .zip(&verdict)
                        .map(|(a, b)| a + w * b)
                        .collect();
                    let normalised: Vec<f64> = writing
                        .chunks(n)
                        .zip(verdict.chunks(n))
                        .flat_map(|(a, b)| gdpo_group(&[a, b], &[1.0, w]))
                        .collect();
                    reward_stats(&logged, &normalised, ZeroStdScope::Batch)
                }
            };
            for (name, got) in stats.named() {
                close(&format!("case {c} {name}"), got, &case["metrics"][name]);
            }
        }
        assert!(gdpo >= 4);
    }

    /// The loss-side metrics through rmtk's own loss (f32 tensors, as trained) and the
    /// aggregation above, against TRL's `_compute_loss` and `log`.
    #[test]
    fn loss_metrics_match_trl_through_the_policy_loss() {
        type B = crate::device::Cpu;
        let golden = golden();
        let cases = golden["loss"].as_array().unwrap();
        assert!(cases.len() >= 8);
        let device = Default::default();
        let t2 = |v: &Value| -> burn::tensor::Tensor<B, 2> {
            let r = rows(v);
            let (n, t) = (r.len(), r[0].len());
            let flat: Vec<f32> = r.iter().flatten().map(|&x| x as f32).collect();
            burn::tensor::Tensor::from_data(burn::tensor::TensorData::new(flat, [n, t]), &device)
        };
        for (c, case) in cases.iter().enumerate() {
            let beta = case["beta"].as_f64().unwrap();
            let cfg = LossConfig {
                clip_low: case["clip_low"].as_f64().unwrap(),
                clip_high: case["clip_high"].as_f64().unwrap(),
                beta,
                aggregation: Aggregation::TokenMean,
            };
            let mut metrics = LossMetrics::default();
            for mb in case["micro_batches"].as_array().unwrap() {
                let adv: Vec<f32> = f64s(&mb["advantages"]).iter().map(|&a| a as f32).collect();
                let k = adv.len();
                let out = policy_loss(
                    LossInputs {
                        logp: t2(&mb["logp"]),
                        old_logp: t2(&mb["old_logp"]),
                        ref_logp: Some(t2(&mb["ref_logp"])),
                        advantages: burn::tensor::Tensor::from_data(
                            burn::tensor::TensorData::new(adv, [k]),
                            &device,
                        ),
                        mask: t2(&mb["mask"]),
                        is_weight: None,
                    },
                    &cfg,
                    Normaliser {
                        tokens: 1.0,
                        sequences: 1.0,
                    },
                );
                // The trainer sums the entropy over the counted tokens.
                let entropy_sum: f64 = rows(&mb["entropy"])
                    .iter()
                    .flatten()
                    .zip(rows(&mb["mask"]).iter().flatten())
                    .map(|(e, m)| e * m)
                    .sum();
                metrics.push(&out.trl_micro_batch(entropy_sum, beta > 0.0));
            }
            let want = case["metrics"].as_object().unwrap();
            let got = metrics.named();
            let names: Vec<&str> = got.iter().map(|(n, _)| *n).collect();
            let mut want_names: Vec<&str> = want.keys().map(String::as_str).collect();
            want_names.sort_unstable();
            let mut sorted = names.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, want_names, "case {c}");
            for (name, value) in got {
                close(&format!("case {c} {name}"), value, &want[name]);
            }
        }
    }

    #[test]
    fn reward_stats_properties() {
        let mut rng = ChaCha8Rng::seed_from_u64(16);
        for _ in 0..500 {
            let n = rng.random_range(2..9);
            let groups = rng.random_range(1..6);
            let mut r: Vec<f64> = (0..n * groups)
                .map(|_| rng.random_range(-5.0..5.0))
                .collect();
            let constant = rng.random_range(0..=groups);
            for g in 0..constant {
                let v = r[g * n];
                r[g * n..(g + 1) * n].fill(v);
            }
            let s = reward_stats(&r, &r, ZeroStdScope::Group(n));
            // The fraction counts the groups without variance, by completions.
            assert!((s.frac_reward_zero_std - constant as f64 / groups as f64).abs() < 1e-12);
            // reward_std is the batch's, not a mean of the groups'.
            assert!((s.reward_std - nan_std(&r)).abs() < 1e-12);
            // A shift moves the mean only; a scale scales both and keeps the fraction.
            let moved: Vec<f64> = r.iter().map(|x| 3.0 * x + 7.0).collect();
            let m = reward_stats(&moved, &moved, ZeroStdScope::Group(n));
            assert!((m.reward - (3.0 * s.reward + 7.0)).abs() < 1e-9);
            assert!((m.reward_std - 3.0 * s.reward_std).abs() < 1e-9);
            assert_eq!(m.frac_reward_zero_std, s.frac_reward_zero_std);
            // Under GDPO's batch scope it is all or nothing.
            let b = reward_stats(&r, &r, ZeroStdScope::Batch).frac_reward_zero_std;
            assert!(b == 0.0 || (b == 1.0 && constant == groups && groups == 1));
        }
        // NaN rewards (unscorable) are left out of the mean and std, as nanmean does.
        let s = reward_stats(
            &[1.0, f64::NAN, 3.0, 5.0],
            &[1.0, 2.0, 3.0, 5.0],
            ZeroStdScope::Group(2),
        );
        assert_eq!((s.reward, s.reward_std), (3.0, 2.0));
    }

    #[test]
    fn completion_stats_properties() {
        let mut rng = ChaCha8Rng::seed_from_u64(17);
        for _ in 0..500 {
            let k = rng.random_range(1..40);
            let lengths: Vec<usize> = (0..k).map(|_| rng.random_range(1..64)).collect();
            let truncated: Vec<bool> = (0..k).map(|_| rng.random_bool(0.3)).collect();
            let s = completion_stats(&lengths, &truncated).unwrap();
            assert!(s.min_length <= s.mean_length && s.mean_length <= s.max_length);
            assert!((0.0..=1.0).contains(&s.clipped_ratio));
            if truncated.iter().all(|t| *t) {
                assert_eq!(s.mean_terminated_length, 0.0);
            } else {
                assert!(s.min_terminated_length >= s.min_length);
                assert!(s.max_terminated_length <= s.max_length);
                assert!(s.min_terminated_length <= s.mean_terminated_length);
            }
        }
        assert_eq!(completion_stats(&[], &[]), None);
    }

    #[test]
    fn loss_metrics_average_calls_not_tokens() {
        // Two micro-batches, 1 token and 3 tokens: TRL averages the two calls' means.
        let mut m = LossMetrics::default();
        m.push(&MicroBatch {
            tokens: 1.0,
            kl_sum: Some(1.0),
            entropy_sum: 2.0,
            seq_tokens: vec![1.0],
            seq_low: vec![1.0],
            seq_high: vec![0.0],
        });
        m.push(&MicroBatch {
            tokens: 3.0,
            kl_sum: Some(0.0),
            entropy_sum: 3.0,
            seq_tokens: vec![2.0, 1.0, 0.0],
            seq_low: vec![0.0, 0.0, 0.0],
            seq_high: vec![1.0, 0.0, 0.0],
        });
        let got: std::collections::BTreeMap<_, _> = m.named().into_iter().collect();
        assert_eq!(got["kl"], 0.5);
        assert_eq!(got["entropy"], 1.5);
        assert_eq!(got["clip_ratio/low_mean"], 0.5);
        assert!((got["clip_ratio/high_mean"] - 1.0 / 6.0).abs() < 1e-15);
        assert!((got["clip_ratio/region_mean"] - (1.0 + 1.0 / 3.0) / 2.0).abs() < 1e-15);
        // A sequence without tokens has no share: left out of the min and max.
        assert_eq!(got["clip_ratio/low_min"], 0.5);
        assert_eq!(got["clip_ratio/high_max"], 0.25);
        // Without a reference, no kl at all.
        let mut n = LossMetrics::default();
        n.push(&MicroBatch {
            tokens: 2.0,
            seq_tokens: vec![2.0],
            seq_low: vec![0.0],
            seq_high: vec![0.0],
            ..Default::default()
        });
        assert!(n.named().iter().all(|(k, _)| *k != "kl"));
    }
}
