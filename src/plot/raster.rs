//! A small software rasterizer: an RGB canvas, crisp rectangles and bitmap text, and
//! antialiased shapes drawn through a coverage [`Mask`].
//!
//! Antialiased shapes are first rendered into a mask (coverage 0..1 per pixel, combined by
//! maximum), then composited once with a colour and opacity. Drawing a whole polyline into one
//! mask keeps its joints from darkening where segments overlap, even when it is translucent,
//! and the mask's rectangle clips it.

use super::font;

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    pub const WHITE: Rgb = Rgb(255, 255, 255);
}

/// An integer pixel rectangle: `x0..x1` by `y0..y1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x0: i32,
    pub y0: i32,
    pub x1: i32,
    pub y1: i32,
}

impl Rect {
    pub fn width(&self) -> i32 {
        self.x1 - self.x0
    }

    pub fn height(&self) -> i32 {
        self.y1 - self.y0
    }

    /// The rectangle grown by `by` pixels on every side.
    pub fn inflate(&self, by: i32) -> Rect {
        Rect {
            x0: self.x0 - by,
            y0: self.y0 - by,
            x1: self.x1 + by,
            y1: self.y1 + by,
        }
    }
}

/// An RGB8 image being drawn on.
pub struct Canvas {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

impl Canvas {
    /// A canvas filled with `background`.
    pub fn new(width: u32, height: u32, background: Rgb) -> Canvas {
        let rgb =
            [background.0, background.1, background.2].repeat(width as usize * height as usize);
        Canvas { width, height, rgb }
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    /// The pixels, row by row, three bytes each.
    pub fn rgb(&self) -> &[u8] {
        &self.rgb
    }

    /// Mix `color` into pixel `(x, y)` with weight `alpha` (0..1); outside the canvas: nothing.
    pub fn blend(&mut self, x: i32, y: i32, color: Rgb, alpha: f32) {
        if x < 0 || y < 0 || x >= self.width as i32 || y >= self.height as i32 || alpha <= 0.0 {
            return;
        }
        let i = (y as usize * self.width as usize + x as usize) * 3;
        let a = alpha.min(1.0);
        for (channel, target) in self.rgb[i..i + 3]
            .iter_mut()
            .zip([color.0, color.1, color.2])
        {
            let mixed = f32::from(*channel) * (1.0 - a) + f32::from(target) * a;
            *channel = mixed.round() as u8;
        }
    }

    /// Fill a rectangle with an opaque colour (clipped to the canvas).
    pub fn fill_rect(&mut self, r: Rect, color: Rgb) {
        for y in r.y0.max(0)..r.y1.min(self.height as i32) {
            for x in r.x0.max(0)..r.x1.min(self.width as i32) {
                self.blend(x, y, color, 1.0);
            }
        }
    }

    /// Composite `mask` in `color` at `opacity`.
    pub fn paint(&mut self, mask: &Mask, color: Rgb, opacity: f32) {
        for row in 0..mask.area.height() {
            for col in 0..mask.area.width() {
                let coverage = mask.coverage[(row * mask.area.width() + col) as usize];
                if coverage > 0.0 {
                    self.blend(
                        mask.area.x0 + col,
                        mask.area.y0 + row,
                        color,
                        coverage * opacity,
                    );
                }
            }
        }
    }

    /// Draw `text` with its top-left corner at `(x, y)` (the top of capitals), each font pixel
    /// `scale` by `scale` device pixels; `bold` doubles every stroke one pixel to the right.
    pub fn text(&mut self, x: i32, y: i32, text: &str, style: TextStyle) {
        let s = style.scale as i32;
        for (i, c) in text.chars().enumerate() {
            let (rows, drop) = font::glyph(c);
            let gx = x + i as i32 * font::ADVANCE as i32 * s;
            for (r, bits) in rows.iter().enumerate() {
                for col in 0..font::WIDTH as i32 {
                    if bits & (0x10 >> col) == 0 {
                        continue;
                    }
                    let px = gx + col * s;
                    let py = y + (r as i32 + drop as i32) * s;
                    let extra = i32::from(style.bold);
                    self.fill_rect(
                        Rect {
                            x0: px,
                            y0: py,
                            x1: px + s + extra,
                            y1: py + s,
                        },
                        style.color,
                    );
                }
            }
        }
    }
}

/// How [`Canvas::text`] draws.
#[derive(Debug, Clone, Copy)]
pub struct TextStyle {
    pub scale: u32,
    pub color: Rgb,
    pub bold: bool,
}

impl TextStyle {
    /// Width in device pixels of `text` in this style.
    pub fn width(&self, text: &str) -> i32 {
        let bold = i32::from(self.bold && !text.is_empty());
        (font::text_width(text) * self.scale) as i32 + bold
    }

