//! Which curves to draw: the table of known metrics, how a run's kind is recognised, the
//! default panels for each kind, how one panel's series are built from one run's metrics or
//! several runs' (an overlay), and the two panels that are not curves: an RM run's reward
//! distributions and a GRPO run's pass rate by constraint type.
//!
//! Trainers' field names may still drift; [`FIELDS`] is the one place that maps every name a
//! metric may be logged under (rmtk's own, and TRL's `trainer_state.json` names) to its
//! canonical name, title and axis range.

use std::collections::BTreeMap;

use super::figure::{
    BarGroup, Bars, Body, HistGroup, Histogram, LegendEntry, Panel, Rgb, Series, Shape, Swatch,
    palette,
};
use super::metrics::{EvalRewards, Metrics, Points, TypeCounts};
use super::ticks::format_number;

/// How far a metric's y axis may be padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// Any value.
    Free,
    /// Never below zero (lengths, norms, times).
    NonNegative,
    /// Within `[0, 1]` (rates, accuracies).
    Fraction,
}

impl Range {
    fn limits(self) -> (f64, f64) {
        match self {
            Range::Free => (f64::NEG_INFINITY, f64::INFINITY),
            Range::NonNegative => (0.0, f64::INFINITY),
            Range::Fraction => (0.0, 1.0),
        }
    }
}

/// A metric the plotter knows.
#[derive(Debug)]
pub struct Field {
    /// Canonical name, used by recipes and accepted in `--metrics`.
    pub name: &'static str,
    /// Other names the trainers may log it under, tried after `name`, in order.
    pub aliases: &'static [&'static str],
    /// Panel title.
    pub title: &'static str,
    pub range: Range,
}

const fn field(
    name: &'static str,
    aliases: &'static [&'static str],
    title: &'static str,
    range: Range,
) -> Field {
    Field {
        name,
        aliases,
        title,
        range,
    }
}

use Range::{Fraction, Free, NonNegative};

/// Every metric the plotter knows by name. Edit here when a trainer renames a field. TRL's
/// names (from a `trainer_state.json`'s `log_history`, with an evaluation's `eval_` prefix
/// taken off) are aliases too, so that an rmtk run and a TRL run share a figure. rmtk writes
/// TRL's names beside its own (README, "Metrics under TRL's names"): where a file has both
/// spellings, the canonical one is drawn, once; a TRL metric that differs from rmtk's
/// namesake is written and listed here as `trl/NAME`, a field of its own.
#[rustfmt::skip]
pub const FIELDS: &[Field] = &[
    // Shared by both trainers. (TRL's closing `train_loss`, an average over the whole run,
    // is dropped when its trainer_state.json is read.)
    field("loss", &["train_loss", "total_loss"], "Loss", Free),
    field("grad_norm", &["gradient_norm", "grad_norm_total"], "Gradient norm", NonNegative),
    field("lr", &["learning_rate"], "Learning rate", NonNegative),
    field("tokens_per_s", &["tokens_per_sec", "tok_per_s", "throughput"], "Throughput (tokens/s)", NonNegative),
    field("epoch", &[], "Epoch", NonNegative),
    // rmtk train-rm.
    field("accuracy", &["acc", "pair_accuracy", "pairwise_accuracy"], "Pairwise accuracy", Fraction),
    field("margin", &["margin_mean", "mean_margin", "reward_margin"], "Mean margin (chosen - rejected)", Free),
    // TRL RewardTrainer's, written by train-rm too: averages of per-batch values (rmtk's
    // accuracy and margin pool the pairs).
    field("trl/accuracy", &[], "Pairwise accuracy (TRL: mean over batches)", Fraction),
    field("trl/margin", &[], "Mean margin (TRL: mean over batches)", Free),
    field("min_reward", &[], "Least reward (TRL: mean over batches)", Free),
    field("max_reward", &[], "Greatest reward (TRL: mean over batches)", Free),
    // TRL: RewardTrainer's `mean_reward`, GRPOTrainer's `reward` (and `reward_std`).
    field("reward_mean", &["rewards_mean", "mean_reward", "reward"], "Reward (mean ± std)", Free),
    field("reward_std", &["rewards_std", "std_reward"], "Reward std", NonNegative),
    // rmtk grpo.
    field("pass_rate", &["constraint_pass_rate", "verifier_pass_rate"], "Constraint pass rate", Fraction),
    field("writing_reward_mean", &["writing_reward", "rm_reward_mean"], "Writing reward (mean ± std)", Free),
    field("writing_reward_std", &["rm_reward_std"], "Writing reward std", NonNegative),
    field("delta_mean", &["mixed_delta_mean"], "Mean delta", Free),
    field("violators", &["violators_mean", "num_violators"], "Violators per group", NonNegative),
    field("violator_negative_adv_frac", &["violators_negative_adv_frac"], "Violators with negative advantage", Fraction),
    field("filtered_group_rate", &["filtered_groups_rate", "filter_rate"], "Filtered-group rate", Fraction),
    field("generation_rounds", &["gen_rounds"], "Generation rounds", NonNegative),
    field("response_len_mean", &["response_length_mean", "mean_response_len", "completions/mean_length"], "Response length (tokens)", NonNegative),
    field("response_len_max", &["response_length_max", "max_response_len", "completions/max_length"], "Longest response (tokens)", NonNegative),
    field("truncation_rate", &["truncated_frac", "truncation_frac", "completions/clipped_ratio"], "Truncation rate", Fraction),
    field("kl", &["kl_mean", "kl_div", "approx_kl"], "KL divergence", Free),
    field("clip_fraction", &["clip_frac", "clipfrac", "clip_ratio/region_mean", "clip_ratio"], "Clip fraction", Fraction),
    field("entropy", &["entropy_mean"], "Entropy", NonNegative),
    // TRL GRPOTrainer's that rmtk has no namesake for, written by grpo too.
    field("frac_reward_zero_std", &[], "Completions in groups without reward variance", Fraction),
    field("completions/min_length", &[], "Shortest response (tokens)", NonNegative),
    field("completions/mean_terminated_length", &[], "Length of responses that ended (tokens)", NonNegative),
    field("completions/min_terminated_length", &[], "Shortest response that ended (tokens)", NonNegative),
    field("completions/max_terminated_length", &[], "Longest response that ended (tokens)", NonNegative),
    field("clip_ratio/low_mean", &[], "Clipped below (ratio < 1 - clip_low, advantage < 0)", Fraction),
    field("clip_ratio/high_mean", &[], "Clipped above (ratio > 1 + clip_high, advantage > 0)", Fraction),
    field("clip_ratio/low_min", &[], "Least share clipped below in a sequence", Fraction),
    field("clip_ratio/high_max", &[], "Greatest share clipped above in a sequence", Fraction),
    // TRL's kl and entropy as rmtk grpo writes them: means over micro-batches (rmtk's
    // weigh tokens; its entropy takes the first pass only).
    field("trl/kl", &[], "KL divergence (TRL: mean over micro-batches)", Free),
    field("trl/entropy", &[], "Entropy (TRL: mean over micro-batches)", NonNegative),
    field("time_generation_s", &["generation_time_s"], "Time per step (s)", NonNegative),
    field("time_scoring_s", &["scoring_time_s"], "Scoring time (s)", NonNegative),
    field("time_update_s", &["update_time_s"], "Update time (s)", NonNegative),
];

