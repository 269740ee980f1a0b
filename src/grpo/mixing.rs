//! Rewards of one GRPO group: mixing the writing reward with the constraint verdict,
//! deciding whether the group carries signal, and group-normalised advantages.
//! Pure functions over plain numbers; no tensors (see docs/rlmr.md).
//!
//! RLMR's dynamic mix: with `n` responses of which `k` violate a constraint
//! (`0 < k < n`), every violator's writing reward is lowered by the same
//! `delta = max(0, (n * r_max_vio + n * gamma - sum(r)) / (n - k))`, which makes
//! `r_j - delta <= mean(r') - gamma` for every violator `j`: a violator can never
//! out-score the group average, however well it is written.
//!
//! A rubric's soft score (in [0, 1], [`crate::verify::rubric`]) joins the writing
//! reward: `r + w_rubric * score` before RLMR's penalty (so the guarantee holds for the
//! sum), or as a third reward normalised within the group under GDPO. Hard rubric items
//! are part of the verdict.

use serde::{Deserialize, Serialize};

/// How the writing reward and the constraint verdict become one reward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Mixing {
    /// RLMR's dynamic penalty (the default).
    Rlmr,
    /// `r + w * pass` with a fixed weight `w`.
    Fixed,
    /// The writing reward alone (single-reward baseline).
    WritingOnly,
    /// 1 if every constraint passes, else 0 (single-reward baseline).
    ConstraintOnly,
    /// GDPO (TRL's `multi_objective_aggregation="normalize_then_sum"`): the writing reward
    /// and the verdict each normalised within the group, summed with weights 1 and `w`;
    /// advantages then normalised over the batch, not the group.
    Gdpo,
}

impl Mixing {
    /// Whether the constraint verdict enters the reward (and a group where every
    /// response violates can be dropped).
    pub fn uses_constraints(self) -> bool {
        !matches!(self, Mixing::WritingOnly)
    }
}

/// The knobs of mixing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MixConfig {
    pub mixing: Mixing,
    /// RLMR's minimum gap between a violator and the group mean (paper: 1).
    pub gamma: f64,
    /// Weight of the verdict under `Mixing::Fixed` and `Mixing::Gdpo`.
    pub constraint_weight: f64,
    /// Weight of the rubric score (added to the writing reward; under GDPO, the weight
    /// of the normalised rubric score).
    pub rubric_weight: f64,
}

/// The epsilon under each reward's group standard deviation in GDPO (TRL's constant).
pub const GDPO_EPS: f64 = 1e-4;

/// GDPO's group stage: each reward `k` (one slice of the group's `n` values per reward)
/// becomes `(r - mean_k) / (std_k + 1e-4)` (sample standard deviation; 0 for a group of
/// one), and the response's reward is the weighted sum over `k`. Invariant to each
/// reward's shift, and to its scale up to the epsilon.
pub fn gdpo_group(rewards: &[&[f64]], weights: &[f64]) -> Vec<f64> {
    assert_eq!(rewards.len(), weights.len(), "one weight per reward");
    let n = rewards.first().map_or(0, |r| r.len());
    let mut out = vec![0.0; n];
    for (r, w) in rewards.iter().zip(weights) {
        assert_eq!(r.len(), n, "every reward scores the whole group");
        let (m, s) = (mean(r), std_dev(r));
        for (o, x) in out.iter_mut().zip(r.iter()) {
            *o += w * ((x - m) / (s + GDPO_EPS));
        }
    }
    out
}

/// A group's mixed rewards and what it took to get them.
#[derive(Debug, Clone, PartialEq)]
pub struct MixedGroup {
    /// One reward per response, after mixing.
    pub rewards: Vec<f64>,
    /// The penalty subtracted from each violator (0 unless RLMR mixed a group with
    /// violators).
    pub delta: f64,
    /// Number of violators.
    pub violators: usize,
}

/// RLMR's penalty for a group; `None` when every response violates (no penalty can
/// make a violator fall below the mean of a group of violators).
pub fn rlmr_delta(rewards: &[f64], pass: &[bool], gamma: f64) -> Option<f64> {
    let n = rewards.len();
    let k = pass.iter().filter(|p| !**p).count();
    if k == 0 {
        return Some(0.0);
    }
    if k == n {
        return None;
    }
    let sum: f64 = rewards.iter().sum();
    let max_vio = rewards
        .iter()
        .zip(pass)
        .filter(|(_, p)| !**p)
        .map(|(r, _)| *r)
        .fold(f64::NEG_INFINITY, f64::max);
    let (n, k) = (n as f64, k as f64);
    Some(((n * max_vio + n * gamma - sum) / (n - k)).max(0.0))
}

