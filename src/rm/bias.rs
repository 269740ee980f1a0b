//! What a reward model rewards besides quality: length. Writing reward models are known
//! to prefer longer responses (RLMR: a policy trained on one reward drifts past 1400
//! tokens), so `eval-rm` reports it before the model goes into RL: the rank correlation
//! of reward with response length, accuracy split by which side of a pair is longer, and
//! the mean reward per length bucket. Pure functions over numbers.

use serde::Serialize;

/// Ranks from 1, ties given the mean of the ranks they span (scipy's
/// `rankdata(method="average")`).
pub fn average_ranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut ranks = vec![0.0; x.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && x[order[j + 1]] == x[order[i]] {
            j += 1;
        }
        // Positions i..=j (0-based) share the ranks i+1..=j+1.
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = rank;
        }
        i = j + 1;
    }
    ranks
}

/// Pearson's correlation; NaN when either side is constant (or empty), as scipy.
pub fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len().min(y.len());
    if n == 0 {
        return f64::NAN;
    }
    let mx = x[..n].iter().sum::<f64>() / n as f64;
    let my = y[..n].iter().sum::<f64>() / n as f64;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x[..n].iter().zip(&y[..n]) {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx == 0.0 || syy == 0.0 {
        return f64::NAN;
    }
    (sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0)
}

/// Spearman's rank correlation with ties averaged (`scipy.stats.spearmanr`).
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    pearson(&average_ranks(x), &average_ranks(y))
}

/// Accuracy over some of the pairs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Split {
    pub pairs: usize,
    /// Share with chosen > rejected (NaN with no pairs, written as null).
    pub accuracy: f64,
}

impl Split {
    fn of(hits: impl Iterator<Item = bool>) -> Self {
        let (mut pairs, mut wins) = (0usize, 0usize);
        for hit in hits {
            pairs += 1;
            wins += usize::from(hit);
        }
        Self {
            pairs,
            accuracy: if pairs == 0 {
                f64::NAN
            } else {
                wins as f64 / pairs as f64
            },
        }
    }
}

/// Responses of lengths `min_tokens..=max_tokens` and their mean reward.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bucket {
    pub min_tokens: usize,
    pub max_tokens: usize,
    pub responses: usize,
    pub mean_reward: f64,
}

/// The length-bias report of [`length_bias`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LengthBias {
    /// Spearman's correlation of reward with response length over every scored response
    /// (both sides of every pair).
    pub spearman: f64,
    pub responses: usize,
    /// Pairs whose chosen response is the longer one, and their accuracy.
    pub chosen_longer: Split,
    pub chosen_shorter: Split,
    pub same_length: Split,
    /// Mean reward per length bucket (about equal counts; equal lengths share a bucket).
    pub buckets: Vec<Bucket>,
}

/// How many buckets [`length_bias`] aims for.
pub const BUCKETS: usize = 5;

/// The length-bias report of pairs' rewards and response lengths (tokens).
pub fn length_bias(
    chosen: &[f32],
    rejected: &[f32],
    chosen_len: &[usize],
    rejected_len: &[usize],
) -> LengthBias {
    let n = chosen.len();
    assert!(
        rejected.len() == n && chosen_len.len() == n && rejected_len.len() == n,
        "one reward and one length per side of each pair"
    );
    let rewards: Vec<f64> = chosen
        .iter()
        .chain(rejected)
        .map(|&r| f64::from(r))
        .collect();
    let lengths: Vec<usize> = chosen_len.iter().chain(rejected_len).copied().collect();
    let lengths_f: Vec<f64> = lengths.iter().map(|&l| l as f64).collect();
    let split = |pick: fn(usize, usize) -> bool| {
        Split::of(
            (0..n)
                .filter(|&i| pick(chosen_len[i], rejected_len[i]))
                .map(|i| chosen[i] > rejected[i]),
        )
    };
    LengthBias {
        spearman: spearman(&rewards, &lengths_f),
        responses: rewards.len(),
        chosen_longer: split(|c, r| c > r),
        chosen_shorter: split(|c, r| c < r),
        same_length: split(|c, r| c == r),
        buckets: buckets(&lengths, &rewards, BUCKETS),
    }
}

