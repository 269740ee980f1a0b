//! Bit-exact port of the parts of CPython 3.11's `random.Random` that langdetect uses.
//!
//! CPython's generator is MT19937 (`Modules/_randommodule.c`) wrapped by
//! `Lib/random.py`. Reproduced here:
//! * `seed(n)` for a non-negative int: `init_by_array` over the 32-bit words of `n`
//!   (least significant first, at least one word, so `seed(0)` uses the key `[0]`),
//!   plus `gauss_next = None`;
//! * `random()`: 53-bit float from two outputs (`a >> 5`, `b >> 6`);
//! * `getrandbits(k)`: `k <= 32` takes the top `k` bits of one output; wider
//!   requests fill 32-bit words least significant first, truncating the last;
//! * `_randbelow_with_getrandbits(n)`: rejection sampling with
//!   `getrandbits(n.bit_length())` (3.11's choice for `Random`), and `choice`;
//! * `gauss(mu, sigma)`: Box-Muller pair with the second value cached in
//!   `gauss_next`.

const N: usize = 624;
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// State of a CPython `random.Random` instance (MT19937 plus `gauss_next`).
#[derive(Clone)]
pub(super) struct PyRandom {
    mt: [u32; N],
    index: usize,
    gauss_next: Option<f64>,
}

impl PyRandom {
    /// Equivalent of `random.Random(seed)` for a non-negative integer seed.
    pub(super) fn with_seed(seed: u64) -> Self {
        let mut rng = PyRandom {
            mt: [0; N],
            index: N,
            gauss_next: None,
        };
        rng.seed(seed);
        rng
    }

    /// `Random.seed(seed)`: CPython splits `abs(seed)` into 32-bit words
    /// (little-endian, `max(1, ceil(bits / 32))` of them) and calls `init_by_array`;
    /// `random.py` then resets `gauss_next`.
    pub(super) fn seed(&mut self, seed: u64) {
        let lo = seed as u32;
        let hi = (seed >> 32) as u32;
        if hi == 0 {
            self.init_by_array(&[lo]);
        } else {
            self.init_by_array(&[lo, hi]);
        }
        self.gauss_next = None;
    }

