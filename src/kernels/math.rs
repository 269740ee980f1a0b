//! Elementwise math for the CPU kernels' inner loops: `exp` over a slice, vectorised, and
//! `erf` (GELU), inlined, with no branch the compiler cannot turn into a select: libm's
//! `erff` is a call per element with branches on the argument's range (in the profile of
//! a MiniLM training step, most of 10% of the samples). Deterministic functions of their
//! input, so results do not depend on threads or chunking.

/// `exp` of every element, in place, **bitwise equal to the standard library's
/// `f32::exp`** on x86-64 glibc: the same algorithm as glibc's `expf` (since 2.27; from
/// Arm's optimized-routines), evaluated 8 (AVX-512) or 4 (AVX2) lanes at a time with the
/// same operations in the same order and the same fused multiply-adds as glibc's FMA
/// variant, which is the one glibc itself picks on a CPU with AVX2 and FMA. Arguments
/// outside its fast range (|x| >= 88 by the exponent bits, NaN, infinities) go through
/// `f32::exp` itself. On any other machine this is `f32::exp` per element.
///
/// glibc's `expf` took 2.6-3.5 ns an element here (a call each, scalar), 8% of a MiniLM
/// training step's samples (the attention's softmax, GELU's `erf`); an earlier attempt at
/// a vectorised polynomial of our own rounded 10% of its results 1 ulp off, enough to
/// move a training step's rewards 2.5e-5 from PyTorch's. This one changes no bit.
pub fn exp_in_place(xs: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        match simd_level() {
            Simd::Avx512 => {
                // SAFETY: the CPU has the features the function is compiled for.
                unsafe { x86::exp_avx512(xs) };
                return;
            }
            Simd::Avx2 => {
                // SAFETY: as above.
                unsafe { x86::exp_avx2(xs) };
                return;
            }
            Simd::None => {}
        }
    }
    for x in xs {
        *x = x.exp();
    }
}

/// Which vector path [`exp_in_place`] takes on this CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Simd {
    Avx512,
    Avx2,
    None,
}

/// The vector path [`exp_in_place`] takes: [`exp_simd_available`] in optimised builds;
/// none in debug builds (tests), where every intrinsic is a call of its own and the vector
/// path is slower than libm's `expf` (it made the integration tests 1.3x slower); the
/// unit tests call the vector paths directly. `RMTK_SIMD_EXP=0` turns it off.
pub fn simd_level() -> Simd {
    use std::sync::OnceLock;
    static LEVEL: OnceLock<Simd> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        if cfg!(debug_assertions) || std::env::var_os("RMTK_SIMD_EXP").is_some_and(|v| v == "0") {
            return Simd::None;
        }
        exp_simd_available()
    })
}

/// The vector path this machine can run bit for bit with `f32::exp`: only where glibc's
/// own `expf` is its FMA variant (x86-64 glibc on a CPU with AVX2 and FMA).
pub fn exp_simd_available() -> Simd {
    if !cfg!(all(target_arch = "x86_64", target_env = "gnu")) {
        return Simd::None;
    }
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx2") && has!("fma") {
            return if has!("avx512f") {
                Simd::Avx512
            } else {
                Simd::Avx2
            };
        }
    }
    Simd::None
}

/// Runs `f` compiled for AVX-512 (or AVX2 and FMA) where the CPU has it, so that the
/// loops inlined into it vectorise 16 (or 8) lanes wide instead of the x86-64 baseline's
/// 4. The kernels' element loops run inside it. Rust neither fuses nor reorders float
/// operations when it vectorises, so every path computes the same bits.
#[inline(always)]
pub fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        match cpu_level() {
            // SAFETY: the CPU has the features the functions are compiled for.
            Simd::Avx512 => return unsafe { x86::run_avx512(f) },
            Simd::Avx2 => return unsafe { x86::run_avx2(f) },
            Simd::None => {}
        }
    }
    f()
}