/// Fields that follow a schedule the trainer sets: drawn raw even when the others are
/// smoothed.
const SCHEDULES: &[&str] = &["lr"];

/// Fields that are bookkeeping, not curves worth a panel of their own by default.
const BOOKKEEPING: &[&str] = &[
    "epoch",
    "timestamp",
    "time",
    "wall_time",
    "elapsed_s",
    "seed",
    "rank",
];

/// The known metric `name` is (its canonical name or one of its aliases).
pub fn lookup(name: &str) -> Option<&'static Field> {
    FIELDS
        .iter()
        .find(|f| f.name == name || f.aliases.contains(&name))
}

/// Names to try for `name` in a file: `name` itself, then the rest of a known metric's
/// spellings (its canonical name, then its aliases). So a canonical name finds rmtk's
/// spelling first, and an alias asked for by name finds itself where a file has both.
fn spellings(name: &str) -> Vec<&str> {
    match lookup(name) {
        Some(f) => {
            let mut names = vec![name];
            for n in std::iter::once(f.name).chain(f.aliases.iter().copied()) {
                if n != name {
                    names.push(n);
                }
            }
            names
        }
        None => vec![name],
    }
}

/// The training points of metric `name`, under whichever spelling the file uses.
pub fn train_points<'m>(metrics: &'m Metrics, name: &str) -> Option<&'m [(f64, f64)]> {
    spellings(name)
        .into_iter()
        .find_map(|n| metrics.train.get(n))
}

/// The evaluation points of metric `name`: from evaluation lines, or from training-line
/// fields named `eval_NAME` / `eval/NAME`.
pub fn eval_points<'m>(metrics: &'m Metrics, name: &str) -> Option<&'m [(f64, f64)]> {
    let names = spellings(name);
    names.iter().find_map(|n| metrics.eval.get(n)).or_else(|| {
        names
            .iter()
            .flat_map(|n| [format!("eval_{n}"), format!("eval/{n}")])
            .find_map(|n| metrics.train.get(&n))
    })
}

/// Whether the file holds `name` under that very spelling.
fn has_spelling(metrics: &Metrics, name: &str) -> bool {
    metrics.train.get(name).is_some() || metrics.eval.get(name).is_some()
}

fn has_data(metrics: &Metrics, name: &str) -> bool {
    let finite = |points: &[(f64, f64)]| points.iter().any(|(_, y)| y.is_finite());
    train_points(metrics, name).is_some_and(finite)
        || eval_points(metrics, name).is_some_and(finite)
}

/// Whether any of the runs has data for `name`.
fn any_has_data(runs: &[&Metrics], name: &str) -> bool {
    runs.iter().any(|m| has_data(m, name))
}

/// The trainer a metrics file comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// `rmtk grpo`.
    Grpo,
    /// `rmtk train-rm`.
    RewardModel,
    /// Anything else: the first numeric fields are plotted.
    Other,
}

impl RunKind {
    pub fn describe(self) -> &'static str {
        match self {
            RunKind::Grpo => "GRPO run",
            RunKind::RewardModel => "reward-model run",
            RunKind::Other => "run",
        }
    }
}

/// Metrics only a GRPO run logs, and only a reward-model run logs.
const GRPO_SIGNS: &[&str] = &[
    "pass_rate",
    "writing_reward_mean",
    "kl",
    "filtered_group_rate",
    "response_len_mean",
    "clip_fraction",
    "delta_mean",
    "violators",
];
const REWARD_MODEL_SIGNS: &[&str] = &["accuracy", "margin", "reward_mean"];

/// The kind whose telltale metrics the file has more of.
pub fn detect_kind(metrics: &Metrics) -> RunKind {
    let count = |signs: &[&str]| signs.iter().filter(|s| has_data(metrics, s)).count();
    let (grpo, rm) = (count(GRPO_SIGNS), count(REWARD_MODEL_SIGNS));
    match (grpo, rm) {
        (0, 0) => RunKind::Other,
        (g, r) if g >= r => RunKind::Grpo,
        _ => RunKind::RewardModel,
    }
}

/// A panel built around one metric.
#[derive(Debug)]
pub struct Recipe {
    /// Canonical name of the main line (and of its eval markers).
    pub main: &'static str,
    /// Legend name of the main line when the panel has other lines.
    pub main_label: &'static str,
    /// A standard deviation drawn as a ± band around the main line.
    pub band: Option<&'static str>,
    /// Further lines on the same axes, with their legend names.
    pub also: &'static [(&'static str, &'static str)],
}

