//! Bradley-Terry writing reward models: `train-rm` ([`train`]), `score` ([`score`]),
//! `eval-rm` ([`eval`]).
//!
//! The loss is [`bt_loss`], `-mean(log sigmoid(r+ - r- - margin)) + c * mean((r+ + r-)^2)`,
//! a small pure function over the two reward vectors; [`PairStats`] is its host-side
//! twin for evaluation, with rmtk's metrics (accuracy, margin, reward mean/std, pooled
//! over the pairs); [`trl_metrics`] has TRL RewardTrainer's, averaged over batches.
//!
//! A trained reward model is a Hugging Face sequence-classification folder (see
//! `models::reward`) plus `rmtk_reward_model.json`, which records how rows became
//! tokens ([`SeqSpec`]) so that `score` and `eval-rm` build the same sequences.

pub mod bench;
pub mod bias;
pub mod eval;
pub mod score;
pub mod train;
pub mod trl_metrics;

use crate::kernels::FusedOps;
use std::path::Path;

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use burn::tensor::activation::log_sigmoid;
use serde::{Deserialize, Serialize};

use crate::data::prefs::{EncodedPair, Overlong, Seq, SeqSpec};
use crate::models::load::ComputeDtype;
use crate::models::reward::{HeadInit, RewardBatch, RewardModel};
use crate::models::{Family, ModelDir, Tokenizer};

pub use eval::{EvalRmConfig, run as eval_rm};
pub use score::{ScoreConfig, run as score};
pub use train::{TrainRmConfig, run as train_rm};

/// The Bradley-Terry loss of a batch of pairs, averaged over pairs:
/// `-mean(log sigmoid(chosen - rejected - margin))`, plus `center_coef * mean((chosen +
/// rejected)^2)` when `center_coef` is not 0 (TRL's `center_rewards_coefficient`).
pub fn bt_loss<B: Backend>(
    chosen: Tensor<B, 1>,
    rejected: Tensor<B, 1>,
    margin: Option<Tensor<B, 1>>,
    center_coef: f64,
) -> Tensor<B, 1> {
    let mut diff = chosen.clone() - rejected.clone();
    if let Some(m) = margin {
        diff = diff - m;
    }
    let loss = log_sigmoid(diff).mean().neg();
    if center_coef == 0.0 {
        return loss;
    }
    let sum = chosen + rejected;
    loss + (sum.clone() * sum).mean().mul_scalar(center_coef)
}

/// `log(sigmoid(x))` without overflow.
fn log_sigmoid_f64(x: f64) -> f64 {
    if x >= 0.0 {
        -(-x).exp().ln_1p()
    } else {
        x - x.exp().ln_1p()
    }
}

/// Loss and metrics of a set of pairs from their rewards, on the host.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PairStats {
    pub pairs: usize,
    /// Mean Bradley-Terry loss (with margins and centring, as trained).
    pub loss: f64,
    /// Share of pairs with `r+ > r-` (ties count as wrong).
    pub accuracy: f64,
    /// Mean of `r+ - r-`.
    pub margin: f64,
    /// Mean and population standard deviation of all `2 * pairs` rewards.
    pub reward_mean: f64,
    pub reward_std: f64,
    pub chosen_mean: f64,
    pub rejected_mean: f64,
}

