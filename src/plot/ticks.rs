//! Axis ticks at "nice" values (1, 2 or 5 times a power of ten) and compact number labels
//! (`1.2k`, `0.003`, `1e-5`).

/// Tick positions along one axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticks {
    /// Distance between two ticks: 1, 2 or 5 times a power of ten.
    pub step: f64,
    /// Every multiple of `step` inside the range, ascending.
    pub values: Vec<f64>,
}

/// The finest nice step that puts at most `max_ticks` (at least two) ticks inside `[lo, hi]`,
/// and those ticks. A single-point range gets that point; an empty or non-finite one none.
pub fn nice_ticks(lo: f64, hi: f64, max_ticks: usize) -> Ticks {
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) {
        let values = if lo.is_finite() && lo == hi {
            vec![lo]
        } else {
            Vec::new()
        };
        return Ticks { step: 0.0, values };
    }
    let max_ticks = max_ticks.max(2) as f64;
    let mut exponent = (span / max_ticks).log10().floor() as i32;
    loop {
        for mantissa in [1.0, 2.0, 5.0] {
            let step = scaled(mantissa, exponent);
            let first = (lo / step).ceil();
            let last = (hi / step).floor();
            if last - first + 1.0 <= max_ticks {
                let values = (first as i64..=last as i64)
                    .map(|k| snap_zero(scaled(k as f64 * mantissa, exponent), step))
                    .collect();
                return Ticks { step, values };
            }
        }
        exponent += 1;
    }
}

/// `n * 10^exponent`, dividing for negative exponents so that `2e-1 * 3` comes out as `0.6`.
fn scaled(n: f64, exponent: i32) -> f64 {
    if exponent >= 0 {
        n * 10f64.powi(exponent)
    } else {
        n / 10f64.powi(-exponent)
    }
}

fn snap_zero(v: f64, step: f64) -> f64 {
    if v.abs() < step * 1e-9 { 0.0 } else { v }
}

/// The labels of an axis' ticks, in one notation for the whole axis and with just the digits
/// its step makes meaningful: `0.25 0.5 0.75`; `500 1000 1500`; `10k 10.05k 10.1k` (suffixes
/// from 10 000 up); `5e-6 1e-5 1.5e-5` (scientific when the step is below 0.001).
pub fn tick_labels(ticks: &Ticks) -> Vec<String> {
    let step = ticks.step;
    if !(step.is_finite() && step > 0.0) {
        return ticks.values.iter().map(|v| format_number(*v)).collect();
    }
    let largest = ticks.values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let notation = if step < 1e-3 {
        Notation::Scientific
    } else if largest >= 1e4 {
        Notation::Suffix(((largest.log10() / 3.0).floor() as usize).min(SUFFIXES.len() - 1))
    } else {
        Notation::Suffix(0)
    };
    ticks
        .values
        .iter()
        .map(|v| {
            let v = snap_zero((v / step).round() * step, step);
            if v == 0.0 {
                return "0".to_string();
            }
            let digits = v.abs().log10().floor() - step.log10().floor() + 1.0;
            format_in(v, digits.clamp(1.0, 7.0) as usize, notation)
        })
        .collect()
}

/// A value in a legend or note: three significant digits, compact (`0.823`, `1.25k`, `3e-5`).
pub fn format_number(v: f64) -> String {
    format_significant(v, 3)
}

/// `v` with at most `digits` significant digits, trailing zeros dropped: plain decimals
/// from 0.001 up to 1000, then `k`/`M`/`G`/`T` suffixes, and `1.5e-5` style below 0.001.
pub fn format_significant(v: f64, digits: usize) -> String {
    format_in(v, digits, Notation::Auto)
}

const SUFFIXES: [&str; 5] = ["", "k", "M", "G", "T"];

#[derive(Debug, Clone, Copy)]
enum Notation {
    /// Scientific below 0.001, else the suffix that keeps the mantissa under 1000.
    Auto,
    Scientific,
    /// Divided by 1000 to this power, with its suffix (0: plain).
    Suffix(usize),
}

fn format_in(v: f64, digits: usize, notation: Notation) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.into();
    }
    if v == 0.0 {
        return "0".into();
    }
    let digits = digits.max(1);
    let sign = if v < 0.0 { "-" } else { "" };
    let a = v.abs();
    let tier = match notation {
        Notation::Scientific => None,
        Notation::Auto if a < 1e-3 => None,
        Notation::Auto => {
            // The smallest suffix whose rounded mantissa stays under 1000.
            (0..SUFFIXES.len())
                .find(|t| {
                    let m = a / 1000f64.powi(*t as i32);
                    let decimals = decimals_for(m, digits);
                    format!("{m:.decimals$}")
                        .parse::<f64>()
                        .is_ok_and(|r| r < 1000.0)
                })
                .or(Some(SUFFIXES.len() - 1))
        }
        Notation::Suffix(t) => Some(t),
    };
    match tier {
        None => {
            let text = format!("{a:.prec$e}", prec = digits - 1);
            let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
            format!("{sign}{}e{exponent}", trim_zeros(mantissa))
        }
        Some(t) => {
            let m = a / 1000f64.powi(t as i32);
            let decimals = decimals_for(m, digits);
            format!(
                "{sign}{}{}",
                trim_zeros(&format!("{m:.decimals$}")),
                SUFFIXES[t]
            )
        }
    }
}

