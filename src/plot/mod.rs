//! `rmtk plot RUN [RUN...]`: draw training runs' curves as a PNG, for those who would rather
//! look than read.
//!
//! A run is an rmtk output folder (its `metrics.jsonl`, and for train-rm its
//! `eval_rewards.jsonl`), a TRL/transformers output folder or checkpoint (its
//! `trainer_state.json`), or one of those files. [`plot_runs`] reads each ([`load_run`]:
//! [`Metrics::parse`], tolerant of bad lines; [`parse_trainer_state`]), recognises the
//! first run's kind ([`detect_kind`]), picks up to six curve panels ([`default_plans`], or the
//! metrics the user named) and, by default, the panels that are not curves: an RM run's
//! reward distributions at its last evaluation ([`reward_distribution_panel`]) and a GRPO
//! run's pass rate by constraint type, early steps against late ones
//! ([`constraint_types_panel`]). Several runs share the panels, one colour per run, named in
//! the figure's legend. The [`Figure`] is drawn with plotters, text in the bundled DejaVu
//! Sans, and encoded with `png`.
//!
//! - `metrics` / `trl` / `panels`: what to draw. The table [`FIELDS`] maps every name a
//!   metric may be logged under (rmtk's and TRL's) to one canonical name; [`GRPO_PANELS`] and
//!   [`REWARD_MODEL_PANELS`] list the default panels by priority.
//! - `figure`: the figure model ([`Figure`], [`Panel`], [`Body`], [`Series`]), layout and
//!   drawing (PNG, or SVG for the tests); `ticks`: nice tick values and compact labels;
//!   `fonts`: the bundled font.

mod figure;
mod fonts;
mod metrics;
mod panels;
mod ticks;
mod trl;

use std::path::{Path, PathBuf};

pub use figure::{
    BarGroup, Bars, Body, Figure, HistGroup, Histogram, LegendEntry, Panel, REFERENCE_SIZE, Rgb,
    Series, Shape, Swatch, palette, render_png, render_rgb, render_svg,
};
pub use metrics::{EvalRewards, Metrics, SeriesSet, TypeCounts};
pub use panels::{
    FIELDS, Field, GRPO_PANELS, MAX_CONSTRAINT_TYPES, MAX_PANELS, Plan, REWARD_MODEL_PANELS,
    RUN_COLORS, Range, Recipe, RunKind, build_panel, constraint_types_panel, default_plans,
    detect_kind, lookup, requested_plans, reward_distribution_panel, run_color,
};
pub use ticks::{Ticks, format_number, nice_ticks, tick_labels};
pub use trl::{TRAINER_STATE_FILE, parse_trainer_state};

/// The metrics log of an rmtk run.
pub const METRICS_FILE: &str = crate::train::metrics::METRICS_FILE;
/// Per-pair rewards of a train-rm run's evaluations, beside its metrics.jsonl.
pub const EVAL_REWARDS_FILE: &str = crate::rm::train::EVAL_REWARDS_FILE;

/// What to draw and how big.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotOptions {
    /// Metrics to draw, one panel each, instead of the defaults for the run's kind. A name may
    /// be canonical (`pass_rate`), an alias (`constraint_pass_rate`) or any field in the
    /// file; `a+b` draws `b` on `a`'s panel. The panels that are not curves are drawn only
    /// by default.
    pub metrics: Option<Vec<String>>,
    /// Image size in pixels; text and line widths scale with it.
    pub width: u32,
    pub height: u32,
    /// Figure title; by default the name of the run's folder (the runs', for several).
    pub title: Option<String>,
    /// EMA weight of each new point, in `(0, 1]`: draws a smoothed line over the faded raw
    /// one (0.1 suits a few hundred noisy RL steps). `None`: raw lines only.
    pub smooth: Option<f64>,
}

impl Default for PlotOptions {
    fn default() -> Self {
        PlotOptions {
            metrics: None,
            width: 1600,
            height: 1000,
            title: None,
            smooth: None,
        }
    }
}

/// What [`plot_runs`] drew.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotSummary {
    /// Panel titles, in reading order.
    pub panels: Vec<String>,
    /// Data points drawn (training and evaluation values, not counting smoothed copies;
    /// rewards in a histogram; constraint types' counts).
    pub points: usize,
    /// Lines of the files that were not usable JSON objects, or training lines without a
    /// step.
    pub skipped_lines: usize,
    /// The first run's kind.
    pub kind: RunKind,
    /// The runs' names, as the legend shows them.
    pub runs: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{}: no metrics there: neither an rmtk run ({METRICS_FILE}) nor a TRL run ({TRAINER_STATE_FILE}, or checkpoint-N/{TRAINER_STATE_FILE})",
        path.display()
    )]
    NoMetrics { path: PathBuf },
    #[error("{}: {reason}", path.display())]
    BadFile { path: PathBuf, reason: String },
    #[error("nothing to plot in {} ({skipped_lines} unusable lines)", path.display())]
    NothingToPlot { path: PathBuf, skipped_lines: usize },
    #[error("{} {} no values for `{name}`; {}: {}", list_paths(paths), if paths.len() == 1 { "has" } else { "have" }, if paths.len() == 1 { "it has" } else { "they have" }, available.join(", "))]
    UnknownMetric {
        paths: Vec<PathBuf>,
        name: String,
        available: Vec<String>,
    },
    #[error("invalid plot option: {0}")]
    InvalidOption(String),
    #[error("drawing the figure failed: {0}")]
    Render(String),
}

