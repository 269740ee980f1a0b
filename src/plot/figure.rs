//! What a plot shows ([`Figure`], [`Panel`], [`Series`]) and how it is laid out and drawn.
//!
//! A figure is a title line over a grid of panels (1 to 3 columns) that share one x axis. A
//! panel has a header (bold title on the left; legend, or a grey note, on the right), a plot
//! area with light gridlines at nice tick values, and tick labels on its left and bottom.
//! Sizes are given for the default 1600x1000 figure and scale with the figure.

use super::png;
use super::raster::{Canvas, Mask, Rect, Rgb, TextStyle};
use super::ticks::{nice_ticks, tick_labels};

/// The Okabe-Ito palette, distinguishable with the common colour-vision deficiencies.
pub mod palette {
    use super::Rgb;

    pub const BLUE: Rgb = Rgb(0x00, 0x72, 0xB2);
    pub const VERMILLION: Rgb = Rgb(0xD5, 0x5E, 0x00);
    pub const BLUISH_GREEN: Rgb = Rgb(0x00, 0x9E, 0x73);
    pub const REDDISH_PURPLE: Rgb = Rgb(0xCC, 0x79, 0xA7);
    pub const ORANGE: Rgb = Rgb(0xE6, 0x9F, 0x00);
    pub const SKY_BLUE: Rgb = Rgb(0x56, 0xB4, 0xE9);
    pub const YELLOW: Rgb = Rgb(0xF0, 0xE4, 0x42);
    pub const BLACK: Rgb = Rgb(0x00, 0x00, 0x00);
}

const INK: Rgb = Rgb(0x22, 0x22, 0x22);
const MUTED: Rgb = Rgb(0x66, 0x66, 0x66);
const AXIS: Rgb = Rgb(0xA0, 0xA0, 0xA0);
const GRID: Rgb = Rgb(0xE8, 0xE8, 0xE8);

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
    /// Name of the shared x axis, written under the lowest panel of each column.
    pub x_label: String,
    /// Laid out in reading order: one row of up to 3, then rows of 2 or 3 (4 panels: 2x2).
    pub panels: Vec<Panel>,
}

/// One chart in the grid.
#[derive(Debug, Clone)]
pub struct Panel {
    pub title: String,
    /// Grey text at the right of the header, shown when the panel has no legend.
    pub note: String,
    /// Drawn bands first, then lines, then markers; the legend lists the series with a label,
    /// in this order, when there are at least two.
    pub series: Vec<Series>,
    /// Bounds the y axis' padding may not cross (e.g. `(0.0, 1.0)` for rates) while the data
    /// stays within them; data outside them is shown and padded as usual.
    pub y_limits: (f64, f64),
}

/// One set of points in a panel.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text; empty keeps the series out of the legend.
    pub label: String,
    pub color: Rgb,
    /// 0 (invisible) to 1 (opaque).
    pub opacity: f32,
    pub shape: Shape,
}

/// How a series is drawn. Coordinates are data values; a NaN `y` breaks a line or band.
#[derive(Debug, Clone)]
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

/// Render `figure` and encode it as a PNG file.
///
/// # Panics
/// If the figure's width or height is 0.
pub fn render_png(figure: &Figure) -> Vec<u8> {
    let canvas = render(figure);
    png::encode_rgb8(canvas.width(), canvas.height(), canvas.rgb())
}

