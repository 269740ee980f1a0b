//! How much memory a reward-model training step or a GRPO step needs, from the
//! architecture alone (`rmtk info --memory`, and the estimate `train-rm` and `grpo`
//! print before they start; GRPO's additions are at [`estimate_grpo`]).
//!
//! The formula follows what rmtk holds, written down from the code, not fitted to
//! measurements:
//! - **weights**: every backbone parameter in the compute dtype under LoRA (the frozen
//!   base is created in it), in f32 otherwise (bf16/f16 full fine-tuning keeps f32
//!   masters); the LoRA factors (`r * (in + out)` per adapted layer) and the head
//!   (`hidden`) in f32.
//! - **gradients**: the trained parameters, f32: the micro-batch's new gradients, and
//!   a second copy held while they are added to the sum of earlier micro-batches
//!   (`--grad-accum` above 1) or of earlier blocks (checkpointing).
//! - **optimizer**: AdamW's two f32 moments per trained parameter.
//! - **activations** kept by the graph for the backward pass, per token and layer, in
//!   the compute dtype. Decoder layer (`kernels` fused ops): the layer input (kept by
//!   the first norm), the normed input (read by q, k, v), q and k after RoPE and v (read
//!   by attention), the attention output (read by o_proj), the residual sum (second
//!   norm), the normed sum (gate, up), gate and up (SwiGLU), SwiGLU's output (down):
//!   `6 h + 2 kv + 3 I`, plus the attention's log-sum-exp (`heads`, f32). BERT layer:
//!   the input, q, k, v, the attention output, the first add-norm's sum and output, the
//!   intermediate product and its GELU, the second add-norm's sum: `8 h + 2 I`. Each
//!   adapted layer adds its `x A` (`r`), and with LoRA dropout its dropped input (`in`).
//!   With checkpointing: one `h` per layer (the saved inputs) plus one layer's full set.
//!   Full fine-tuning in bf16/f16 adds the linear weights read in the compute dtype,
//!   which the graph keeps for the inputs' gradients (one layer's with checkpointing).
//! - **working set**: the largest transient of a layer's forward or backward pass, three
//!   `[tokens, intermediate]` buffers in f32 (bf16 products convert their operands to
//!   f32 in burn-flex 0.21).
//!
//! The peak is weights + optimizer + held gradients + working set + what is in flight:
//! without checkpointing the backward pass frees each layer's activations as it makes
//! that layer's gradients, so the larger of the two; with it, both (the saved inputs
//! and one layer's graph beside the gradients). The process itself (binary, tokenizer,
//! data) comes on top; the trainers add what they measure of it.

use crate::models::config::Family;
use crate::models::peft::Targets;
use crate::models::{BertConfig, LlamaConfig, ModelDir};

/// The dimensions the estimate needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Arch {
    pub family: Family,
    pub hidden: usize,
    pub layers: usize,
    pub intermediate: usize,
    pub heads: usize,
    /// `kv_heads * head_dim` (decoders; `hidden` for BERT).
    pub kv_dim: usize,
    /// Every backbone parameter (embeddings included, the head not).
    pub params: usize,
    /// Vocabulary size (a causal LM's logits are this wide).
    pub vocab: usize,
    /// Each layer's linear layers: `(path suffix, in, out)`.
    pub linears: Vec<(String, usize, usize)>,
    /// Linear layers outside the layers (BERT's pooler).
    pub extra_linears: Vec<(String, usize, usize)>,
}

impl Arch {
    pub fn of(model: &ModelDir) -> anyhow::Result<Self> {
        Ok(match model.family {
            Family::Llama => Self::decoder(&model.llama_config()?),
            Family::Bert => Self::encoder(&model.bert_config()?),
        })
    }

    pub fn decoder(c: &LlamaConfig) -> Self {
        let (h, i) = (c.hidden_size, c.intermediate_size);
        let q = c.num_attention_heads * c.head_dim;
        let kv = c.num_key_value_heads * c.head_dim;
        let lin = |n: &str, a, b| (n.to_string(), a, b);
        Self {
            family: Family::Llama,
            hidden: h,
            layers: c.num_hidden_layers,
            intermediate: i,
            heads: c.num_attention_heads,
            kv_dim: kv,
            params: c.num_parameters(),
            vocab: c.vocab_size,
            linears: vec![
                lin("self_attn.q_proj", h, q),
                lin("self_attn.k_proj", h, kv),
                lin("self_attn.v_proj", h, kv),
                lin("self_attn.o_proj", q, h),
                lin("mlp.gate_proj", h, i),
                lin("mlp.up_proj", h, i),
                lin("mlp.down_proj", i, h),
            ],
            extra_linears: Vec::new(),
        }
    }