const fn single(main: &'static str) -> Recipe {
    Recipe {
        main,
        main_label: "train",
        band: None,
        also: &[],
    }
}

const fn banded(main: &'static str, std: &'static str) -> Recipe {
    Recipe {
        main,
        main_label: "mean",
        band: Some(std),
        also: &[],
    }
}

/// Default panels of a GRPO run, by priority: the first six with data are drawn.
pub const GRPO_PANELS: &[Recipe] = &[
    single("pass_rate"),
    banded("writing_reward_mean", "writing_reward_std"),
    single("kl"),
    single("loss"),
    Recipe {
        main: "response_len_mean",
        main_label: "mean",
        band: None,
        also: &[("response_len_max", "max")],
    },
    single("filtered_group_rate"),
    // TRL's `reward` and `reward_std` (rmtk grpo writes them too: every completion of the
    // step); an older rmtk file has only `reward_mean`, the kept groups' mixed reward.
    banded("reward", "reward_std"),
    single("entropy"),
    single("clip_fraction"),
    single("grad_norm"),
    single("truncation_rate"),
    single("delta_mean"),
    single("violator_negative_adv_frac"),
    Recipe {
        main: "time_generation_s",
        main_label: "generation",
        band: None,
        also: &[("time_scoring_s", "scoring"), ("time_update_s", "update")],
    },
    single("tokens_per_s"),
];

/// Default panels of a reward-model run, by priority: the first six with data are drawn.
pub const REWARD_MODEL_PANELS: &[Recipe] = &[
    single("loss"),
    single("accuracy"),
    single("margin"),
    banded("reward_mean", "reward_std"),
    single("lr"),
    single("grad_norm"),
    single("tokens_per_s"),
];

/// Most panels a figure holds.
pub const MAX_PANELS: usize = 6;

/// One panel to draw, with every name resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub title: String,
    /// Metric of the main line and eval markers.
    pub main: String,
    pub main_label: String,
    pub band: Option<String>,
    /// Further lines and their legend names.
    pub also: Vec<(String, String)>,
    pub range: Range,
}

impl Plan {
    fn from_recipe(r: &Recipe) -> Plan {
        let field = lookup(r.main);
        Plan {
            title: field.map_or(r.main, |f| f.title).to_string(),
            main: r.main.to_string(),
            main_label: r.main_label.to_string(),
            band: r.band.map(str::to_string),
            also: r
                .also
                .iter()
                .map(|(n, l)| (n.to_string(), l.to_string()))
                .collect(),
            range: field.map_or(Range::Free, |f| f.range),
        }
    }

    /// The recipe for `name` if one exists (one drawn around that very spelling first),
    /// else a plain one-metric panel.
    fn for_metric(name: &str) -> Plan {
        let canonical = lookup(name).map_or(name, |f| f.name);
        let recipes = || GRPO_PANELS.iter().chain(REWARD_MODEL_PANELS);
        let recipe = recipes()
            .find(|r| r.main == name)
            .or_else(|| recipes().find(|r| r.main == canonical));
        match (recipe, lookup(name)) {
            (Some(r), _) => Plan::from_recipe(r),
            (None, Some(f)) => Plan::from_recipe(&single(f.name)),
            (None, None) => Plan {
                title: name.to_string(),
                main: name.to_string(),
                main_label: "train".into(),
                band: None,
                also: Vec::new(),
                range: Range::Free,
            },
        }
    }
}

/// The default panels for `runs` (one run, or the runs of an overlay): the first
/// [`MAX_PANELS`] recipes of `kind` that have data in any run, or for an unknown kind the
/// first numeric fields.
pub fn default_plans(runs: &[&Metrics], kind: RunKind) -> Vec<Plan> {
    let recipes = match kind {
        RunKind::Grpo => GRPO_PANELS,
        RunKind::RewardModel => REWARD_MODEL_PANELS,
        RunKind::Other => {
            let mut names: Vec<&str> = Vec::new();
            for metrics in runs {
                for n in metrics.train.names().chain(metrics.eval.names()) {
                    // One panel per metric, whichever spelling each run uses.
                    let canonical = lookup(n).map_or(n, |f| f.name);
                    if !names
                        .iter()
                        .any(|m| lookup(m).map_or(*m, |f| f.name) == canonical)
                    {
                        names.push(n);
                    }
                }
            }
            return names
                .into_iter()
                .filter(|n| {
                    !BOOKKEEPING.contains(n) && !n.starts_with("eval_") && !n.starts_with("eval/")
                })
                .filter(|n| any_has_data(runs, n))
                .take(MAX_PANELS)
                .map(Plan::for_metric)
                .collect();
        }
    };
    recipes
        .iter()
        .filter(|r| any_has_data(runs, r.main))
        .take(MAX_PANELS)
        .map(Plan::from_recipe)
        .collect()
}

/// Panels for the metrics a user asked for, in order. `a+b` draws `b` on `a`'s panel.
/// Returns the first name no run has as `Err`.
pub fn requested_plans(runs: &[&Metrics], requested: &[String]) -> Result<Vec<Plan>, String> {
    let mut plans = Vec::new();
    for entry in requested {
        let names: Vec<&str> = entry
            .split('+')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .collect();
        if let Some(missing) = names.iter().find(|n| !any_has_data(runs, n)) {
            return Err(missing.to_string());
        }
        // An alias asked for by name that a file holds is drawn as it is, not its canonical
        // namesake (an rmtk file has both `mean_reward` and `reward_mean`).
        let plan_for = |name: &str| {
            let mut plan = Plan::for_metric(name);
            if plan.main != name && runs.iter().any(|m| has_spelling(m, name)) {
                plan.main = name.to_string();
            }
            plan
        };
        match names.as_slice() {
            [] => {}
            [one] => plans.push(plan_for(one)),
            [first, rest @ ..] => {
                let mut plan = plan_for(first);
                plan.title = names.join(" + ");
                plan.main_label = first.to_string();
                plan.band = None;
                plan.also = rest
                    .iter()
                    .map(|n| (n.to_string(), n.to_string()))
                    .collect();
                plans.push(plan);
            }
        }
    }
    Ok(plans)
}