/// Mix one group's writing rewards with its verdicts (no rubric).
pub fn mix(writing: &[f64], pass: &[bool], cfg: &MixConfig) -> MixedGroup {
    mix_with_rubric(writing, pass, &[], cfg)
}

/// Mix one group's writing rewards, rubric scores and verdicts. `rubric` holds each
/// response's rubric score in [0, 1] (0 for a response without one; empty: no
/// rubric at all). Under rlmr, fixed and writing-only, `r + w_rubric * score` takes the
/// writing reward's place (RLMR's penalty is computed on the sum, so a violator still
/// trails the group mean by gamma); under gdpo the score is a third reward, normalised
/// within the group and weighted `w_rubric`; constraint-only ignores it.
pub fn mix_with_rubric(
    writing: &[f64],
    pass: &[bool],
    rubric: &[f64],
    cfg: &MixConfig,
) -> MixedGroup {
    assert_eq!(writing.len(), pass.len(), "one verdict per response");
    assert!(
        rubric.is_empty() || rubric.len() == writing.len(),
        "one rubric score per response"
    );
    let violators = pass.iter().filter(|p| !**p).count();
    // The writing reward with the rubric score added (rlmr, fixed, writing-only).
    let quality: Vec<f64> = if rubric.is_empty() {
        writing.to_vec()
    } else {
        writing
            .iter()
            .zip(rubric)
            .map(|(r, s)| r + cfg.rubric_weight * s)
            .collect()
    };
    let (rewards, delta) = match cfg.mixing {
        Mixing::WritingOnly => (quality, 0.0),
        Mixing::ConstraintOnly => (pass.iter().map(|&p| f64::from(u8::from(p))).collect(), 0.0),
        Mixing::Fixed => (
            quality
                .iter()
                .zip(pass)
                .map(|(r, &p)| r + cfg.constraint_weight * f64::from(u8::from(p)))
                .collect(),
            0.0,
        ),
        Mixing::Gdpo => {
            let verdicts: Vec<f64> = pass.iter().map(|&p| f64::from(u8::from(p))).collect();
            let rewards = if rubric.is_empty() {
                gdpo_group(&[writing, &verdicts], &[1.0, cfg.constraint_weight])
            } else {
                gdpo_group(
                    &[writing, &verdicts, rubric],
                    &[1.0, cfg.constraint_weight, cfg.rubric_weight],
                )
            };
            (rewards, 0.0)
        }
        Mixing::Rlmr => {
            // A group of violators only is dropped by the filter; its rewards stay as
            // they are so the metrics still show them.
            let delta = rlmr_delta(&quality, pass, cfg.gamma).unwrap_or(0.0);
            (
                quality
                    .iter()
                    .zip(pass)
                    .map(|(r, &p)| if p { *r } else { r - delta })
                    .collect(),
                delta,
            )
        }
    };
    MixedGroup {
        rewards,
        delta,
        violators,
    }
}

/// When a group is dropped for carrying no useful signal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FilterConfig {
    /// Drop a group whose every mixed reward is above this.
    pub high: Option<f64>,
    /// Drop a group whose every mixed reward is below this.
    pub low: Option<f64>,
    /// Drop a group whose mixed rewards have a standard deviation below this.
    pub std_eps: f64,
}

/// Why a group was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    AllViolate,
    AllAboveHigh,
    AllBelowLow,
    NoVariance,
}

/// Whether a mixed group is kept for the update, and if not, why.
pub fn filter(
    group: &MixedGroup,
    n: usize,
    mixing: Mixing,
    cfg: &FilterConfig,
) -> Option<DropReason> {
    if mixing.uses_constraints() && group.violators == n {
        return Some(DropReason::AllViolate);
    }
    let r = &group.rewards;
    if let Some(high) = cfg.high
        && r.iter().all(|x| *x > high)
    {
        return Some(DropReason::AllAboveHigh);
    }
    if let Some(low) = cfg.low
        && r.iter().all(|x| *x < low)
    {
        return Some(DropReason::AllBelowLow);
    }
    if std_dev(r) < cfg.std_eps {
        return Some(DropReason::NoVariance);
    }
    None
}