/// Decimals that give `m` (>= 0.001) `digits` significant digits.
fn decimals_for(m: f64, digits: usize) -> usize {
    let integer_digits = m.log10().floor() as i64 + 1;
    (digits as i64 - integer_digits).max(0) as usize
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_nice_and_inside_the_range() {
        let t = nice_ticks(0.0, 1.0, 6);
        assert_eq!(t.step, 0.2);
        assert_eq!(t.values, vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);

        let t = nice_ticks(3.0, 297.0, 6);
        assert_eq!(t.step, 50.0);
        assert_eq!(t.values, vec![50.0, 100.0, 150.0, 200.0, 250.0]);

        let t = nice_ticks(-0.37, 0.41, 5);
        assert_eq!(t.step, 0.2);
        assert_eq!(t.values.first(), Some(&-0.2));
        assert!(
            t.values.contains(&0.0),
            "zero is snapped exactly: {:?}",
            t.values
        );

        let t = nice_ticks(1e-6, 2.1e-5, 5);
        assert_eq!(t.step, 5e-6);
        assert_eq!(t.values.len(), 4);
    }

    #[test]
    fn tick_counts_respect_the_limit_for_many_ranges() {
        for (lo, hi) in [
            (0.0, 7.3),
            (12.0, 13.0),
            (-5e3, 1e6),
            (0.9991, 0.9999),
            (1e-9, 3e-9),
        ] {
            for max in 2..=10 {
                let t = nice_ticks(lo, hi, max);
                assert!(
                    t.values.len() <= max,
                    "{lo}..{hi} max {max}: {:?}",
                    t.values
                );
                assert!(!t.values.is_empty(), "{lo}..{hi} max {max}");
                let m = t.step / 10f64.powf(t.step.log10().floor());
                assert!(
                    [1.0, 2.0, 5.0].iter().any(|n| (m - n).abs() < 1e-9),
                    "{}",
                    t.step
                );
                assert!(
                    t.values
                        .iter()
                        .all(|v| *v >= lo - 1e-12 && *v <= hi + 1e-12)
                );
            }
        }
    }

    #[test]
    fn degenerate_ranges() {
        assert_eq!(nice_ticks(1.0, 1.0, 5).values, vec![1.0]);
        assert!(nice_ticks(2.0, 1.0, 5).values.is_empty());
        assert!(nice_ticks(f64::NAN, 1.0, 5).values.is_empty());
        assert!(nice_ticks(0.0, f64::INFINITY, 5).values.is_empty());
    }

    #[test]
    fn compact_numbers() {
        let cases = [
            (0.0, "0"),
            (1.0, "1"),
            (12.5, "12.5"),
            (999.0, "999"),
            (1234.0, "1.23k"),
            (1200.0, "1.2k"),
            (15_000.0, "15k"),
            (999_999.0, "1M"),
            (2.5e6, "2.5M"),
            (3e9, "3G"),
            (0.25, "0.25"),
            (0.003, "0.003"),
            (0.0123456, "0.0123"),
            (1e-5, "1e-5"),
            (2.5e-4, "2.5e-4"),
            (-0.5, "-0.5"),
            (-1500.0, "-1.5k"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-inf"),
        ];
        for (v, want) in cases {
            assert_eq!(format_number(v), want, "{v}");
        }
    }

    #[test]
    fn tick_labels_share_one_notation_and_use_the_digits_their_step_needs() {
        let labels = |lo, hi, n| tick_labels(&nice_ticks(lo, hi, n));
        assert_eq!(labels(0.0, 1.0, 6), ["0", "0.2", "0.4", "0.6", "0.8", "1"]);
        assert_eq!(labels(0.0, 2000.0, 5), ["0", "500", "1000", "1500", "2000"]);
        assert_eq!(labels(0.0, 15_000.0, 4), ["0", "5k", "10k", "15k"]);
        assert_eq!(
            labels(10_000.0, 10_200.0, 5),
            ["10k", "10.05k", "10.1k", "10.15k", "10.2k"]
        );
        assert_eq!(
            labels(0.0, 2e-5, 5),
            ["0", "5e-6", "1e-5", "1.5e-5", "2e-5"]
        );
        assert_eq!(
            labels(0.0, 0.002, 5),
            ["0", "5e-4", "1e-3", "1.5e-3", "2e-3"]
        );
        assert_eq!(
            labels(0.005, 0.03, 6),
            ["0.005", "0.01", "0.015", "0.02", "0.025", "0.03"]
        );
        assert_eq!(
            labels(0.6, 0.7, 6),
            ["0.6", "0.62", "0.64", "0.66", "0.68", "0.7"]
        );
        assert_eq!(labels(-1.0, 1.0, 5), ["-1", "-0.5", "0", "0.5", "1"]);
        assert_eq!(
            labels(0.0, 2.5e6, 6),
            ["0", "0.5M", "1M", "1.5M", "2M", "2.5M"]
        );
    }
}