fn list_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Smallest and largest image sides accepted.
const MIN_SIDE: u32 = 200;
const MAX_SIDE: u32 = 8192;

/// One run, read.
#[derive(Debug, Clone)]
pub struct Run {
    /// The legend's name for it: its output folder's name.
    pub name: String,
    /// The file its metrics came from.
    pub source: PathBuf,
    pub metrics: Metrics,
    /// A train-rm run's last evaluation's per-pair rewards.
    pub eval_rewards: Option<EvalRewards>,
}

/// Read the run at `path`: an rmtk output folder or its `metrics.jsonl` (any JSONL metrics
/// file), a TRL output folder, a `checkpoint-N/` folder or a `trainer_state.json`. A TRL
/// folder without a `trainer_state.json` of its own is read from its latest checkpoint.
pub fn load_run(path: &Path) -> Result<Run, PlotError> {
    let (file, trl) = locate(path)?;
    let bytes = std::fs::read(&file).map_err(|source| PlotError::Read {
        path: file.clone(),
        source,
    })?;
    let metrics = if trl {
        parse_trainer_state(&bytes).map_err(|reason| PlotError::BadFile {
            path: file.clone(),
            reason,
        })?
    } else {
        Metrics::parse(&bytes)
    };
    if metrics.is_empty() {
        return Err(PlotError::NothingToPlot {
            path: file,
            skipped_lines: metrics.skipped_lines,
        });
    }
    let mut eval_rewards = None;
    if file.file_name().is_some_and(|n| n == METRICS_FILE) {
        let rewards = file.with_file_name(EVAL_REWARDS_FILE);
        if rewards.is_file() {
            let bytes = std::fs::read(&rewards).map_err(|source| PlotError::Read {
                path: rewards.clone(),
                source,
            })?;
            eval_rewards = EvalRewards::parse_last(&bytes);
        }
    }
    Ok(Run {
        name: run_name(&file),
        source: file,
        metrics,
        eval_rewards,
    })
}

/// The metrics file at `path`, and whether it is a trainer_state.json.
fn locate(path: &Path) -> Result<(PathBuf, bool), PlotError> {
    if !path.is_dir() {
        if !path.exists() {
            return Err(PlotError::Read {
                path: path.into(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder"),
            });
        }
        let json = path.extension().is_some_and(|e| e == "json");
        return Ok((path.into(), json));
    }
    let metrics = path.join(METRICS_FILE);
    if metrics.is_file() {
        return Ok((metrics, false));
    }
    let state = path.join(TRAINER_STATE_FILE);
    if state.is_file() {
        return Ok((state, true));
    }
    latest_checkpoint_state(path)
        .map(|state| (state, true))
        .ok_or_else(|| PlotError::NoMetrics { path: path.into() })
}

/// `DIR/checkpoint-N/trainer_state.json` with the largest N, if any.
fn latest_checkpoint_state(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name();
            let step: u64 = name.to_str()?.strip_prefix("checkpoint-")?.parse().ok()?;
            let state = entry.path().join(TRAINER_STATE_FILE);
            state.is_file().then_some((step, state))
        })
        .max_by_key(|(step, _)| *step)
        .map(|(_, state)| state)
}

/// The name of the run a metrics file belongs to: its folder's (`runs/grpo-7/metrics.jsonl`:
/// `grpo-7`), or for a checkpoint's trainer state the output folder's
/// (`out/checkpoint-500/trainer_state.json`: `out`).
fn run_name(file: &Path) -> String {
    let absolute = std::fs::canonicalize(file).unwrap_or_else(|_| file.into());
    let mut folder = absolute.parent();
    if let Some(dir) = folder
        && dir
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("checkpoint-"))
        && dir.parent().and_then(Path::file_name).is_some()
    {
        folder = dir.parent();
    }
    folder.and_then(Path::file_name).map_or_else(
        || "metrics".to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Read the runs at `inputs` ([`load_run`]), draw them on one figure and write it to
/// `out_png`: a PNG, or an SVG when the name ends in `.svg`.
pub fn plot_runs(
    inputs: &[PathBuf],
    out_png: &Path,
    opts: &PlotOptions,
) -> Result<PlotSummary, PlotError> {
    check_options(opts)?;
    if inputs.is_empty() {
        return Err(PlotError::InvalidOption("no run to plot".into()));
    }
    let runs = inputs
        .iter()
        .map(|p| load_run(p))
        .collect::<Result<Vec<_>, _>>()?;
    let (figure, summary) = build_figure(&runs, opts)?;
    let svg = out_png
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("svg"));
    let bytes = if svg {
        render_svg(&figure).map_err(PlotError::Render)?.into_bytes()
    } else {
        render_png(&figure).map_err(PlotError::Render)?
    };
    crate::util::write_atomic(out_png, &bytes).map_err(|source| PlotError::Write {
        path: out_png.into(),
        source,
    })?;
    Ok(summary)
}

