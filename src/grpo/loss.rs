//! The GRPO policy loss: token-level clipped surrogate (asymmetric clip, as DAPO), an
//! optional KL penalty to a frozen reference with the k3 estimator, averaged over the
//! tokens of the batch (`token-mean`) or per sequence (`seq-mean`).
//!
//! A batch may be split into micro-batches for gradient accumulation: each micro-batch
//! divides by the normaliser of the *whole* batch (its token count, or its sequence
//! count), so that the accumulated gradient is exactly the gradient of the average.

use burn::prelude::*;
use serde::Serialize;

/// How per-token losses become one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Aggregation {
    /// Sum over every response token of the batch, divided by their count (DAPO).
    TokenMean,
    /// Mean over each sequence's tokens, then mean over sequences (original GRPO).
    SeqMean,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossConfig {
    /// Lower clip range: ratios below `1 - clip_low` stop pulling.
    pub clip_low: f64,
    /// Upper clip range: ratios above `1 + clip_high` stop pushing (DAPO's clip-higher).
    pub clip_high: f64,
    /// KL coefficient; 0 disables the reference model.
    pub beta: f64,
    pub aggregation: Aggregation,
}

/// Inputs for one micro-batch of `n` sequences padded to `t` response tokens.
pub struct LossInputs<B: Backend> {
    /// Log-probabilities of the sampled tokens under the policy being trained, `[n, t]`.
    pub logp: Tensor<B, 2>,
    /// The same under the policy that generated the rollout, `[n, t]` (no gradient).
    pub old_logp: Tensor<B, 2>,
    /// The same under the reference model, `[n, t]`, when `beta > 0`.
    pub ref_logp: Option<Tensor<B, 2>>,
    /// One advantage per sequence, `[n]`.
    pub advantages: Tensor<B, 1>,
    /// 1 for response tokens that count, 0 for padding (and masked truncated responses).
    pub mask: Tensor<B, 2>,
    /// Per-token weights of the whole per-token loss (KL included), `[n, t]`: the
    /// truncated importance-sampling ratio of rollouts from a server (TRL's correction).
    pub is_weight: Option<Tensor<B, 2>>,
}

/// The loss of a micro-batch and sums for the step's metrics.
pub struct LossOutput<B: Backend> {
    pub loss: Tensor<B, 1>,
    /// Sum over counted tokens of `[clipped, kl, ratio]`, for averaging over the step.
    pub clipped_tokens: f64,
    pub kl_sum: f64,
    pub tokens: f64,
    /// Per sequence: counted tokens, and those clipped below (ratio < 1 - clip_low with a
    /// negative advantage) and above (ratio > 1 + clip_high with a positive one), for
    /// TRL's `clip_ratio/*` ([`super::trl_metrics`]).
    pub seq_tokens: Vec<f64>,
    pub seq_low: Vec<f64>,
    pub seq_high: Vec<f64>,
}

impl<B: Backend> LossOutput<B> {
    /// This micro-batch as TRL's one `compute_loss` call sees it, with the sum of its
    /// tokens' entropy; its KL only when a reference scored it.
    pub fn trl_micro_batch(
        &self,
        entropy_sum: f64,
        with_kl: bool,
    ) -> super::trl_metrics::MicroBatch {
        super::trl_metrics::MicroBatch {
            tokens: self.tokens,
            kl_sum: with_kl.then_some(self.kl_sum),
            entropy_sum,
            seq_tokens: self.seq_tokens.clone(),
            seq_low: self.seq_low.clone(),
            seq_high: self.seq_high.clone(),
        }
    }
}

/// Normalisers of a whole batch: its counted tokens and its sequences with any.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normaliser {
    pub tokens: f64,
    pub sequences: f64,
}

