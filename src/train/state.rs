//! The trainer state saved beside the weights and the optimizer in every checkpoint.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::rng::RngState;

pub const STATE_FILE: &str = "trainer_state.json";

/// Where a run is: enough, with the weights and the optimizer state, to continue it
/// exactly as if it had never stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Updates applied.
    pub step: u64,
    /// The epoch the next update belongs to.
    pub epoch: u64,
    /// The data order of that epoch: micro-batches of example indices. Kept so that a
    /// resumed run sees the same batches whatever drew them.
    pub order: Vec<Vec<u32>>,
    /// The RNG after drawing `order`.
    pub rng: RngState,
    /// Real tokens trained on so far.
    pub tokens_seen: u64,
    /// Seconds spent training so far (for throughput over a resumed run).
    pub train_seconds: f64,
    /// The trainer's own fields (the RM trainer has none; GRPO keeps its rollout state).
    #[serde(default)]
    pub extra: serde_json::Value,
    /// f16 training's loss scale (absent in other dtypes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_scale: Option<super::LossScale>,
    /// The rmtk that wrote it.
    pub rmtk_version: String,
}

impl TrainerState {
    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = dir.join(STATE_FILE);
        let text = serde_json::to_string(self)?;
        crate::util::write_atomic(&path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))
    }

    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(STATE_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{}: not a trainer state", path.display()))
    }
}