    pub fn encoder(c: &BertConfig) -> Self {
        let (h, i) = (c.hidden_size, c.intermediate_size);
        let lin = |n: &str, a, b| (n.to_string(), a, b);
        Self {
            family: Family::Bert,
            hidden: h,
            layers: c.num_hidden_layers,
            intermediate: i,
            heads: c.num_attention_heads,
            kv_dim: h,
            params: c.num_parameters(true),
            vocab: c.vocab_size,
            linears: vec![
                lin("attention.self.query", h, h),
                lin("attention.self.key", h, h),
                lin("attention.self.value", h, h),
                lin("attention.output.dense", h, h),
                lin("intermediate.dense", h, i),
                lin("output.dense", i, h),
            ],
            extra_linears: vec![lin("pooler.dense", h, h)],
        }
    }
}

/// The step the estimate is for.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Tokens of one micro-batch (sequences x length).
    pub tokens: usize,
    /// Bytes per element of the compute dtype (4 for f32, 2 for bf16/f16).
    pub dtype_bytes: usize,
    /// `(r, targets, dropout > 0)` under LoRA.
    pub lora: Option<(usize, Targets, bool)>,
    pub checkpointing: bool,
    /// Micro-batches per update (`--grad-accum`).
    pub grad_accum: usize,
    /// false: inference only (no gradients, optimizer or kept activations).
    pub training: bool,
}

/// Bytes, by what holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    pub weights: u64,
    /// Every gradient buffer (held and new).
    pub gradients: u64,
    pub optimizer: u64,
    pub activations: u64,
    pub working: u64,
    /// The peak, by the rule in the module's notes (less than the sum of the parts).
    pub peak: u64,
}

impl Estimate {
    pub fn total(&self) -> u64 {
        self.peak
    }
}

/// The estimate for one step of `plan` on `arch`.
pub fn estimate(arch: &Arch, plan: &Plan) -> Estimate {
    let (h, i, n) = (
        arch.hidden as u64,
        arch.intermediate as u64,
        plan.tokens as u64,
    );
    let d = plan.dtype_bytes as u64;
    let head = h;
    // Adapted layers: (count per layer and overall, LoRA parameters, per-token extras).
    let (lora_params, lora_per_token_layer, lora_extra_tokens) = match &plan.lora {
        Some((r, targets, dropout)) => {
            let r = *r as u64;
            let matches = |name: &str, prefix: &str| targets.matches(&format!("{prefix}.{name}"));
            let prefix = match arch.family {
                Family::Llama => "model.layers.0",
                Family::Bert => "bert.encoder.layer.0",
            };
            let mut params = 0u64;
            let mut per_token = 0u64;
            for (name, a, b) in &arch.linears {
                if matches(name, prefix) {
                    params += arch.layers as u64 * r * (*a as u64 + *b as u64);
                    per_token += r + if *dropout { *a as u64 } else { 0 };
                }
            }
            let mut extra = 0u64;
            for (name, a, b) in &arch.extra_linears {
                if matches(name, "bert") {
                    params += r * (*a as u64 + *b as u64);
                    extra += r;
                }
            }
            (params, per_token, extra)
        }
        None => (0, 0, 0),
    };
    let base = arch.params as u64;
    let weights = match plan.lora {
        Some(_) => base * d + (lora_params + head) * 4,
        None => (base + head) * 4,
    };
    if !plan.training {
        let (weights, working) = (base * d + (lora_params + head) * 4, 3 * n * i * 4);
        return Estimate {
            weights,
            gradients: 0,
            optimizer: 0,
            activations: 0,
            working,
            peak: weights + working,
        };
    }
    let trained = match plan.lora {
        Some(_) => lora_params + head,
        None => base + head,
    };
    let per_layer = match arch.family {
        Family::Llama => 6 * h + 2 * arch.kv_dim as u64 + 3 * i,
        Family::Bert => 8 * h + 2 * i,
    } + lora_per_token_layer;
    let lse = arch.heads as u64 * 4;
    let layers = arch.layers as u64;
    // Mixed precision (full fine-tuning in bf16/f16): each linear weight read in the
    // compute dtype is a copy the graph keeps for its input's gradient.
    let copies = if plan.lora.is_none() && d < 4 {
        let per_layer: u64 = arch.linears.iter().map(|(_, a, b)| (a * b) as u64).sum();
        let extra: u64 = arch
            .extra_linears
            .iter()
            .map(|(_, a, b)| (a * b) as u64)
            .sum();
        let held_layers = if plan.checkpointing { 1 } else { layers };
        (held_layers * per_layer + extra) * d
    } else {
        0
    };
    let activations = if plan.checkpointing {
        n * (layers * h * d + per_layer * d + lse) + n * h * d
    } else {
        n * layers * (per_layer * d + lse) + n * h * d
    } + lora_extra_tokens * n * d
        + copies;
    let (optimizer, working) = (2 * trained * 4, 3 * n * i * 4);
    assemble(plan, weights, trained * 4, optimizer, activations, working)
}

