//! What a plot shows ([`Figure`], [`Panel`], [`Body`], [`Series`]) and how it is laid out and
//! drawn with plotters: into an RGB buffer encoded as PNG ([`render_png`]), or as SVG text
//! ([`render_svg`], which the tests read).
//!
//! A figure is a title line (and, for several runs, a legend naming them) over a grid of
//! panels. Curve panels share one x axis (the step); a histogram or bar panel spans two grid
//! columns. A panel has a header (bold title on the left; legend, or a grey note, on the
//! right), a plot area with light gridlines at nice tick values, and tick labels on its left
//! and bottom; the axis' name goes under it. Sizes are given for the default 1600x1000 figure
//! and scale with the figure.

use std::ops::Range;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::fonts;
use super::ticks::{nice_ticks, tick_labels};

/// A colour.
pub type Rgb = RGBColor;

/// The Okabe-Ito palette, distinguishable with the common colour-vision deficiencies.
pub mod palette {
    use super::Rgb;
    use plotters::style::RGBColor;

    pub const BLUE: Rgb = RGBColor(0x00, 0x72, 0xB2);
    pub const VERMILLION: Rgb = RGBColor(0xD5, 0x5E, 0x00);
    pub const BLUISH_GREEN: Rgb = RGBColor(0x00, 0x9E, 0x73);
    pub const REDDISH_PURPLE: Rgb = RGBColor(0xCC, 0x79, 0xA7);
    pub const ORANGE: Rgb = RGBColor(0xE6, 0x9F, 0x00);
    pub const SKY_BLUE: Rgb = RGBColor(0x56, 0xB4, 0xE9);
    pub const YELLOW: Rgb = RGBColor(0xF0, 0xE4, 0x42);
    pub const BLACK: Rgb = RGBColor(0x00, 0x00, 0x00);
}

const WHITE_RGB: Rgb = RGBColor(0xFF, 0xFF, 0xFF);
const INK: Rgb = RGBColor(0x22, 0x22, 0x22);
const MUTED: Rgb = RGBColor(0x66, 0x66, 0x66);
const AXIS: Rgb = RGBColor(0xA0, 0xA0, 0xA0);
const GRID: Rgb = RGBColor(0xE8, 0xE8, 0xE8);

/// The size [`Figure`]'s pixel sizes (line widths, marker radii) are given for.
pub const REFERENCE_SIZE: (u32, u32) = (1600, 1000);

/// A whole picture.
#[derive(Debug, Clone)]
pub struct Figure {
    pub width: u32,
    pub height: u32,
    /// Bold, at the top left.
    pub title: String,
    /// Grey, at the right end of the title line.
    pub subtitle: String,
    /// Name of the curve panels' shared x axis, written under the lowest of each column.
    pub x_label: String,
    /// A line of its own under the title (the runs of an overlay); empty: none.
    pub legend: Vec<LegendEntry>,
    /// Laid out in reading order; curve panels take one grid cell, the others two.
    pub panels: Vec<Panel>,
}

/// One chart in the grid.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    pub title: String,
    /// Grey text at the right of the header, shown when the panel has no legend.
    pub note: String,
    pub body: Body,
}

/// What a panel draws.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// Series over the shared step axis.
    Curves {
        /// Drawn bands first, then lines, then markers; the legend lists the series with a
        /// label, in this order, when there are at least two.
        series: Vec<Series>,
        /// Bounds the y axis' padding may not cross (e.g. `(0.0, 1.0)` for rates) while the
        /// data stays within them; data outside them is shown and padded as usual.
        y_limits: (f64, f64),
    },
    /// Overlaid histograms on shared bins.
    Histogram(Histogram),
    /// Horizontal bars, a group of bars per category.
    Bars(Bars),
}

/// Overlaid histograms: each group a translucent fill under its outline.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Bin edges, ascending (one more than each group's counts).
    pub edges: Vec<f64>,
    pub groups: Vec<HistGroup>,
    /// Name of the x axis.
    pub x_label: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HistGroup {
    pub label: String,
    pub color: Rgb,
    pub counts: Vec<u64>,
}

/// Horizontal bars in `[0, 1]`: one row per category (the first at the top), one bar per
/// group in each row.
#[derive(Debug, Clone, PartialEq)]
pub struct Bars {
    pub categories: Vec<String>,
    pub groups: Vec<BarGroup>,
    /// Name of the value axis.
    pub x_label: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BarGroup {
    pub label: String,
    pub color: Rgb,
    /// One per category; NaN where the group has no value.
    pub values: Vec<f64>,
}

/// One set of points in a curve panel.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text; empty keeps the series out of the legend.
    pub label: String,
    pub color: Rgb,
    /// 0 (invisible) to 1 (opaque).
    pub opacity: f32,
    pub shape: Shape,
}

/// How a series is drawn. Coordinates are data values; a NaN `y` breaks a line or band.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// A polyline `width` pixels wide (at [`REFERENCE_SIZE`], like every size here).
    Line { points: Vec<(f64, f64)>, width: f32 },
    /// Dots of `radius` pixels with a white rim; `joined` adds a thin line through them.
    Markers {
        points: Vec<(f64, f64)>,
        radius: f32,
        joined: bool,
    },
    /// The area between `lo` and `hi` at each `(x, lo, hi)`.
    Band { points: Vec<(f64, f64, f64)> },
}

