//! Rust port of the Python package langdetect 1.0.9, as the official IFEval checker
//! runs it: `langdetect.detect(text)` with `DetectorFactory.seed = 0`, CPython 3.11.
//!
//! Provenance and licence: langdetect 1.0.9 (<https://github.com/Mimino666/langdetect>,
//! Apache License 2.0, (c) 2014-2015 Michal Danilak) is a port of Shuyo Nakatani's
//! language-detection (<https://github.com/shuyo/language-detection>, Apache License
//! 2.0, (c) 2010-2014 Cybozu Labs, Inc.). `profiles.bin` re-encodes its 55 language
//! profiles and the normalisation tables of its `messages.properties`; it is written by
//! `scripts/gen-langdetect-profiles.py`. This code is a re-implementation, not a copy.
//!
//! What a call does (all reproduced bit for bit, see the submodules):
//! 1. `text`: remove URLs and e-mail addresses (`re.sub` with langdetect's two
//!    patterns), recompose Vietnamese vowel + combining mark, keep the first
//!    `max_text_length` = 10 000 code points while squeezing double spaces, drop
//!    `A..z` characters from mostly non-Latin text, then collect the profile n-grams.
//! 2. Seven trials of the naive-Bayes update, each starting from the uniform
//!    distribution with a smoothing `alpha = 0.5 + gauss(0, 1) * 0.05`, sampling
//!    n-grams with `random.choice` until the top probability exceeds 0.99999 (checked
//!    every 5 samples) or 1000 samples were taken. One `random.Random` seeded with 0
//!    per call serves all seven trials (it is *not* reseeded between trials), so the
//!    `gauss` pair cache carries from one trial to the next (`rng`).
//! 3. Average the trials, keep languages above 0.1 and sort by probability,
//!    descending, ties in language order (Python's stable `sort(reverse=True)`).
//!
//! The language order (which decides tie-breaking and the summation order of the
//! normalisation) is the order `DetectorFactory.load_profile` got from `os.listdir` in
//! the reference environment; it is baked into `profiles.bin`.
//!
//! Thread-safe: the model is immutable behind a `LazyLock`; per-call buffers are
//! thread-local and reused.

mod model;
mod rng;
#[cfg(test)]
mod tests;
mod text;

use std::cell::RefCell;
use std::sync::LazyLock;

use model::{Model, RowProbs};
use rng::PyRandom;

/// `Detector.ALPHA_DEFAULT`: smoothing added to every n-gram probability.
const ALPHA_DEFAULT: f64 = 0.5;
/// `Detector.ALPHA_WIDTH`: standard deviation of the per-trial alpha jitter.
const ALPHA_WIDTH: f64 = 0.05;
/// `Detector.ITERATION_LIMIT`: a trial stops once this many samples were drawn.
const ITERATION_LIMIT: u32 = 1000;
/// `Detector.PROB_THRESHOLD`: languages at or below this are not reported.
const PROB_THRESHOLD: f64 = 0.1;
/// `Detector.CONV_THRESHOLD`: a trial stops once a language exceeds this.
const CONV_THRESHOLD: f64 = 0.99999;
/// `Detector.BASE_FREQ`: alpha is divided by this before being added.
const BASE_FREQ: f64 = 10000.0;
/// `Detector.n_trial`.
const N_TRIAL: usize = 7;
/// `Detector.max_text_length` (code points, counted after URL/e-mail removal).
const MAX_TEXT_LENGTH: usize = 10000;
/// `DetectorFactory.seed` as the IFEval checker sets it.
const SEED: u64 = 0;
/// `Detector.UNKNOWN_LANG`: what `detect` returns when no language passes
/// `PROB_THRESHOLD`.
const UNKNOWN_LANG: &str = "unknown";

/// Errors `langdetect.detect` / `detect_langs` can raise for a `str` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LangDetectError {
    /// Python raises `LangDetectException(ErrorCode.CantDetectError,
    /// "No features in text.")`: no character sequence of the text is a profile
    /// n-gram (empty text, digits, punctuation, unsupported scripts, ...).
    NoFeatures,
}

impl std::fmt::Display for LangDetectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LangDetectError::NoFeatures => write!(f, "No features in text."),
        }
    }
}

impl std::error::Error for LangDetectError {}

static PROFILES: &[u8] = include_bytes!("profiles.bin");