/// Up to `k` buckets of about equal counts by length; a bucket boundary never splits one
/// length.
fn buckets(lengths: &[usize], rewards: &[f64], k: usize) -> Vec<Bucket> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| lengths[i]);
    let n = order.len();
    let mut out = Vec::new();
    let mut start = 0;
    for b in 1..=k {
        if start >= n {
            break;
        }
        let mut end = (b * n / k).max(start + 1);
        // Keep a length whole: move the boundary past its last response.
        while end < n && lengths[order[end]] == lengths[order[end - 1]] {
            end += 1;
        }
        if b == k {
            end = n;
        }
        let members = &order[start..end];
        out.push(Bucket {
            min_tokens: lengths[members[0]],
            max_tokens: lengths[*members.last().expect("non-empty")],
            responses: members.len(),
            mean_reward: members.iter().map(|&i| rewards[i]).sum::<f64>() / members.len() as f64,
        });
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn ranks_average_ties() {
        assert_eq!(
            average_ranks(&[10.0, 20.0, 10.0, 30.0, 20.0, 20.0]),
            [1.5, 4.0, 1.5, 6.0, 4.0, 4.0]
        );
    }

    #[test]
    fn spearman_properties() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for _ in 0..50 {
            let n = rng.random_range(3..60);
            let x: Vec<f64> = (0..n)
                .map(|_| f64::from(rng.random_range(0..10u8)))
                .collect();
            let y: Vec<f64> = (0..n).map(|_| rng.random::<f64>()).collect();
            let r = spearman(&x, &y);
            if x.iter().all(|&v| v == x[0]) {
                assert!(r.is_nan());
                continue;
            }
            assert!((-1.0..=1.0).contains(&r));
            // Symmetric; unchanged by a strictly increasing map; negated by a decreasing one.
            assert!((spearman(&y, &x) - r).abs() < 1e-12);
            let y3: Vec<f64> = y.iter().map(|v| v.powi(3) * 5.0 + 1.0).collect();
            assert!((spearman(&x, &y3) - r).abs() < 1e-12);
            let neg: Vec<f64> = y.iter().map(|v| -v).collect();
            assert!((spearman(&x, &neg) + r).abs() < 1e-12);
            // A sample with itself: 1.
            assert!((spearman(&x, &x) - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn spearman_equals_scipy() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/length-bias.json");
        let golden: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let floats = |v: &serde_json::Value| -> Vec<f64> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        };
        for case in golden["cases"].as_array().unwrap() {
            let (reward, length) = (floats(&case["reward"]), floats(&case["length"]));
            let rho = case["rho"].as_f64().unwrap();
            assert!(
                (spearman(&reward, &length) - rho).abs() < 1e-12,
                "{}",
                case["name"]
            );
            if case["name"] == "pairs" {
                // Through the report: pair i's chosen is [i], its rejected [pairs + i].
                let n = reward.len() / 2;
                let r32: Vec<f32> = reward.iter().map(|&r| r as f32).collect();
                let lens: Vec<usize> = length.iter().map(|&l| l as usize).collect();
                let report = length_bias(&r32[..n], &r32[n..], &lens[..n], &lens[n..]);
                assert!((report.spearman - rho).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn splits_and_buckets() {
        let chosen = [2.0, 1.0, 0.0, 3.0];
        let rejected = [1.0, 2.0, 1.0, 3.0];
        let report = length_bias(&chosen, &rejected, &[10, 5, 7, 4], &[5, 10, 7, 8]);
        assert_eq!(report.responses, 8);
        // Pair 0: chosen longer, right; pairs 1 and 3: chosen shorter, wrong (3 is a tie).
        assert_eq!(
            (report.chosen_longer.pairs, report.chosen_longer.accuracy),
            (1, 1.0)
        );
        assert_eq!(
            (report.chosen_shorter.pairs, report.chosen_shorter.accuracy),
            (2, 0.0)
        );
        assert_eq!(
            (report.same_length.pairs, report.same_length.accuracy),
            (1, 0.0)
        );
        let counts: usize = report.buckets.iter().map(|b| b.responses).sum();
        assert_eq!(counts, 8);
        // Lengths 4 5 5 7 7 8 10 10: the two 5s, 7s and 10s stay together.
        for pair in report.buckets.windows(2) {
            assert!(pair[0].max_tokens < pair[1].min_tokens);
        }
        let b10 = report.buckets.last().unwrap();
        assert_eq!((b10.min_tokens, b10.max_tokens, b10.responses), (10, 10, 2));
        assert_eq!(b10.mean_reward, 2.0); // chosen 0 and rejected 1, both 2.0
    }
}