impl PairStats {
    pub fn new(
        chosen: &[f32],
        rejected: &[f32],
        margins: Option<&[f32]>,
        center_coef: f64,
    ) -> Self {
        let n = chosen.len().min(rejected.len());
        if n == 0 {
            return Self {
                pairs: 0,
                loss: f64::NAN,
                accuracy: f64::NAN,
                margin: f64::NAN,
                reward_mean: f64::NAN,
                reward_std: f64::NAN,
                chosen_mean: f64::NAN,
                rejected_mean: f64::NAN,
            };
        }
        let (mut loss, mut wins, mut margin, mut center) = (0.0, 0usize, 0.0, 0.0);
        for i in 0..n {
            let (c, r) = (f64::from(chosen[i]), f64::from(rejected[i]));
            let m = margins.map_or(0.0, |m| f64::from(m[i]));
            loss -= log_sigmoid_f64(c - r - m);
            wins += usize::from(c > r);
            margin += c - r;
            center += (c + r) * (c + r);
        }
        let nf = n as f64;
        let all = chosen[..n]
            .iter()
            .chain(&rejected[..n])
            .map(|&v| f64::from(v));
        let mean = all.clone().sum::<f64>() / (2.0 * nf);
        let var = all.map(|v| (v - mean) * (v - mean)).sum::<f64>() / (2.0 * nf);
        Self {
            pairs: n,
            loss: loss / nf + center_coef * center / nf,
            accuracy: wins as f64 / nf,
            margin: margin / nf,
            reward_mean: mean,
            reward_std: var.sqrt(),
            chosen_mean: chosen[..n].iter().map(|&v| f64::from(v)).sum::<f64>() / nf,
            rejected_mean: rejected[..n].iter().map(|&v| f64::from(v)).sum::<f64>() / nf,
        }
    }
}

/// The file beside a reward model that says how its sequences are built.
pub const RM_INFO_FILE: &str = "rmtk_reward_model.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RmInfo {
    pub format: String,
    pub sequences: SeqSpec,
    /// The id sequences are padded with (also `pad_token_id` in config.json).
    pub pad_token_id: u32,
    /// The backbone it was trained from.
    pub base_model: String,
    pub head: String,
}

impl RmInfo {
    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = dir.join(RM_INFO_FILE);
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        crate::util::write_atomic(&path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))
    }

    /// Read it if present.
    pub fn load(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(RM_INFO_FILE);
        if !path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text)
            .map(Some)
            .with_context(|| format!("{}: not an rmtk reward-model description", path.display()))
    }
}

/// The head's checkpoint key for a family.
pub fn head_key(family: Family) -> &'static str {
    match family {
        Family::Llama => "score.weight",
        Family::Bert => "classifier.weight",
    }
}

/// The longest sequence a backbone takes: BERT's position table; a decoder's
/// `max_position_embeddings`.
pub fn model_max_positions(model: &ModelDir) -> Result<usize> {
    Ok(match model.family {
        Family::Bert => model.bert_config()?.max_position_embeddings,
        Family::Llama => model.llama_config()?.max_position_embeddings,
    })
}

/// The vocabulary size of the embedding.
pub fn model_vocab(model: &ModelDir) -> Result<usize> {
    Ok(match model.family {
        Family::Bert => model.bert_config()?.vocab_size,
        Family::Llama => model.llama_config()?.vocab_size,
    })
}

/// A trained reward model for scoring: the folder must have the head.
pub struct LoadedRm {
    pub dir: ModelDir,
    pub tokenizer: Tokenizer,
    pub info: Option<RmInfo>,
    pub pad_id: u32,
    /// `classifier.bias` of an encoder trained elsewhere, added to every reward.
    pub bias: f32,
    /// The dtype the backbone is loaded and run in (`--dtype`).
    pub dtype: ComputeDtype,
}

impl LoadedRm {
    pub fn open(spec: &str) -> Result<Self> {
        Self::open_with_base(spec, None)
    }