    /// Height in device pixels of a capital letter.
    pub fn cap_height(&self) -> i32 {
        (font::ASCENT * self.scale) as i32
    }

    /// Height in device pixels of a line, descenders included.
    pub fn line_height(&self) -> i32 {
        (font::LINE * self.scale) as i32
    }
}

/// Per-pixel coverage over a rectangle of the canvas; shapes outside it are clipped.
pub struct Mask {
    area: Rect,
    coverage: Vec<f32>,
}

impl Mask {
    pub fn new(area: Rect) -> Mask {
        let n = (area.width().max(0) * area.height().max(0)) as usize;
        Mask {
            area,
            coverage: vec![0.0; n],
        }
    }

    /// Back to no coverage anywhere.
    pub fn clear(&mut self) {
        self.coverage.fill(0.0);
    }

    fn cover(&mut self, x: i32, y: i32, c: f32) {
        if c <= 0.0
            || x < self.area.x0
            || y < self.area.y0
            || x >= self.area.x1
            || y >= self.area.y1
        {
            return;
        }
        let i = ((y - self.area.y0) * self.area.width() + (x - self.area.x0)) as usize;
        self.coverage[i] = self.coverage[i].max(c.min(1.0));
    }

    /// The integer pixel range `[lo, hi)` that a span `a..b` (in pixel units) touches,
    /// clipped to `[min, max)`.
    fn span(a: f32, b: f32, min: i32, max: i32) -> std::ops::Range<i32> {
        let lo = (a.floor() as i32).max(min);
        let hi = (b.ceil() as i32 + 1).min(max);
        lo..hi.max(lo)
    }