/// Every field name with data in any of the runs, for error messages.
pub fn available(runs: &[&Metrics]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for metrics in runs {
        for n in metrics.train.names().chain(metrics.eval.names()) {
            if !names.iter().any(|m| m == n) {
                names.push(n.to_string());
            }
        }
    }
    names
}

/// Colours of a panel's lines after the main one.
const ALSO_COLORS: [Rgb; 4] = [
    palette::BLUISH_GREEN,
    palette::REDDISH_PURPLE,
    palette::ORANGE,
    palette::SKY_BLUE,
];
const TRAIN_COLOR: Rgb = palette::BLUE;
const EVAL_COLOR: Rgb = palette::VERMILLION;
/// One colour per run of an overlay, in the order the runs are given.
pub const RUN_COLORS: [Rgb; 7] = [
    palette::BLUE,
    palette::VERMILLION,
    palette::BLUISH_GREEN,
    palette::REDDISH_PURPLE,
    palette::ORANGE,
    palette::SKY_BLUE,
    palette::BLACK,
];
const LINE_WIDTH: f32 = 2.5;
const RAW_WIDTH: f32 = 1.5;
/// Opacity of the raw line under its smoothed version.
const RAW_OPACITY: f32 = 0.3;
const BAND_OPACITY: f32 = 0.2;
/// Opacity of an overlay run's further lines (`response_len_max` beside the mean).
const ALSO_OPACITY: f32 = 0.55;
const MARKER_RADIUS: f32 = 5.0;

/// The colour of the `i`-th run of an overlay.
pub fn run_color(i: usize) -> Rgb {
    RUN_COLORS[i % RUN_COLORS.len()]
}

/// Build the panel for `plan` from `runs` (their metrics, in order); also returns how many
/// data points it draws. `smooth` is the EMA weight of each new point for a smoothed
/// overlay.
///
/// One run: the training line in blue with its eval markers in vermillion, further lines in
/// their own colours, a legend of the latest values. Several runs: every series of a run in
/// that run's colour ([`run_color`]; the figure's legend names them), eval markers joined.
pub fn build_panel(runs: &[&Metrics], plan: &Plan, smooth: Option<f64>) -> (Panel, usize) {
    let overlay = runs.len() > 1;
    // A schedule is not noise: smoothing would only draw it late.
    let canonical = lookup(&plan.main).map_or(plan.main.as_str(), |f| f.name);
    let smooth = smooth.filter(|_| !SCHEDULES.contains(&canonical));
    let mut series = Vec::new();
    let mut points = 0;
    // Series that get the latest value in their legend entry: (index, name, value).
    let mut latest: Vec<(usize, String, Option<f64>)> = Vec::new();

    for (run, metrics) in runs.iter().enumerate() {
        let (main_color, eval_color) = if overlay {
            (run_color(run), run_color(run))
        } else {
            (TRAIN_COLOR, EVAL_COLOR)
        };
        let main = train_points(metrics, &plan.main);
        if let (Some(mean), Some(std)) = (
            main,
            plan.band.as_deref().and_then(|b| train_points(metrics, b)),
        ) {
            let (mut mean, mut std) = join(mean, std);
            if let Some(alpha) = smooth {
                mean = ema(&mean, alpha);
                std = ema(&std, alpha);
            }
            let band = mean
                .iter()
                .zip(&std)
                .map(|((x, m), (_, s))| (*x, m - s, m + s))
                .collect();
            series.push(Series {
                label: if overlay {
                    String::new()
                } else {
                    "± std".into()
                },
                color: main_color,
                opacity: if overlay {
                    BAND_OPACITY * 0.6
                } else {
                    BAND_OPACITY
                },
                shape: Shape::Band { points: band },
            });
        }

        let also = plan
            .also
            .iter()
            .enumerate()
            .filter_map(|(k, (name, label))| {
                let (color, opacity) = if overlay {
                    (main_color, ALSO_OPACITY)
                } else {
                    (ALSO_COLORS[k % ALSO_COLORS.len()], 1.0)
                };
                Some((train_points(metrics, name)?, color, opacity, label.as_str()))
            });
        let lines = main
            .map(|p| (p, main_color, 1.0, plan.main_label.as_str()))
            .into_iter()
            .chain(also);
        for (raw, color, opacity, label) in lines {
            points += finite_count(raw);
            let solid = match smooth {
                Some(alpha) => {
                    series.push(Series {
                        label: String::new(),
                        color,
                        opacity: RAW_OPACITY * opacity,
                        shape: Shape::Line {
                            points: raw.to_vec(),
                            width: RAW_WIDTH,
                        },
                    });
                    ema(raw, alpha)
                }
                None => raw.to_vec(),
            };
            if !overlay {
                latest.push((series.len(), label.to_string(), last_finite(&solid)));
            }
            series.push(Series {
                label: if overlay {
                    String::new()
                } else {
                    label.to_string()
                },
                color,
                opacity,
                shape: Shape::Line {
                    points: solid,
                    width: LINE_WIDTH,
                },
            });
        }

        if let Some(eval) = eval_points(metrics, &plan.main).filter(|p| finite_count(p) > 0) {
            points += finite_count(eval);
            if !overlay {
                latest.push((series.len(), "eval".into(), last_finite(eval)));
            }
            series.push(Series {
                label: if overlay {
                    String::new()
                } else {
                    "eval".into()
                },
                color: eval_color,
                opacity: 1.0,
                shape: Shape::Markers {
                    points: eval.to_vec(),
                    radius: MARKER_RADIUS,
                    joined: true,
                },
            });
        }
    }

    // Legend entries carry the latest value; a lone series shows it as the header note.
    let labelled = series.iter().filter(|s| !s.label.is_empty()).count();
    let mut note = String::new();
    if labelled >= 2 {
        for (i, name, value) in &latest {
            if let Some(value) = value {
                series[*i].label = format!("{name} {}", format_number(*value));
            }
        }
    } else if let Some((_, name, Some(value))) = latest.first() {
        let name = if name == "eval" { "eval" } else { "last" };
        note = format!("{name} {}", format_number(*value));
    }

    let panel = Panel {
        title: plan.title.clone(),
        note,
        body: Body::Curves {
            series,
            y_limits: plan.range.limits(),
        },
    };
    (panel, points)
}

