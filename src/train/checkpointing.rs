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
//! The same for a reward model ([`reward_backward`]) and a causal LM's continuation
//! loss (GRPO's update, [`causal_backward`]). Only one block's graph exists at a time. Every parameter belongs to one part, so the
//! gradients are the plain backward pass's up to float rounding (`tests/it/checkpointing.rs`).
//! LoRA dropout draws each block's masks from a stream seeded per block, the same in the
//! forward pass and the replay.

use burn::backend::Autodiff;
use burn::module::AutodiffModule;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::prelude::*;

use crate::kernels::FusedOps;
use crate::models::linear::{dropout_seed, with_dropout};
use crate::models::llama::{ContinuationBatch, LlamaForCausalLM};
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
    // 1. Forward without a graph, keeping each block's input.
    let inputs = {
        let inner = model.valid();
        let ib = inner_batch(batch);
        let ictx = inner.context(&ib);
        forward_inputs(inner.embed(&ib), blocks, dropout, |i, x| {
            inner.block(i, x, &ictx)
        })
    };
    let ctx = model.context(batch);
    let mut reported = None;
    let grads = replay(
        model,
        inputs,
        dropout,
        |x| {
            let rewards = model.top(x, batch);
            let (loss, report) = loss_of(rewards.clone());
            reported = Some((rewards.inner(), report.inner()));
            loss
        },
        |i, x| model.block(i, x, &ctx),
        || model.embed(batch),
    );
    let (rewards, loss) = reported.expect("the top ran");
    Checkpointed {
        grads,
        rewards,
        loss,
    }
}

/// A causal LM's continuation loss with activation checkpointing (`grpo
/// --gradient-checkpointing`): `loss_of` gets the per-token log-probabilities of the
/// continuations and, with `with_entropy`, their entropies (as
/// [`LlamaForCausalLM::continuation_logprobs`] gives them, with a graph) and returns the
/// loss to differentiate and anything to report. `dropout` as for [`reward_backward`].
pub fn causal_backward<B: FusedOps, R>(
    lm: &LlamaForCausalLM<Ad<B>>,
    batch: &ContinuationBatch<Ad<B>>,
    chunk: usize,
    with_entropy: bool,
    dropout: Option<u64>,
    loss_of: impl FnOnce(Tensor<Ad<B>, 2>, Option<Tensor<Ad<B>, 2>>) -> (Tensor<Ad<B>, 1>, R),
) -> (GradientsParams, R) {
    let blocks = lm.model.num_layers();
    let device = batch.input_ids.device();
    let inputs = {
        let inner = lm.valid();
        let ids = batch.input_ids.clone().inner();
        let ictx = inner.model.context(&batch.mask, &ids.device());
        forward_inputs(inner.model.embed(ids), blocks, dropout, |i, x| {
            inner.model.block(i, x, &ictx)
        })
    };
    let ctx = lm.model.context(&batch.mask, &device);
    let mut reported = None;
    let grads = replay(
        lm,
        inputs,
        dropout,
        |x| {
            // The state at column i predicts the token at column i + 1.
            let hidden = lm
                .model
                .finish(x)
                .narrow(1, batch.prompt_width - 1, batch.width);
            let (logp, entropy) =
                lm.token_logprobs(hidden, batch.targets.clone(), chunk, with_entropy);
            let (loss, report) = loss_of(logp, entropy);
            reported = Some(report);
            loss
        },
        |i, x| lm.model.block(i, x, &ctx),
        || lm.model.embed(batch.input_ids.clone()),
    );
    (grads, reported.expect("the top ran"))
}

/// Block `i` under its own LoRA dropout stream (the same in the forward pass and the
/// replay).
fn in_block(dropout: Option<u64>, i: usize, f: &mut dyn FnMut()) {
    match dropout {
        Some(seed) => with_dropout(dropout_seed(seed, i as u64, 0), f),
        None => f(),
    }
}

/// Step 1: every block's input and the last block's output, without a graph.
fn forward_inputs<B: Backend>(
    first: Tensor<B, 3>,
    blocks: usize,
    dropout: Option<u64>,
    block: impl Fn(usize, Tensor<B, 3>) -> Tensor<B, 3>,
) -> Vec<Tensor<B, 3>> {
    let mut inputs = Vec::with_capacity(blocks + 1);
    inputs.push(first);
    for i in 0..blocks {
        let x = inputs[i].clone();
        let mut y = None;
        in_block(dropout, i, &mut || y = Some(block(i, x.clone())));
        inputs.push(y.expect("the block ran"));
    }
    inputs
}

/// Steps 2-4: the top (`top`: from the last block's output to the loss) with a graph,
/// then each block again in reverse from its saved input with its incoming gradient,
/// then the embeddings (`embed`: the first block's input, with a graph).
fn replay<B: FusedOps, M: AutodiffModule<Ad<B>>>(
    model: &M,
    mut inputs: Vec<Tensor<B, 3>>,
    dropout: Option<u64>,
    top: impl FnOnce(Tensor<Ad<B>, 3>) -> Tensor<Ad<B>, 1>,
    block: impl Fn(usize, Tensor<Ad<B>, 3>) -> Tensor<Ad<B>, 3>,
    embed: impl FnOnce() -> Tensor<Ad<B>, 3>,
) -> GradientsParams {
    let mut acc = GradientsAccumulator::<M>::new();
    // 2. The top, from the last block's output.
    let x =
        Tensor::<Ad<B>, 3>::from_inner(inputs.pop().expect("one input per block")).require_grad();
    let grads = top(x.clone()).backward();
    let mut g = x.grad(&grads).expect("the loss depends on the last block");
    acc.accumulate(model, GradientsParams::from_grads(grads, model));

    // 3. Each block again, in reverse, with its incoming gradient.
    for i in (0..inputs.len()).rev() {
        let x = Tensor::<Ad<B>, 3>::from_inner(inputs.pop().expect("one input per block"))
            .require_grad();
        let mut y = None;
        in_block(dropout, i, &mut || y = Some(block(i, x.clone())));
        let y = y.expect("the block ran");
        let grads = (y * Tensor::from_inner(g)).sum().backward();
        g = x
            .grad(&grads)
            .expect("a block's output depends on its input");
        acc.accumulate(model, GradientsParams::from_grads(grads, model));
    }

    // 4. The embeddings (frozen under LoRA: then the graph is empty).
    let grads = (embed() * Tensor::from_inner(g)).sum().backward();
    acc.accumulate(model, GradientsParams::from_grads(grads, model));
    acc.grads()
}
