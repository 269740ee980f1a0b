//! What the benches share.

/// Deterministic pseudo-random token ids in [100, vocab) (xorshift; scripts/bench-torch.py
/// and scripts/bench_step.py make the same ids for the PyTorch side).
pub fn tokens(n: usize, vocab: usize, salt: u64) -> impl Iterator<Item = u64> {
    let mut x = 0x9E3779B97F4A7C15u64 ^ salt;
    (0..n).map(move |_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        100 + x % (vocab as u64 - 100)
    })
}