/// The figure legend of an overlay: each run's name in its colour, and what the dots are.
pub fn run_legend(names: &[String], any_eval: bool) -> Vec<LegendEntry> {
    let mut entries: Vec<LegendEntry> = names
        .iter()
        .enumerate()
        .map(|(i, name)| LegendEntry {
            label: name.clone(),
            swatch: Swatch::Line {
                color: run_color(i),
                opacity: 1.0,
                width: LINE_WIDTH,
            },
        })
        .collect();
    if any_eval {
        entries.push(LegendEntry {
            label: "eval (dots)".into(),
            swatch: Swatch::Marker {
                color: GREY,
                joined: true,
            },
        });
    }
    entries
}

const GREY: Rgb = plotters::style::RGBColor(0x77, 0x77, 0x77);
const CHOSEN_COLOR: Rgb = palette::BLUE;
const REJECTED_COLOR: Rgb = palette::VERMILLION;
const EARLY_COLOR: Rgb = palette::SKY_BLUE;
const LATE_COLOR: Rgb = palette::BLUE;

/// Title suffix naming the run a panel comes from, in an overlay.
fn of_run(run: Option<&str>) -> String {
    run.map_or_else(String::new, |name| format!(" · {name}"))
}

/// An RM run's reward distributions at an evaluation: histograms of the chosen and the
/// rejected responses' rewards on shared bins. `run` names the run in an overlay.
pub fn reward_distribution_panel(rewards: &EvalRewards, run: Option<&str>) -> Panel {
    let finite = |v: &[f64]| -> Vec<f64> { v.iter().copied().filter(|x| x.is_finite()).collect() };
    let (chosen, rejected) = (finite(&rewards.chosen), finite(&rewards.rejected));
    let all = chosen.iter().chain(&rejected);
    let (mut lo, mut hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(*v), hi.max(*v))
    });
    if !(lo.is_finite() && hi.is_finite()) {
        (lo, hi) = (-1.0, 1.0);
    } else if hi - lo < 1e-9 {
        (lo, hi) = (lo - 0.5, hi + 0.5);
    }
    let n = chosen.len().max(rejected.len());
    let bins = ((n as f64).sqrt().ceil() as usize).clamp(5, 40);
    let width = (hi - lo) / bins as f64;
    let edges: Vec<f64> = (0..=bins).map(|i| lo + width * i as f64).collect();
    let counts = |values: &[f64]| {
        let mut counts = vec![0u64; bins];
        for v in values {
            let i = (((v - lo) / width).floor() as usize).min(bins - 1);
            counts[i] += 1;
        }
        counts
    };
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let group = |name: &str, values: &[f64], color| HistGroup {
        label: format!("{name} (mean {})", format_number(mean(values))),
        color,
        counts: counts(values),
    };
    let pairs = chosen.len().min(rejected.len());
    let right = chosen.iter().zip(&rejected).filter(|(c, r)| c > r).count();
    Panel {
        title: format!(
            "Eval rewards at step {}{}",
            format_number(rewards.step),
            of_run(run)
        ),
        note: format!(
            "{pairs} pairs, accuracy {}",
            format_number(right as f64 / pairs.max(1) as f64)
        ),
        body: Body::Histogram(Histogram {
            edges,
            groups: vec![
                group("chosen", &chosen, CHOSEN_COLOR),
                group("rejected", &rejected, REJECTED_COLOR),
            ],
            x_label: "reward".into(),
        }),
    }
}

/// Most constraint types a pass-rate panel shows (the most frequent ones).
pub const MAX_CONSTRAINT_TYPES: usize = 16;

/// A GRPO run's pass rate by constraint type, early steps against late steps: the counts of
/// the first and the last quarter of the steps that logged them, pooled, one pair of bars per
/// type, sorted by the late pass rate (best first). A run with one such step gets one bar per
/// type. `None` without counts. `run` names the run in an overlay.
pub fn constraint_types_panel(steps: &[TypeCounts], run: Option<&str>) -> Option<Panel> {
    if steps.is_empty() {
        return None;
    }
    let quarter = steps.len().div_ceil(4);
    fn pool(part: &[TypeCounts]) -> BTreeMap<&str, (u64, u64)> {
        let mut pooled: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        for entry in part {
            for (name, passed, total) in &entry.counts {
                let slot = pooled.entry(name.as_str()).or_default();
                slot.0 += passed;
                slot.1 += total;
            }
        }
        pooled
    }
    let span = |part: &[TypeCounts]| match part {
        [one] => format!("step {}", format_number(one.step)),
        [a, .., b] => format!("steps {}–{}", format_number(a.step), format_number(b.step)),
        [] => String::new(),
    };
    let parts: Vec<(String, &[TypeCounts], Rgb)> = if steps.len() == 1 {
        vec![(span(steps), steps, LATE_COLOR)]
    } else {
        let (early, late) = (&steps[..quarter], &steps[steps.len() - quarter..]);
        vec![
            (format!("early: {}", span(early)), early, EARLY_COLOR),
            (format!("late: {}", span(late)), late, LATE_COLOR),
        ]
    };
    let pooled: Vec<BTreeMap<&str, (u64, u64)>> = parts.iter().map(|(_, p, _)| pool(p)).collect();

    // The most frequent types over both parts, then sorted by the last part's rate.
    let mut types: Vec<(&str, u64)> = Vec::new();
    for map in &pooled {
        for (name, (_, total)) in map {
            match types.iter_mut().find(|(n, _)| *n == *name) {
                Some(slot) => slot.1 += total,
                None => types.push((*name, *total)),
            }
        }
    }
    let all_types = types.len();
    types.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    types.truncate(MAX_CONSTRAINT_TYPES);
    let rate = |map: &BTreeMap<&str, (u64, u64)>, name: &str| match map.get(name) {
        Some((passed, total)) if *total > 0 => *passed as f64 / *total as f64,
        _ => f64::NAN,
    };
    let last_part = pooled.last()?;
    let key = |name: &str| {
        let r = rate(last_part, name);
        if r.is_nan() { -1.0 } else { r }
    };
    types.sort_by(|a, b| key(b.0).total_cmp(&key(a.0)).then(a.0.cmp(b.0)));

    let groups = parts
        .iter()
        .zip(&pooled)
        .map(|((label, _, color), map)| BarGroup {
            label: label.clone(),
            color: *color,
            values: types.iter().map(|(name, _)| rate(map, name)).collect(),
        })
        .collect();
    let shown = if types.len() < all_types {
        format!(" ({} most frequent of {all_types})", types.len())
    } else {
        String::new()
    };
    Some(Panel {
        title: format!("Pass rate by constraint type{shown}{}", of_run(run)),
        note: String::new(),
        body: Body::Bars(Bars {
            categories: types.iter().map(|(name, _)| name.to_string()).collect(),
            groups,
            x_label: "pass rate".into(),
        }),
    })
}