struct Engine {
    model: Model,
    /// `random.Random()` after `seed(SEED)`; copied at the start of every call.
    seeded: PyRandom,
}

static ENGINE: LazyLock<Engine> = LazyLock::new(|| Engine {
    model: Model::parse(PROFILES)
        .unwrap_or_else(|e| panic!("embedded langdetect profiles.bin is invalid: {e}")),
    seeded: PyRandom::with_seed(SEED),
});

/// Reusable per-thread buffers, so a call allocates nothing once warm.
#[derive(Default)]
struct Scratch {
    chars: Vec<char>,
    tmp: Vec<char>,
    ngrams: Vec<u32>,
    prob: Vec<f64>,
    factors: Vec<f64>,
    langprob: Vec<f64>,
}

/// Buffers above this many elements are released after the call, so one huge input
/// does not pin memory in every worker thread.
const SCRATCH_KEEP: usize = 1 << 16;

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// `langdetect.detect(text)` with `DetectorFactory.seed = 0`: the code of the most
/// probable language (e.g. `"en"`, `"zh-cn"`), or `"unknown"` when no language
/// exceeds probability 0.1.
pub fn detect(text: &str) -> Result<String, LangDetectError> {
    analyse(text, |outcome| outcome.best_language())
}

/// `langdetect.detect_langs(text)` with `DetectorFactory.seed = 0`: the languages
/// whose probability exceeds 0.1, most probable first (same order as Python's list of
/// `Language` objects).
pub fn detect_langs(text: &str) -> Result<Vec<(String, f64)>, LangDetectError> {
    analyse(text, |outcome| outcome.ranked_languages())
}

/// Result of `Detector._detect_block` for one text.
struct Outcome<'a> {
    /// `DetectorFactory.langlist`.
    langs: &'a [String],
    /// `Detector.langprob`: per-language probability averaged over the trials.
    langprob: &'a [f64],
    /// How many n-grams `_extract_ngrams` collected (with repetitions).
    #[cfg_attr(not(test), allow(dead_code))]
    n_ngrams: usize,
}

impl Outcome<'_> {
    /// `Detector.detect`: the first entry of `get_probabilities()`, i.e. the highest
    /// probability above the threshold, earliest in language order among equals
    /// (stable descending sort), or `UNKNOWN_LANG` when nothing passes.
    fn best_language(&self) -> String {
        let mut best: Option<(usize, f64)> = None;
        for (i, &p) in self.langprob.iter().enumerate() {
            if p > PROB_THRESHOLD && best.is_none_or(|(_, b)| p > b) {
                best = Some((i, p));
            }
        }
        best.map_or_else(|| UNKNOWN_LANG.to_owned(), |(i, _)| self.langs[i].clone())
    }

    /// `Detector.get_probabilities` / `_sort_probability`: languages above the
    /// threshold, sorted with `list.sort(reverse=True)`, which is stable, so equal
    /// probabilities keep language order.
    fn ranked_languages(&self) -> Vec<(String, f64)> {
        let mut out: Vec<(String, f64)> = self
            .langs
            .iter()
            .zip(self.langprob)
            .filter(|&(_, &p)| p > PROB_THRESHOLD)
            .map(|(l, &p)| (l.clone(), p))
            .collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        out
    }
}