/// The parts and the peak, by the rule in the module's notes: weights + optimizer + held
/// gradients + working set + what is in flight.
fn assemble(
    plan: &Plan,
    weights: u64,
    grads: u64,
    optimizer: u64,
    activations: u64,
    working: u64,
) -> Estimate {
    let held = if plan.grad_accum > 1 || plan.checkpointing {
        grads
    } else {
        0
    };
    let in_flight = if plan.checkpointing {
        grads + activations
    } else {
        activations.max(grads)
    };
    Estimate {
        weights,
        gradients: held + grads,
        optimizer,
        activations,
        working,
        peak: weights + optimizer + held + in_flight + working,
    }
}

/// A GRPO step: the rollouts (generation with a KV cache, no graph), then the policy's
/// update, one micro-batch of sequences at a time.
#[derive(Debug, Clone, PartialEq)]
pub struct GrpoPlan {
    /// The update of one micro-batch: `tokens` = sequences x (prompt + new tokens);
    /// `grad_accum` = micro-batches per update.
    pub update: Plan,
    /// Sequences per micro-batch (`--micro-batch-size`).
    pub micro_sequences: usize,
    /// Sequences generated at once (`--gen-batch-size`, at most a step's).
    pub gen_sequences: usize,
    /// The longest prompt, in tokens.
    pub prompt_tokens: usize,
    /// `--max-new-tokens`.
    pub new_tokens: usize,
    /// `--logprob-chunk`: continuation positions whose logits exist at once.
    pub logprob_chunk: usize,
    /// A separate frozen reference model (full fine-tuning with a KL term); under LoRA
    /// the reference is the base itself and costs nothing.
    pub reference: bool,
    /// Bytes of the reward model's weights (it scores between the two phases).
    pub reward_model: u64,
}

/// The estimate for one GRPO step of `plan` on the policy `arch`:
/// - **weights**: the policy's (as for `train-rm`), the reference's (`params` in the
///   compute dtype, when there is one) and the reward model's.
/// - **activations** of the update: the backbone's, as for `train-rm`, plus the
///   log-softmax over the vocabulary that the graph keeps at every continuation
///   position (`sequences x new tokens x vocab`, f32: the logits are f32).
/// - **working set**: the larger of the update's (the backbone's, plus one chunk's
///   logits and their softmax, f32) and the rollouts': the KV cache (`2 x layers x
///   sequences x (prompt + new) x kv_dim` in the compute dtype, allocated whole), the
///   prefill's transient (`3 x sequences x prompt x intermediate`, f32) and the last
///   position's logits.
///
/// Not counted: the reward model's scoring transients (an encoder's batch, small beside
/// the policy's) and the sampled texts.
pub fn estimate_grpo(arch: &Arch, plan: &GrpoPlan) -> Estimate {
    let base = estimate(arch, &plan.update);
    let d = plan.update.dtype_bytes as u64;
    let (v, c, p) = (
        arch.vocab as u64,
        plan.new_tokens as u64,
        plan.prompt_tokens as u64,
    );
    let (m, g) = (plan.micro_sequences as u64, plan.gen_sequences as u64);
    let reference = if plan.reference {
        arch.params as u64 * d
    } else {
        0
    };
    let weights = base.weights + reference + plan.reward_model;
    let activations = base.activations + m * c * v * 4;
    let update_working = base.working + 2 * m * (plan.logprob_chunk as u64).min(c) * v * 4;
    let kv_cache = 2 * arch.layers as u64 * g * (p + c) * arch.kv_dim as u64 * d;
    let rollout_working = kv_cache + 3 * g * p * arch.intermediate as u64 * 4 + g * v * 4;
    // f32 gradients of the trained parameters: half the moments' bytes.
    let mut e = assemble(
        &plan.update,
        weights,
        base.optimizer / 2,
        base.optimizer,
        activations,
        update_working,
    );
    // The rollouts run with nothing of the update alive.
    let rollouts = weights + base.optimizer + rollout_working;
    if rollouts > e.peak {
        e.working = rollout_working;
        e.peak = rollouts;
    }
    e
}