/// A legend entry: a sample of how something is drawn, and its name.
#[derive(Debug, Clone, PartialEq)]
pub struct LegendEntry {
    pub label: String,
    pub swatch: Swatch,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Swatch {
    Line {
        color: Rgb,
        opacity: f32,
        width: f32,
    },
    Marker {
        color: Rgb,
        joined: bool,
    },
    Fill {
        color: Rgb,
        opacity: f32,
    },
}

impl Shape {
    /// Every finite `(x, y)` the shape covers (both edges of a band).
    fn extent(&self) -> Vec<(f64, f64)> {
        let finite = |p: &(f64, f64)| p.0.is_finite() && p.1.is_finite();
        match self {
            Shape::Line { points, .. } | Shape::Markers { points, .. } => {
                points.iter().copied().filter(finite).collect()
            }
            Shape::Band { points } => points
                .iter()
                .flat_map(|(x, lo, hi)| [(*x, *lo), (*x, *hi)])
                .filter(finite)
                .collect(),
        }
    }

    /// Drawing order: bands under lines under markers.
    fn layer(&self) -> u8 {
        match self {
            Shape::Band { .. } => 0,
            Shape::Line { .. } => 1,
            Shape::Markers { .. } => 2,
        }
    }
}

impl Series {
    fn swatch(&self) -> Swatch {
        match &self.shape {
            Shape::Line { width, .. } => Swatch::Line {
                color: self.color,
                opacity: self.opacity,
                width: *width,
            },
            Shape::Markers { joined, .. } => Swatch::Marker {
                color: self.color,
                joined: *joined,
            },
            Shape::Band { .. } => Swatch::Fill {
                color: self.color,
                opacity: self.opacity,
            },
        }
    }
}

/// Opacity of histogram fills (they overlap) and of bars.
const HIST_OPACITY: f32 = 0.35;
const BAR_OPACITY: f32 = 0.85;

impl Panel {
    /// The panel's legend: its labelled series when there are two or more, its histogram
    /// or bar groups.
    pub fn legend(&self) -> Vec<LegendEntry> {
        match &self.body {
            Body::Curves { series, .. } => {
                let labelled: Vec<&Series> =
                    series.iter().filter(|s| !s.label.is_empty()).collect();
                if labelled.len() < 2 {
                    return Vec::new();
                }
                labelled
                    .into_iter()
                    .map(|s| LegendEntry {
                        label: s.label.clone(),
                        swatch: s.swatch(),
                    })
                    .collect()
            }
            Body::Histogram(h) => h
                .groups
                .iter()
                .map(|g| LegendEntry {
                    label: g.label.clone(),
                    swatch: Swatch::Fill {
                        color: g.color,
                        opacity: HIST_OPACITY + 0.2,
                    },
                })
                .collect(),
            Body::Bars(b) => b
                .groups
                .iter()
                .map(|g| LegendEntry {
                    label: g.label.clone(),
                    swatch: Swatch::Fill {
                        color: g.color,
                        opacity: BAR_OPACITY,
                    },
                })
                .collect(),
        }
    }

    /// Grid columns the panel spans.
    fn span(&self) -> usize {
        match self.body {
            Body::Curves { .. } => 1,
            Body::Histogram(_) | Body::Bars(_) => 2,
        }
    }

    fn is_curves(&self) -> bool {
        matches!(self.body, Body::Curves { .. })
    }
}

/// A drawing error as text.
trait Drawn<T> {
    fn drawn(self) -> Result<T, String>;
}

impl<T, E: std::fmt::Display> Drawn<T> for Result<T, E> {
    fn drawn(self) -> Result<T, String> {
        self.map_err(|e| e.to_string())
    }
}

/// Render `figure` to RGB pixels, row by row.
pub fn render_rgb(figure: &Figure) -> Result<Vec<u8>, String> {
    let (w, h) = (figure.width, figure.height);
    let mut buffer = vec![0xFF; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (w, h)).into_drawing_area();
        draw(&root, figure)?;
        root.present().drawn()?;
    }
    Ok(buffer)
}

/// Render `figure` and encode it as a PNG file.
pub fn render_png(figure: &Figure) -> Result<Vec<u8>, String> {
    let rgb = render_rgb(figure)?;
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, figure.width, figure.height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().drawn()?;
    writer.write_image_data(&rgb).drawn()?;
    writer.finish().drawn()?;
    Ok(out)
}

/// Render `figure` as an SVG document (text stays text, each line a `<polyline>`).
pub fn render_svg(figure: &Figure) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (figure.width, figure.height)).into_drawing_area();
        draw(&root, figure)?;
        root.present().drawn()?;
    }
    Ok(svg)
}

/// Sizes scaled to the figure, and the fonts.
struct Ui {
    /// Device pixels per reference pixel.
    k: f32,
}

impl Ui {
    fn new(width: u32, height: u32) -> Ui {
        let k =
            (width as f32 / REFERENCE_SIZE.0 as f32).min(height as f32 / REFERENCE_SIZE.1 as f32);
        Ui { k }
    }

    fn px(&self, v: f32) -> i32 {
        (v * self.k).round() as i32
    }

