//! Block-level activation checkpointing (`--gradient-checkpointing`).
//!
//! burn's `BalancedCheckpointing` keeps matrix-product and softmax outputs, which are
//! the large activations, so it saves little. This replays whole blocks instead, with no
//! new burn API:
//! 1. a forward pass on the inner (non-autodiff) backend keeps only each block's input
//!    (`[batch, seq, hidden]` per layer) and builds no graph;
//! 2. the top (final norm or pooler, head, loss) runs with a graph from the last block's
//!    output, and its backward pass gives the loss's gradient with respect to that output;
//! 3. block by block in reverse, the block's graph is rebuilt from its saved input and
//!    back-propagated with the incoming gradient (`sum(y * g)` has gradient `g` at `y`);
//!    its parameter gradients are kept and its input gradient goes to the block below;
//! 4. the embeddings last, the same way.
//!
//! Only one block's graph exists at a time. Every parameter belongs to one part, so the
//! gradients are the plain backward pass's up to float rounding (`tests/it/checkpointing.rs`).
//! LoRA dropout draws each block's masks from a stream seeded per block, the same in the
//! forward pass and the replay.

use burn::backend::Autodiff;
use burn::module::AutodiffModule;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::prelude::*;

use crate::kernels::FusedOps;
use crate::models::linear::{dropout_seed, with_dropout};
use crate::models::reward::{RewardBatch, RewardModel};

type Ad<B> = Autodiff<B>;

/// What one checkpointed forward and backward pass gives.
pub struct Checkpointed<B: Backend> {
    pub grads: GradientsParams,
    /// The rewards, `[batch]`, without a graph.
    pub rewards: Tensor<B, 1>,
    /// The value `loss_of` reported, without a graph.
    pub loss: Tensor<B, 1>,
}

/// The batch on the inner backend (same ids, masks and read positions).
fn inner_batch<B: FusedOps>(batch: &RewardBatch<Ad<B>>) -> RewardBatch<B> {
    RewardBatch {
        input_ids: batch.input_ids.clone().inner(),
        token_type_ids: batch.token_type_ids.clone().map(Tensor::inner),
        mask: batch.mask.clone(),
        score_at: batch.score_at.clone(),
    }
}

/// Gradients of the loss `loss_of(rewards)` returns first (the second value is only
/// reported, e.g. the loss before scaling), with activation checkpointing. `dropout`
/// seeds LoRA dropout (per block); `None` runs without it.
pub fn reward_backward<B: FusedOps>(
    model: &RewardModel<Ad<B>>,
    batch: &RewardBatch<Ad<B>>,
    loss_of: impl FnOnce(Tensor<Ad<B>, 1>) -> (Tensor<Ad<B>, 1>, Tensor<Ad<B>, 1>),
    dropout: Option<u64>,
) -> Checkpointed<B> {
    let blocks = model.num_blocks();
    let run_block = |i: usize, f: &mut dyn FnMut()| match dropout {
        Some(seed) => with_dropout(dropout_seed(seed, i as u64, 0), f),
        None => f(),
    };

    // 1. Forward without a graph, keeping each block's input.
    let inner = model.valid();
    let ib = inner_batch(batch);
    let ictx = inner.context(&ib);
    let mut inputs: Vec<Tensor<B, 3>> = Vec::with_capacity(blocks + 1);
    inputs.push(inner.embed(&ib));
    for i in 0..blocks {
        let x = inputs[i].clone();
        let mut y = None;
        run_block(i, &mut || y = Some(inner.block(i, x.clone(), &ictx)));
        inputs.push(y.expect("the block ran"));
    }
    drop(inner);

    // 2. The top, from the last block's output.
    let mut acc = GradientsAccumulator::<RewardModel<Ad<B>>>::new();
    let x =
        Tensor::<Ad<B>, 3>::from_inner(inputs.pop().expect("one input per block")).require_grad();
    let rewards = model.top(x.clone(), batch);
    let (loss, report) = loss_of(rewards.clone());
    let out_rewards = rewards.inner();
    let out_loss = report.inner();
    let grads = loss.backward();
    let mut g = x.grad(&grads).expect("the loss depends on the last block");
    acc.accumulate(model, GradientsParams::from_grads(grads, model));

    // 3. Each block again, in reverse, with its incoming gradient.
    let ctx = model.context(batch);
    for i in (0..blocks).rev() {
        let x = Tensor::<Ad<B>, 3>::from_inner(inputs.pop().expect("one input per block"))
            .require_grad();
        let mut y = None;
        run_block(i, &mut || y = Some(model.block(i, x.clone(), &ctx)));
        let y = y.expect("the block ran");
        let grads = (y * Tensor::from_inner(g)).sum().backward();
        g = x
            .grad(&grads)
            .expect("a block's output depends on its input");
        acc.accumulate(model, GradientsParams::from_grads(grads, model));
    }

    // 4. The embeddings (frozen under LoRA: then the graph is empty).
    let grads = (model.embed(batch) * Tensor::from_inner(g))
        .sum()
        .backward();
    acc.accumulate(model, GradientsParams::from_grads(grads, model));
    Checkpointed {
        grads: acc.grads(),
        rewards: out_rewards,
        loss: out_loss,
    }
}