/// The largest of a device allocator's reserved bytes over the samples taken
/// ([`FusedOps::device_memory`]: CUDA; nothing on the CPU). The allocator keeps the pages
/// it reserved for reuse, so a sample after each update sees the update's peak.
#[derive(Debug, Default, Clone, Copy)]
pub struct DevicePeak(Option<u64>);

impl DevicePeak {
    pub fn sample<B: crate::kernels::FusedOps>(&mut self, device: &B::Device) {
        if let Some(bytes) = B::device_memory(device) {
            self.0 = Some(self.0.map_or(bytes, |p| p.max(bytes)));
        }
    }

    pub fn get(&self) -> Option<u64> {
        self.0
    }

    /// The line the trainers log at the end, beside `estimate` (no process share: the
    /// device holds only tensors).
    pub fn describe(&self, estimate: &Estimate) -> Option<String> {
        self.0.map(|peak| {
            format!(
                "device memory: peak reserved by the allocator {} (estimated {}: {:+.0}%)",
                gib(peak),
                gib(estimate.total()),
                (estimate.total() as f64 / peak.max(1) as f64 - 1.0) * 100.0
            )
        })
    }
}

/// What a trainer logs at its end: the process's peak resident memory beside the
/// estimate plus what the process held before loading, and on CUDA the device's peak.
pub fn peak_report(estimate: &Estimate, process_before: u64, device: &DevicePeak) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(peak) = peak_resident() {
        let predicted = estimate.total() + process_before;
        lines.push(format!(
            "memory: peak resident {} (estimated {}: {:+.0}%)",
            gib(peak),
            gib(predicted),
            (predicted as f64 / peak as f64 - 1.0) * 100.0
        ));
    }
    lines.extend(device.describe(estimate));
    lines
}