    /// A font of `size` reference pixels, never below 6 device pixels.
    fn font(&self, size: f32, bold: bool) -> FontDesc<'static> {
        let style = if bold {
            FontStyle::Bold
        } else {
            FontStyle::Normal
        };
        FontDesc::new(
            FontFamily::Name(fonts::FAMILY),
            f64::from((size * self.k).max(6.0)),
            style,
        )
    }

    fn title(&self) -> FontDesc<'static> {
        self.font(26.0, true)
    }

    fn heading(&self) -> FontDesc<'static> {
        self.font(18.0, true)
    }

    fn label(&self) -> FontDesc<'static> {
        self.font(15.0, false)
    }

    /// Height of a line of text in `font`.
    fn line_height(&self, font: &FontDesc) -> i32 {
        (font.get_size() * 1.25).ceil() as i32
    }

    fn swatch_width(&self) -> i32 {
        self.px(24.0)
    }

    /// Space between a swatch and its label.
    fn swatch_gap(&self) -> i32 {
        self.px(8.0)
    }

    /// Space between two legend entries.
    fn entry_gap(&self) -> i32 {
        self.px(20.0)
    }

    fn entry_width(&self, label: &str) -> i32 {
        self.swatch_width() + self.swatch_gap() + text_width(&self.label(), label)
    }

    fn legend_width(&self, line: &[LegendEntry]) -> i32 {
        let entries: i32 = line.iter().map(|e| self.entry_width(&e.label)).sum();
        entries + self.entry_gap() * (line.len() as i32 - 1).max(0)
    }
}

fn text_width(font: &FontDesc, text: &str) -> i32 {
    if text.is_empty() {
        return 0;
    }
    font.box_size(text).map_or(0, |(w, _)| w as i32)
}

fn style<'a>(font: &FontDesc<'a>, color: &'a Rgb, h: HPos, v: VPos) -> TextStyle<'a> {
    TextStyle::from(font.clone())
        .color(color)
        .pos(Pos::new(h, v))
}

/// `text`, cut short with `…` to fit in `max_width` pixels.
fn fit(text: &str, font: &FontDesc, max_width: i32) -> String {
    if text_width(font, text) <= max_width {
        return text.to_string();
    }
    let mut cut: String = text.to_string();
    while !cut.is_empty() && text_width(font, &format!("{cut}…")) > max_width {
        cut.pop();
    }
    if cut.is_empty() {
        return String::new();
    }
    format!("{}…", cut.trim_end())
}

/// A rectangle in device pixels (`x1`, `y1` exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rect {
    x0: i32,
    y0: i32,
    x1: i32,
    y1: i32,
}

impl Rect {
    fn width(&self) -> i32 {
        self.x1 - self.x0
    }

    fn height(&self) -> i32 {
        self.y1 - self.y0
    }

    /// The part of `root` this rectangle covers.
    fn area<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawingArea<DB, Shift> {
        root.clone().shrink(
            (self.x0.max(0), self.y0.max(0)),
            (self.width().max(1), self.height().max(1)),
        )
    }
}

/// Where each panel goes: its grid column and row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    col: usize,
    row: usize,
    span: usize,
}

/// Columns and slots for panels spanning `spans` columns each, filled in reading order:
/// as before for up to six cells (one row of up to 3, 4 as 2x2, then rows of 3), four
/// columns beyond.
fn place(spans: &[usize]) -> (usize, Vec<Slot>) {
    let cells: usize = spans.iter().sum();
    let widest = spans.iter().copied().max().unwrap_or(1);
    let cols = match cells {
        0 | 1 => 1,
        2 => 2,
        3 => 3,
        4 => 2,
        5 | 6 => 3,
        _ => 4,
    }
    .max(widest);
    let (mut col, mut row) = (0, 0);
    let slots = spans
        .iter()
        .map(|&span| {
            if col + span > cols {
                (col, row) = (0, row + 1);
            }
            let slot = Slot { col, row, span };
            col += span;
            slot
        })
        .collect();
    (cols, slots)
}

/// Where a panel's header puts its title, legend and note.
struct Header {
    title: String,
    /// Legend entries by line, right-aligned.
    legend: Vec<Vec<LegendEntry>>,
    note: String,
    /// Whether the legend (one line) or the note fits on the title's line.
    beside: bool,
}

impl Header {
    fn new(ui: &Ui, panel: &Panel, width: i32) -> Header {
        let (heading, label) = (ui.heading(), ui.label());
        let title = fit(&panel.title, &heading, width);
        let mut legend: Vec<Vec<LegendEntry>> = Vec::new();
        let mut line_width = 0;
        for mut entry in panel.legend() {
            entry.label = fit(&entry.label, &label, width - ui.entry_width(""));
            let w = ui.entry_width(&entry.label);
            match legend.last_mut() {
                Some(line) if line_width + ui.entry_gap() + w <= width => {
                    line_width += ui.entry_gap() + w;
                    line.push(entry);
                }
                _ => {
                    line_width = w;
                    legend.push(vec![entry]);
                }
            }
        }
        let note = fit(&panel.note, &label, width);
        let right = match legend.as_slice() {
            [] => text_width(&label, &note),
            [line] => ui.legend_width(line),
            _ => width,
        };
        let beside = right == 0 || text_width(&heading, &title) + ui.px(28.0) + right <= width;
        Header {
            title,
            legend,
            note,
            beside,
        }
    }

    /// Text lines the header needs.
    fn rows(&self) -> i32 {
        match (self.beside, self.legend.len()) {
            (true, _) => 1,
            (false, 0) => 2,
            (false, lines) => 1 + lines as i32,
        }
    }
}

/// The x range all curve panels share, padded so end markers clear the axes.
fn padded_x_range(panels: &[Panel]) -> (f64, f64) {
    let xs = panels
        .iter()
        .filter_map(|p| match &p.body {
            Body::Curves { series, .. } => Some(series),
            _ => None,
        })
        .flatten()
        .flat_map(|s| s.shape.extent())
        .map(|(x, _)| x);
    let (lo, hi) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    });
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0);
    }
    if hi - lo <= 0.0 {
        return (lo - 1.0, hi + 1.0);
    }
    let pad = (hi - lo) * 0.015;
    (lo - pad, hi + pad)
}