    /// As [`LoadedRm::open`]; a LoRA adapter folder's base replaced by `base` if given.
    pub fn open_with_base(spec: &str, base: Option<&str>) -> Result<Self> {
        let dir = ModelDir::open_with_base(spec, base)?;
        // An adapter folder keeps the head among its own tensors, PEFT's way.
        let (weights, prefix) = match &dir.adapter {
            Some(adapter) => (adapter.weights()?, crate::models::peft::KEY_PREFIX),
            None => (dir.weights()?, ""),
        };
        let key = &format!("{prefix}{}", head_key(dir.family));
        if !weights.contains(key) {
            bail!(
                "model `{spec}` has no reward head (`{key}`): it is a backbone, not a reward model; train one with `rmtk train-rm`"
            );
        }
        if let Some(shape) = weights.shape(key)
            && shape.first() != Some(&1)
        {
            bail!(
                "model `{spec}`: `{key}` has shape {shape:?}; a reward model has one label (num_labels 1)"
            );
        }
        // rmtk's encoder head has no bias (it writes a zero one); a model trained
        // elsewhere may have one, which shifts every reward by the same amount.
        let bias = match weights.read_f32(&format!("{prefix}classifier.bias")) {
            Some(read) => read?.0.first().copied().unwrap_or(0.0),
            None => 0.0,
        };
        let tokenizer = dir.tokenizer()?;
        let info = RmInfo::load(dir.home())?;
        let pad_id = match &info {
            Some(i) => i.pad_token_id,
            None => config_pad_id(&dir).unwrap_or_else(|| tokenizer.pad_id()),
        };
        Ok(Self {
            dir,
            tokenizer,
            info,
            pad_id,
            bias,
            dtype: ComputeDtype::F32,
        })
    }

    /// How to build sequences: the saved spec, with `max_length`/`overlong` replaced
    /// when given; without a saved spec (a model from elsewhere), the family's style,
    /// the chat template if the tokenizer has one, and the model's length.
    pub fn seq_spec(
        &self,
        max_length: Option<usize>,
        overlong: Option<Overlong>,
    ) -> Result<SeqSpec> {
        let limit = model_max_positions(&self.dir)?;
        let mut spec = match &self.info {
            Some(i) => i.sequences.clone(),
            None => SeqSpec::for_model(
                self.dir.family,
                &self.tokenizer,
                limit.min(1024),
                Overlong::Truncate,
            ),
        };
        if let Some(m) = max_length {
            spec.max_length = m;
        }
        if let Some(o) = overlong {
            spec.overlong = o;
        }
        check_max_length(spec.max_length, limit, &self.dir.name)?;
        Ok(spec)
    }

    pub fn load<B: FusedOps>(&self, device: &B::Device) -> Result<RewardModel<B>> {
        RewardModel::from_pretrained_in(&self.dir, HeadInit { seed: 0 }, device, self.dtype.burn())
    }

    /// Rewards of encoded sequences (no gradients), in their order: batches of
    /// `batch_size` sequences of similar length, the head's bias added.
    /// `progress(n)` reports each batch's size.
    pub fn rewards<B: FusedOps>(
        &self,
        model: &RewardModel<B>,
        seqs: &[&Seq],
        batch_size: usize,
        device: &B::Device,
        mut progress: impl FnMut(usize),
    ) -> Result<Vec<f32>> {
        let mut order: Vec<usize> = (0..seqs.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(seqs[i].ids.len()));
        let mut out = vec![0.0f32; seqs.len()];
        for chunk in order.chunks(batch_size.max(1)) {
            let rows: Vec<Vec<u32>> = chunk.iter().map(|&i| seqs[i].ids.clone()).collect();
            let types: Option<Vec<Vec<u32>>> = seqs[chunk[0]].types.as_ref().map(|_| {
                chunk
                    .iter()
                    .map(|&i| {
                        let s = seqs[i];
                        s.types.clone().unwrap_or_else(|| vec![0; s.ids.len()])
                    })
                    .collect()
            });
            let batch = RewardBatch::<B>::from_rows(&rows, types.as_deref(), self.pad_id, device);
            let rewards = model
                .forward(&batch)
                .into_data()
                .convert::<f32>()
                .into_vec::<f32>()
                .map_err(|e| anyhow::anyhow!("reading rewards: {e:?}"))?;
            for (&i, r) in chunk.iter().zip(rewards) {
                out[i] = r + self.bias;
            }
            progress(chunk.len());
        }
        Ok(out)
    }
}

/// Rewards of encoded sequences on a device (the model loaded there), in their order, with
/// a progress bar named `what`.
pub struct RewardsJob<'a> {
    pub rm: &'a LoadedRm,
    pub seqs: &'a [&'a Seq],
    pub batch_size: usize,
    pub what: &'static str,
}