/// The loss of one micro-batch, scaled by the whole batch's normaliser.
pub fn policy_loss<B: Backend>(
    inputs: LossInputs<B>,
    cfg: &LossConfig,
    norm: Normaliser,
) -> LossOutput<B> {
    let LossInputs {
        logp,
        old_logp,
        ref_logp,
        advantages,
        mask,
        is_weight,
    } = inputs;
    let [n, t] = logp.dims();
    let adv = advantages.reshape([n, 1]).expand([n, t]);
    let ratio = (logp.clone() - old_logp).exp();
    let unclipped = ratio.clone() * adv.clone();
    let clipped = ratio.clone().clamp(1.0 - cfg.clip_low, 1.0 + cfg.clip_high) * adv.clone();
    // -min(r A, clip(r) A) = max(-r A, -clip(r) A)
    let surrogate = unclipped.clone().neg().max_pair(clipped.clone().neg());
    let mut per_token = surrogate;
    let mut kl_sum = 0.0;
    if cfg.beta > 0.0
        && let Some(ref_logp) = ref_logp
    {
        let diff = ref_logp - logp.clone();
        let kl = diff.clone().exp() - diff - 1.0;
        kl_sum = scalar(&(kl.clone().detach() * mask.clone()).sum());
        per_token = per_token + kl * cfg.beta;
    }
    if let Some(w) = is_weight {
        per_token = per_token * w;
    }
    let masked = per_token * mask.clone();
    let loss = match cfg.aggregation {
        Aggregation::TokenMean => masked.sum() / norm.tokens.max(1.0),
        Aggregation::SeqMean => {
            let lens = mask.clone().sum_dim(1).reshape([n]).clamp_min(1.0);
            (masked.sum_dim(1).reshape([n]) / lens).sum() / norm.sequences.max(1.0)
        }
    };
    // The clip is active where it changes the gradient: the clipped term is the smaller.
    let lower = ratio.clone().lower_elem(1.0 - cfg.clip_low);
    let upper = ratio.greater_elem(1.0 + cfg.clip_high);
    let adv_pos = adv.clone().greater_elem(0.0);
    let adv_neg = adv.lower_elem(0.0);
    let low = lower.bool_and(adv_neg).float() * mask.clone();
    let high = upper.bool_and(adv_pos).float() * mask.clone();
    // The two regions are disjoint, so a token is clipped in at most one.
    let clipped_tokens = scalar(&(low.clone() + high.clone()).sum());
    let per_seq = |x: Tensor<B, 2>| vector(&x.sum_dim(1).reshape([n]));
    LossOutput {
        loss,
        clipped_tokens,
        kl_sum,
        tokens: scalar(&mask.clone().sum()),
        seq_tokens: per_seq(mask),
        seq_low: per_seq(low),
        seq_high: per_seq(high),
    }
}

fn vector<B: Backend>(t: &Tensor<B, 1>) -> Vec<f64> {
    t.clone()
        .into_data()
        .convert::<f64>()
        .into_vec::<f64>()
        .unwrap_or_default()
}