/// The process's peak resident memory so far, in bytes (`VmHWM`; Linux only).
pub fn peak_resident() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The process's resident memory now, in bytes (`VmRSS`; Linux only).
pub fn resident() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// `1.23 GiB`.
pub fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// One line: the total and its parts.
pub fn describe(e: &Estimate) -> String {
    format!(
        "peak {} (weights {}, gradients {}, optimizer {}, activations {}, working set {})",
        gib(e.total()),
        gib(e.weights),
        gib(e.gradients),
        gib(e.optimizer),
        gib(e.activations),
        gib(e.working)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_decoder() -> Arch {
        Arch {
            family: Family::Llama,
            hidden: 8,
            layers: 2,
            intermediate: 16,
            heads: 2,
            kv_dim: 4,
            params: 1000,
            vocab: 50,
            linears: vec![
                ("self_attn.q_proj".into(), 8, 8),
                ("self_attn.v_proj".into(), 8, 4),
                ("mlp.up_proj".into(), 8, 16),
            ],
            extra_linears: vec![],
        }
    }

    fn plan() -> Plan {
        Plan {
            tokens: 10,
            dtype_bytes: 4,
            lora: None,
            checkpointing: false,
            grad_accum: 1,
            training: true,
        }
    }

    #[test]
    fn full_fine_tuning_counts_every_parameter_four_times_over() {
        let e = estimate(&tiny_decoder(), &plan());
        // (1000 + 8 head) params: weights 4 B, gradients 2 x 4 B, moments 2 x 4 B.
        assert_eq!(e.weights, 1008 * 4);
        assert_eq!(e.gradients, 1008 * 4);
        assert_eq!(e.optimizer, 1008 * 8);
        // per token per layer: 6*8 + 2*4 + 3*16 = 104 floats, + lse 2 heads (f32) per
        // layer; + the final norm's input.
        assert_eq!(e.activations, 10 * 2 * (104 * 4 + 8) + 10 * 8 * 4);
        assert_eq!(e.working, 3 * 10 * 16 * 4);
        // The activations (8640 B) outweigh the gradients (4032 B) here.
        assert_eq!(
            e.peak,
            e.weights + e.optimizer + e.activations.max(4032) + e.working
        );
        // Accumulating micro-batches holds a second copy of the gradients.
        let acc = estimate(
            &tiny_decoder(),
            &Plan {
                grad_accum: 2,
                ..plan()
            },
        );
        assert_eq!(acc.peak, e.peak + 1008 * 4);
    }

    #[test]
    fn mixed_precision_keeps_f32_masters_and_the_weight_copies() {
        let arch = tiny_decoder();
        let full = estimate(&arch, &plan());
        let mixed = estimate(
            &arch,
            &Plan {
                dtype_bytes: 2,
                ..plan()
            },
        );
        assert_eq!(mixed.weights, full.weights);
        assert_eq!(mixed.optimizer, full.optimizer);
        let per_layer: u64 = arch.linears.iter().map(|(_, a, b)| (a * b) as u64).sum();
        // Activations in bf16, plus both layers' linear weights in bf16.
        assert_eq!(
            mixed.activations,
            10 * 2 * (104 * 2 + 8) + 10 * 8 * 2 + 2 * per_layer * 2
        );
    }

    #[test]
    fn lora_bf16_and_checkpointing_shrink_what_they_should() {
        let arch = tiny_decoder();
        let full = estimate(&arch, &plan());
        let lora = Plan {
            lora: Some((2, Targets::parse("q_proj,v_proj").unwrap(), false)),
            dtype_bytes: 2,
            ..plan()
        };
        let e = estimate(&arch, &lora);
        // LoRA params: 2 layers x 2 x ((8 + 8) + (8 + 4)) = 112; head 8.
        assert_eq!(e.weights, 1000 * 2 + (112 + 8) * 4);
        assert_eq!(e.gradients, 120 * 4);
        assert_eq!(e.optimizer, 120 * 8);
        assert!(e.activations < full.activations);
        let ck = estimate(
            &arch,
            &Plan {
                checkpointing: true,
                ..lora.clone()
            },
        );
        assert!(ck.activations < e.activations);
        assert_eq!(ck.weights, e.weights);
    }

    #[test]
    fn grpo_adds_the_reference_the_kept_log_probs_and_the_rollouts() {
        let arch = tiny_decoder();
        let update = Plan {
            tokens: 2 * (6 + 4),
            grad_accum: 1,
            ..plan()
        };
        let grpo = |reference: bool, gen_sequences: usize| GrpoPlan {
            update: update.clone(),
            micro_sequences: 2,
            gen_sequences,
            prompt_tokens: 6,
            new_tokens: 4,
            logprob_chunk: 3,
            reference,
            reward_model: 100,
        };
        let rm = estimate(&arch, &update);
        let e = estimate_grpo(&arch, &grpo(false, 2));
        assert_eq!(e.weights, rm.weights + 100);
        assert_eq!(e.optimizer, rm.optimizer);
        // 2 sequences x 4 new tokens x 50 vocab log-probs, f32.
        assert_eq!(e.activations, rm.activations + 2 * 4 * 50 * 4);
        // + 2 x 3 positions x 50 logits and their softmax, f32.
        assert_eq!(e.working, rm.working + 2 * 2 * 3 * 50 * 4);
        let with_ref = estimate_grpo(&arch, &grpo(true, 2));
        assert_eq!(with_ref.peak, e.peak + 1000 * 4);
        // Many sequences generated at once: the KV cache sets the peak.
        let wide = estimate_grpo(&arch, &grpo(false, 1000));
        let kv = 2 * 2 * 1000 * (6 + 4) * 4 * 4;
        let rollouts = kv + 3 * 1000 * 6 * 16 * 4 + 1000 * 50 * 4;
        assert_eq!(wide.working, rollouts);
        assert_eq!(wide.peak, e.weights + e.optimizer + rollouts);
    }

    /// On the CPU there is no allocator to ask: nothing is reported.
    #[test]
    fn the_cpu_has_no_device_peak() {
        let mut peak = DevicePeak::default();
        peak.sample::<crate::device::Cpu>(&Default::default());
        assert_eq!(peak.get(), None);
        assert_eq!(peak.describe(&estimate(&tiny_decoder(), &plan())), None);
    }
}