    /// A line segment `width` pixels wide with round ends. Lines thinner than a pixel are
    /// drawn one pixel wide at proportionally lower coverage.
    pub fn segment(&mut self, a: (f32, f32), b: (f32, f32), width: f32) {
        let half = width.max(1.0) / 2.0;
        let fade = width.min(1.0);
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let len2 = dx * dx + dy * dy;
        let reach = half + 1.0;
        let xs = Self::span(
            a.0.min(b.0) - reach,
            a.0.max(b.0) + reach,
            self.area.x0,
            self.area.x1,
        );
        let ys = Self::span(
            a.1.min(b.1) - reach,
            a.1.max(b.1) + reach,
            self.area.y0,
            self.area.y1,
        );
        for y in ys {
            for x in xs.clone() {
                let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
                let t = if len2 > 0.0 {
                    (((px - a.0) * dx + (py - a.1) * dy) / len2).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let (qx, qy) = (a.0 + t * dx - px, a.1 + t * dy - py);
                let distance = (qx * qx + qy * qy).sqrt();
                self.cover(x, y, (half + 0.5 - distance).clamp(0.0, 1.0) * fade);
            }
        }
    }

    /// Connected segments through `points`; a non-finite point breaks the line, and a point
    /// alone between two breaks is drawn as a dot.
    pub fn polyline(&mut self, points: &[(f32, f32)], width: f32) {
        for run in points.split(|(x, y)| !(x.is_finite() && y.is_finite())) {
            match run {
                [] => {}
                [only] => self.segment(*only, *only, width),
                _ => {
                    for pair in run.windows(2) {
                        self.segment(pair[0], pair[1], width);
                    }
                }
            }
        }
    }

    /// A filled disc.
    pub fn disc(&mut self, center: (f32, f32), radius: f32) {
        self.segment(center, center, radius * 2.0);
    }

    /// The area between two curves, given as `(x, top, bottom)` in pixels with `x` ascending:
    /// each pixel column is filled between the curves interpolated at its centre. A
    /// non-finite sample breaks the band.
    pub fn band(&mut self, samples: &[(f32, f32, f32)]) {
        let finite = |s: &&(f32, f32, f32)| s.0.is_finite() && s.1.is_finite() && s.2.is_finite();
        for run in samples.split(|s| !finite(&s)) {
            let [first, .., last] = run else { continue };
            let mut seg = 0;
            let columns = Self::span(first.0 - 0.5, last.0 - 0.5, self.area.x0, self.area.x1);
            for x in columns {
                let cx = x as f32 + 0.5;
                if cx < first.0 || cx > last.0 {
                    continue;
                }
                while seg + 2 < run.len() && run[seg + 1].0 < cx {
                    seg += 1;
                }
                let (l, r) = (run[seg], run[seg + 1]);
                let t = if r.0 > l.0 {
                    (cx - l.0) / (r.0 - l.0)
                } else {
                    0.0
                };
                let top = l.1 + t * (r.1 - l.1);
                let bottom = l.2 + t * (r.2 - l.2);
                let (top, bottom) = (top.min(bottom), top.max(bottom));
                for y in Self::span(top, bottom, self.area.y0, self.area.y1) {
                    let overlap = (bottom.min(y as f32 + 1.0) - top.max(y as f32)).clamp(0.0, 1.0);
                    self.cover(x, y, overlap);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coverage_at(mask: &Mask, x: i32, y: i32) -> f32 {
        mask.coverage[((y - mask.area.y0) * mask.area.width() + (x - mask.area.x0)) as usize]
    }

    #[test]
    fn segments_are_antialiased_and_clipped() {
        let mut mask = Mask::new(Rect {
            x0: 0,
            y0: 0,
            x1: 20,
            y1: 10,
        });
        // Two pixels wide, centred 0.2 above a pixel boundary: rows 3.8..5.8.
        mask.segment((2.0, 4.8), (30.0, 4.8), 2.0);
        assert_eq!(coverage_at(&mask, 10, 2), 0.0);
        assert!((coverage_at(&mask, 10, 3) - 0.2).abs() < 1e-6);
        assert_eq!(coverage_at(&mask, 10, 4), 1.0);
        assert!((coverage_at(&mask, 10, 5) - 0.8).abs() < 1e-6);
        assert_eq!(coverage_at(&mask, 10, 6), 0.0);
        assert!(coverage_at(&mask, 1, 4) > 0.0, "round cap");
        assert_eq!(
            mask.coverage.len(),
            200,
            "nothing is drawn past the clip area"
        );
    }

    #[test]
    fn bands_fill_between_curves_and_break_at_gaps() {
        let mut mask = Mask::new(Rect {
            x0: 0,
            y0: 0,
            x1: 10,
            y1: 10,
        });
        let nan = f32::NAN;
        mask.band(&[
            (0.0, 2.0, 6.5),
            (4.0, 2.0, 6.5),
            (5.0, nan, nan),
            (6.0, 0.0, 1.0),
            (10.0, 0.0, 1.0),
        ]);
        assert_eq!(coverage_at(&mask, 1, 3), 1.0);
        assert_eq!(coverage_at(&mask, 1, 6), 0.5);
        assert_eq!(coverage_at(&mask, 1, 8), 0.0);
        assert_eq!(coverage_at(&mask, 4, 3), 0.0, "the gap column stays empty");
        assert_eq!(coverage_at(&mask, 7, 0), 1.0);
    }

    #[test]
    fn text_and_colours() {
        let mut canvas = Canvas::new(40, 20, Rgb::WHITE);
        let style = TextStyle {
            scale: 2,
            color: Rgb(0, 0, 0),
            bold: false,
        };
        canvas.text(1, 1, "Hi", style);
        assert_eq!(style.width("Hi"), 22);
        let dark = canvas.rgb().chunks(3).filter(|p| p[0] == 0).count();
        // H has 17 pixels and i 9, each drawn 2x2.
        assert_eq!(dark, (17 + 9) * 4);
    }
}