impl crate::device::Job for RewardsJob<'_> {
    type Output = Vec<f32>;

    fn run<B: FusedOps>(self, device: B::Device) -> Result<Self::Output> {
        let model = self.rm.load::<B>(&device)?;
        let bar = crate::util::progress_bar(self.seqs.len() as u64, self.what);
        let out = self
            .rm
            .rewards(&model, self.seqs, self.batch_size, &device, |n| {
                bar.inc(n as u64)
            })?;
        bar.finish_and_clear();
        Ok(out)
    }
}

pub fn check_max_length(max_length: usize, limit: usize, model: &str) -> Result<()> {
    if max_length == 0 {
        bail!("--max-length must be at least 1");
    }
    if max_length > limit {
        bail!(
            "--max-length {max_length} is more than model `{model}` takes ({limit} positions); use --max-length {limit} or less"
        );
    }
    Ok(())
}

fn config_pad_id(dir: &ModelDir) -> Option<u32> {
    dir.config
        .get("pad_token_id")
        .and_then(serde_json::Value::as_u64)
        .and_then(|v| u32::try_from(v).ok())
}

/// Chosen rows then rejected rows of some pairs, as one batch (TRL's order).
pub fn pair_batch<B: FusedOps>(
    pairs: &[&EncodedPair],
    pad_id: u32,
    device: &B::Device,
) -> RewardBatch<B> {
    let rows: Vec<Vec<u32>> = pairs
        .iter()
        .map(|p| p.chosen.ids.clone())
        .chain(pairs.iter().map(|p| p.rejected.ids.clone()))
        .collect();
    let types: Option<Vec<Vec<u32>>> =
        pairs
            .first()
            .and_then(|p| p.chosen.types.as_ref())
            .map(|_| {
                pairs
                    .iter()
                    .map(|p| {
                        p.chosen
                            .types
                            .clone()
                            .unwrap_or_else(|| vec![0; p.chosen.ids.len()])
                    })
                    .chain(pairs.iter().map(|p| {
                        p.rejected
                            .types
                            .clone()
                            .unwrap_or_else(|| vec![0; p.rejected.ids.len()])
                    }))
                    .collect()
            });
    RewardBatch::from_rows(&rows, types.as_deref(), pad_id, device)
}

/// Rewards of many pairs (no gradients), in batches of similar length; returns
/// (chosen, rejected) rewards in the pairs' order.
pub fn pair_rewards<B: FusedOps>(
    model: &RewardModel<B>,
    pairs: &[EncodedPair],
    batch_size: usize,
    pad_id: u32,
    device: &B::Device,
    mut progress: impl FnMut(usize),
) -> (Vec<f32>, Vec<f32>) {
    let mut order: Vec<usize> = (0..pairs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(pairs[i].len()));
    let mut chosen = vec![0.0f32; pairs.len()];
    let mut rejected = vec![0.0f32; pairs.len()];
    for chunk in order.chunks(batch_size.max(1)) {
        let batch_pairs: Vec<&EncodedPair> = chunk.iter().map(|&i| &pairs[i]).collect();
        let batch = pair_batch::<B>(&batch_pairs, pad_id, device);
        let rewards = model
            .forward(&batch)
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .expect("f32 rewards");
        let k = chunk.len();
        for (j, &i) in chunk.iter().enumerate() {
            chosen[i] = rewards[j];
            rejected[i] = rewards[k + j];
        }
        progress(k);
    }
    (chosen, rejected)
}

#[cfg(test)]
mod tests {
    use super::*;

    type B = crate::device::Cpu;