/// The y range of a curve panel's data, padded within its limits; `None` when it has none.
fn padded_y_range(series: &[Series], y_limits: (f64, f64)) -> Option<(f64, f64)> {
    let ys = series.iter().flat_map(|s| s.shape.extent()).map(|(_, y)| y);
    let (mut lo, mut hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), y| {
        (lo.min(y), hi.max(y))
    });
    if !(lo.is_finite() && hi.is_finite()) {
        return None;
    }
    if hi - lo <= hi.abs().max(lo.abs()) * 1e-9 {
        let d = if hi == 0.0 { 1.0 } else { hi.abs() * 0.1 };
        (lo, hi) = (lo - d, hi + d);
    }
    let pad = (hi - lo) * 0.06;
    // Padding stops at a limit the data respects; data past a limit is padded as usual.
    let (min, max) = y_limits;
    let lower = if lo >= min {
        (lo - pad).max(min)
    } else {
        lo - pad
    };
    let upper = if hi <= max {
        (hi + pad).min(max)
    } else {
        hi + pad
    };
    Some((lower, upper))
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, figure: &Figure) -> Result<(), String> {
    fonts::register()?;
    let ui = Ui::new(figure.width, figure.height);
    root.fill(&WHITE_RGB).drawn()?;
    let (w, h) = (figure.width as i32, figure.height as i32);
    let margin = ui.px(28.0);
    let (title_font, label) = (ui.title(), ui.label());

    // Title line: the title on the left, the subtitle on the right, on one baseline.
    let subtitle = fit(&figure.subtitle, &label, (w - 2 * margin) / 2);
    let title_w = w - 2 * margin - text_width(&label, &subtitle) - ui.px(32.0);
    let title = fit(&figure.title, &title_font, title_w);
    let baseline = margin + (title_font.get_size() * 0.95) as i32;
    root.draw_text(
        &title,
        &style(&title_font, &INK, HPos::Left, VPos::Bottom),
        (margin, baseline),
    )
    .drawn()?;
    root.draw_text(
        &subtitle,
        &style(&label, &MUTED, HPos::Right, VPos::Bottom),
        (w - margin, baseline),
    )
    .drawn()?;
    let mut top = margin + ui.line_height(&title_font);

    // The figure's own legend (an overlay's runs), on a line under the title.
    if !figure.legend.is_empty() {
        top += ui.px(6.0);
        let mut x = margin;
        for entry in &figure.legend {
            let text = fit(
                &entry.label,
                &label,
                (w - margin - x - ui.entry_width("")).max(0),
            );
            let row = Rect {
                x0: x,
                y0: top,
                x1: x + ui.swatch_width(),
                y1: top + ui.line_height(&label),
            };
            draw_swatch(root, &ui, entry.swatch, row)?;
            x = row.x1 + ui.swatch_gap();
            let mid = (row.y0 + row.y1) / 2;
            root.draw_text(
                &text,
                &style(&label, &INK, HPos::Left, VPos::Center),
                (x, mid),
            )
            .drawn()?;
            x += text_width(&label, &text) + ui.entry_gap();
        }
        top += ui.line_height(&label);
    }

    let axis_name_h = ui.line_height(&label) + ui.px(6.0);
    let grid = Rect {
        x0: margin,
        y0: top + ui.px(16.0),
        x1: w - margin,
        y1: h - margin - axis_name_h,
    };
    let spans: Vec<usize> = figure.panels.iter().map(Panel::span).collect();
    let (cols, slots) = place(&spans);
    let rows = slots.iter().map(|s| s.row + 1).max().unwrap_or(1);
    let (gap_x, gap_y) = (ui.px(44.0), axis_name_h + ui.px(22.0));
    let cell_w = (grid.width() - gap_x * (cols as i32 - 1)) / cols as i32;
    let cell_h = (grid.height() - gap_y * (rows as i32 - 1)) / rows as i32;
    let cell = |slot: &Slot| {
        let x0 = grid.x0 + slot.col as i32 * (cell_w + gap_x);
        let y0 = grid.y0 + slot.row as i32 * (cell_h + gap_y);
        Rect {
            x0,
            y0,
            x1: x0 + cell_w * slot.span as i32 + gap_x * (slot.span as i32 - 1),
            y1: y0 + cell_h,
        }
    };
    let header_rows = figure
        .panels
        .iter()
        .zip(&slots)
        .map(|(p, s)| Header::new(&ui, p, cell(s).width()).rows())
        .max()
        .unwrap_or(1);
    let x_range = padded_x_range(&figure.panels);

    for (i, (panel, slot)) in figure.panels.iter().zip(&slots).enumerate() {
        let rect = cell(slot);
        draw_panel(root, &ui, panel, rect, header_rows, x_range)?;
        // A curve panel's axis name goes under the lowest curve panel of its column.
        let covered_below = figure.panels.iter().zip(&slots).skip(i + 1).any(|(p, s)| {
            p.is_curves() && s.row > slot.row && s.col <= slot.col && slot.col < s.col + s.span
        });
        let name = match &panel.body {
            Body::Curves { .. } if covered_below => "",
            Body::Curves { .. } => figure.x_label.as_str(),
            Body::Histogram(hist) => hist.x_label.as_str(),
            Body::Bars(bars) => bars.x_label.as_str(),
        };
        if !name.is_empty() {
            root.draw_text(
                name,
                &style(&label, &MUTED, HPos::Center, VPos::Top),
                ((rect.x0 + rect.x1) / 2, rect.y1 + ui.px(6.0)),
            )
            .drawn()?;
        }
    }
    Ok(())
}