/// The steps both series have, as two aligned series.
fn join(a: &[(f64, f64)], b: &[(f64, f64)]) -> (Points, Points) {
    let (mut i, mut j) = (0, 0);
    let (mut left, mut right) = (Vec::new(), Vec::new());
    while i < a.len() && j < b.len() {
        match a[i].0.total_cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                left.push(a[i]);
                right.push(b[j]);
                i += 1;
                j += 1;
            }
        }
    }
    (left, right)
}

/// Exponential moving average over steps, starting at the first finite value: each step
/// moves the average `alpha` of the way to the value, so a point `d` steps after the
/// previous one weighs `w = 1 - (1 - alpha)^d` in `s = w * y + (1 - w) * s` (`w = alpha`
/// for a point every step). A run that logs every fifth step (TRL's default logging) is
/// then smoothed like one that logs every step, and overlaid runs alike. Non-finite values
/// stay gaps and leave the average as it was.
pub fn ema(points: &[(f64, f64)], alpha: f64) -> Vec<(f64, f64)> {
    let mut state: Option<(f64, f64)> = None;
    points
        .iter()
        .map(|(x, y)| {
            if !y.is_finite() {
                return (*x, f64::NAN);
            }
            let s = match state {
                None => *y,
                Some((last_x, s)) => {
                    let steps = if x - last_x > 0.0 { x - last_x } else { 1.0 };
                    let w = 1.0 - (1.0 - alpha).powf(steps);
                    w * y + (1.0 - w) * s
                }
            };
            state = Some((*x, s));
            (*x, s)
        })
        .collect()
}

fn finite_count(points: &[(f64, f64)]) -> usize {
    points.iter().filter(|(_, y)| y.is_finite()).count()
}

