//! TRL's `RewardTrainer` metrics, computed as TRL 1.16 computes them, so that `train-rm`'s
//! `metrics.jsonl` reads on a TRL user's dashboard: per batch (one `compute_loss` call) the
//! pairwise accuracy, the mean margin and the min, mean and max of the batch's chosen and
//! rejected rewards together, then the mean of the batches' values over a logged line
//! (TRL's `log`). A pure function, checked against TRL's own code
//! (`tests/golden/trl-metrics.json`, from `scripts/gen-trl-metrics-golden.py`).
//!
//! rmtk's own `accuracy`, `margin` and `reward_mean` pool the pairs of the whole update (or
//! evaluation) instead: the same numbers when every batch has as many pairs, not otherwise
//! (a short last batch weighs as much as a full one in TRL's).

/// TRL's reward-model metrics of one logged line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrlPairMetrics {
    /// Mean over batches of the share of pairs with `chosen > rejected` (ties are wrong).
    pub accuracy: f64,
    /// Mean over batches of the mean `chosen - rejected` (without any margin column).
    pub margin: f64,
    /// Mean over batches of the least, mean and greatest reward of the batch, chosen and
    /// rejected sides together.
    pub min_reward: f64,
    pub mean_reward: f64,
    pub max_reward: f64,
}

impl TrlPairMetrics {
    /// The metrics under TRL's names.
    pub fn named(&self) -> [(&'static str, f64); 5] {
        [
            ("accuracy", self.accuracy),
            ("margin", self.margin),
            ("min_reward", self.min_reward),
            ("mean_reward", self.mean_reward),
            ("max_reward", self.max_reward),
        ]
    }
}

/// The metrics of batches given as their (chosen, rejected) rewards, pair `i` of a batch
/// being `(chosen[i], rejected[i])`. `None` when no batch holds a pair.
pub fn trl_pair_metrics<'a>(
    batches: impl IntoIterator<Item = (&'a [f32], &'a [f32])>,
) -> Option<TrlPairMetrics> {
    let mut sums = [0.0f64; 5];
    let mut count = 0usize;
    for (chosen, rejected) in batches {
        assert_eq!(
            chosen.len(),
            rejected.len(),
            "one rejected reward per chosen"
        );
        if chosen.is_empty() {
            continue;
        }
        let k = chosen.len() as f64;
        let all = || chosen.iter().chain(rejected).map(|&v| f64::from(v));
        let pairs = || {
            chosen
                .iter()
                .zip(rejected)
                .map(|(&c, &r)| (f64::from(c), f64::from(r)))
        };
        let values = [
            pairs().filter(|(c, r)| c > r).count() as f64 / k,
            pairs().map(|(c, r)| c - r).sum::<f64>() / k,
            all().fold(f64::INFINITY, f64::min),
            all().sum::<f64>() / (2.0 * k),
            all().fold(f64::NEG_INFINITY, f64::max),
        ];
        for (s, v) in sums.iter_mut().zip(values) {
            *s += v;
        }
        count += 1;
    }
    if count == 0 {
        return None;
    }
    let [accuracy, margin, min_reward, mean_reward, max_reward] = sums.map(|s| s / count as f64);
    Some(TrlPairMetrics {
        accuracy,
        margin,
        min_reward,
        mean_reward,
        max_reward,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rm::PairStats;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use serde_json::Value;

    fn f32s(v: &Value) -> Vec<f32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect()
    }

    #[test]
    fn matches_trls_reward_trainer() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/trl-metrics.json");
        let golden: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let cases = golden["reward_model"].as_array().unwrap();
        assert!(cases.len() >= 8);
        for (c, case) in cases.iter().enumerate() {
            let batches: Vec<(Vec<f32>, Vec<f32>)> = case["batches"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| (f32s(&b["chosen"]), f32s(&b["rejected"])))
                .collect();
            let got = trl_pair_metrics(batches.iter().map(|(a, b)| (a.as_slice(), b.as_slice())))
                .unwrap();
            for (name, value) in got.named() {
                let want = case["metrics"][name].as_f64().unwrap();
                assert!(
                    (value - want).abs() < 1e-6,
                    "case {c} {name}: rmtk {value} vs TRL {want}"
                );
            }
        }
    }

    #[test]
    fn equal_batches_agree_with_rmtks_pooled_stats_and_short_ones_need_not() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for _ in 0..300 {
            let (size, batches) = (rng.random_range(1..9), rng.random_range(1..5));
            let chosen: Vec<f32> = (0..size * batches)
                .map(|_| rng.random_range(-3.0..3.0))
                .collect();
            let rejected: Vec<f32> = (0..size * batches)
                .map(|_| rng.random_range(-3.0..3.0))
                .collect();
            let trl = trl_pair_metrics(chosen.chunks(size).zip(rejected.chunks(size))).unwrap();
            let pooled = PairStats::new(&chosen, &rejected, None, 0.0);
            assert!((trl.accuracy - pooled.accuracy).abs() < 1e-12);
            assert!((trl.margin - pooled.margin).abs() < 1e-9);
            assert!((trl.mean_reward - pooled.reward_mean).abs() < 1e-9);
            // The batch extremes average to something between the extremes.
            let lo = chosen
                .iter()
                .chain(&rejected)
                .fold(f32::INFINITY, |a, &b| a.min(b));
            let hi = chosen
                .iter()
                .chain(&rejected)
                .fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            assert!(f64::from(lo) <= trl.min_reward && trl.min_reward <= trl.mean_reward);
            assert!(trl.mean_reward <= trl.max_reward && trl.max_reward <= f64::from(hi));
            assert!((0.0..=1.0).contains(&trl.accuracy));
        }
        // A short last batch weighs as much as a full one.
        let (c, r) = ([1.0f32, 1.0, 1.0, 0.0], [0.0f32, 0.0, 0.0, 1.0]);
        let trl = trl_pair_metrics([(&c[..3], &r[..3]), (&c[3..], &r[3..])]).unwrap();
        assert_eq!(trl.accuracy, 0.5);
        assert_eq!(PairStats::new(&c, &r, None, 0.0).accuracy, 0.75);
        assert_eq!(trl_pair_metrics([(&c[..0], &r[..0])]), None);
    }
}