/// Render `figure` to pixels.
pub fn render(figure: &Figure) -> Canvas {
    let ui = Ui::new(figure.width, figure.height);
    let mut canvas = Canvas::new(figure.width, figure.height, Rgb::WHITE);
    let (w, h) = (figure.width as i32, figure.height as i32);
    let margin = ui.px(28.0);

    let (title, sub) = (ui.title(), ui.muted());
    let subtitle = fit(&figure.subtitle, sub, (w - 2 * margin) / 2);
    let sub_w = sub.width(&subtitle);
    let title_text = fit(&figure.title, title, w - 2 * margin - sub_w - ui.px(32.0));
    canvas.text(margin, margin, &title_text, title);
    let sub_y = margin + title.cap_height() - sub.cap_height();
    canvas.text(w - margin - sub_w, sub_y, &subtitle, sub);

    let x_label = ui.muted();
    let x_label_h = if figure.x_label.is_empty() {
        0
    } else {
        x_label.line_height() + ui.px(6.0)
    };
    let grid = Rect {
        x0: margin,
        y0: margin + title.line_height() + ui.px(18.0),
        x1: w - margin,
        y1: h - margin - x_label_h,
    };

    let (cols, rows) = grid_shape(figure.panels.len());
    let (gap_x, gap_y) = (ui.px(44.0), ui.px(30.0));
    let cell_w = (grid.width() - gap_x * (cols as i32 - 1)) / cols as i32;
    let cell_h = (grid.height() - gap_y * (rows as i32 - 1)) / rows as i32;
    let header_rows = figure
        .panels
        .iter()
        .map(|p| Header::new(&ui, p, cell_w).rows())
        .max()
        .unwrap_or(1);
    let x_range = padded_x_range(&figure.panels);

    for (i, panel) in figure.panels.iter().enumerate() {
        let (col, row) = ((i % cols) as i32, (i / cols) as i32);
        let x0 = grid.x0 + col * (cell_w + gap_x);
        let y0 = grid.y0 + row * (cell_h + gap_y);
        let cell = Rect {
            x0,
            y0,
            x1: x0 + cell_w,
            y1: y0 + cell_h,
        };
        draw_panel(&mut canvas, &ui, panel, cell, header_rows, x_range);
        // The x axis' name goes under the lowest panel of each column.
        if i + cols >= figure.panels.len() && x_label_h > 0 {
            let x = (cell.x0 + cell.x1 - x_label.width(&figure.x_label)) / 2;
            canvas.text(x, cell.y1 + ui.px(6.0), &figure.x_label, x_label);
        }
    }
    canvas
}

/// Columns and rows for `n` panels.
fn grid_shape(n: usize) -> (usize, usize) {
    match n {
        0 | 1 => (1, 1),
        2 => (2, 1),
        3 => (3, 1),
        4 => (2, 2),
        n => (3, n.div_ceil(3)),
    }
}

/// Sizes scaled to the figure, and the text styles.
struct Ui {
    /// Device pixels per reference pixel.
    k: f32,
    /// Font pixel size of ordinary text.
    text: u32,
}

impl Ui {
    fn new(width: u32, height: u32) -> Ui {
        let k =
            (width as f32 / REFERENCE_SIZE.0 as f32).min(height as f32 / REFERENCE_SIZE.1 as f32);
        Ui {
            k,
            text: ((2.0 * k).round() as u32).max(1),
        }
    }

    fn px(&self, v: f32) -> i32 {
        (v * self.k).round() as i32
    }

    fn title(&self) -> TextStyle {
        TextStyle {
            scale: self.text + 1,
            color: INK,
            bold: true,
        }
    }

    fn heading(&self) -> TextStyle {
        TextStyle {
            scale: self.text,
            color: INK,
            bold: true,
        }
    }

    fn label(&self) -> TextStyle {
        TextStyle {
            scale: self.text,
            color: INK,
            bold: false,
        }
    }

    fn muted(&self) -> TextStyle {
        TextStyle {
            scale: self.text,
            color: MUTED,
            bold: false,
        }
    }

    fn swatch_width(&self) -> i32 {
        self.px(24.0)
    }

    /// Space between a swatch and its label.
    fn swatch_gap(&self) -> i32 {
        self.px(10.0)
    }

    /// Space between two legend entries.
    fn entry_gap(&self) -> i32 {
        self.px(22.0)
    }

    fn entry_width(&self, label: &str) -> i32 {
        self.swatch_width() + self.swatch_gap() + self.label().width(label)
    }

    fn legend_width(&self, line: &[Entry]) -> i32 {
        let entries: i32 = line.iter().map(|e| self.entry_width(&e.label)).sum();
        entries + self.entry_gap() * (line.len() as i32 - 1).max(0)
    }
}

/// `text`, cut short with `...` to fit in `max_width` pixels.
fn fit(text: &str, style: TextStyle, max_width: i32) -> String {
    if style.width(text) <= max_width {
        return text.to_string();
    }
    let mut cut: String = text.chars().collect();
    while !cut.is_empty() && style.width(&format!("{cut}...")) > max_width {
        cut.pop();
    }
    format!("{}...", cut.trim_end())
}

/// One legend entry: the series and its label, fitted to the panel.
struct Entry<'a> {
    series: &'a Series,
    label: String,
}

