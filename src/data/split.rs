//! `rmtk data split` and `rmtk data dedup`: rows kept whole (every column), chosen by
//! what their pairs say. A pair's prompt is what `train-rm` reads as its prompt (explicit,
//! or the shared start of an implicit conversation); a text pair without one is keyed by
//! the text its two sides start with.

use std::collections::HashMap;

use rand::SeedableRng;
use rand::seq::SliceRandom;

use super::prefs::{Content, PrefPair};
use super::{DataError, Row, Table};
use crate::util::fnv128_hex;

/// What identifies a prompt (its content, hashed).
pub fn prompt_key(pair: &PrefPair) -> String {
    match &pair.prompt {
        Some(p) => fnv128_hex(format!("{p:?}").as_bytes()),
        None => match (&pair.chosen, &pair.rejected) {
            (Content::Text(c), Content::Text(r)) => {
                let shared: String = c
                    .chars()
                    .zip(r.chars())
                    .take_while(|(a, b)| a == b)
                    .map(|(a, _)| a)
                    .collect();
                fnv128_hex(shared.as_bytes())
            }
            // Token ids: no boundary to find; each pair is its own prompt.
            _ => fnv128_hex(format!("{:?}", pair.source.row).as_bytes()),
        },
    }
}

/// What identifies a whole pair.
pub fn pair_key(pair: &PrefPair) -> String {
    fnv128_hex(format!("{:?}|{:?}|{:?}", pair.prompt, pair.chosen, pair.rejected).as_bytes())
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
    let mut index: HashMap<String, usize> = HashMap::new();
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
