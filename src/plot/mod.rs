//! `rmtk plot OUTPUT`: draw a training run's `metrics.jsonl` as a PNG, for those who would
//! rather look than read.
//!
//! [`plot_run`] reads the file ([`Metrics::parse`], tolerant of bad lines), recognises the
//! run's kind ([`detect_kind`]), picks up to six panels ([`default_plans`], or the metrics the
//! user named), builds a [`Figure`] and renders it with a small built-in rasterizer and PNG
//! encoder: no image or font libraries, only `flate2` and `crc32fast`.
//!
//! - `metrics` / `panels`: what to draw. The table [`FIELDS`] maps every name a metric may be
//!   logged under to one canonical name; [`GRPO_PANELS`] and [`REWARD_MODEL_PANELS`] list the
//!   default panels by priority.
//! - `figure`: the figure model ([`Figure`], [`Panel`], [`Series`]), layout and drawing.
//! - `ticks` (nice tick values, compact labels), `raster` (antialiased shapes), `font` (a 5x7
//!   bitmap font), `png` (the encoder).

mod figure;
mod font;
mod metrics;
mod panels;
mod png;
mod raster;
mod ticks;

use std::path::{Path, PathBuf};

pub use figure::{Figure, Panel, REFERENCE_SIZE, Series, Shape, palette, render, render_png};
pub use metrics::{Metrics, SeriesSet};
pub use panels::{
    FIELDS, Field, GRPO_PANELS, MAX_PANELS, Plan, REWARD_MODEL_PANELS, Range, Recipe, RunKind,
    default_plans, detect_kind, lookup, requested_plans,
};
pub use png::encode_rgb8;
pub use raster::{Canvas, Mask, Rect, Rgb, TextStyle};
pub use ticks::{Ticks, format_number, nice_ticks, tick_labels};

/// What to draw and how big.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotOptions {
    /// Metrics to draw, one panel each, instead of the defaults for the run's kind. A name may
    /// be canonical (`pass_rate`), an alias (`constraint_pass_rate`) or any field in the
    /// file; `a+b` draws `b` on `a`'s panel.
    pub metrics: Option<Vec<String>>,
    /// Image size in pixels; text and line widths scale with it.
    pub width: u32,
    pub height: u32,
    /// Figure title; by default the name of the run's folder.
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

/// What [`plot_run`] drew.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotSummary {
    /// Panel titles, in reading order.
    pub panels: Vec<String>,
    /// Data points drawn (training and evaluation values, not counting smoothed copies).
    pub points: usize,
    /// Lines of the file that were not usable JSON objects, or training lines without a step.
    pub skipped_lines: usize,
    pub kind: RunKind,
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
    #[error("nothing to plot in {} ({skipped_lines} unusable lines)", path.display())]
    NothingToPlot { path: PathBuf, skipped_lines: usize },
    #[error("{} has no values for `{name}`; it has: {}", path.display(), available.join(", "))]
    UnknownMetric {
        path: PathBuf,
        name: String,
        available: Vec<String>,
    },
    #[error("invalid plot option: {0}")]
    InvalidOption(String),
}

/// Smallest and largest image sides accepted.
const MIN_SIDE: u32 = 200;
const MAX_SIDE: u32 = 8192;

/// Read `metrics_jsonl` (or `metrics.jsonl` inside it, when it is a folder), draw its main
/// curves and write them to `out_png`. The figure is titled after the run's folder unless
/// `opts.title` says otherwise.
pub fn plot_run(
    metrics_jsonl: &Path,
    out_png: &Path,
    opts: &PlotOptions,
) -> Result<PlotSummary, PlotError> {
    let input = if metrics_jsonl.is_dir() {
        metrics_jsonl.join("metrics.jsonl")
    } else {
        metrics_jsonl.to_path_buf()
    };
    let bytes = std::fs::read(&input).map_err(|source| PlotError::Read {
        path: input.clone(),
        source,
    })?;
    let metrics = Metrics::parse(&bytes);
    let (figure, summary) =
        build_figure(&metrics, opts, &run_name(&input)).map_err(|e| e.at(&input))?;
    std::fs::write(out_png, render_png(&figure)).map_err(|source| PlotError::Write {
        path: out_png.into(),
        source,
    })?;
    Ok(summary)
}