fn scalar<B: Backend>(t: &Tensor<B, 1>) -> f64 {
    t.clone()
        .into_data()
        .convert::<f64>()
        .into_vec::<f64>()
        .map(|v| v.first().copied().unwrap_or(0.0))
        .unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Autodiff;
    use serde_json::Value;

    type A = Autodiff<crate::device::Cpu>;

    fn floats(v: &Value) -> Vec<f32> {
        let mut out = Vec::new();
        fn walk(v: &Value, out: &mut Vec<f32>) {
            match v {
                Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
                Value::Number(n) => out.push(n.as_f64().unwrap() as f32),
                _ => panic!("not a number"),
            }
        }
        walk(v, &mut out);
        out
    }

    fn t2(v: &Value, n: usize, t: usize) -> Tensor<A, 2> {
        Tensor::from_data(TensorData::new(floats(v), [n, t]), &Default::default())
    }

    /// Loss and gradient against PyTorch (scripts/gen-grpo-loss-golden.py).
    #[test]
    fn loss_and_gradient_match_pytorch() {
        let golden: Value =
            serde_json::from_str(include_str!("../../tests/golden/grpo-loss.json")).unwrap();
        let n = golden["n"].as_u64().unwrap() as usize;
        let t = golden["t"].as_u64().unwrap() as usize;
        for case in golden["cases"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let cfg = LossConfig {
                clip_low: case["clip_low"].as_f64().unwrap(),
                clip_high: case["clip_high"].as_f64().unwrap(),
                beta: case["beta"].as_f64().unwrap(),
                aggregation: match case["aggregation"].as_str().unwrap() {
                    "token-mean" => Aggregation::TokenMean,
                    _ => Aggregation::SeqMean,
                },
            };
            let logp = t2(&golden["logp"], n, t).require_grad();
            let mask = t2(&golden["mask"], n, t);
            let norm = Normaliser {
                tokens: floats(&golden["mask"]).iter().map(|&m| f64::from(m)).sum(),
                sequences: n as f64,
            };
            let out = policy_loss(
                LossInputs {
                    logp: logp.clone(),
                    old_logp: t2(&golden["old_logp"], n, t),
                    ref_logp: Some(t2(&golden["ref_logp"], n, t)),
                    advantages: Tensor::from_data(
                        TensorData::new(floats(&golden["advantages"]), [n]),
                        &Default::default(),
                    ),
                    mask,
                    is_weight: None,
                },
                &cfg,
                norm,
            );
            let loss = out
                .loss
                .clone()
                .into_data()
                .convert::<f32>()
                .into_vec::<f32>()
                .unwrap()[0];
            let want = case["loss"].as_f64().unwrap() as f32;
            assert!((loss - want).abs() < 1e-5, "{name}: loss {loss} vs {want}");
            let grads = out.loss.backward();
            let g = logp
                .grad(&grads)
                .unwrap()
                .into_data()
                .convert::<f32>()
                .into_vec::<f32>()
                .unwrap();
            let want_g = floats(&case["grad_logp"]);
            for (i, (a, b)) in g.iter().zip(&want_g).enumerate() {
                assert!((a - b).abs() < 1e-5, "{name}: grad[{i}] {a} vs {b}");
            }
            let clip_frac = out.clipped_tokens / out.tokens;
            let want_clip = case["clip_fraction"].as_f64().unwrap();
            assert!(
                (clip_frac - want_clip).abs() < 1e-9,
                "{name}: clip fraction {clip_frac} vs {want_clip}"
            );
        }
    }

    /// Splitting a batch into micro-batches and summing their gradients gives the
    /// gradient of the whole batch.
    #[test]
    fn micro_batches_accumulate_to_the_batch_gradient() {
        let golden: Value =
            serde_json::from_str(include_str!("../../tests/golden/grpo-loss.json")).unwrap();
        let n = golden["n"].as_u64().unwrap() as usize;
        let t = golden["t"].as_u64().unwrap() as usize;
        for aggregation in [Aggregation::TokenMean, Aggregation::SeqMean] {
            let cfg = LossConfig {
                clip_low: 0.2,
                clip_high: 0.28,
                beta: 0.04,
                aggregation,
            };
            let all = |key: &str| t2(&golden[key], n, t);
            let norm = Normaliser {
                tokens: floats(&golden["mask"]).iter().map(|&m| f64::from(m)).sum(),
                sequences: n as f64,
            };
            let adv: Tensor<A, 1> = Tensor::from_data(
                TensorData::new(floats(&golden["advantages"]), [n]),
                &Default::default(),
            );
            let inputs = |rows: std::ops::Range<usize>, logp: Tensor<A, 2>| LossInputs {
                logp: logp.narrow(0, rows.start, rows.len()),
                old_logp: all("old_logp").narrow(0, rows.start, rows.len()),
                ref_logp: Some(all("ref_logp").narrow(0, rows.start, rows.len())),
                advantages: adv.clone().narrow(0, rows.start, rows.len()),
                mask: all("mask").narrow(0, rows.start, rows.len()),
                is_weight: None,
            };
            let whole = all("logp").require_grad();
            let g_whole = policy_loss(inputs(0..n, whole.clone()), &cfg, norm)
                .loss
                .backward();
            let g_whole = whole
                .grad(&g_whole)
                .unwrap()
                .into_data()
                .into_vec::<f32>()
                .unwrap();
            let half = n / 2;
            let mut g_parts = Vec::new();
            for rows in [0..half, half..n] {
                let leaf = all("logp").require_grad();
                let g = policy_loss(inputs(rows.clone(), leaf.clone()), &cfg, norm)
                    .loss
                    .backward();
                let g = leaf
                    .grad(&g)
                    .unwrap()
                    .into_data()
                    .into_vec::<f32>()
                    .unwrap();
                g_parts.extend_from_slice(&g[rows.start * t..rows.end * t]);
            }
            for (a, b) in g_whole.iter().zip(&g_parts) {
                assert!((a - b).abs() < 1e-7, "{aggregation:?}: {a} vs {b}");
            }
        }
    }
}