fn draw_panel<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    ui: &Ui,
    panel: &Panel,
    cell: Rect,
    header_rows: i32,
    x_range: (f64, f64),
) -> Result<(), String> {
    let label = ui.label();
    let line_gap = ui.px(8.0);
    let row_h = ui.line_height(&ui.heading()) + line_gap;
    let header_h = header_rows * row_h + ui.px(2.0);
    draw_header(root, ui, panel, cell, header_rows, row_h)?;
    let body = Rect {
        y0: cell.y0 + header_h,
        ..cell
    };
    match &panel.body {
        Body::Curves { series, y_limits } => match padded_y_range(series, *y_limits) {
            Some(y_range) => draw_curves(root, ui, series, body, x_range, y_range),
            None => {
                let area = body.area(root);
                let (w, h) = area.dim_in_pixel();
                area.draw_text(
                    "no data",
                    &style(&label, &MUTED, HPos::Center, VPos::Center),
                    (w as i32 / 2, h as i32 / 2),
                )
                .drawn()
            }
        },
        Body::Histogram(hist) => draw_histogram(root, ui, hist, body),
        Body::Bars(bars) => draw_bars(root, ui, bars, body),
    }
}

/// Title on the left; on the right, the legend (on the title's line when every header has
/// one line, else on the lines below) or the note (on the title's line if it fits there).
fn draw_header<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    ui: &Ui,
    panel: &Panel,
    cell: Rect,
    header_rows: i32,
    row_h: i32,
) -> Result<(), String> {
    let header = Header::new(ui, panel, cell.width());
    let (heading, label) = (ui.heading(), ui.label());
    let row_mid = |row: i32| cell.y0 + row * row_h + ui.line_height(&heading) / 2;
    root.draw_text(
        &header.title,
        &style(&heading, &INK, HPos::Left, VPos::Center),
        (cell.x0, row_mid(0)),
    )
    .drawn()?;
    if header.legend.is_empty() {
        let row = if header.beside { 0 } else { 1 };
        return root
            .draw_text(
                &header.note,
                &style(&label, &MUTED, HPos::Right, VPos::Center),
                (cell.x1, row_mid(row)),
            )
            .drawn();
    }
    let first_row = if header_rows == 1 { 0 } else { 1 };
    for (row, line) in (first_row..).zip(&header.legend) {
        let mid = row_mid(row);
        let mut x = cell.x1 - ui.legend_width(line);
        for entry in line {
            let half = ui.line_height(&label) / 2;
            let swatch = Rect {
                x0: x,
                y0: mid - half,
                x1: x + ui.swatch_width(),
                y1: mid + half,
            };
            draw_swatch(root, ui, entry.swatch, swatch)?;
            x = swatch.x1 + ui.swatch_gap();
            root.draw_text(
                &entry.label,
                &style(&label, &INK, HPos::Left, VPos::Center),
                (x, mid),
            )
            .drawn()?;
            x += text_width(&label, &entry.label) + ui.entry_gap();
        }
    }
    Ok(())
}

/// A legend sample inside `r`.
fn draw_swatch<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    ui: &Ui,
    swatch: Swatch,
    r: Rect,
) -> Result<(), String> {
    let mid = (r.y0 + r.y1) / 2;
    match swatch {
        Swatch::Line {
            color,
            opacity,
            width,
        } => root
            .draw(&PathElement::new(
                vec![(r.x0, mid), (r.x1, mid)],
                stroke(color, opacity, width, ui),
            ))
            .drawn(),
        Swatch::Marker { color, joined } => {
            if joined {
                root.draw(&PathElement::new(
                    vec![(r.x0, mid), (r.x1, mid)],
                    stroke(color, JOIN_OPACITY, JOIN_WIDTH, ui),
                ))
                .drawn()?;
            }
            let radius = (MARKER_RADIUS * ui.k).round().max(2.0) as i32;
            let center = ((r.x0 + r.x1) / 2, mid);
            root.draw(&Circle::new(center, radius + rim(ui), WHITE_RGB.filled()))
                .drawn()?;
            root.draw(&Circle::new(center, radius, color.filled()))
                .drawn()
        }
        Swatch::Fill { color, opacity } => {
            let inset = ui.px(3.0);
            root.draw(&Rectangle::new(
                [(r.x0, r.y0 + inset), (r.x1, r.y1 - inset)],
                color.mix(f64::from(opacity)).filled(),
            ))
            .drawn()
        }
    }
}

/// Radius of eval markers in the legend (at [`REFERENCE_SIZE`]).
const MARKER_RADIUS: f32 = 5.0;
/// Width of the line drawn instead of markers too crowded to tell apart.
const LINE_WIDTH_WHEN_CROWDED: f32 = 2.0;
/// Width and opacity of the line through joined markers.
const JOIN_WIDTH: f32 = 1.5;
const JOIN_OPACITY: f32 = 0.7;

fn stroke(color: Rgb, opacity: f32, width: f32, ui: &Ui) -> ShapeStyle {
    ShapeStyle {
        color: color.mix(f64::from(opacity)),
        filled: false,
        stroke_width: (width * ui.k).round().max(1.0) as u32,
    }
}

/// Width of the white rim around markers.
fn rim(ui: &Ui) -> i32 {
    (1.5 * ui.k).round().max(1.0) as i32
}

/// One axis of a chart: its range, tick values and their labels.
struct Axis {
    range: (f64, f64),
    /// Distance between two ticks (0 when not evenly spaced).
    step: f64,
    ticks: Vec<f64>,
    labels: Vec<String>,
}