fn last_finite(points: &[(f64, f64)]) -> Option<f64> {
    points.iter().rev().map(|(_, y)| *y).find(|y| y.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(text: &str) -> Metrics {
        Metrics::parse(text.as_bytes())
    }

    fn titles(plans: &[Plan]) -> Vec<&str> {
        plans.iter().map(|p| p.main.as_str()).collect()
    }

    #[test]
    fn the_field_table_is_consistent() {
        let mut seen = std::collections::HashSet::new();
        for f in FIELDS {
            for n in std::iter::once(f.name).chain(f.aliases.iter().copied()) {
                assert!(seen.insert(n), "`{n}` is listed twice");
            }
        }
        for r in GRPO_PANELS.iter().chain(REWARD_MODEL_PANELS) {
            // A main line may name an alias, the spelling it prefers (`reward`, TRL's).
            assert!(
                lookup(r.main).is_some(),
                "recipe names unknown field `{}`",
                r.main
            );
            let names = r.band.into_iter().chain(r.also.iter().map(|(n, _)| *n));
            for n in names {
                assert!(
                    lookup(n).is_some_and(|f| f.name == n),
                    "recipe names unknown field `{n}`"
                );
            }
        }
        for s in GRPO_SIGNS.iter().chain(REWARD_MODEL_SIGNS) {
            assert!(lookup(s).is_some(), "{s}");
        }
    }

    #[test]
    fn grpo_runs_get_their_priority_panels() {
        let m = metrics(include_str!("../../tests/fixtures/plot/grpo.jsonl"));
        assert_eq!(detect_kind(&m), RunKind::Grpo);
        let plans = default_plans(&[&m], RunKind::Grpo);
        assert_eq!(
            titles(&plans),
            [
                "pass_rate",
                "writing_reward_mean",
                "kl",
                "loss",
                "response_len_mean",
                "filtered_group_rate"
            ]
        );
        assert_eq!(plans[1].band.as_deref(), Some("writing_reward_std"));
    }

    #[test]
    fn reward_model_runs_get_their_priority_panels() {
        let m = metrics(include_str!("../../tests/fixtures/plot/train_rm.jsonl"));
        assert_eq!(detect_kind(&m), RunKind::RewardModel);
        let plans = default_plans(&[&m], RunKind::RewardModel);
        assert_eq!(
            titles(&plans),
            [
                "loss",
                "accuracy",
                "margin",
                "reward_mean",
                "lr",
                "grad_norm"
            ]
        );
    }

    #[test]
    fn missing_metrics_let_later_ones_in_and_aliases_count() {
        let m = metrics(concat!(
            "{\"step\": 1, \"constraint_pass_rate\": 0.2, \"loss\": 1, \"entropy\": 2, \"kl_mean\": 0.01}\n",
            "{\"step\": 2, \"constraint_pass_rate\": 0.3, \"loss\": 0.9, \"entropy\": 1.9, \"kl_mean\": \"NaN\"}\n",
        ));
        assert_eq!(detect_kind(&m), RunKind::Grpo);
        assert_eq!(
            titles(&default_plans(&[&m], RunKind::Grpo)),
            ["pass_rate", "kl", "loss", "entropy"]
        );
        assert_eq!(train_points(&m, "pass_rate").map(<[_]>::len), Some(2));
    }

    #[test]
    fn unknown_runs_plot_their_first_fields() {
        let m = metrics(
            "{\"step\": 1, \"epoch\": 0, \"foo\": 1}\n{\"step\": 2, \"bar\": 2}\n{\"step\": 2, \"split\": \"eval\", \"baz\": 3}\n",
        );
        assert_eq!(detect_kind(&m), RunKind::Other);
        assert_eq!(
            titles(&default_plans(&[&m], RunKind::Other)),
            ["foo", "bar", "baz"]
        );
    }

    #[test]
    fn requested_metrics_override_and_overlay() {
        let m = metrics(include_str!("../../tests/fixtures/plot/grpo.jsonl"));
        let asked = [
            "writing_reward".to_string(),
            "time_generation_s + time_update_s".to_string(),
        ];
        let plans = requested_plans(&[&m], &asked).unwrap();
        assert_eq!(plans[0].main, "writing_reward_mean");
        assert_eq!(plans[0].band.as_deref(), Some("writing_reward_std"));
        assert_eq!(
            plans[1].also,
            [("time_update_s".to_string(), "time_update_s".to_string())]
        );
        assert_eq!(
            requested_plans(&[&m], &["nope".to_string()]),
            Err("nope".to_string())
        );
    }

    #[test]
    fn eval_markers_join_their_panel() {
        let m = metrics(concat!(
            "{\"step\": 1, \"accuracy\": 0.5, \"eval_margin\": 0.2}\n",
            "{\"step\": 1, \"split\": \"eval\", \"accuracy\": 0.55}\n",
        ));
        assert_eq!(eval_points(&m, "accuracy"), Some(&[(1.0, 0.55)][..]));
        assert_eq!(eval_points(&m, "margin"), Some(&[(1.0, 0.2)][..]));
        let (panel, points) = build_panel(&[&m], &Plan::for_metric("accuracy"), None);
        assert_eq!(points, 2);
        let Body::Curves { series, y_limits } = &panel.body else {
            panic!("curves")
        };
        let labels: Vec<&str> = series.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["train 0.5", "eval 0.55"]);
        assert_eq!(*y_limits, (0.0, 1.0));
    }

    #[test]
    fn trl_names_are_aliases_and_overlays_colour_by_run() {
        for (trl, canonical) in [
            ("learning_rate", "lr"),
            ("mean_reward", "reward_mean"),
            ("reward", "reward_mean"),
            ("completions/mean_length", "response_len_mean"),
            ("completions/clipped_ratio", "truncation_rate"),
            ("clip_ratio/region_mean", "clip_fraction"),
        ] {
            assert_eq!(lookup(trl).map(|f| f.name), Some(canonical), "{trl}");
        }
        // A TRL GRPO log reads as a GRPO run, its mean reward among the panels.
        let trl = metrics(concat!(
            "{\"step\": 1, \"loss\": 0.1, \"reward\": 0.2, \"reward_std\": 0.1, \"completions/mean_length\": 80, \"clip_ratio/region_mean\": 0.0, \"entropy\": 1.2}\n",
            "{\"step\": 2, \"loss\": 0.1, \"reward\": 0.3, \"reward_std\": 0.1, \"completions/mean_length\": 90, \"clip_ratio/region_mean\": 0.0, \"entropy\": 1.1}\n",
        ));
        assert_eq!(detect_kind(&trl), RunKind::Grpo);
        assert_eq!(
            titles(&default_plans(&[&trl], RunKind::Grpo)),
            [
                "loss",
                "response_len_mean",
                "reward",
                "entropy",
                "clip_fraction"
            ]
        );
        // Two runs, one spelling each: one line per run, in the run's colour, unlabelled
        // (the figure's legend names the runs).
        let rmtk = metrics(
            "{\"step\": 1, \"response_len_mean\": 70}\n{\"step\": 3, \"response_len_mean\": 75}\n",
        );
        let (panel, points) =
            build_panel(&[&rmtk, &trl], &Plan::for_metric("response_len_mean"), None);
        assert_eq!(points, 4);
        let Body::Curves { series, .. } = &panel.body else {
            panic!("curves")
        };
        let colors: Vec<Rgb> = series.iter().map(|s| s.color).collect();
        assert_eq!(colors, [run_color(0), run_color(1)]);
        assert!(series.iter().all(|s| s.label.is_empty()));
        assert_ne!(run_color(0), run_color(1));
    }

    /// rmtk writes TRL's names beside its own: one panel per metric, whichever spellings a
    /// line holds, and TRL's reward with its std where both are there.
    #[test]
    fn a_file_with_rmtk_and_trl_names_plots_each_metric_once() {
        let line = |step: u32, kept: f64, all: f64| {
            format!(
                "{{\"step\": {step}, \"pass_rate\": 0.3, \"writing_reward_mean\": 0.1, \"writing_reward_std\": 0.2, \"loss\": 0.1, \
                 \"response_len_mean\": 9, \"completions/mean_length\": 9, \"response_len_max\": 14, \"completions/max_length\": 14, \
                 \"completions/min_length\": 3, \"truncation_rate\": 0.5, \"completions/clipped_ratio\": 0.5, \
                 \"reward_mean\": {kept}, \"reward\": {all}, \"reward_std\": 0.4, \"frac_reward_zero_std\": 0.25, \
                 \"entropy\": 2.0, \"trl/entropy\": 2.1, \"clip_fraction\": 0.0, \"clip_ratio/region_mean\": 0.0, \
                 \"clip_ratio/low_mean\": 0.0, \"clip_ratio/high_mean\": 0.0, \"grad_norm\": 1.0, \"filtered_group_rate\": 0.5}}\n"
            )
        };
        let m = metrics(&(line(1, 1.0, 0.5) + &line(2, 1.5, 0.7)));
        assert_eq!(detect_kind(&m), RunKind::Grpo);
        let plans = default_plans(&[&m], RunKind::Grpo);
        let names: Vec<&str> = plans.iter().map(|p| p.main.as_str()).collect();
        // No kl (no reference): the reward panel comes in, and nothing twice.
        assert_eq!(
            names,
            [
                "pass_rate",
                "writing_reward_mean",
                "loss",
                "response_len_mean",
                "filtered_group_rate",
                "reward"
            ]
        );
        let canonical: std::collections::BTreeSet<&str> = plans
            .iter()
            .map(|p| lookup(&p.main).map_or(p.main.as_str(), |f| f.name))
            .collect();
        assert_eq!(canonical.len(), plans.len(), "{names:?}");
        // The reward panel draws TRL's reward (every completion), not the kept groups'.
        assert_eq!(
            train_points(&m, "reward").unwrap(),
            &[(1.0, 0.5), (2.0, 0.7)]
        );
        assert_eq!(
            train_points(&m, "reward_mean").unwrap(),
            &[(1.0, 1.0), (2.0, 1.5)]
        );
        // Asked by name, each spelling draws itself; an unknown-to-rmtk one its namesake.
        for (asked, main) in [
            ("reward", "reward"),
            ("reward_mean", "reward_mean"),
            ("completions/mean_length", "completions/mean_length"),
            ("trl/entropy", "trl/entropy"),
            ("entropy", "entropy"),
            ("frac_reward_zero_std", "frac_reward_zero_std"),
        ] {
            let plans = requested_plans(&[&m], &[asked.to_string()]).unwrap();
            assert_eq!(plans[0].main, main);
        }
        // Every metric once when nothing says what a run is.
        let plans = default_plans(&[&m], RunKind::Other);
        let canonical: std::collections::BTreeSet<&str> = plans
            .iter()
            .map(|p| lookup(&p.main).map_or(p.main.as_str(), |f| f.name))
            .collect();
        assert_eq!(canonical.len(), plans.len());
        // An older rmtk file, without TRL's names, still gets its reward panel.
        let old = metrics("{\"step\": 1, \"pass_rate\": 0.3, \"reward_mean\": 1.0}\n");
        let plans = default_plans(&[&old], RunKind::Grpo);
        assert_eq!(titles(&plans), ["pass_rate", "reward"]);
        assert_eq!(train_points(&old, &plans[1].main).unwrap(), &[(1.0, 1.0)]);
    }

    #[test]
    fn smoothing_and_bands() {
        assert_eq!(
            ema(
                &[(1.0, 0.0), (2.0, 10.0), (3.0, f64::NAN), (4.0, 10.0)],
                0.5
            )[1],
            (2.0, 5.0)
        );
        // Two steps after the last finite point: 1 - 0.5^2 = 0.75 of the way.
        assert_eq!(
            ema(
                &[(1.0, 0.0), (2.0, 10.0), (3.0, f64::NAN), (4.0, 10.0)],
                0.5
            )[3],
            (4.0, 8.75)
        );
        // Logging every fifth step smooths like logging every step, at the shared steps.
        // (A value held for five steps, logged at every step or at the last of the five.)
        let every: Vec<(f64, f64)> = (1..=20)
            .map(|s| (f64::from(s), (f64::from(s) / 5.0).ceil()))
            .collect();
        let fifth: Vec<(f64, f64)> = every.iter().copied().skip(4).step_by(5).collect();
        assert_eq!(
            fifth.iter().map(|p| p.0).collect::<Vec<_>>(),
            [5.0, 10.0, 15.0, 20.0]
        );
        let (a, b) = (ema(&every, 0.1), ema(&fifth, 0.1));
        for k in 0..4 {
            assert!((a[4 + 5 * k].1 - b[k].1).abs() < 1e-12, "{a:?} {b:?}");
        }
        let m = metrics(concat!(
            "{\"step\": 1, \"reward_mean\": 1, \"reward_std\": 0.5}\n",
            "{\"step\": 2, \"reward_mean\": 2}\n",
            "{\"step\": 3, \"reward_mean\": 3, \"reward_std\": 1}\n",
        ));
        let (panel, points) = build_panel(&[&m], &Plan::for_metric("reward_mean"), Some(0.5));
        assert_eq!(points, 3);
        let Body::Curves { series, .. } = &panel.body else {
            panic!("curves")
        };
        let Shape::Band { points: band } = &series[0].shape else {
            panic!("band first")
        };
        // Steps 1 and 3 (step 2 has no std): 1 - 0.5^2 = 0.75 of the way at step 3.
        assert_eq!(band, &[(1.0, 0.5, 1.5), (3.0, 1.625, 3.375)]);
        // The raw line is faded and unlabelled; one labelled line leaves the value as a note.
        assert_eq!(series[1].label, "");
        assert_eq!(series[0].label, "± std");
        assert_eq!(panel.note, "");
        assert_eq!(series[2].label, "mean 2.25");
    }

    #[test]
    fn the_learning_rate_is_drawn_raw_even_when_smoothing() {
        let m = metrics(concat!(
            "{\"step\": 1, \"lr\": 0.0, \"loss\": 1}\n",
            "{\"step\": 2, \"lr\": 1.0, \"loss\": 0}\n",
        ));
        let lines = |name: &str| {
            let (panel, _) = build_panel(&[&m], &Plan::for_metric(name), Some(0.5));
            let Body::Curves { series, .. } = panel.body else {
                panic!("curves")
            };
            series
                .into_iter()
                .filter_map(|s| match s.shape {
                    Shape::Line { points, .. } => Some(points),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        // The loss: the faded raw line and the smoothed one.
        assert_eq!(lines("loss").len(), 2);
        // The schedule: one line, its raw values.
        assert_eq!(lines("lr"), [vec![(1.0, 0.0), (2.0, 1.0)]]);
    }
}
