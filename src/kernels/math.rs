//! `erf` for the CPU kernels' inner loops (GELU), inlined, with no branch the compiler
//! cannot turn into a select: libm's `erff` is a call per element with branches on the
//! argument's range (in the profile of a MiniLM training step, most of 10% of the samples).
//! A deterministic function of its input, so results do not depend on threads or chunking.
//! (`exp` stays the standard library's: glibc's `expf` measured 2.6 ns an element here,
//! and a polynomial written to vectorise was no faster on x86-64's baseline SSE2 and
//! rounded 10% of its results 1 ulp off, enough to move a training step's rewards 2.5e-5
//! from PyTorch's.)

/// erf's Maclaurin coefficients over `2/sqrt(pi) x`: `(-1)^n / (n! (2n+1))` for the
/// powers `z^n = x^(2n)`, `n` = 0 to 10. (A list, not nested brackets: rustfmt takes
/// minutes over eleven levels of nesting.)
const SERIES: [f32; 11] = [
    1.0,
    -1.0 / 3.0,
    1.0 / 10.0,
    -1.0 / 42.0,
    1.0 / 216.0,
    -1.0 / 1320.0,
    1.0 / 9360.0,
    -1.0 / 75_600.0,
    1.0 / 685_440.0,
    -1.0 / 6_894_720.0,
    1.0 / 76_204_800.0,
];

/// The error function within 2e-7 absolute, odd in `x`. Below 1 in magnitude, its
/// Maclaurin series to `x^21` (`2/sqrt(pi) sum (-1)^n x^(2n+1) / (n! (2n+1))`, the first
/// term left out under 1.5e-8); above, Abramowitz and Stegun 7.1.26,
/// `1 - (a1 t + a2 t^2 + a3 t^3 + a4 t^4 + a5 t^5) e^(-x^2)` with `t = 1 / (1 + p |x|)`
/// (their bound 1.5e-7; in f32 near 0 its cancellation would lose more, hence the series).
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A1: f32 = 0.254_829_6;
    const A2: f32 = -0.284_496_74;
    const A3: f32 = 1.421_413_8;
    const A4: f32 = -1.453_152;
    const A5: f32 = 1.061_405_4;
    let a = x.abs();
    let t = 1.0 / (1.0 + P * a);
    let poly = t * (A1 + t * (A2 + t * (A3 + t * (A4 + t * A5))));
    let tail = 1.0 - poly * (-a * a).exp();
    // Horner's rule over the Maclaurin coefficients, highest power first.
    let z = a * a;
    let sum = SERIES.iter().rev().fold(0.0f32, |acc, &c| acc * z + c);
    let series = std::f32::consts::FRAC_2_SQRT_PI * a * sum;
    let y = if a < 1.0 { series } else { tail };
    y.copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Evenly spaced points over `[lo, hi]`, the ends included.
    fn grid(lo: f32, hi: f32, n: usize) -> impl Iterator<Item = f32> {
        (0..=n).map(move |i| lo + (hi - lo) * i as f32 / n as f32)
    }

    #[test]
    fn erf_is_within_2e_7() {
        let mut worst = 0.0f64;
        for x in grid(-6.0, 6.0, 1_200_000) {
            let want = libm::erf(f64::from(x));
            worst = worst.max((f64::from(erf(x)) - want).abs());
        }
        assert!(worst < 2e-7, "largest absolute error {worst:e}");
        assert!(erf(0.0).abs() < 2e-7);
        assert_eq!(erf(f32::INFINITY), 1.0);
        assert_eq!(erf(f32::NEG_INFINITY), -1.0);
        assert_eq!(erf(-0.7), -erf(0.7));
    }
}