impl Axis {
    /// At most `max_ticks` nice ticks over `range`.
    fn numeric(range: (f64, f64), max_ticks: usize) -> Axis {
        let ticks = nice_ticks(range.0, range.1, max_ticks);
        let labels = tick_labels(&ticks);
        Axis {
            range,
            step: ticks.step,
            ticks: ticks.values,
            labels,
        }
    }

    /// At most `max_ticks` nice ticks, whole numbers only when `integer` (steps, counts).
    fn numeric_in(range: (f64, f64), max_ticks: usize, integer: bool) -> Axis {
        (2..=max_ticks.max(2))
            .rev()
            .map(|n| Axis::numeric(range, n))
            .find(|axis| !integer || axis.step >= 1.0)
            .unwrap_or_else(|| Axis::numeric(range, 2))
    }

    /// As many nice ticks as fit along `length` pixels with two characters between labels,
    /// whole numbers only when `integer`.
    fn fitted(range: (f64, f64), length: i32, font: &FontDesc, integer: bool) -> Axis {
        let gap = text_width(font, "00");
        (2..=10)
            .rev()
            .map(|n| Axis::numeric(range, n))
            .filter(|axis| !integer || axis.step >= 1.0)
            .find(|axis| {
                let widest = axis
                    .labels
                    .iter()
                    .map(|l| text_width(font, l))
                    .max()
                    .unwrap_or(0);
                axis.labels.len() as i32 * (widest + gap) <= length
            })
            .unwrap_or_else(|| Axis::numeric(range, 2))
    }

    /// The label of the tick nearest to `v`.
    fn label_at(&self, v: f64) -> String {
        self.ticks
            .iter()
            .zip(&self.labels)
            .min_by(|a, b| (a.0 - v).abs().total_cmp(&(b.0 - v).abs()))
            .map_or_else(String::new, |(_, l)| l.clone())
    }

    fn widest_label(&self, font: &FontDesc) -> i32 {
        self.labels
            .iter()
            .map(|l| text_width(font, l))
            .max()
            .unwrap_or(0)
    }
}

/// A linear axis for plotters whose gridlines and labels sit at the given ticks.
#[derive(Debug, Clone)]
struct Ticked {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let span = self.hi - self.lo;
        let f = if span > 0.0 {
            ((value - self.lo) / span).clamp(-10.0, 10.0)
        } else {
            0.5
        };
        limit.0 + (f64::from(limit.1 - limit.0) * f + 1e-3).floor() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

impl Axis {
    fn ranged(&self) -> Ticked {
        Ticked {
            lo: self.range.0,
            hi: self.range.1,
            ticks: self.ticks.clone(),
        }
    }
}

type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<Ticked, Ticked>>;

/// A chart in `body`: axes on the left and bottom with `x` and `y`'s ticks and labels, and
/// gridlines at the ticks of the axes asked for.
fn chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    ui: &Ui,
    x: &Axis,
    y: &Axis,
    gridlines: (bool, bool),
) -> Result<Chart<'a, DB>, String> {
    let label = ui.label();
    let tick = ui.px(5.0).max(2);
    let y_label_w = y.widest_label(&label) + tick + ui.px(8.0);
    let x_label_h = ui.line_height(&label) + tick + ui.px(4.0);
    let mut chart = ChartBuilder::on(area)
        .margin_top(ui.px(4.0))
        .margin_right(ui.px(10.0))
        .x_label_area_size(x_label_h)
        .y_label_area_size(y_label_w)
        .build_cartesian_2d(x.ranged(), y.ranged())
        .drawn()?;
    let x_format = |v: &f64| x.label_at(*v);
    let y_format = |v: &f64| y.label_at(*v);
    let mut mesh = chart.configure_mesh();
    mesh.bold_line_style(GRID.stroke_width(1))
        .light_line_style(TRANSPARENT)
        .axis_style(AXIS.stroke_width(1))
        .label_style(style(&label, &INK, HPos::Center, VPos::Center))
        .set_all_tick_mark_size(tick)
        .x_label_formatter(&x_format)
        .y_label_formatter(&y_format);
    if !gridlines.0 {
        mesh.disable_x_mesh();
    }
    if !gridlines.1 {
        mesh.disable_y_mesh();
    }
    mesh.draw().drawn()?;
    Ok(chart)
}