/// [`plot_runs`] for one run.
pub fn plot_run(
    input: &Path,
    out_png: &Path,
    opts: &PlotOptions,
) -> Result<PlotSummary, PlotError> {
    plot_runs(&[input.to_path_buf()], out_png, opts)
}

/// The figure [`plot_runs`] draws for `runs` (at least one), titled after them unless
/// `opts` has a title.
pub fn build_figure(runs: &[Run], opts: &PlotOptions) -> Result<(Figure, PlotSummary), PlotError> {
    check_options(opts)?;
    let Some(first) = runs.first() else {
        return Err(PlotError::InvalidOption("no run to plot".into()));
    };
    let nothing = || PlotError::NothingToPlot {
        path: first.source.clone(),
        skipped_lines: runs.iter().map(|r| r.metrics.skipped_lines).sum(),
    };
    if let Some(empty) = runs.iter().find(|r| r.metrics.is_empty()) {
        return Err(PlotError::NothingToPlot {
            path: empty.source.clone(),
            skipped_lines: empty.metrics.skipped_lines,
        });
    }
    let metrics: Vec<&Metrics> = runs.iter().map(|r| &r.metrics).collect();
    let kind = detect_kind(&first.metrics);
    let requested = opts.metrics.as_ref().filter(|names| !names.is_empty());
    let plans = match requested {
        Some(names) => {
            requested_plans(&metrics, names).map_err(|name| PlotError::UnknownMetric {
                paths: runs.iter().map(|r| r.source.clone()).collect(),
                name,
                available: panels::available(&metrics),
            })?
        }
        None => default_plans(&metrics, kind),
    };

    let mut points = 0;
    let mut panels = Vec::with_capacity(plans.len() + 2);
    for plan in &plans {
        let (panel, n) = build_panel(&metrics, plan, opts.smooth);
        points += n;
        panels.push(panel);
    }
    let overlay = runs.len() > 1;
    let names = legend_names(runs);
    if requested.is_none() {
        // The panels that are not curves: from the first run that has their data (named in
        // the panel's title when there are several).
        let named = |name: &String| overlay.then(|| name.clone());
        if let Some((rewards, name)) = runs
            .iter()
            .zip(&names)
            .find_map(|(r, name)| Some((r.eval_rewards.as_ref()?, name)))
        {
            points += rewards.chosen.len() + rewards.rejected.len();
            panels.push(reward_distribution_panel(rewards, named(name).as_deref()));
        }
        if let Some((run, name)) = runs
            .iter()
            .zip(&names)
            .find(|(r, _)| !r.metrics.constraint_types.is_empty())
            && let Some(panel) =
                constraint_types_panel(&run.metrics.constraint_types, named(name).as_deref())
        {
            points += run
                .metrics
                .constraint_types
                .iter()
                .map(|t| t.counts.len())
                .sum::<usize>();
            panels.push(panel);
        }
    }
    if panels.is_empty() || points == 0 {
        return Err(nothing());
    }

    let any_eval = panels.iter().any(|p| match &p.body {
        Body::Curves { series, .. } => series
            .iter()
            .any(|s| matches!(s.shape, Shape::Markers { .. })),
        _ => false,
    });
    let figure = Figure {
        width: opts.width,
        height: opts.height,
        title: opts.title.clone().unwrap_or_else(|| names.join(" vs ")),
        subtitle: describe_runs(runs, kind, opts.smooth),
        x_label: "step".into(),
        legend: if overlay {
            panels::run_legend(&names, any_eval)
        } else {
            Vec::new()
        },
        panels,
    };
    let summary = PlotSummary {
        panels: figure.panels.iter().map(|p| p.title.clone()).collect(),
        points,
        skipped_lines: runs.iter().map(|r| r.metrics.skipped_lines).sum(),
        kind,
        runs: names,
    };
    Ok((figure, summary))
}

/// The runs' names, a repeated one numbered (`rm`, `rm (2)`).
fn legend_names(runs: &[Run]) -> Vec<String> {
    let mut names: Vec<String> = Vec::with_capacity(runs.len());
    for run in runs {
        let taken = names
            .iter()
            .filter(|n| **n == run.name || n.starts_with(&format!("{} (", run.name)))
            .count();
        names.push(if taken == 0 {
            run.name.clone()
        } else {
            format!("{} ({})", run.name, taken + 1)
        });
    }
    names
}

fn check_options(opts: &PlotOptions) -> Result<(), PlotError> {
    for (what, side) in [("width", opts.width), ("height", opts.height)] {
        if !(MIN_SIDE..=MAX_SIDE).contains(&side) {
            return Err(PlotError::InvalidOption(format!(
                "{what} {side} is not in {MIN_SIDE}..={MAX_SIDE}"
            )));
        }
    }
    if let Some(alpha) = opts.smooth
        && !(alpha > 0.0 && alpha <= 1.0)
    {
        return Err(PlotError::InvalidOption(format!(
            "smoothing weight {alpha} is not in (0, 1]"
        )));
    }
    Ok(())
}