/// Where a panel's header puts its title, legend and note.
struct Header<'a> {
    title: String,
    /// Legend entries by line, right-aligned; empty unless two or more series are labelled.
    legend: Vec<Vec<Entry<'a>>>,
    note: String,
    /// Whether the legend (one line) or the note fits on the title's line.
    beside: bool,
}

impl<'a> Header<'a> {
    fn new(ui: &Ui, panel: &'a Panel, width: i32) -> Header<'a> {
        let (heading, label, muted) = (ui.heading(), ui.label(), ui.muted());
        let title = fit(&panel.title, heading, width);
        let labelled: Vec<&Series> = panel
            .series
            .iter()
            .filter(|s| !s.label.is_empty())
            .collect();
        let mut legend: Vec<Vec<Entry>> = Vec::new();
        let mut line_width = 0;
        if labelled.len() >= 2 {
            for series in labelled {
                let label = fit(&series.label, label, width - ui.entry_width(""));
                let w = ui.entry_width(&label);
                match legend.last_mut() {
                    Some(line) if line_width + ui.entry_gap() + w <= width => {
                        line_width += ui.entry_gap() + w;
                        line.push(Entry { series, label });
                    }
                    _ => {
                        line_width = w;
                        legend.push(vec![Entry { series, label }]);
                    }
                }
            }
        }
        let note = fit(&panel.note, muted, width);
        let right = match legend.as_slice() {
            [] => muted.width(&note),
            [line] => ui.legend_width(line),
            _ => width,
        };
        let beside = right == 0 || heading.width(&title) + ui.px(28.0) + right <= width;
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

/// The x range all panels share, padded so end markers clear the axes.
fn padded_x_range(panels: &[Panel]) -> (f64, f64) {
    let xs = panels
        .iter()
        .flat_map(|p| &p.series)
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

/// The y range of a panel's data, padded within its limits; `None` when it has no data.
fn padded_y_range(panel: &Panel) -> Option<(f64, f64)> {
    let ys = panel
        .series
        .iter()
        .flat_map(|s| s.shape.extent())
        .map(|(_, y)| y);
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
    let (min, max) = panel.y_limits;
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

/// Maps data values to device pixels inside a plot area.
struct Axes {
    area: Rect,
    x: (f64, f64),
    y: (f64, f64),
}

impl Axes {
    fn px(&self, x: f64, y: f64) -> (f32, f32) {
        let fx = (x - self.x.0) / (self.x.1 - self.x.0);
        let fy = (y - self.y.0) / (self.y.1 - self.y.0);
        (
            self.area.x0 as f32 + (fx * f64::from(self.area.width())) as f32,
            self.area.y1 as f32 - (fy * f64::from(self.area.height())) as f32,
        )
    }
}

fn draw_panel(
    canvas: &mut Canvas,
    ui: &Ui,
    panel: &Panel,
    cell: Rect,
    header_rows: i32,
    x_range: (f64, f64),
) {
    let label = ui.muted();
    let line_gap = ui.px(8.0);
    let header_h = header_rows * (label.line_height() + line_gap) + ui.px(4.0);
    let tick = ui.px(5.0).max(2);
    let top = cell.y0 + header_h;
    let bottom = cell.y1 - tick - ui.px(6.0) - label.cap_height();
    draw_header(canvas, ui, panel, cell, header_rows, line_gap);

    let Some(y_range) = padded_y_range(panel) else {
        let area = Rect {
            x0: cell.x0,
            y0: top,
            x1: cell.x1,
            y1: bottom,
        };
        frame(canvas, ui, area);
        let text = "no data";
        let x = (area.x0 + area.x1 - label.width(text)) / 2;
        canvas.text(x, (area.y0 + area.y1 - label.cap_height()) / 2, text, label);
        return;
    };

    // The y ticks depend only on the height; their labels' width sets the plot's left edge.
    let max_y_ticks = ((bottom - top) / (label.line_height() * 5 / 2)).clamp(2, 8) as usize;
    let y_ticks = nice_ticks(y_range.0, y_range.1, max_y_ticks);
    let y_labels = tick_labels(&y_ticks);
    let y_label_w = y_labels.iter().map(|l| label.width(l)).max().unwrap_or(0);
    let area = Rect {
        x0: cell.x0 + y_label_w + tick + ui.px(6.0),
        y0: top,
        x1: cell.x1 - ui.px(10.0),
        y1: bottom,
    };
    let axes = Axes {
        area,
        x: x_range,
        y: y_range,
    };

    // As many x ticks as fit with a gap of two characters between labels.
    let gap = label.width("00");
    let (x_ticks, x_labels) = (2..=10)
        .rev()
        .map(|n| {
            let t = nice_ticks(x_range.0, x_range.1, n);
            let labels = tick_labels(&t);
            (t, labels)
        })
        .find(|(_, labels)| {
            let widest = labels.iter().map(|l| label.width(l)).max().unwrap_or(0);
            labels.len() as i32 * (widest + gap) <= area.width()
        })
        .unwrap_or_else(|| (nice_ticks(x_range.0, x_range.1, 2), Vec::new()));

    for v in &y_ticks.values {
        let y = axes.px(x_range.0, *v).1.floor() as i32;
        canvas.fill_rect(
            Rect {
                x0: area.x0,
                y0: y,
                x1: area.x1,
                y1: y + 1,
            },
            GRID,
        );
    }
    for v in &x_ticks.values {
        let x = axes.px(*v, y_range.0).0.floor() as i32;
        canvas.fill_rect(
            Rect {
                x0: x,
                y0: area.y0,
                x1: x + 1,
                y1: area.y1,
            },
            GRID,
        );
    }

    let mut order: Vec<&Series> = panel.series.iter().collect();
    order.sort_by_key(|s| s.shape.layer());
    for series in order {
        draw_series(canvas, ui, &axes, series);
    }

    frame(canvas, ui, area);
    for (v, text) in y_ticks.values.iter().zip(&y_labels) {
        let y = axes.px(x_range.0, *v).1.floor() as i32;
        canvas.fill_rect(
            Rect {
                x0: area.x0 - tick,
                y0: y,
                x1: area.x0,
                y1: y + 1,
            },
            AXIS,
        );
        let x = area.x0 - tick - ui.px(6.0) - label.width(text);
        canvas.text(x, y - label.cap_height() / 2, text, label);
    }
    for (v, text) in x_ticks.values.iter().zip(&x_labels) {
        let x = axes.px(*v, y_range.0).0.floor() as i32;
        canvas.fill_rect(
            Rect {
                x0: x,
                y0: area.y1,
                x1: x + 1,
                y1: area.y1 + tick,
            },
            AXIS,
        );
        let left = (x - label.width(text) / 2).clamp(cell.x0, cell.x1 - label.width(text));
        canvas.text(left, area.y1 + tick + ui.px(6.0), text, label);
    }
}

/// The left and bottom axis lines of a plot area.
fn frame(canvas: &mut Canvas, ui: &Ui, area: Rect) {
    let t = ui.px(1.0).max(1);
    canvas.fill_rect(
        Rect {
            x0: area.x0 - t,
            y0: area.y0,
            x1: area.x0,
            y1: area.y1 + t,
        },
        AXIS,
    );
    canvas.fill_rect(
        Rect {
            x0: area.x0 - t,
            y0: area.y1,
            x1: area.x1,
            y1: area.y1 + t,
        },
        AXIS,
    );
}

/// Title on the left; on the right, the legend (on the title's line when every header has
/// one line, else on the lines below) or the note (on the title's line if it fits there).
fn draw_header(
    canvas: &mut Canvas,
    ui: &Ui,
    panel: &Panel,
    cell: Rect,
    header_rows: i32,
    line_gap: i32,
) {
    let header = Header::new(ui, panel, cell.width());
    let heading = ui.heading();
    canvas.text(cell.x0, cell.y0, &header.title, heading);
    let row_y = |row: i32| cell.y0 + row * (heading.line_height() + line_gap);
    if header.legend.is_empty() {
        let note = ui.muted();
        let y = row_y(if header.beside { 0 } else { 1 });
        canvas.text(cell.x1 - note.width(&header.note), y, &header.note, note);
        return;
    }
    let label = ui.label();
    let first_row = if header_rows == 1 { 0 } else { 1 };
    for (row, line) in (first_row..).zip(&header.legend) {
        let y = row_y(row);
        let mut x = cell.x1 - ui.legend_width(line);
        for entry in line {
            let swatch = Rect {
                x0: x,
                y0: y,
                x1: x + ui.swatch_width(),
                y1: y + label.cap_height(),
            };
            draw_swatch(canvas, ui, entry.series, swatch);
            x = swatch.x1 + ui.swatch_gap();
            canvas.text(x, y, &entry.label, label);
            x += label.width(&entry.label) + ui.entry_gap();
        }
    }
}

/// A series' legend sample inside `r`.
fn draw_swatch(canvas: &mut Canvas, ui: &Ui, series: &Series, r: Rect) {
    let mid = (r.y0 + r.y1) as f32 / 2.0;
    let (left, right) = (r.x0 as f32 + 1.0, r.x1 as f32 - 1.0);
    let mut mask = Mask::new(r.inflate(ui.px(8.0)));
    match &series.shape {
        Shape::Band { .. } => {
            let (top, bottom) = (r.y0 as f32, r.y1 as f32);
            mask.band(&[(r.x0 as f32, top, bottom), (r.x1 as f32, top, bottom)]);
            canvas.paint(&mask, series.color, series.opacity);
        }
        Shape::Line { width, .. } => {
            mask.segment((left, mid), (right, mid), width * ui.k);
            canvas.paint(&mask, series.color, series.opacity);
        }
        Shape::Markers { radius, joined, .. } => {
            if *joined {
                let mut line = Mask::new(r);
                line.segment((left, mid), (right, mid), JOIN_WIDTH * ui.k);
                canvas.paint(&line, series.color, series.opacity * JOIN_OPACITY);
            }
            draw_markers(
                canvas,
                ui,
                &mut mask,
                &[((left + right) / 2.0, mid)],
                radius * ui.k,
                series,
            );
        }
    }
}

/// Width of the line drawn instead of markers too crowded to tell apart.
const LINE_WIDTH_WHEN_CROWDED: f32 = 2.0;

/// Width and opacity of the line through joined markers.
const JOIN_WIDTH: f32 = 1.5;
const JOIN_OPACITY: f32 = 0.7;

/// Discs of `radius` device pixels at `centers`, each on a white rim that sets it off from
/// the lines beneath.
fn draw_markers(
    canvas: &mut Canvas,
    ui: &Ui,
    mask: &mut Mask,
    centers: &[(f32, f32)],
    radius: f32,
    series: &Series,
) {
    let rim = (1.5 * ui.k).max(1.0);
    for c in centers {
        mask.disc(*c, radius + rim);
    }
    canvas.paint(mask, Rgb::WHITE, series.opacity);
    mask.clear();
    for c in centers {
        mask.disc(*c, radius);
    }
    canvas.paint(mask, series.color, series.opacity);
}

fn draw_series(canvas: &mut Canvas, ui: &Ui, axes: &Axes, series: &Series) {
    let mut mask = Mask::new(axes.area.inflate(ui.px(10.0)));
    let to_px = |points: &[(f64, f64)]| -> Vec<(f32, f32)> {
        points
            .iter()
            .map(|(x, y)| {
                if y.is_finite() {
                    axes.px(*x, *y)
                } else {
                    (f32::NAN, f32::NAN)
                }
            })
            .collect()
    };
    match &series.shape {
        Shape::Line { points, width } => {
            mask.polyline(&thin_out(to_px(points)), width * ui.k);
            canvas.paint(&mask, series.color, series.opacity);
        }
        Shape::Markers {
            points,
            radius,
            joined,
        } => {
            let centers = to_px(points);
            let finite: Vec<(f32, f32)> = centers
                .iter()
                .copied()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect();
            // Markers shrink when crowded, and give way to a plain line when they would
            // merge into one.
            let spacing = axes.area.width() as f32 / finite.len().max(1) as f32;
            let radius = (radius * ui.k).min(spacing / 3.0);
            let crowded = radius < 1.5 * ui.k;
            if *joined || crowded {
                let (width, opacity) = if crowded {
                    (LINE_WIDTH_WHEN_CROWDED * ui.k, series.opacity)
                } else {
                    (JOIN_WIDTH * ui.k, series.opacity * JOIN_OPACITY)
                };
                mask.polyline(&thin_out(centers), width);
                canvas.paint(&mask, series.color, opacity);
                mask.clear();
            }
            if !crowded {
                draw_markers(canvas, ui, &mut mask, &finite, radius, series);
            }
        }
        Shape::Band { points } => {
            let samples: Vec<(f32, f32, f32)> = points
                .iter()
                .map(|(x, lo, hi)| {
                    if lo.is_finite() && hi.is_finite() {
                        let (px, top) = axes.px(*x, *hi);
                        (px, top, axes.px(*x, *lo).1)
                    } else {
                        (f32::NAN, f32::NAN, f32::NAN)
                    }
                })
                .collect();
            mask.band(&samples);
            canvas.paint(&mask, series.color, series.opacity);
        }
    }
}

/// A polyline (in pixels, `x` ascending) with at most four points per pixel column: where
/// several points share a column only the first, lowest, highest and last are kept, in
/// order. The drawn line looks the same; drawing it costs per column, not per point.
fn thin_out(points: Vec<(f32, f32)>) -> Vec<(f32, f32)> {
    if points.len() < 4096 {
        return points;
    }
    let mut out = Vec::with_capacity(4 * 2048);
    for run in points.split_inclusive(|(x, y)| !(x.is_finite() && y.is_finite())) {
        let mut rest = run;
        while let Some(first) = rest.first() {
            let column = first.0.floor();
            let n = rest
                .iter()
                .position(|(x, y)| x.floor() != column || !y.is_finite())
                .unwrap_or(rest.len())
                .max(1);
            let (group, tail) = rest.split_at(n);
            if group.len() <= 4 {
                out.extend_from_slice(group);
            } else {
                let (mut low, mut high) = (0, 0);
                for (i, p) in group.iter().enumerate() {
                    if p.1 < group[low].1 {
                        low = i;
                    }
                    if p.1 > group[high].1 {
                        high = i;
                    }
                }
                let (a, b) = (low.min(high), low.max(high));
                out.extend([group[0], group[a], group[b], group[group.len() - 1]]);
            }
            rest = tail;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinning_keeps_each_columns_extremes_in_order() {
        let points: Vec<(f32, f32)> = (0..10_000)
            .map(|i| (i as f32 / 100.0, ((i * 37) % 101) as f32))
            .collect();
        let thin = thin_out(points.clone());
        assert_eq!(thin.len(), 100 * 4);
        assert_eq!(thin.first(), points.first());
        assert_eq!(thin.last(), points.last());
        for column in thin.chunks(4) {
            let x = column[0].0.floor();
            let ys: Vec<f32> = points
                .iter()
                .filter(|p| p.0.floor() == x)
                .map(|p| p.1)
                .collect();
            let (lo, hi) = ys
                .iter()
                .fold((f32::MAX, f32::MIN), |(l, h), y| (l.min(*y), h.max(*y)));
            assert!(column.iter().any(|p| p.1 == lo) && column.iter().any(|p| p.1 == hi));
        }
        // Gaps survive.
        let mut gappy = points;
        gappy[5_000] = (f32::NAN, f32::NAN);
        assert!(thin_out(gappy).iter().any(|p| p.0.is_nan()));
    }

    #[test]
    fn ranges_pad_within_limits_and_widen_flat_data() {
        let panel = |points: Vec<(f64, f64)>, y_limits| Panel {
            title: String::new(),
            note: String::new(),
            series: vec![Series {
                label: String::new(),
                color: palette::BLUE,
                opacity: 1.0,
                shape: Shape::Line { points, width: 1.0 },
            }],
            y_limits,
        };
        let (lo, hi) = padded_y_range(&panel(vec![(0.0, 0.0), (1.0, 1.0)], (0.0, 1.0))).unwrap();
        assert_eq!((lo, hi), (0.0, 1.0));
        let (lo, hi) = padded_y_range(&panel(vec![(0.0, 0.2), (1.0, 0.8)], (0.0, 1.0))).unwrap();
        assert!(lo < 0.2 && lo > 0.1 && hi > 0.8 && hi < 0.9);
        let (lo, hi) = padded_y_range(&panel(vec![(0.0, -0.5), (1.0, 0.5)], (0.0, 1.0))).unwrap();
        assert!(
            lo < -0.5 && hi > 0.5,
            "data outside the limits stays visible"
        );
        let (lo, hi) = padded_y_range(&panel(
            vec![(0.0, 3.0), (1.0, 3.0)],
            (f64::NEG_INFINITY, f64::INFINITY),
        ))
        .unwrap();
        assert!(lo < 3.0 && hi > 3.0);
        assert_eq!(
            padded_y_range(&panel(vec![(0.0, f64::NAN)], (0.0, 1.0))),
            None
        );
        assert_eq!(
            padded_x_range(&[panel(vec![(5.0, 1.0)], (0.0, 1.0))]),
            (4.0, 6.0)
        );
    }
}
