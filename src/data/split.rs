//! `rmtk data split` and `rmtk data dedup`: rows kept whole (every column), chosen by
//! what their pairs say. A pair's prompt is what `train-rm` reads as its prompt (explicit,
//! or the shared start of an implicit conversation); a text pair without one is keyed by
//! the text its two sides start with.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use rand::SeedableRng;
use rand::seq::SliceRandom;

use super::prefs::{Content, PrefPair};
use super::{DataError, Row, Table};

/// A 128-bit hash (two 64-bit SipHashes, salted apart): repeats among millions of rows
/// are told by it without a collision in practice.
fn key128(v: impl Hash) -> u128 {
    let half = |salt: u8| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (salt, &v).hash(&mut h);
        h.finish()
    };
    (u128::from(half(0)) << 64) | u128::from(half(1))
}

/// What identifies a pair's prompt.
pub fn prompt_key(pair: &PrefPair) -> u128 {
    match (&pair.prompt, &pair.chosen, &pair.rejected) {
        (Some(p), _, _) => key128(p),
        // An implicit text prompt: the text both sides start with.
        (None, Content::Text(c), Content::Text(r)) => {
            let shared = c.bytes().zip(r.bytes()).take_while(|(a, b)| a == b).count();
            // Back to a character boundary.
            let end = (0..=shared)
                .rev()
                .find(|&i| c.is_char_boundary(i))
                .unwrap_or(0);
            key128(&c[..end])
        }
        // Token ids: no boundary to find; each pair is its own prompt.
        _ => key128(pair.source.row),
    }
}

/// What identifies a whole pair.
pub fn pair_key(pair: &PrefPair) -> u128 {
    key128((&pair.prompt, &pair.chosen, &pair.rejected))
}

/// Rows of a table split into (train, test), grouped by prompt: no prompt has rows on both
/// sides. Groups are drawn in a seeded random order until the test side holds
/// `fraction` of the rows (rounded; a group is never broken, so it may hold a few more).
/// Rows keep their file order on each side.
pub fn split_rows(
    table: &Table,
    pairs: &[PrefPair],
    fraction: f64,
    seed: u64,
) -> Result<(Vec<Row>, Vec<Row>), DataError> {
    let file_err = |message: String| DataError::File {
        path: table.path.clone(),
        message,
    };
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut index: HashMap<u128, usize> = HashMap::new();
    for pair in pairs {
        let g = *index.entry(prompt_key(pair)).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(pair.source.row);
    }
    if groups.len() < 2 {
        return Err(file_err(format!(
            "{} distinct prompts: a split by prompt needs at least 2",
            groups.len()
        )));
    }
    let mut order: Vec<usize> = (0..groups.len()).collect();
    order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
    let target = ((pairs.len() as f64) * fraction).round().max(1.0) as usize;
    let mut is_test = vec![false; table.rows.len()];
    let mut taken = 0;
    for &g in &order {
        if taken >= target {
            break;
        }
        for &row in &groups[g] {
            is_test[row] = true;
        }
        taken += groups[g].len();
    }
    if taken >= pairs.len() {
        return Err(file_err(format!(
            "--test-fraction {fraction} leaves no rows for training ({} prompts)",
            groups.len()
        )));
    }
    let mut train = Vec::new();
    let mut test = Vec::new();
    for pair in pairs {
        let row = table.rows[pair.source.row].clone();
        if is_test[pair.source.row] {
            test.push(row);
        } else {
            train.push(row);
        }
    }
    Ok((train, test))
}

/// What `dedup` compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DedupKey {
    /// The same prompt, chosen and rejected response.
    Pair,
    /// The same prompt (the first pair of each prompt stays).
    Prompt,
}

/// The rows of `pairs` without repeats (the first of each stays, in file order), and how
/// many went.
pub fn dedup_rows(table: &Table, pairs: &[PrefPair], key: DedupKey) -> (Vec<Row>, usize) {
    let mut seen = std::collections::HashSet::new();
    let mut kept = Vec::new();
    for pair in pairs {
        let k = match key {
            DedupKey::Pair => pair_key(pair),
            DedupKey::Prompt => prompt_key(pair),
        };
        if seen.insert(k) {
            kept.push(table.rows[pair.source.row].clone());
        }
    }
    let dropped = pairs.len() - kept.len();
    (kept, dropped)
}