/// "GRPO run · steps 1–300 · 30 evals · EMA 0.1 · 2 lines skipped"; for several runs
/// "2 runs · steps 1–300 · EMA 0.1".
fn describe_runs(runs: &[Run], kind: RunKind, smooth: Option<f64>) -> String {
    let steps = |set: &SeriesSet| {
        let mut xs: Vec<f64> = set
            .names()
            .filter_map(|n| set.get(n))
            .flatten()
            .map(|(x, _)| *x)
            .collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        xs
    };
    let mut train: Vec<f64> = runs.iter().flat_map(|r| steps(&r.metrics.train)).collect();
    train.sort_by(f64::total_cmp);
    let mut parts = vec![match runs {
        [_] => kind.describe().to_string(),
        _ => format!("{} runs", runs.len()),
    }];
    if let [first, .., last] = train[..] {
        parts.push(format!(
            "steps {}–{}",
            format_number(first),
            format_number(last)
        ));
    }
    if let [run] = runs {
        let evals = steps(&run.metrics.eval).len();
        if evals > 0 {
            parts.push(format!("{evals} eval{}", if evals == 1 { "" } else { "s" }));
        }
    }
    if let Some(alpha) = smooth {
        parts.push(format!("EMA {alpha}"));
    }
    let skipped: usize = runs.iter().map(|r| r.metrics.skipped_lines).sum();
    if skipped > 0 {
        parts.push(format!(
            "{skipped} line{} skipped",
            if skipped == 1 { "" } else { "s" }
        ));
    }
    parts.join("  ·  ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRPO: &str = include_str!("../../tests/fixtures/plot/grpo.jsonl");
    const TRAIN_RM: &str = include_str!("../../tests/fixtures/plot/train_rm.jsonl");
    const EVAL_REWARDS: &str =
        include_str!("../../tests/fixtures/plot/train_rm_eval_rewards.jsonl");
    const TRL_RM: &str = "tests/fixtures/plot/trl-rm";

    /// A fresh folder for one test's files.
    fn scratch_dir(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rmtk-plot-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a temporary folder");
        dir
    }

    fn run(name: &str, text: &str) -> Run {
        Run {
            name: name.into(),
            source: PathBuf::from(format!("{name}/metrics.jsonl")),
            metrics: Metrics::parse(text.as_bytes()),
            eval_rewards: None,
        }
    }

    fn rm_run() -> Run {
        Run {
            eval_rewards: EvalRewards::parse_last(EVAL_REWARDS.as_bytes()),
            ..run("rm-run", TRAIN_RM)
        }
    }

    fn svg_of(runs: &[Run], opts: &PlotOptions) -> (String, PlotSummary) {
        let (figure, summary) = build_figure(runs, opts).unwrap();
        (render_svg(&figure).unwrap(), summary)
    }

    /// The SVG's elements named `tag`, each as its attribute text.
    fn elements<'s>(svg: &'s str, tag: &str) -> Vec<&'s str> {
        svg.split(&format!("<{tag} "))
            .skip(1)
            .map(|rest| &rest[..rest.find('>').unwrap_or(rest.len())])
            .collect()
    }

    fn attr<'s>(element: &'s str, name: &str) -> Option<&'s str> {
        let start = element.find(&format!(" {name}=\""))? + name.len() + 3;
        let len = element[start..].find('"')?;
        Some(&element[start..start + len])
    }

    /// Point counts of the polylines stroked in `color` (`#0072B2`) with more than two
    /// points: the data lines, not the two-point legend samples.
    fn lines_in(svg: &str, color: &str) -> Vec<usize> {
        elements(svg, "polyline")
            .into_iter()
            .filter(|e| attr(e, "stroke") == Some(color))
            .map(|e| attr(e, "points").unwrap_or("").split_whitespace().count())
            .filter(|n| *n > 2)
            .collect()
    }

    /// Rectangles filled with `color` at `opacity`.
    fn rects_in(svg: &str, color: &str, opacity: f32) -> usize {
        elements(svg, "rect")
            .into_iter()
            .filter(|e| attr(e, "fill") == Some(color))
            .filter(|e| {
                attr(e, "opacity")
                    .and_then(|o| o.parse::<f64>().ok())
                    .is_some_and(|o| (o - f64::from(opacity)).abs() < 1e-6)
            })
            .count()
    }

    /// The texts of the SVG's `<text>` elements.
    fn texts(svg: &str) -> Vec<String> {
        svg.split("<text ")
            .skip(1)
            .filter_map(|rest| {
                let body = &rest[rest.find('>')? + 1..];
                let text = body[..body.find("</text>")?].trim();
                Some(
                    text.replace("&lt;", "<")
                        .replace("&gt;", ">")
                        .replace("&quot;", "\"")
                        .replace("&apos;", "'")
                        .replace("&amp;", "&"),
                )
            })
            .collect()
    }

    /// Width, height and RGB pixels of a PNG.
    fn decode(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().expect("a PNG header");
        let mut rgb = vec![0; reader.output_buffer_size().expect("a size")];
        let info = reader.next_frame(&mut rgb).expect("a PNG frame");
        assert_eq!(info.color_type, png::ColorType::Rgb);
        rgb.truncate(info.buffer_size());
        (info.width, info.height, rgb)
    }

    fn non_white(rgb: &[u8]) -> usize {
        rgb.chunks(3).filter(|p| p != &[255, 255, 255]).count()
    }

    fn has_color(rgb: &[u8], color: Rgb) -> bool {
        rgb.chunks(3).any(|p| p == [color.0, color.1, color.2])
    }

    #[test]
    fn grpo_sample_renders_a_valid_png_with_the_constraint_panel() {
        let dir = scratch_dir("grpo");
        let input = dir.join("grpo.jsonl");
        std::fs::write(&input, GRPO).unwrap();
        let out = dir.join("plot.png");
        let summary = plot_run(&input, &out, &PlotOptions::default()).unwrap();
        let (w, h, rgb) = decode(&std::fs::read(&out).unwrap());
        assert_eq!((w, h), (1600, 1000));
        assert_eq!(summary.kind, RunKind::Grpo);
        assert_eq!(
            summary.panels,
            [
                "Constraint pass rate",
                "Writing reward (mean ± std)",
                "KL divergence",
                "Loss",
                "Response length (tokens)",
                "Filtered-group rate",
                "Pass rate by constraint type"
            ]
        );
        assert_eq!(summary.skipped_lines, 1, "the fixture has one cut-off line");
        assert!(summary.points > 800, "{}", summary.points);
        assert_eq!(
            summary.runs,
            [dir.file_name().unwrap().to_string_lossy().into_owned()]
        );
        // Background stays white, but lines, text and gridlines cover a fair share.
        assert_eq!(&rgb[..3], [255, 255, 255]);
        let ink = non_white(&rgb);
        assert!(ink > 40_000 && ink < 800_000, "{ink} non-white pixels");
        // The palette's blue (training lines) and vermillion (eval markers) are both there.
        assert!(has_color(&rgb, palette::BLUE));
        assert!(has_color(&rgb, palette::VERMILLION));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn reward_model_sample_renders_smoothed_at_another_size() {
        let opts = PlotOptions {
            width: 900,
            height: 600,
            smooth: Some(0.2),
            title: Some("rm".into()),
            ..Default::default()
        };
        let (figure, summary) = build_figure(&[rm_run()], &opts).unwrap();
        assert_eq!(summary.kind, RunKind::RewardModel);
        assert_eq!(
            summary.panels,
            [
                "Loss",
                "Pairwise accuracy",
                "Mean margin (chosen - rejected)",
                "Reward (mean ± std)",
                "Learning rate",
                "Gradient norm",
                "Eval rewards at step 200"
            ]
        );
        let rgb = render_rgb(&figure).unwrap();
        assert_eq!(rgb.len(), 900 * 600 * 3);
        assert!(non_white(&rgb) > 10_000);
        let (w, h, decoded) = decode(&render_png(&figure).unwrap());
        assert_eq!((w, h), (900, 600));
        assert_eq!(decoded, rgb);
    }

    #[test]
    fn svg_panels_have_their_titles_and_one_line_per_series() {
        let opts = PlotOptions {
            metrics: Some(vec!["loss".into(), "accuracy".into()]),
            ..Default::default()
        };
        let (svg, summary) = svg_of(&[run("rm-run", TRAIN_RM)], &opts);
        assert_eq!(summary.panels, ["Loss", "Pairwise accuracy"]);
        let texts = texts(&svg);
        for title in ["rm-run", "Loss", "Pairwise accuracy", "step"] {
            assert!(texts.iter().any(|t| t == title), "{title} not in {texts:?}");
        }
        // Each panel: one training line (blue, every step) and one line through its eval
        // markers (vermillion, one point per eval), plus the markers themselves.
        assert_eq!(lines_in(&svg, "#0072B2"), [200, 200]);
        assert_eq!(lines_in(&svg, "#D55E00"), [20, 20]);
        let markers = elements(&svg, "circle")
            .into_iter()
            .filter(|e| attr(e, "fill") == Some("#D55E00"))
            .count();
        assert_eq!(
            markers,
            2 * 20 + 2,
            "20 evals per panel, and a legend sample each"
        );
        // The legend names both series with their latest values.
        assert!(texts.iter().any(|t| t.starts_with("train ")), "{texts:?}");
        assert!(texts.iter().any(|t| t.starts_with("eval ")), "{texts:?}");

        // Smoothing adds the faded raw line under each smoothed one.
        let smooth = PlotOptions {
            smooth: Some(0.1),
            metrics: Some(vec!["loss".into()]),
            ..Default::default()
        };
        let (svg, _) = svg_of(&[run("rm-run", TRAIN_RM)], &smooth);
        let blue = elements(&svg, "polyline")
            .into_iter()
            .filter(|e| attr(e, "stroke") == Some("#0072B2"))
            .filter(|e| attr(e, "points").unwrap().split_whitespace().count() > 2)
            .map(|e| attr(e, "opacity").unwrap().parse::<f64>().unwrap())
            .collect::<Vec<_>>();
        assert_eq!(blue.len(), 2);
        assert!(blue.iter().any(|o| *o < 0.5) && blue.contains(&1.0));
    }

    #[test]
    fn the_reward_distribution_panel_draws_chosen_and_rejected_histograms() {
        let (svg, summary) = svg_of(&[rm_run()], &PlotOptions::default());
        assert_eq!(summary.panels.last().unwrap(), "Eval rewards at step 200");
        let texts = texts(&svg);
        for text in ["Eval rewards at step 200", "reward"] {
            assert!(texts.iter().any(|t| t == text), "{text} not in {texts:?}");
        }
        assert!(texts.iter().any(|t| t.starts_with("chosen (mean ")));
        assert!(texts.iter().any(|t| t.starts_with("rejected (mean ")));
        // 160 pairs: 13 bins. Each group: a translucent bar per non-empty bin, and one
        // outline over all bins.
        let rewards = rm_run().eval_rewards.unwrap();
        let panel = reward_distribution_panel(&rewards, None);
        let Body::Histogram(hist) = &panel.body else {
            panic!("a histogram")
        };
        assert_eq!(hist.edges.len(), 14);
        for (group, color) in hist.groups.iter().zip(["#0072B2", "#D55E00"]) {
            assert_eq!(group.counts.iter().sum::<u64>(), 160);
            let bars = group.counts.iter().filter(|c| **c > 0).count();
            assert_eq!(rects_in(&svg, color, 0.35), bars, "{}", group.label);
            assert_eq!(
                lines_in(&svg, color)
                    .iter()
                    .filter(|n| **n == 2 * 13 + 2)
                    .count(),
                1
            );
        }
        // The fixture's chosen rewards sit above the rejected ones.
        let mean = |c: &[u64]| {
            c.iter()
                .enumerate()
                .map(|(i, n)| i as f64 * *n as f64)
                .sum::<f64>()
        };
        assert!(mean(&hist.groups[0].counts) > mean(&hist.groups[1].counts));
        assert!(
            panel.note.starts_with("160 pairs, accuracy 0."),
            "{}",
            panel.note
        );
    }

    #[test]
    fn the_constraint_panel_compares_early_and_late_steps_per_type() {
        let (svg, summary) = svg_of(&[run("grpo", GRPO)], &PlotOptions::default());
        assert_eq!(
            summary.panels.last().unwrap(),
            "Pass rate by constraint type"
        );
        let panel = constraint_types_panel(&Metrics::parse(GRPO.as_bytes()).constraint_types, None)
            .unwrap();
        let Body::Bars(bars) = &panel.body else {
            panic!("bars")
        };
        assert_eq!(bars.categories.len(), 7);
        // 120 steps: the first and the last 30.
        let labels: Vec<&str> = bars.groups.iter().map(|g| g.label.as_str()).collect();
        assert_eq!(labels, ["early: steps 1–30", "late: steps 91–120"]);
        // Sorted by the late pass rate, best first; the fixture's types all improve but
        // `punctuation:no_comma` and `startend:end_checker` barely.
        let late = &bars.groups[1].values;
        assert!(late.windows(2).all(|w| w[0] >= w[1]), "{late:?}");
        let early = &bars.groups[0].values;
        let at = |name: &str| bars.categories.iter().position(|c| c == name).unwrap();
        let words = at("length_constraints:number_words");
        assert!(late[words] > early[words] + 0.2);
        assert!(
            (late[at("punctuation:no_comma")] - early[at("punctuation:no_comma")]).abs() < 0.15
        );
        assert_eq!(bars.categories[0], "detectable_format:json_format");
        // Drawn: one bar per type and part (and a legend sample per part), the type names
        // on the axis.
        assert_eq!(rects_in(&svg, "#56B4E9", 0.85), 7 + 1);
        assert_eq!(rects_in(&svg, "#0072B2", 0.85), 7 + 1);
        let texts = texts(&svg);
        for name in &bars.categories {
            assert!(texts.iter().any(|t| t == name), "{name} not in {texts:?}");
        }
        assert!(texts.iter().any(|t| t == "early: steps 1–30"));
        // Each bar is labelled with its value.
        let percent = |v: f64| format!("{:.0}%", v * 100.0);
        assert!(texts.contains(&percent(late[words])), "{texts:?}");
        assert!(texts.contains(&percent(early[words])), "{texts:?}");
    }

    #[test]
    fn pooled_counts_and_the_most_frequent_types() {
        let step = |s: f64, counts: &[(&str, u64, u64)]| TypeCounts {
            step: s,
            counts: counts
                .iter()
                .map(|(n, p, t)| (n.to_string(), *p, *t))
                .collect(),
        };
        // Eight steps: quarters of two steps each, pooled.
        let steps: Vec<TypeCounts> = (1..=8)
            .map(|s| step(s as f64, &[("a", s, 10), ("b", 1, 2)]))
            .collect();
        let panel = constraint_types_panel(&steps, Some("run-x")).unwrap();
        assert_eq!(panel.title, "Pass rate by constraint type · run-x");
        let Body::Bars(bars) = &panel.body else {
            panic!("bars")
        };
        assert_eq!(bars.categories, ["a", "b"]);
        assert_eq!(bars.groups[0].values, [0.15, 0.5]);
        assert_eq!(bars.groups[1].values, [0.75, 0.5]);
        // One step: one bar per type.
        let one = constraint_types_panel(&steps[..1], None).unwrap();
        let Body::Bars(bars) = &one.body else {
            panic!("bars")
        };
        assert_eq!(bars.groups.len(), 1);
        assert_eq!(bars.groups[0].label, "step 1");
        // Many types: the most frequent are kept, and the title says so.
        let many: Vec<(String, u64, u64)> =
            (0..20).map(|i| (format!("t{i:02}"), 1, 1 + i)).collect();
        let wide = constraint_types_panel(
            &[TypeCounts {
                step: 1.0,
                counts: many,
            }],
            None,
        )
        .unwrap();
        assert!(
            wide.title.contains("(16 most frequent of 20)"),
            "{}",
            wide.title
        );
        let Body::Bars(bars) = &wide.body else {
            panic!("bars")
        };
        assert!(!bars.categories.contains(&"t00".to_string()));
        assert_eq!(constraint_types_panel(&[], None), None);
    }

    #[test]
    fn an_overlay_draws_every_run_in_its_colour_with_a_legend() {
        let trl = load_run(Path::new(TRL_RM)).unwrap();
        assert_eq!(trl.name, "trl-rm");
        let runs = [run("rmtk-rm", TRAIN_RM), trl];
        let opts = PlotOptions {
            metrics: Some(vec!["loss".into(), "accuracy".into(), "margin".into()]),
            ..Default::default()
        };
        let (svg, summary) = svg_of(&runs, &opts);
        assert_eq!(summary.runs, ["rmtk-rm", "trl-rm"]);
        assert_eq!(
            summary.panels,
            [
                "Loss",
                "Pairwise accuracy",
                "Mean margin (chosen - rejected)"
            ]
        );
        let texts = texts(&svg);
        for name in ["rmtk-rm", "trl-rm", "eval (dots)", "rmtk-rm vs trl-rm"] {
            assert!(texts.iter().any(|t| t == name), "{name} not in {texts:?}");
        }
        // Per panel: the first run's training line (200 steps) and eval line (20) in blue,
        // the TRL run's (12 logs, 3 evals) in vermillion.
        let mut blue = lines_in(&svg, "#0072B2");
        let mut vermillion = lines_in(&svg, "#D55E00");
        blue.sort();
        vermillion.sort();
        assert_eq!(blue, [20, 20, 20, 200, 200, 200]);
        assert_eq!(vermillion, [3, 3, 3, 12, 12, 12]);
        // By default the panels come from the first run's kind, with data from either run.
        let (_, summary) = svg_of(&runs, &PlotOptions::default());
        assert_eq!(summary.kind, RunKind::RewardModel);
        assert_eq!(summary.panels.len(), 6);
    }

    #[test]
    fn trl_runs_are_found_in_folders_and_checkpoints() {
        let dir = scratch_dir("trl");
        let out = dir.join("out");
        let ck = out.join("checkpoint-60");
        std::fs::create_dir_all(&ck).unwrap();
        std::fs::create_dir_all(out.join("checkpoint-20")).unwrap();
        let state = std::fs::read(Path::new(TRL_RM).join(TRAINER_STATE_FILE)).unwrap();
        std::fs::write(ck.join(TRAINER_STATE_FILE), &state).unwrap();
        std::fs::write(out.join("checkpoint-20").join(TRAINER_STATE_FILE), b"{").unwrap();
        // The folder reads its latest checkpoint, named after the folder.
        let run = load_run(&out).unwrap();
        assert_eq!(
            (run.name.as_str(), run.source.as_path()),
            ("out", ck.join(TRAINER_STATE_FILE).as_path())
        );
        assert_eq!(detect_kind(&run.metrics), RunKind::RewardModel);
        let (_, summary) = build_figure(&[run], &PlotOptions::default()).unwrap();
        assert_eq!(
            summary.panels,
            [
                "Loss",
                "Pairwise accuracy",
                "Mean margin (chosen - rejected)",
                "Reward (mean ± std)",
                "Learning rate",
                "Gradient norm"
            ]
        );
        // A cut-off trainer state is an error naming the file.
        let err = load_run(&out.join("checkpoint-20")).unwrap_err();
        assert!(matches!(err, PlotError::BadFile { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("checkpoint-20/trainer_state.json: not valid JSON"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn requested_metrics_and_their_errors() {
        let opts = PlotOptions {
            metrics: Some(vec!["kl".into(), "entropy+clip_fraction".into()]),
            ..Default::default()
        };
        let (_, summary) = build_figure(&[run("g", GRPO)], &opts).unwrap();
        assert_eq!(summary.panels, ["KL divergence", "entropy + clip_fraction"]);

        let opts = PlotOptions {
            metrics: Some(vec!["bogus".into()]),
            ..Default::default()
        };
        let err = build_figure(&[run("g", GRPO)], &opts).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, PlotError::UnknownMetric { .. }), "{message}");
        assert!(
            message.contains("g/metrics.jsonl has no values for `bogus`; it has: ")
                && message.contains("pass_rate"),
            "{message}"
        );
        let err = build_figure(&[run("a", TRAIN_RM), run("b", GRPO)], &opts).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "a/metrics.jsonl, b/metrics.jsonl have no values for `bogus`; they have: "
            ),
            "{err}"
        );
    }

    #[test]
    fn a_run_folder_works_as_input_and_names_the_figure() {
        let dir = scratch_dir("folder").join("grpo-7");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(METRICS_FILE), "{\"step\": 1, \"loss\": 2}\n").unwrap();
        let out = dir.join("plot.png");
        let summary = plot_run(&dir, &out, &PlotOptions::default()).unwrap();
        assert_eq!(summary.panels, ["Loss"]);
        assert_eq!(summary.runs, ["grpo-7"]);
        assert_eq!(decode(&std::fs::read(&out).unwrap()).0, 1600);
        // eval_rewards.jsonl beside it adds the distributions.
        std::fs::write(dir.join(EVAL_REWARDS_FILE), EVAL_REWARDS).unwrap();
        let summary = plot_run(&dir, &out, &PlotOptions::default()).unwrap();
        assert_eq!(summary.panels, ["Loss", "Eval rewards at step 200"]);
        std::fs::remove_dir_all(dir.parent().unwrap()).ok();
    }

    #[test]
    fn files_with_nothing_plottable_are_errors_naming_them() {
        let dir = scratch_dir("empty");
        let plot = |text: &str| {
            let input = dir.join("metrics.jsonl");
            std::fs::write(&input, text).unwrap();
            plot_run(&input, &dir.join("x.png"), &PlotOptions::default())
        };
        let err = plot("\n{\"event\": \"start\"}\nnot json\n").unwrap_err();
        assert!(
            matches!(
                err,
                PlotError::NothingToPlot {
                    skipped_lines: 1,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("metrics.jsonl"), "{err}");
        let err = plot("").unwrap_err();
        assert!(matches!(err, PlotError::NothingToPlot { .. }), "{err}");
        let err = plot("{\"step\": 1, \"loss\": \"NaN\"}\n").unwrap_err();
        assert!(matches!(err, PlotError::NothingToPlot { .. }), "{err}");
        // A truncated file plots what it has.
        let cut = &TRAIN_RM[..TRAIN_RM.len() / 2];
        let summary = plot(cut).unwrap();
        assert!(summary.points > 100 && summary.skipped_lines <= 1);
        // A folder without metrics, a missing path.
        std::fs::remove_file(dir.join("metrics.jsonl")).unwrap();
        let err = plot_run(&dir, &dir.join("x.png"), &PlotOptions::default()).unwrap_err();
        assert!(matches!(err, PlotError::NoMetrics { .. }), "{err}");
        assert!(err.to_string().contains("trainer_state.json"), "{err}");
        let missing = plot_run(
            Path::new("/nonexistent/metrics.jsonl"),
            Path::new("/tmp/x.png"),
            &PlotOptions::default(),
        );
        assert!(matches!(missing, Err(PlotError::Read { .. })));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn options_are_checked() {
        for opts in [
            PlotOptions {
                width: 10,
                ..Default::default()
            },
            PlotOptions {
                height: 100_000,
                ..Default::default()
            },
            PlotOptions {
                smooth: Some(0.0),
                ..Default::default()
            },
            PlotOptions {
                smooth: Some(f64::NAN),
                ..Default::default()
            },
        ] {
            let err = build_figure(&[run("g", GRPO)], &opts).unwrap_err();
            assert!(matches!(err, PlotError::InvalidOption(_)), "{err}");
        }
    }

    #[test]
    fn single_points_and_tiny_figures_still_draw() {
        let text =
            "{\"step\": 5, \"loss\": 0.7}\n{\"step\": 5, \"split\": \"eval\", \"loss\": 0.8}\n";
        let opts = PlotOptions {
            width: 200,
            height: 200,
            ..Default::default()
        };
        let (figure, summary) = build_figure(&[run("tiny", text)], &opts).unwrap();
        assert_eq!(summary.points, 2);
        assert!(non_white(&render_rgb(&figure).unwrap()) > 500);
        // Every panel kind at the smallest size.
        let (figure, _) = build_figure(&[rm_run(), run("g", GRPO)], &opts).unwrap();
        assert_eq!(figure.panels.len(), 8);
        assert!(non_white(&render_rgb(&figure).unwrap()) > 500);
    }

    #[test]
    fn the_subtitle_describes_the_runs() {
        let text = describe_runs(&[run("g", GRPO)], RunKind::Grpo, Some(0.1));
        assert_eq!(
            text,
            "GRPO run  ·  steps 1–120  ·  12 evals  ·  EMA 0.1  ·  1 line skipped"
        );
        let text = describe_runs(&[run("g", GRPO), run("r", TRAIN_RM)], RunKind::Grpo, None);
        assert_eq!(text, "2 runs  ·  steps 1–200  ·  1 line skipped");
        let names = legend_names(&[run("rm", TRAIN_RM), run("rm", TRAIN_RM), run("x", GRPO)]);
        assert_eq!(names, ["rm", "rm (2)", "x"]);
    }
}