/// The widest vector code this CPU runs ([`vectorized`]); `RMTK_SIMD=0` keeps the
/// baseline.
fn cpu_level() -> Simd {
    use std::sync::OnceLock;
    static LEVEL: OnceLock<Simd> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        if std::env::var_os("RMTK_SIMD").is_some_and(|v| v == "0") {
            return Simd::None;
        }
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx512f") && has!("avx512bw") && has!("avx512dq") && has!("avx512vl") {
                return Simd::Avx512;
            }
            if has!("avx2") && has!("fma") {
                return Simd::Avx2;
            }
        }
        Simd::None
    })
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    //! `exp(x) = 2^(k/32) * 2^(r/32)` with `x * 32/ln 2 = k + r`, `|r| <= 1/2`, in f64:
    //! `2^(k/32)` from a 32-entry table of `2^(i/32)` with the integer part of `k/32`
    //! added to its exponent bits, `2^(r/32)` by a cubic; then rounded once to f32.
    //! The constants are glibc's (`__exp2f_data`: the table holds each entry's bits less
    //! `i << 47`, so that adding `k << 47` to the entry for `k mod 32` gives `2^(k/32)`).
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    pub(crate) unsafe fn run_avx512<R>(f: impl FnOnce() -> R) -> R {
        f()
    }

    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn run_avx2<R>(f: impl FnOnce() -> R) -> R {
        f()
    }

    /// Bits of `2^(i/32)` less `i << 47`, `i` = 0..32.
    pub(super) const TABLE: [u64; 32] = [
        0x3ff0000000000000,
        0x3fefd9b0d3158574,
        0x3fefb5586cf9890f,
        0x3fef9301d0125b51,
        0x3fef72b83c7d517b,
        0x3fef54873168b9aa,
        0x3fef387a6e756238,
        0x3fef1e9df51fdee1,
        0x3fef06fe0a31b715,
        0x3feef1a7373aa9cb,
        0x3feedea64c123422,
        0x3feece086061892d,
        0x3feebfdad5362a27,
        0x3feeb42b569d4f82,
        0x3feeab07dd485429,
        0x3feea47eb03a5585,
        0x3feea09e667f3bcd,
        0x3fee9f75e8ec5f74,
        0x3feea11473eb0187,
        0x3feea589994cce13,
        0x3feeace5422aa0db,
        0x3feeb737b0cdc5e5,
        0x3feec49182a3f090,
        0x3feed503b23e255d,
        0x3feee89f995ad3ad,
        0x3feeff76f2fb5e47,
        0x3fef199bdd85529c,
        0x3fef3720dcef9069,
        0x3fef5818dcfba487,
        0x3fef7c97337b9b5f,
        0x3fefa4afa2a490da,
        0x3fefd0765b6e4540,
    ];
    /// `32 / ln 2`.
    const INV_LN2_N: u64 = 0x40471547652b82fe;
    /// `1.5 * 2^52`: adding it rounds to an integer, kept in the low bits.
    const SHIFT: u64 = 0x4338000000000000;
    /// The cubic's coefficients for `r^3`, `r^2`, `r` (the constant is 1).
    const C0: u64 = 0x3ebc6af84b912394;
    const C1: u64 = 0x3f2ebfce50fac4f3;
    const C2: u64 = 0x3f962e42ff0c52d6;
    /// Arguments whose exponent bits (sign dropped) exceed this take glibc's slow path.
    const FAST_TOP: i32 = 0x42a;

    fn f(bits: u64) -> f64 {
        f64::from_bits(bits)
    }

    /// Replaces the lanes in `special` (a bit per lane) by `f32::exp` of the inputs.
    #[inline(always)]
    fn fix_special(out: &mut [f32], input: &[f32], special: u32) {
        let mut m = special;
        while m != 0 {
            let l = m.trailing_zeros() as usize;
            out[l] = input[l].exp();
            m &= m - 1;
        }
    }

    /// 8 lanes at a time in f64 (zmm), the table looked up by two-source permutes.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(crate) unsafe fn exp_avx512(xs: &mut [f32]) {
        let inv = _mm512_set1_pd(f(INV_LN2_N));
        let shift = _mm512_set1_pd(f(SHIFT));
        let (c0, c1, c2) = (
            _mm512_set1_pd(f(C0)),
            _mm512_set1_pd(f(C1)),
            _mm512_set1_pd(f(C2)),
        );
        let one = _mm512_set1_pd(1.0);
        let mask31 = _mm512_set1_epi64(31);
        let bit16 = _mm512_set1_epi64(16);
        // SAFETY: TABLE has 32 elements; each load reads 8 of them.
        let t = TABLE.as_ptr().cast::<f64>();
        let (t0, t1, t2, t3) = unsafe {
            (
                _mm512_loadu_pd(t),
                _mm512_loadu_pd(t.add(8)),
                _mm512_loadu_pd(t.add(16)),
                _mm512_loadu_pd(t.add(24)),
            )
        };
        let top_mask = _mm256_set1_epi32(0x7ff);
        let fast_top = _mm256_set1_epi32(FAST_TOP);
        let mut chunks = xs.chunks_exact_mut(8);
        for c in &mut chunks {
            // SAFETY: `c` holds 8 f32.
            let x = unsafe { _mm256_loadu_ps(c.as_ptr()) };
            let top = _mm256_and_si256(_mm256_srli_epi32::<20>(_mm256_castps_si256(x)), top_mask);
            let special =
                _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(top, fast_top)));
            let xd = _mm512_cvtps_pd(x);
            let kd = _mm512_fmadd_pd(inv, xd, shift);
            let ki = _mm512_castpd_si512(kd);
            let kd = _mm512_sub_pd(kd, shift);
            let r = _mm512_fmsub_pd(inv, xd, kd);
            let idx = _mm512_and_si512(ki, mask31);
            let lo = _mm512_permutex2var_pd(t0, idx, t1);
            let hi = _mm512_permutex2var_pd(t2, idx, t3);
            let tab = _mm512_mask_blend_pd(_mm512_test_epi64_mask(idx, bit16), lo, hi);
            let s = _mm512_castsi512_pd(_mm512_add_epi64(
                _mm512_castpd_si512(tab),
                _mm512_slli_epi64::<47>(ki),
            ));
            let z = _mm512_fmadd_pd(r, c0, c1);
            let r2 = _mm512_mul_pd(r, r);
            let y = _mm512_fmadd_pd(r, c2, one);
            let y = _mm512_fmadd_pd(z, r2, y);
            let y = _mm512_mul_pd(y, s);
            let out = _mm512_cvtpd_ps(y);
            if special == 0 {
                // SAFETY: as the load.
                unsafe { _mm256_storeu_ps(c.as_mut_ptr(), out) };
            } else {
                let mut input = [0.0f32; 8];
                input.copy_from_slice(c);
                // SAFETY: as the load.
                unsafe { _mm256_storeu_ps(c.as_mut_ptr(), out) };
                fix_special(c, &input, special as u32);
            }
        }
        for x in chunks.into_remainder() {
            *x = x.exp();
        }
    }

    /// 4 lanes at a time in f64 (ymm), the table looked up by a gather.
    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn exp_avx2(xs: &mut [f32]) {
        let inv = _mm256_set1_pd(f(INV_LN2_N));
        let shift = _mm256_set1_pd(f(SHIFT));
        let (c0, c1, c2) = (
            _mm256_set1_pd(f(C0)),
            _mm256_set1_pd(f(C1)),
            _mm256_set1_pd(f(C2)),
        );
        let one = _mm256_set1_pd(1.0);
        let mask31 = _mm256_set1_epi64x(31);
        let top_mask = _mm_set1_epi32(0x7ff);
        let fast_top = _mm_set1_epi32(FAST_TOP);
        let t = TABLE.as_ptr().cast::<f64>();
        let mut chunks = xs.chunks_exact_mut(4);
        for c in &mut chunks {
            // SAFETY: `c` holds 4 f32.
            let x = unsafe { _mm_loadu_ps(c.as_ptr()) };
            let top = _mm_and_si128(_mm_srli_epi32::<20>(_mm_castps_si128(x)), top_mask);
            let special = _mm_movemask_ps(_mm_castsi128_ps(_mm_cmpgt_epi32(top, fast_top)));
            let xd = _mm256_cvtps_pd(x);
            let kd = _mm256_fmadd_pd(inv, xd, shift);
            let ki = _mm256_castpd_si256(kd);
            let kd = _mm256_sub_pd(kd, shift);
            let r = _mm256_fmsub_pd(inv, xd, kd);
            let idx = _mm256_and_si256(ki, mask31);
            // SAFETY: every index is below 32, TABLE's length.
            let tab = unsafe { _mm256_i64gather_pd::<8>(t, idx) };
            let s = _mm256_castsi256_pd(_mm256_add_epi64(
                _mm256_castpd_si256(tab),
                _mm256_slli_epi64::<47>(ki),
            ));
            let z = _mm256_fmadd_pd(r, c0, c1);
            let r2 = _mm256_mul_pd(r, r);
            let y = _mm256_fmadd_pd(r, c2, one);
            let y = _mm256_fmadd_pd(z, r2, y);
            let y = _mm256_mul_pd(y, s);
            let out = _mm256_cvtpd_ps(y);
            if special == 0 {
                // SAFETY: as the load.
                unsafe { _mm_storeu_ps(c.as_mut_ptr(), out) };
            } else {
                let mut input = [0.0f32; 4];
                input.copy_from_slice(c);
                // SAFETY: as the load.
                unsafe { _mm_storeu_ps(c.as_mut_ptr(), out) };
                fix_special(c, &input, special as u32);
            }
        }
        for x in chunks.into_remainder() {
            *x = x.exp();
        }
    }
}

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
    erf_with(x, erf_exp_arg(x).exp())
}