fn draw_curves<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    ui: &Ui,
    series: &[Series],
    body: Rect,
    x_range: (f64, f64),
    y_range: (f64, f64),
) -> Result<(), String> {
    let label = ui.label();
    let area = body.area(root);
    // The y ticks depend only on the height; the x ticks on the width left by their labels.
    let y_ticks = (body.height() / (ui.line_height(&label) * 5 / 2)).clamp(2, 8) as usize;
    let y = Axis::numeric(y_range, y_ticks);
    let x_length = body.width() - y.widest_label(&label) - ui.px(30.0);
    let whole = series
        .iter()
        .flat_map(|s| s.shape.extent())
        .all(|(x, _)| x.fract() == 0.0);
    let x = Axis::fitted(x_range, x_length, &label, whole);
    let mut chart = chart(&area, ui, &x, &y, (true, true))?;
    let plot_width = chart.plotting_area().dim_in_pixel().0 as f32;

    let mut order: Vec<&Series> = series.iter().collect();
    order.sort_by_key(|s| s.shape.layer());
    for s in order {
        match &s.shape {
            Shape::Line { points, width } => {
                for run in finite_runs(points) {
                    if let [point] = run[..] {
                        // A lone point (a metric logged once) would draw nothing as a line.
                        let r = (width * ui.k * 1.5).round().max(2.0) as i32;
                        let dot = s.color.mix(f64::from(s.opacity)).filled();
                        chart
                            .draw_series(std::iter::once(Circle::new(point, r, dot)))
                            .drawn()?;
                        continue;
                    }
                    chart
                        .draw_series(LineSeries::new(run, stroke(s.color, s.opacity, *width, ui)))
                        .drawn()?;
                }
            }
            Shape::Markers {
                points,
                radius,
                joined,
            } => {
                let finite: Vec<(f64, f64)> = points
                    .iter()
                    .copied()
                    .filter(|(x, y)| x.is_finite() && y.is_finite())
                    .collect();
                // Markers shrink when crowded, and give way to a plain line when they would
                // merge into one.
                let spacing = plot_width / finite.len().max(1) as f32;
                let radius = (radius * ui.k).min(spacing / 3.0);
                let crowded = radius < 1.5 * ui.k;
                if *joined || crowded {
                    let (width, opacity) = if crowded {
                        (LINE_WIDTH_WHEN_CROWDED, s.opacity)
                    } else {
                        (JOIN_WIDTH, s.opacity * JOIN_OPACITY)
                    };
                    for run in finite_runs(points) {
                        chart
                            .draw_series(LineSeries::new(run, stroke(s.color, opacity, width, ui)))
                            .drawn()?;
                    }
                }
                if !crowded {
                    let r = radius.round().max(1.0) as i32;
                    let white = WHITE_RGB.mix(f64::from(s.opacity)).filled();
                    let fill = s.color.mix(f64::from(s.opacity)).filled();
                    chart
                        .draw_series(finite.iter().map(|p| Circle::new(*p, r + rim(ui), white)))
                        .drawn()?;
                    chart
                        .draw_series(finite.iter().map(|p| Circle::new(*p, r, fill)))
                        .drawn()?;
                }
            }
            Shape::Band { points } => {
                for run in band_runs(points) {
                    let outline: Vec<(f64, f64)> = run
                        .iter()
                        .map(|(x, _, hi)| (*x, *hi))
                        .chain(run.iter().rev().map(|(x, lo, _)| (*x, *lo)))
                        .collect();
                    chart
                        .draw_series(std::iter::once(Polygon::new(
                            outline,
                            s.color.mix(f64::from(s.opacity)).filled(),
                        )))
                        .drawn()?;
                }
            }
        }
    }
    Ok(())
}

/// The runs of consecutive finite points of a line (a NaN `y` breaks it).
fn finite_runs(points: &[(f64, f64)]) -> Vec<Vec<(f64, f64)>> {
    points
        .split(|(x, y)| !(x.is_finite() && y.is_finite()))
        .filter(|run| !run.is_empty())
        .map(<[_]>::to_vec)
        .collect()
}

fn band_runs(points: &[(f64, f64, f64)]) -> Vec<&[(f64, f64, f64)]> {
    points
        .split(|(x, lo, hi)| !(x.is_finite() && lo.is_finite() && hi.is_finite()))
        .filter(|run| !run.is_empty())
        .collect()
}