/// How group-relative advantages are scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum AdvantageScale {
    /// `(r - mean) / (std + eps)` (GRPO).
    Std,
    /// `r - mean` (Dr. GRPO).
    None,
}

/// Group-normalised advantages, one per response.
pub fn advantages(rewards: &[f64], scale: AdvantageScale, eps: f64) -> Vec<f64> {
    let m = mean(rewards);
    match scale {
        AdvantageScale::None => rewards.iter().map(|r| r - m).collect(),
        AdvantageScale::Std => {
            let s = std_dev(rewards);
            rewards.iter().map(|r| (r - m) / (s + eps)).collect()
        }
    }
}

pub fn mean(x: &[f64]) -> f64 {
    if x.is_empty() {
        0.0
    } else {
        x.iter().sum::<f64>() / x.len() as f64
    }
}

/// Sample standard deviation (n - 1), as `torch.std` and TRL's GRPO use; 0 for fewer
/// than two values.
pub fn std_dev(x: &[f64]) -> f64 {
    if x.len() < 2 {
        return 0.0;
    }
    let m = mean(x);
    (x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (x.len() - 1) as f64).sqrt()
}

/// DAPO's soft overlong penalty: 0 up to `max_len - cache`, then falling linearly to
/// -1 at `max_len`, and -1 beyond.
pub fn soft_length_penalty(len: usize, max_len: usize, cache: usize) -> f64 {
    let start = max_len.saturating_sub(cache);
    if len <= start {
        0.0
    } else if len <= max_len && cache > 0 {
        (start as f64 - len as f64) / cache as f64
    } else {
        -1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    const RLMR: MixConfig = MixConfig {
        mixing: Mixing::Rlmr,
        gamma: 1.0,
        constraint_weight: 1.0,
        rubric_weight: 1.0,
    };

    fn random_group(rng: &mut ChaCha8Rng) -> (Vec<f64>, Vec<bool>, f64) {
        let n = rng.random_range(2..=16);
        let scale = [0.01, 1.0, 10.0, 1000.0][rng.random_range(0..4)];
        let rewards: Vec<f64> = (0..n)
            .map(|_| (rng.random::<f64>() - 0.5) * 2.0 * scale)
            .collect();
        let p_fail = rng.random::<f64>();
        let pass: Vec<bool> = (0..n).map(|_| rng.random::<f64>() > p_fail).collect();
        let gamma = [0.0, 1e-3, 0.5, 1.0, 5.0][rng.random_range(0..5)];
        (rewards, pass, gamma)
    }

    #[test]
    fn violators_always_sit_gamma_below_the_mean_and_get_negative_advantages() {
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let mut checked = 0;
        for _ in 0..20_000 {
            let (r, pass, gamma) = random_group(&mut rng);
            let k = pass.iter().filter(|p| !**p).count();
            if k == 0 || k == r.len() {
                continue;
            }
            let cfg = MixConfig { gamma, ..RLMR };
            let g = mix(&r, &pass, &cfg);
            let m = mean(&g.rewards);
            let tol = 1e-9 * (1.0 + r.iter().map(|x| x.abs()).fold(0.0, f64::max));
            let adv = advantages(&g.rewards, AdvantageScale::Std, 1e-6);
            for (i, &p) in pass.iter().enumerate() {
                if !p {
                    assert!(
                        g.rewards[i] <= m - gamma + tol,
                        "{r:?} {pass:?} gamma {gamma}"
                    );
                    if gamma > 0.0 {
                        assert!(
                            adv[i] < 0.0,
                            "violator advantage {} in {r:?} {pass:?}",
                            adv[i]
                        );
                    } else {
                        assert!(adv[i] <= tol);
                    }
                } else {
                    assert_eq!(g.rewards[i], r[i], "compliant rewards are untouched");
                }
            }
            checked += 1;
        }
        assert!(checked > 10_000);
    }

    #[test]
    fn under_rlmr_with_a_rubric_a_hard_item_violator_still_gets_a_negative_advantage() {
        // A hard rubric item that fails makes the response a violator (its verdict is
        // false), however high its rubric and writing scores: RLMR's penalty is
        // computed on writing + w * rubric, so the violator trails the mean by gamma.
        let mut rng = ChaCha8Rng::seed_from_u64(1414);
        let mut checked = 0;
        for _ in 0..20_000 {
            let (r, pass, gamma) = random_group(&mut rng);
            let k = pass.iter().filter(|p| !**p).count();
            if k == 0 || k == r.len() {
                continue;
            }
            // Violators with the best rubric scores, the rest anything.
            let rubric: Vec<f64> = pass
                .iter()
                .map(|&p| if p { rng.random::<f64>() } else { 1.0 })
                .collect();
            let w = [0.0, 0.5, 1.0, 10.0, 1e3][rng.random_range(0..5)];
            let cfg = MixConfig {
                gamma,
                rubric_weight: w,
                ..RLMR
            };
            let g = mix_with_rubric(&r, &pass, &rubric, &cfg);
            let sum: Vec<f64> = r.iter().zip(&rubric).map(|(x, s)| x + w * s).collect();
            let m = mean(&g.rewards);
            let tol = 1e-9 * (1.0 + sum.iter().map(|x| x.abs()).fold(0.0, f64::max));
            let adv = advantages(&g.rewards, AdvantageScale::Std, 1e-6);
            for (i, &p) in pass.iter().enumerate() {
                if p {
                    assert_eq!(g.rewards[i], sum[i], "compliant: writing + w * rubric");
                    continue;
                }
                assert!(g.rewards[i] <= m - gamma + tol, "{sum:?} {pass:?}");
                if gamma > 0.0 {
                    assert!(
                        adv[i] < 0.0,
                        "violator advantage {} in {sum:?} {pass:?}",
                        adv[i]
                    );
                }
            }
            checked += 1;
        }
        assert!(checked > 10_000);
    }

    #[test]
    fn the_rubric_score_is_added_or_normalised_by_mixing() {
        let writing = [0.3, 0.1, 0.9, 0.2];
        let pass = [true, false, true, true];
        let rubric = [0.5, 1.0, 0.0, 0.25];
        let cfg = |mixing| MixConfig {
            mixing,
            gamma: 1.0,
            constraint_weight: 0.5,
            rubric_weight: 2.0,
        };
        let fixed = mix_with_rubric(&writing, &pass, &rubric, &cfg(Mixing::Fixed));
        assert_eq!(
            fixed.rewards,
            [0.3 + 1.0 + 0.5, 0.1 + 2.0, 0.9 + 0.5, 0.2 + 0.5 + 0.5]
        );
        let only = mix_with_rubric(&writing, &pass, &rubric, &cfg(Mixing::WritingOnly));
        assert_eq!(only.rewards, [1.3, 2.1, 0.9, 0.7]);
        let constraint = mix_with_rubric(&writing, &pass, &rubric, &cfg(Mixing::ConstraintOnly));
        assert_eq!(constraint.rewards, [1.0, 0.0, 1.0, 1.0]);
        let gdpo = mix_with_rubric(&writing, &pass, &rubric, &cfg(Mixing::Gdpo));
        let want = gdpo_group(
            &[&writing, &[1.0, 0.0, 1.0, 1.0], &rubric],
            &[1.0, 0.5, 2.0],
        );
        assert_eq!(gdpo.rewards, want);
        // GDPO stays invariant to the rubric score's shift.
        let shifted: Vec<f64> = rubric.iter().map(|s| s + 0.5).collect();
        let moved = mix_with_rubric(&writing, &pass, &shifted, &cfg(Mixing::Gdpo));
        for (x, y) in gdpo.rewards.iter().zip(&moved.rewards) {
            assert!((x - y).abs() < 1e-12);
        }
        // Without a rubric, mix is unchanged.
        let plain = mix(&writing, &pass, &cfg(Mixing::Rlmr));
        let empty = mix_with_rubric(&writing, &pass, &[], &cfg(Mixing::Rlmr));
        assert_eq!(plain, empty);
    }

    #[test]
    fn no_violators_leaves_rewards_unchanged() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..1000 {
            let (r, _, gamma) = random_group(&mut rng);
            let pass = vec![true; r.len()];
            let g = mix(&r, &pass, &MixConfig { gamma, ..RLMR });
            assert_eq!(g.rewards, r);
            assert_eq!(g.delta, 0.0);
            assert_eq!(g.violators, 0);
        }
    }

    #[test]
    fn all_violators_is_filtered() {
        let r = vec![0.3, 1.2, -0.4, 2.0];
        let pass = vec![false; 4];
        assert_eq!(rlmr_delta(&r, &pass, 1.0), None);
        let g = mix(&r, &pass, &RLMR);
        let f = FilterConfig {
            high: None,
            low: None,
            std_eps: 1e-6,
        };
        assert_eq!(
            filter(&g, 4, Mixing::Rlmr, &f),
            Some(DropReason::AllViolate)
        );
        assert_eq!(
            filter(&g, 4, Mixing::Fixed, &f),
            Some(DropReason::AllViolate)
        );
        // Writing-only ignores verdicts, so it keeps the group.
        let w = mix(
            &r,
            &pass,
            &MixConfig {
                mixing: Mixing::WritingOnly,
                ..RLMR
            },
        );
        assert_eq!(filter(&w, 4, Mixing::WritingOnly, &f), None);
    }

    #[test]
    fn fixed_weight_lets_a_well_written_violator_win_and_rlmr_does_not() {
        // Response 0 is beautifully written but ignores the word limit; 1-3 comply.
        let writing = vec![4.0, 1.0, 0.5, 0.8];
        let pass = vec![false, true, true, true];
        let fixed = mix(
            &writing,
            &pass,
            &MixConfig {
                mixing: Mixing::Fixed,
                ..RLMR
            },
        );
        let fixed_adv = advantages(&fixed.rewards, AdvantageScale::Std, 1e-6);
        assert!(
            fixed.rewards[0] > fixed.rewards[1],
            "fixed ranks the violator first"
        );
        assert!(fixed_adv[0] > 0.0, "and rewards it");
        let rlmr = mix(&writing, &pass, &RLMR);
        let rlmr_adv = advantages(&rlmr.rewards, AdvantageScale::Std, 1e-6);
        assert!(rlmr.rewards[0] < rlmr.rewards[1] && rlmr.rewards[0] < rlmr.rewards[3]);
        assert!(rlmr_adv[0] < 0.0);
        assert!(rlmr_adv[1] > rlmr_adv[0]);
        // The penalty is exactly what the formula gives: (4*4 + 4*1 - 6.3) / 3.
        assert!((rlmr.delta - (16.0 + 4.0 - 6.3) / 3.0).abs() < 1e-12);
    }

    #[test]
    fn delta_is_zero_when_violators_already_trail_by_gamma() {
        let writing = vec![5.0, 5.0, 5.0, -10.0];
        let pass = vec![true, true, true, false];
        let g = mix(&writing, &pass, &RLMR);
        assert_eq!(g.delta, 0.0);
        assert_eq!(g.rewards, writing);
    }

    #[test]
    fn filters_drop_what_carries_no_signal() {
        let f = FilterConfig {
            high: Some(0.9),
            low: Some(0.1),
            std_eps: 1e-6,
        };
        let g = |r: Vec<f64>| MixedGroup {
            rewards: r,
            delta: 0.0,
            violators: 0,
        };
        assert_eq!(
            filter(&g(vec![1.0, 0.95, 2.0]), 3, Mixing::Rlmr, &f),
            Some(DropReason::AllAboveHigh)
        );
        assert_eq!(
            filter(&g(vec![0.0, 0.05, -2.0]), 3, Mixing::Rlmr, &f),
            Some(DropReason::AllBelowLow)
        );
        assert_eq!(
            filter(&g(vec![0.5, 0.5, 0.5]), 3, Mixing::Rlmr, &f),
            Some(DropReason::NoVariance)
        );
        assert_eq!(filter(&g(vec![0.0, 0.5, 1.0]), 3, Mixing::Rlmr, &f), None);
    }

    #[test]
    fn gdpo_is_invariant_to_each_rewards_shift_and_scale() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for _ in 0..200 {
            let n = rng.random_range(2..9);
            let a: Vec<f64> = (0..n).map(|_| rng.random_range(-3.0..3.0)).collect();
            let b: Vec<f64> = (0..n)
                .map(|_| f64::from(u8::from(rng.random_bool(0.5))))
                .collect();
            let w = [1.0, rng.random_range(0.1..2.0)];
            let base = gdpo_group(&[&a, &b], &w);
            // Shifting either reward changes nothing; scaling it changes only what the
            // epsilon under its std weighs.
            let (shift, scale) = (rng.random_range(-50.0..50.0), rng.random_range(0.5..20.0));
            let a2: Vec<f64> = a.iter().map(|x| x * scale + shift).collect();
            let b2: Vec<f64> = b.iter().map(|x| x + shift).collect();
            let moved = gdpo_group(&[&a2, &b2], &w);
            let tol = 1e-3 * (1.0 + base.iter().fold(0.0f64, |m, x| m.max(x.abs())));
            for (x, y) in base.iter().zip(&moved) {
                assert!((x - y).abs() <= tol, "{base:?} vs {moved:?}");
            }
            // Each reward's part sums to zero over the group.
            assert!(base.iter().sum::<f64>().abs() < 1e-9);
        }
    }

    #[test]
    fn gdpo_matches_trls_normalize_then_sum() {
        // tests/golden/gdpo.json: TRL's own branch run on random batches
        // (scripts/gen-gdpo-golden.py).
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/gdpo.json");
        let golden: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let f64s = |v: &serde_json::Value| -> Vec<f64> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        };
        let cases = golden["cases"].as_array().unwrap();
        assert!(cases.len() >= 10);
        for (c, case) in cases.iter().enumerate() {
            let w = case["constraint_weight"].as_f64().unwrap();
            let mut rewards = Vec::new();
            for (ws, vs) in case["writing"]
                .as_array()
                .unwrap()
                .iter()
                .zip(case["verdict"].as_array().unwrap())
            {
                rewards.extend(gdpo_group(&[&f64s(ws), &f64s(vs)], &[1.0, w]));
            }
            let adv = advantages(&rewards, AdvantageScale::Std, 1e-4);
            for (what, got, want) in [
                ("rewards", &rewards, f64s(&case["rewards"])),
                ("advantages", &adv, f64s(&case["advantages"])),
            ] {
                assert_eq!(got.len(), want.len());
                for (x, y) in got.iter().zip(&want) {
                    assert!((x - y).abs() < 1e-6, "case {c} {what}: {got:?} vs {want:?}");
                }
            }
        }
    }

    #[test]
    fn gdpo_weighs_each_normalised_reward() {
        // A constant reward contributes nothing; one reward alone is its z-score.
        let a = [1.0, 2.0, 3.0];
        let c = [5.0, 5.0, 5.0];
        let only_a = gdpo_group(&[&a, &c], &[1.0, 7.0]);
        let s = std_dev(&a);
        for (x, v) in only_a.iter().zip(a) {
            assert!((x - (v - 2.0) / (s + GDPO_EPS)).abs() < 1e-12);
        }
        let twice = gdpo_group(&[&a, &a], &[1.0, 1.0]);
        for (x, y) in twice.iter().zip(&only_a) {
            assert!((x - 2.0 * y).abs() < 1e-12);
        }
        let cfg = MixConfig {
            mixing: Mixing::Gdpo,
            gamma: 1.0,
            constraint_weight: 0.5,
            rubric_weight: 2.0,
        };
        let g = mix(&[0.3, 0.1, 0.9, 0.2], &[true, false, true, true], &cfg);
        let want = gdpo_group(&[&[0.3, 0.1, 0.9, 0.2], &[1.0, 0.0, 1.0, 1.0]], &[1.0, 0.5]);
        assert_eq!(g.rewards, want);
        assert_eq!((g.delta, g.violators), (0.0, 1));
    }

    #[test]
    fn advantages_are_centred_and_scaled() {
        let a = advantages(&[1.0, 2.0, 3.0, 4.0], AdvantageScale::Std, 0.0);
        assert!(mean(&a).abs() < 1e-12);
        assert!((std_dev(&a) - 1.0).abs() < 1e-12);
        let b = advantages(&[1.0, 2.0, 3.0, 4.0], AdvantageScale::None, 0.0);
        assert_eq!(b, vec![-1.5, -0.5, 0.5, 1.5]);
    }

    #[test]
    fn soft_length_penalty_ramps_down_in_the_cache_window() {
        assert_eq!(soft_length_penalty(50, 100, 20), 0.0);
        assert_eq!(soft_length_penalty(80, 100, 20), 0.0);
        assert!((soft_length_penalty(90, 100, 20) + 0.5).abs() < 1e-12);
        assert_eq!(soft_length_penalty(100, 100, 20), -1.0);
        assert_eq!(soft_length_penalty(130, 100, 20), -1.0);
    }
}