    fn t(v: &[f32]) -> Tensor<B, 1> {
        Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), &Default::default())
    }

    fn scalar(x: Tensor<B, 1>) -> f64 {
        f64::from(x.into_scalar())
    }

    #[test]
    fn equal_rewards_cost_ln2() {
        let loss = scalar(bt_loss(t(&[0.3, -1.0]), t(&[0.3, -1.0]), None, 0.0));
        assert!((loss - std::f64::consts::LN_2).abs() < 1e-6);
    }

    #[test]
    fn tensor_and_host_losses_agree_with_margins_and_centring() {
        let (c, r, m) = (
            [1.5f32, -0.2, 3.0],
            [0.5f32, 0.4, -1.0],
            [0.25f32, 0.0, 1.0],
        );
        for coef in [0.0, 0.01] {
            let got = scalar(bt_loss(t(&c), t(&r), Some(t(&m)), coef));
            let want = PairStats::new(&c, &r, Some(&m), coef).loss;
            assert!((got - want).abs() < 1e-6, "{got} {want}");
        }
        // By hand: -log sigmoid(1 - 0.25), -log sigmoid(-0.6), -log sigmoid(4 - 1).
        let by_hand = [0.75f64, -0.6, 3.0]
            .iter()
            .map(|x| (1.0 + (-x).exp()).ln())
            .sum::<f64>()
            / 3.0;
        assert!((PairStats::new(&c, &r, Some(&m), 0.0).loss - by_hand).abs() < 1e-6);
        let centring = (4.0f64 + 0.04 + 4.0) / 3.0 * 0.01;
        let with = PairStats::new(&c, &r, Some(&m), 0.01).loss;
        assert!((with - by_hand - centring).abs() < 1e-6);
    }

    #[test]
    fn large_differences_do_not_overflow() {
        let loss = scalar(bt_loss(t(&[-200.0]), t(&[200.0]), None, 0.0));
        assert!((loss - 400.0).abs() < 1e-3, "{loss}");
        let loss = scalar(bt_loss(t(&[200.0]), t(&[-200.0]), None, 0.0));
        assert!(loss.abs() < 1e-6);
        assert!((PairStats::new(&[-200.0], &[200.0], None, 0.0).loss - 400.0).abs() < 1e-9);
    }

    #[test]
    fn the_gradient_pushes_chosen_up_and_rejected_down() {
        use burn::backend::Autodiff;
        type A = Autodiff<B>;
        let d = Default::default();
        let c =
            Tensor::<A, 1>::from_data(TensorData::new(vec![0.0f32, 1.0], [2]), &d).require_grad();
        let r =
            Tensor::<A, 1>::from_data(TensorData::new(vec![0.0f32, 2.0], [2]), &d).require_grad();
        let grads = bt_loss(c.clone(), r.clone(), None, 0.0).backward();
        let gc = c
            .grad(&grads)
            .unwrap()
            .into_data()
            .into_vec::<f32>()
            .unwrap();
        let gr = r
            .grad(&grads)
            .unwrap()
            .into_data()
            .into_vec::<f32>()
            .unwrap();
        // d/dc of -log sigmoid(c - r) / n = -(1 - sigmoid(c - r)) / n.
        assert!((gc[0] + 0.25).abs() < 1e-6 && (gr[0] - 0.25).abs() < 1e-6);
        let s = 1.0 / (1.0 + 1.0f32.exp());
        assert!((gc[1] + (1.0 - s) / 2.0).abs() < 1e-6);
    }

    #[test]
    fn stats_count_ties_as_wrong_and_use_population_std() {
        let s = PairStats::new(&[1.0, 2.0, 0.0], &[0.0, 2.0, 1.0], None, 0.0);
        assert!((s.accuracy - 1.0 / 3.0).abs() < 1e-12);
        assert!(s.margin.abs() < 1e-12);
        let all = [1.0f64, 2.0, 0.0, 0.0, 2.0, 1.0];
        let mean = 1.0;
        let std = (all.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / 6.0).sqrt();
        assert!((s.reward_std - std).abs() < 1e-12 && (s.reward_mean - mean).abs() < 1e-12);
        assert!(PairStats::new(&[], &[], None, 0.0).loss.is_nan());
    }
}