    fn init_genrand(&mut self, s: u32) {
        self.mt[0] = s;
        for i in 1..N {
            let prev = self.mt[i - 1];
            self.mt[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        self.index = N;
    }

    fn init_by_array(&mut self, key: &[u32]) {
        self.init_genrand(19_650_218);
        let mt = &mut self.mt;
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..N.max(key.len()) {
            let prev = mt[i - 1];
            mt[i] = (mt[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..N - 1 {
            let prev = mt[i - 1];
            mt[i] =
                (mt[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_566_083_941)).wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
        }
        mt[0] = 0x8000_0000;
    }

    fn twist(&mut self) {
        let mt = &mut self.mt;
        let mag = |y: u32| if y & 1 == 0 { 0 } else { MATRIX_A };
        for kk in 0..N - M {
            let y = (mt[kk] & UPPER_MASK) | (mt[kk + 1] & LOWER_MASK);
            mt[kk] = mt[kk + M] ^ (y >> 1) ^ mag(y);
        }
        for kk in N - M..N - 1 {
            let y = (mt[kk] & UPPER_MASK) | (mt[kk + 1] & LOWER_MASK);
            mt[kk] = mt[kk + M - N] ^ (y >> 1) ^ mag(y);
        }
        let y = (mt[N - 1] & UPPER_MASK) | (mt[0] & LOWER_MASK);
        mt[N - 1] = mt[M - 1] ^ (y >> 1) ^ mag(y);
        self.index = 0;
    }

    /// `genrand_uint32` of `_randommodule.c`.
    pub(super) fn next_u32(&mut self) -> u32 {
        if self.index >= N {
            self.twist();
        }
        let mut y = self.mt[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// `Random.random()`: `(a * 2**26 + b) / 2**53` with `a`, `b` the top 27 and
    /// 26 bits of two consecutive outputs.
    pub(super) fn random(&mut self) -> f64 {
        let a = f64::from(self.next_u32() >> 5);
        let b = f64::from(self.next_u32() >> 6);
        (a * 67_108_864.0 + b) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// `Random.getrandbits(k)` for `k <= 64` (`k == 0` returns 0 without consuming
    /// output, as in CPython >= 3.9).
    pub(super) fn getrandbits(&mut self, k: u32) -> u64 {
        assert!(k <= 64, "getrandbits is only ported for k <= 64");
        if k == 0 {
            0
        } else if k <= 32 {
            u64::from(self.next_u32() >> (32 - k))
        } else {
            let low = u64::from(self.next_u32());
            let high = u64::from(self.next_u32() >> (64 - k));
            low | (high << 32)
        }
    }

    /// `Random._randbelow_with_getrandbits(n)` for `n > 0`.
    pub(super) fn randbelow(&mut self, n: usize) -> usize {
        debug_assert!(n > 0);
        let n = n as u64;
        let k = u64::BITS - n.leading_zeros(); // n.bit_length()
        loop {
            let r = self.getrandbits(k);
            if r < n {
                return r as usize;
            }
        }
    }

    /// `Random.choice(seq)`; `None` where Python raises `IndexError` (empty `seq`).
    pub(super) fn choice<'a, T>(&mut self, seq: &'a [T]) -> Option<&'a T> {
        if seq.is_empty() {
            return None;
        }
        let i = self.randbelow(seq.len());
        seq.get(i)
    }

    /// `Random.gauss(mu, sigma)` (Python 3.11): draws a Box-Muller pair on every
    /// other call and returns the cached second value in between.
    pub(super) fn gauss(&mut self, mu: f64, sigma: f64) -> f64 {
        let z = match self.gauss_next.take() {
            Some(z) => z,
            None => {
                let x2pi = self.random() * std::f64::consts::TAU;
                let g2rad = (-2.0 * (1.0 - self.random()).ln()).sqrt();
                self.gauss_next = Some(x2pi.sin() * g2rad);
                x2pi.cos() * g2rad
            }
        };
        mu + z * sigma
    }
}

#[cfg(test)]
mod tests {
    //! Golden values come from `scripts/gen-langdetect-golden.py` running CPython 3.11.
    use super::PyRandom;
    use serde_json::Value;

    fn golden() -> Value {
        serde_json::from_str(include_str!("rng_golden.json")).expect("rng_golden.json parses")
    }

    /// Floats are stored as their IEEE-754 bit pattern in hex (Python `struct`).
    fn f64_bits(v: &Value) -> u64 {
        u64::from_str_radix(v.as_str().expect("hex string"), 16).expect("hex f64 bits")
    }

    fn u64s(v: &Value) -> Vec<u64> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|x| x.as_u64().expect("u64"))
            .collect()
    }

    #[test]
    fn random_matches_cpython_for_several_seeds() {
        let g = golden();
        for case in g["random"].as_array().expect("random cases") {
            let seed = case["seed"].as_u64().expect("seed");
            let mut rng = PyRandom::with_seed(seed);
            for (i, want) in case["values"]
                .as_array()
                .expect("values")
                .iter()
                .enumerate()
            {
                let got = rng.random();
                assert_eq!(got.to_bits(), f64_bits(want), "seed {seed}, random() #{i}");
            }
        }
    }

    #[test]
    fn getrandbits_matches_cpython() {
        let g = golden();
        let mut rng = PyRandom::with_seed(0);
        let ks = u64s(&g["getrandbits"]["k"]);
        let want = g["getrandbits"]["values"].as_array().expect("values");
        assert_eq!(ks.len(), want.len());
        for (i, (k, want)) in ks.iter().zip(want).enumerate() {
            let want = u64::from_str_radix(want.as_str().expect("hex"), 16).expect("hex");
            assert_eq!(rng.getrandbits(*k as u32), want, "getrandbits({k}) #{i}");
        }
    }

    #[test]
    fn choice_matches_cpython() {
        let g = golden();
        let mut rng = PyRandom::with_seed(0);
        for case in g["choice"].as_array().expect("choice cases") {
            let n = case["n"].as_u64().expect("n") as usize;
            let seq: Vec<usize> = (0..n).collect();
            for want in u64s(&case["picks"]) {
                assert_eq!(
                    rng.choice(&seq).copied(),
                    Some(want as usize),
                    "choice over {n}"
                );
            }
        }
        let empty: [u8; 0] = [];
        assert_eq!(rng.choice(&empty), None);
    }

    /// `gauss` goes through libm's `log`, `cos` and `sin`, which CPython and Rust
    /// share on a given platform; bit equality is asserted where the golden values
    /// were produced (Linux/glibc), a 1e-15 tolerance elsewhere.
    #[test]
    fn gauss_matches_cpython_including_reseed() {
        let g = golden();
        let mut rng = PyRandom::with_seed(0);
        let check = |got: f64, want: &Value, what: &str| {
            let want = f64::from_bits(f64_bits(want));
            if cfg!(all(target_os = "linux", target_env = "gnu")) {
                assert_eq!(got.to_bits(), want.to_bits(), "{what}: {got} vs {want}");
            } else {
                assert!((got - want).abs() <= 1e-15, "{what}: {got} vs {want}");
            }
        };
        for (i, want) in g["gauss"].as_array().expect("gauss").iter().enumerate() {
            check(rng.gauss(0.0, 1.0), want, &format!("gauss #{i}"));
        }
        // Odd number of draws leaves gauss_next cached; seed() must drop it
        // (random.py sets gauss_next = None), then the mixed sequence follows.
        let mut rng = PyRandom::with_seed(0);
        rng.gauss(0.0, 1.0);
        rng.seed(0);
        let mixed = g["reseed_mixed"].as_array().expect("reseed_mixed");
        check(rng.gauss(2.0, 0.5), &mixed[0], "gauss(2, 0.5) after reseed");
        check(rng.random(), &mixed[1], "random() between gauss calls");
        check(rng.gauss(2.0, 0.5), &mixed[2], "cached gauss(2, 0.5)");
        check(rng.gauss(2.0, 0.5), &mixed[3], "fresh gauss(2, 0.5)");
    }
}
