//! The run's random numbers: one seeded ChaCha8 stream whose position is saved with
//! every checkpoint, so a resumed run draws exactly what an uninterrupted one would.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// A saved RNG position. The word position is a 68-bit number, kept as decimal text
/// because JSON numbers are doubles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RngState {
    pub seed: u64,
    pub word_pos: String,
}

#[derive(Debug, Clone)]
pub struct TrainRng {
    seed: u64,
    rng: ChaCha8Rng,
}

impl TrainRng {
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    pub fn state(&self) -> RngState {
        RngState {
            seed: self.seed,
            word_pos: self.rng.get_word_pos().to_string(),
        }
    }

    pub fn from_state(state: &RngState) -> Result<Self, String> {
        let pos: u128 = state
            .word_pos
            .parse()
            .map_err(|_| format!("RNG word position `{}` is not a number", state.word_pos))?;
        let mut rng = ChaCha8Rng::seed_from_u64(state.seed);
        rng.set_word_pos(pos);
        Ok(Self {
            seed: state.seed,
            rng,
        })
    }

    /// Shuffle in place (Fisher-Yates driven by this stream).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        items.shuffle(&mut self.rng);
    }

    /// The generator itself, for draws other than shuffles (GRPO sampling).
    pub fn rng_mut(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn a_restored_stream_continues_where_it_was_saved() {
        let mut a = TrainRng::new(7);
        let mut v: Vec<u32> = (0..50).collect();
        a.shuffle(&mut v);
        let saved = a.state();
        let next_a: Vec<u64> = (0..10).map(|_| a.rng_mut().random()).collect();
        let json = serde_json::to_string(&saved).unwrap();
        let mut b = TrainRng::from_state(&serde_json::from_str(&json).unwrap()).unwrap();
        let next_b: Vec<u64> = (0..10).map(|_| b.rng_mut().random()).collect();
        assert_eq!(next_a, next_b);
    }

    #[test]
    fn same_seed_same_shuffle() {
        let mut x: Vec<u32> = (0..100).collect();
        let mut y = x.clone();
        TrainRng::new(3).shuffle(&mut x);
        TrainRng::new(3).shuffle(&mut y);
        assert_eq!(x, y);
        assert_ne!(x, (0..100).collect::<Vec<_>>());
    }
}