/// The name of the folder holding a metrics file (`runs/grpo-7/metrics.jsonl`: `grpo-7`).
fn run_name(metrics_jsonl: &Path) -> String {
    let absolute = std::fs::canonicalize(metrics_jsonl).unwrap_or_else(|_| metrics_jsonl.into());
    absolute.parent().and_then(Path::file_name).map_or_else(
        || "metrics".to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

impl PlotError {
    /// Name the file an error is about (errors from [`build_figure`] have an empty path).
    fn at(self, path: &Path) -> PlotError {
        match self {
            PlotError::NothingToPlot { skipped_lines, .. } => PlotError::NothingToPlot {
                path: path.into(),
                skipped_lines,
            },
            PlotError::UnknownMetric {
                name, available, ..
            } => PlotError::UnknownMetric {
                path: path.into(),
                name,
                available,
            },
            other => other,
        }
    }
}

/// The figure [`plot_run`] draws for `metrics`, titled `run_name` unless `opts` has a title.
pub fn build_figure(
    metrics: &Metrics,
    opts: &PlotOptions,
    run_name: &str,
) -> Result<(Figure, PlotSummary), PlotError> {
    check_options(opts)?;
    let nothing = || PlotError::NothingToPlot {
        path: PathBuf::new(),
        skipped_lines: metrics.skipped_lines,
    };
    if metrics.is_empty() {
        return Err(nothing());
    }
    let kind = detect_kind(metrics);
    let plans = match &opts.metrics {
        Some(names) if !names.is_empty() => {
            requested_plans(metrics, names).map_err(|name| PlotError::UnknownMetric {
                path: PathBuf::new(),
                name,
                available: panels::available(metrics),
            })?
        }
        _ => default_plans(metrics, kind),
    };
    if plans.is_empty() {
        return Err(nothing());
    }

    let mut points = 0;
    let mut panels = Vec::with_capacity(plans.len());
    for plan in &plans {
        let (panel, n) = panels::build_panel(metrics, plan, opts.smooth);
        points += n;
        panels.push(panel);
    }
    if points == 0 {
        return Err(nothing());
    }

    let figure = Figure {
        width: opts.width,
        height: opts.height,
        title: opts.title.clone().unwrap_or_else(|| run_name.to_string()),
        subtitle: describe_run(metrics, kind, opts.smooth),
        x_label: "step".into(),
        panels,
    };
    let summary = PlotSummary {
        panels: figure.panels.iter().map(|p| p.title.clone()).collect(),
        points,
        skipped_lines: metrics.skipped_lines,
        kind,
    };
    Ok((figure, summary))
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

/// "GRPO run · steps 1–300 · 30 evals · EMA 0.1 · 2 lines skipped"
fn describe_run(metrics: &Metrics, kind: RunKind, smooth: Option<f64>) -> String {
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
    let mut parts = vec![kind.describe().to_string()];
    if let [first, .., last] = steps(&metrics.train)[..] {
        parts.push(format!(
            "steps {}–{}",
            format_number(first),
            format_number(last)
        ));
    }
    let evals = steps(&metrics.eval).len();
    if evals > 0 {
        parts.push(format!("{evals} eval{}", if evals == 1 { "" } else { "s" }));
    }
    if let Some(alpha) = smooth {
        parts.push(format!("EMA {alpha}"));
    }
    if metrics.skipped_lines > 0 {
        let n = metrics.skipped_lines;
        parts.push(format!("{n} line{} skipped", if n == 1 { "" } else { "s" }));
    }
    parts.join("  ·  ")
}

#[cfg(test)]
mod tests {
    use super::png::decode::{Image, decode};
    use super::*;

    const GRPO: &str = include_str!("../../tests/fixtures/plot/grpo.jsonl");
    const TRAIN_RM: &str = include_str!("../../tests/fixtures/plot/train_rm.jsonl");

    /// A fresh folder for one test's files.
    fn scratch_dir(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rmtk-plot-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create a temporary folder");
        dir
    }

    fn non_white(image: &Image) -> usize {
        image
            .rgb
            .chunks(3)
            .filter(|p| p != &[255, 255, 255])
            .count()
    }

    fn plot_text(
        test: &str,
        text: &str,
        opts: &PlotOptions,
    ) -> Result<(PlotSummary, Image), PlotError> {
        let dir = scratch_dir(test);
        let (input, output) = (dir.join("metrics.jsonl"), dir.join("plot.png"));
        std::fs::write(&input, text).expect("write the metrics");
        let summary = plot_run(&input, &output, opts);
        let image = summary
            .as_ref()
            .ok()
            .map(|_| decode(&std::fs::read(&output).expect("the PNG exists")));
        std::fs::remove_dir_all(&dir).ok();
        summary.map(|s| (s, image.expect("decoded")))
    }

    #[test]
    fn grpo_sample_renders_a_valid_png() {
        let (summary, image) = plot_text("grpo", GRPO, &PlotOptions::default()).unwrap();
        assert_eq!((image.width, image.height), (1600, 1000));
        assert_eq!(summary.kind, RunKind::Grpo);
        assert_eq!(summary.panels.len(), 6);
        assert_eq!(summary.panels[0], "Constraint pass rate");
        assert_eq!(summary.skipped_lines, 1, "the fixture has one cut-off line");
        assert!(summary.points > 800, "{}", summary.points);
        // Background stays white, but lines, text and gridlines cover a fair share.
        assert_eq!(image.pixel(0, 0), [255, 255, 255]);
        let ink = non_white(&image);
        assert!(ink > 40_000 && ink < 800_000, "{ink} non-white pixels");
        // The palette's blue (training lines) and vermillion (eval markers) are both there.
        assert!(image.rgb.chunks(3).any(|p| p == [0x00, 0x72, 0xB2]));
        assert!(image.rgb.chunks(3).any(|p| p == [0xD5, 0x5E, 0x00]));
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
        let (summary, image) = plot_text("rm", TRAIN_RM, &opts).unwrap();
        assert_eq!((image.width, image.height), (900, 600));
        assert_eq!(summary.kind, RunKind::RewardModel);
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
        assert!(non_white(&image) > 10_000);
    }

    #[test]
    fn requested_metrics_and_their_errors() {
        let opts = PlotOptions {
            metrics: Some(vec!["kl".into(), "entropy+clip_fraction".into()]),
            ..Default::default()
        };
        let (summary, _) = plot_text("asked", GRPO, &opts).unwrap();
        assert_eq!(summary.panels, ["KL divergence", "entropy + clip_fraction"]);

        let opts = PlotOptions {
            metrics: Some(vec!["bogus".into()]),
            ..Default::default()
        };
        let err = plot_text("bogus", GRPO, &opts).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, PlotError::UnknownMetric { .. }), "{message}");
        assert!(
            message.contains("`bogus`") && message.contains("pass_rate"),
            "{message}"
        );
    }

    #[test]
    fn a_run_folder_works_as_input_and_names_the_figure() {
        let dir = scratch_dir("folder").join("grpo-7");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("metrics.jsonl"), "{\"step\": 1, \"loss\": 2}\n").unwrap();
        let out = dir.join("plot.png");
        let summary = plot_run(&dir, &out, &PlotOptions::default()).unwrap();
        assert_eq!(summary.panels, ["Loss"]);
        assert_eq!(run_name(&dir.join("metrics.jsonl")), "grpo-7");
        assert!(decode(&std::fs::read(&out).unwrap()).width == 1600);
        std::fs::remove_dir_all(dir.parent().unwrap()).ok();
    }

    #[test]
    fn files_with_nothing_plottable_are_errors() {
        let err = plot_text(
            "empty",
            "\n{\"event\": \"start\"}\nnot json\n",
            &PlotOptions::default(),
        )
        .unwrap_err();
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
        let err = plot_text(
            "nan",
            "{\"step\": 1, \"loss\": \"NaN\"}\n",
            &PlotOptions::default(),
        )
        .unwrap_err();
        assert!(matches!(err, PlotError::NothingToPlot { .. }), "{err}");
        let missing = plot_run(
            Path::new("/nonexistent/metrics.jsonl"),
            Path::new("/tmp/x.png"),
            &PlotOptions::default(),
        );
        assert!(matches!(missing, Err(PlotError::Read { .. })));
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
            let err = build_figure(&Metrics::parse(GRPO.as_bytes()), &opts, "run").unwrap_err();
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
        let (summary, image) = plot_text("tiny", text, &opts).unwrap();
        assert_eq!(summary.points, 2);
        assert!(non_white(&image) > 500);
    }

    #[test]
    fn the_subtitle_describes_the_run() {
        let metrics = Metrics::parse(GRPO.as_bytes());
        let text = describe_run(&metrics, RunKind::Grpo, Some(0.1));
        assert_eq!(
            text,
            "GRPO run  ·  steps 1–120  ·  12 evals  ·  EMA 0.1  ·  1 line skipped"
        );
    }
}