/// The argument of the exponential in [`erf`]'s tail, `-x^2`: loops that want `erf`
/// vectorised compute these, take [`exp_in_place`] of them, then call [`erf_with`].
#[inline(always)]
pub fn erf_exp_arg(x: f32) -> f32 {
    let a = x.abs();
    -a * a
}

/// [`erf`] given `e = exp(erf_exp_arg(x))`; no call and no branch, so it vectorises.
#[inline(always)]
pub fn erf_with(x: f32, e: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A1: f32 = 0.254_829_6;
    const A2: f32 = -0.284_496_74;
    const A3: f32 = 1.421_413_8;
    const A4: f32 = -1.453_152;
    const A5: f32 = 1.061_405_4;
    let a = x.abs();
    let t = 1.0 / (1.0 + P * a);
    let poly = t * (A1 + t * (A2 + t * (A3 + t * (A4 + t * A5))));
    let tail = 1.0 - poly * e;
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

    /// Bit patterns spread over every sign and exponent, the edges of the fast path and
    /// of over- and underflow, the special values, and a dense run over the softmax's
    /// range.
    fn exp_inputs() -> Vec<f32> {
        let mut xs: Vec<f32> = (0..=u32::MAX).step_by(4099).map(f32::from_bits).collect();
        let edges = [
            0.0f32,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::MIN_POSITIVE,
            88.0,
            -88.0,
            88.72,
            -87.33,
            -103.28,
            -103.97,
            -104.0,
            1e-30,
            -1e-30,
        ];
        for x in edges {
            let b = x.to_bits();
            xs.extend([x, f32::from_bits(b + 1), f32::from_bits(b.wrapping_sub(1))]);
        }
        xs.extend((0..300_000).map(|i| -60.0 + i as f32 * 2.2e-4));
        xs
    }

    fn assert_exp_bits(name: &str, exp: &dyn Fn(&mut [f32])) {
        let xs = exp_inputs();
        let mut got = xs.clone();
        exp(&mut got);
        for (x, g) in xs.iter().zip(&got) {
            assert_eq!(g.to_bits(), x.exp().to_bits(), "{name}: exp({x:e}) = {g:e}");
        }
        // Every tail length, and a run of specials inside one vector.
        for len in 0..20 {
            let mut got = xs[xs.len() - len..].to_vec();
            got[..len.min(3)].fill(f32::NEG_INFINITY);
            let want: Vec<u32> = got.iter().map(|x| x.exp().to_bits()).collect();
            exp(&mut got);
            assert_eq!(
                got.iter().map(|g| g.to_bits()).collect::<Vec<_>>(),
                want,
                "{name}: length {len}"
            );
        }
    }

    #[test]
    fn exp_in_place_is_f32_exp_bit_for_bit() {
        assert_exp_bits("exp_in_place", &exp_in_place);
        #[cfg(target_arch = "x86_64")]
        if exp_simd_available() != Simd::None {
            use std::arch::is_x86_feature_detected as has;
            // SAFETY: run only where the CPU has the features.
            assert_exp_bits("avx2", &|xs| unsafe { x86::exp_avx2(xs) });
            if has!("avx512f") {
                assert_exp_bits("avx512", &|xs| unsafe { x86::exp_avx512(xs) });
            }
        }
    }

    #[test]
    fn erf_with_its_exponential_is_erf() {
        for x in grid(-6.0, 6.0, 100_000) {
            let mut e = [erf_exp_arg(x)];
            exp_in_place(&mut e);
            assert_eq!(erf_with(x, e[0]).to_bits(), erf(x).to_bits(), "erf({x})");
        }
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