/// Runs `Detector.append` + `Detector._detect_block` on `text` and hands the outcome
/// to `f`.
fn analyse<R>(text: &str, f: impl FnOnce(Outcome<'_>) -> R) -> Result<R, LangDetectError> {
    let engine = &*ENGINE;
    SCRATCH.with(|cell| {
        // A RefCell borrow can only fail on re-entry, which cannot happen here
        // (nothing below calls back into this module); fall back to fresh buffers.
        let mut fresh = Scratch::default();
        let mut guard = cell.try_borrow_mut().ok();
        let scratch = guard.as_deref_mut().unwrap_or(&mut fresh);
        let result = run(engine, text, scratch).map(|()| {
            f(Outcome {
                langs: &engine.model.langs,
                langprob: &scratch.langprob,
                n_ngrams: scratch.ngrams.len(),
            })
        });
        scratch.shrink();
        result
    })
}

impl Scratch {
    fn shrink(&mut self) {
        if self.chars.capacity() > SCRATCH_KEEP || self.tmp.capacity() > SCRATCH_KEEP {
            self.chars = Vec::new();
            self.tmp = Vec::new();
        }
        if self.ngrams.capacity() > SCRATCH_KEEP {
            self.ngrams = Vec::new();
        }
    }
}

fn run(engine: &Engine, input: &str, s: &mut Scratch) -> Result<(), LangDetectError> {
    let model = &engine.model;

    // Detector.append: URL_RE.sub, MAIL_RE.sub, NGram.normalize_vi, then the
    // truncation / space squeezing loop. The regex passes are skipped when they
    // cannot match (same result, less work).
    s.chars.clear();
    s.chars.extend(input.chars());
    if input.contains("http") {
        text::remove_urls(&s.chars, &mut s.tmp);
        std::mem::swap(&mut s.chars, &mut s.tmp);
    }
    if input.contains('@') {
        text::remove_mails(&s.chars, &mut s.tmp);
        std::mem::swap(&mut s.chars, &mut s.tmp);
    }
    if text::has_vi_mark(model, &s.chars) {
        text::normalize_vi(model, &s.chars, &mut s.tmp);
        std::mem::swap(&mut s.chars, &mut s.tmp);
    }
    text::append(&s.chars, MAX_TEXT_LENGTH, &mut s.tmp);
    std::mem::swap(&mut s.chars, &mut s.tmp);

    // Detector._detect_block
    text::clean_latin(&mut s.chars);
    text::extract_ngrams(model, &s.chars, &mut s.ngrams);
    if s.ngrams.is_empty() {
        return Err(LangDetectError::NoFeatures);
    }

    let n_langs = model.langs.len();
    s.langprob.clear();
    s.langprob.resize(n_langs, 0.0);
    s.factors.resize(n_langs, 0.0);
    let mut rng = engine.seeded.clone();
    for _ in 0..N_TRIAL {
        // Detector._init_probability (no prior map).
        s.prob.clear();
        s.prob.resize(n_langs, 1.0 / n_langs as f64);
        let alpha = ALPHA_DEFAULT + rng.gauss(0.0, 1.0) * ALPHA_WIDTH;
        let weight = alpha / BASE_FREQ;
        let mut i = 0u32;
        loop {
            let row = *rng.choice(&s.ngrams).ok_or(LangDetectError::NoFeatures)?;
            update_lang_prob(model, &mut s.prob, &mut s.factors, row, weight);
            if i.is_multiple_of(5)
                && (normalize_prob(&mut s.prob) > CONV_THRESHOLD || i >= ITERATION_LIMIT)
            {
                break;
            }
            i += 1;
        }
        for (acc, &p) in s.langprob.iter_mut().zip(&s.prob) {
            *acc += p / N_TRIAL as f64;
        }
    }
    Ok(())
}

/// `Detector._update_lang_prob`: `prob[i] *= weight + word_lang_prob_map[w][i]`.
/// For a sparse row the languages it does not list have probability 0.0, and
/// `weight + 0.0 == weight` exactly, so filling the factors with `weight` first and
/// overwriting the listed languages gives Python's products bit for bit.
#[inline]
fn update_lang_prob(model: &Model, prob: &mut [f64], factors: &mut [f64], row: u32, weight: f64) {
    match model.row(row) {
        RowProbs::Dense(probs) => {
            for (x, &p) in prob.iter_mut().zip(probs) {
                *x *= weight + p;
            }
        }
        RowProbs::Sparse { langs, probs } => {
            factors.fill(weight);
            for (&lang, &p) in langs.iter().zip(probs) {
                factors[usize::from(lang)] = weight + p;
            }
            for (x, &factor) in prob.iter_mut().zip(factors.iter()) {
                *x *= factor;
            }
        }
    }
}

/// `Detector._normalize_prob`: divide by the sum and return the maximum. CPython
/// 3.11's `sum()` over floats adds left to right in plain double arithmetic (the
/// compensated summation only arrived in 3.12), which is what this loop does.
#[inline]
fn normalize_prob(prob: &mut [f64]) -> f64 {
    let mut sum = 0.0;
    for &p in prob.iter() {
        sum += p;
    }
    let mut maxp = 0.0;
    for p in prob.iter_mut() {
        *p /= sum;
        if maxp < *p {
            maxp = *p;
        }
    }
    maxp
}