fn draw_histogram<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    ui: &Ui,
    hist: &Histogram,
    body: Rect,
) -> Result<(), String> {
    let label = ui.label();
    let area = body.area(root);
    let (Some(&lo), Some(&hi)) = (hist.edges.first(), hist.edges.last()) else {
        return Ok(());
    };
    let tallest = hist
        .groups
        .iter()
        .flat_map(|g| g.counts.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let y_ticks = (body.height() / (ui.line_height(&label) * 5 / 2)).clamp(2, 8) as usize;
    let y = Axis::numeric_in((0.0, tallest * 1.08), y_ticks, true);
    let pad = (hi - lo) * 0.02;
    let x_length = body.width() - y.widest_label(&label) - ui.px(30.0);
    let x = Axis::fitted((lo - pad, hi + pad), x_length, &label, false);
    let mut chart = chart(&area, ui, &x, &y, (false, true))?;
    for group in &hist.groups {
        let fill = group.color.mix(f64::from(HIST_OPACITY)).filled();
        chart
            .draw_series(
                hist.edges
                    .windows(2)
                    .zip(&group.counts)
                    .filter(|(_, c)| **c > 0)
                    .map(|(e, c)| Rectangle::new([(e[0], 0.0), (e[1], *c as f64)], fill)),
            )
            .drawn()?;
    }
    // Outlines over every fill, so that each group's shape stays visible where they overlap.
    for group in &hist.groups {
        let mut outline = vec![(lo, 0.0)];
        for (e, c) in hist.edges.windows(2).zip(&group.counts) {
            outline.push((e[0], *c as f64));
            outline.push((e[1], *c as f64));
        }
        outline.push((hi, 0.0));
        chart
            .draw_series(std::iter::once(PathElement::new(
                outline,
                stroke(group.color, 1.0, 2.0, ui),
            )))
            .drawn()?;
    }
    Ok(())
}

fn draw_bars<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    ui: &Ui,
    bars: &Bars,
    body: Rect,
) -> Result<(), String> {
    let label = ui.label();
    let area = body.area(root);
    let n = bars.categories.len();
    if n == 0 {
        return Ok(());
    }
    // Category names on the y axis, cut to at most 45% of the panel's width.
    let max_name = (body.width() as f32 * 0.45) as i32;
    let y = Axis {
        range: (0.0, n as f64),
        step: 1.0,
        ticks: (0..n).map(|i| (n - i) as f64 - 0.5).collect(),
        labels: bars
            .categories
            .iter()
            .map(|c| fit(c, &label, max_name))
            .collect(),
    };
    let x = Axis {
        range: (0.0, 1.0),
        step: 0.25,
        ticks: vec![0.0, 0.25, 0.5, 0.75, 1.0],
        labels: ["0%", "25%", "50%", "75%", "100%"]
            .map(String::from)
            .to_vec(),
    };
    let mut chart = chart(&area, ui, &x, &y, (true, false))?;
    let groups = bars.groups.len().max(1);
    let band = 0.76 / groups as f64;
    // Each bar's value at its end, when a bar is tall enough for text.
    let bar_px = chart.backend_coord(&(0.0, 0.0)).1 - chart.backend_coord(&(0.0, band)).1;
    let value_font = ui.font((bar_px as f32 * 0.8 / ui.k).min(13.0), false);
    let values_shown = bar_px as f64 >= value_font.get_size() && value_font.get_size() >= 7.0;
    for (g, group) in bars.groups.iter().enumerate() {
        let fill = group.color.mix(f64::from(BAR_OPACITY)).filled();
        let bar = |i: usize, v: f64| {
            let top = (n - i) as f64 - 0.12 - g as f64 * band;
            ((0.0, top - band), (v.clamp(0.0, 1.0), top))
        };
        let finite = || {
            group
                .values
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite())
        };
        chart
            .draw_series(finite().map(|(i, v)| {
                let (a, b) = bar(i, *v);
                Rectangle::new([a, b], fill)
            }))
            .drawn()?;
        if !values_shown {
            continue;
        }
        for (i, v) in finite() {
            let ((_, bottom), (end, top)) = bar(i, *v);
            let (x, y) = chart.backend_coord(&(end, (top + bottom) / 2.0));
            let text = format!("{:.0}%", v * 100.0);
            let (color, pos, dx) = if *v > 0.85 {
                (&WHITE_RGB, HPos::Right, -ui.px(4.0))
            } else {
                (&INK, HPos::Left, ui.px(4.0))
            };
            root.draw_text(
                &text,
                &style(&value_font, color, pos, VPos::Center),
                (x + dx, y),
            )
            .drawn()?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curves(points: Vec<(f64, f64)>, y_limits: (f64, f64)) -> Panel {
        Panel {
            title: String::new(),
            note: String::new(),
            body: Body::Curves {
                series: vec![Series {
                    label: String::new(),
                    color: palette::BLUE,
                    opacity: 1.0,
                    shape: Shape::Line { points, width: 1.0 },
                }],
                y_limits,
            },
        }
    }

    fn y_range(panel: &Panel) -> Option<(f64, f64)> {
        match &panel.body {
            Body::Curves { series, y_limits } => padded_y_range(series, *y_limits),
            _ => None,
        }
    }

    #[test]
    fn ranges_pad_within_limits_and_widen_flat_data() {
        let (lo, hi) = y_range(&curves(vec![(0.0, 0.0), (1.0, 1.0)], (0.0, 1.0))).unwrap();
        assert_eq!((lo, hi), (0.0, 1.0));
        let (lo, hi) = y_range(&curves(vec![(0.0, 0.2), (1.0, 0.8)], (0.0, 1.0))).unwrap();
        assert!(lo < 0.2 && lo > 0.1 && hi > 0.8 && hi < 0.9);
        let (lo, hi) = y_range(&curves(vec![(0.0, -0.5), (1.0, 0.5)], (0.0, 1.0))).unwrap();
        assert!(
            lo < -0.5 && hi > 0.5,
            "data outside the limits stays visible"
        );
        let (lo, hi) = y_range(&curves(
            vec![(0.0, 3.0), (1.0, 3.0)],
            (f64::NEG_INFINITY, f64::INFINITY),
        ))
        .unwrap();
        assert!(lo < 3.0 && hi > 3.0);
        assert_eq!(y_range(&curves(vec![(0.0, f64::NAN)], (0.0, 1.0))), None);
        assert_eq!(
            padded_x_range(&[curves(vec![(5.0, 1.0)], (0.0, 1.0))]),
            (4.0, 6.0)
        );
    }

    #[test]
    fn wide_panels_take_two_cells_and_the_grid_grows_to_four_columns() {
        let slot = |col, row, span| Slot { col, row, span };
        assert_eq!(place(&[1; 4]).0, 2);
        assert_eq!(place(&[1; 6]).0, 3);
        let (cols, slots) = place(&[1, 1, 1, 1, 1, 1, 2]);
        assert_eq!(cols, 4);
        assert_eq!(slots[4], slot(0, 1, 1));
        assert_eq!(slots[6], slot(2, 1, 2));
        // A wide panel that does not fit the row's rest starts a new row.
        let (cols, slots) = place(&[1, 1, 1, 2]);
        assert_eq!(cols, 3);
        assert_eq!(slots[3], slot(0, 1, 2));
        assert_eq!(place(&[2]), (2, vec![slot(0, 0, 2)]));
    }

    #[test]
    fn lines_break_at_gaps() {
        let runs = finite_runs(&[(1.0, 1.0), (2.0, f64::NAN), (3.0, 3.0), (4.0, 4.0)]);
        assert_eq!(runs, [vec![(1.0, 1.0)], vec![(3.0, 3.0), (4.0, 4.0)]]);
    }

    #[test]
    fn text_is_cut_to_fit() {
        fonts::register().unwrap();
        let ui = Ui::new(1600, 1000);
        let font = ui.label();
        let long = "detectable_format:number_highlighted_sections";
        let cut = fit(long, &font, 120);
        assert!(
            cut.ends_with('…') && text_width(&font, &cut) <= 120,
            "{cut}"
        );
        assert_eq!(fit("ok", &font, 120), "ok");
        assert!(text_width(&ui.heading(), "Loss") > text_width(&font, "Loss") / 2);
    }
}
