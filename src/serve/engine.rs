//! The serving engine: one thread that owns the models and the KV cache and runs
//! continuous batching.
//!
//! Each turn of its loop takes the messages that arrived, admits waiting requests while
//! cache slots are free, and runs one step per model in use: the new requests' prompts
//! (prefill) and one token of every running sequence (decode) go through the model
//! together, each row in its own cache slot. A request that arrives while others decode
//! joins at the next step; a finished sequence frees its slot at once. Rows never see
//! each other (attention reads only its own slot), so batch make-up changes a row's
//! logits by float rounding at most.
//!
//! Adapters are copies of the base model that share its weights and carry their own
//! LoRA factors; requests for the base and for adapters decode in the same turn.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::rc::Rc;
use std::sync::mpsc::{Receiver, TryRecvError};

use anyhow::Result;
use rand_chacha::ChaCha8Rng;
use tokio::sync::{mpsc, oneshot};

use crate::kernels::FusedOps;
use crate::models::Tokenizer;
use crate::models::generate::{Completion, SamplingParams, SeqText, pick, row_rng};
use crate::models::kv_cache::{KvCache, SlotId};
use crate::models::llama::LlamaForCausalLM;
use crate::models::peft::AdapterDir;

use super::ApiError;

/// A generation request: `n` choices of one prompt.
pub struct GenRequest {
    /// The adapter's name, or `None` for the base model.
    pub adapter: Option<String>,
    pub prompt: Vec<u32>,
    pub params: SamplingParams,
    pub n: usize,
    /// Choice `i` samples from `row_rng(seed, seed_stream + i)`; with `seed_stream` 0,
    /// as `rmtk generate` row `i` does.
    pub seed: u64,
    pub seed_stream: u64,
    /// Go on past the end-of-sequence token, to `max_new_tokens`.
    pub ignore_eos: bool,
    /// Report the sampled tokens' log-probabilities, with this many alternatives each.
    pub logprobs: Option<usize>,
    pub events: mpsc::UnboundedSender<Event>,
}

/// The log-probability of a sampled token under the model's raw distribution (before
/// temperature, top-k and top-p, as vLLM reports them), and the most likely tokens'.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenLogprob {
    pub id: u32,
    pub logprob: f32,
    pub top: Vec<(u32, f32)>,
}

/// What the engine tells a request's handler.
#[derive(Debug)]
pub enum Event {
    /// Choice `choice` sampled token `id`; `text` is the text newly safe to show.
    Token {
        choice: usize,
        id: u32,
        text: String,
        logprob: Option<TokenLogprob>,
    },
    /// Choice `choice` ended.
    Done {
        choice: usize,
        completion: Completion,
    },
    /// The request failed (its other choices are dropped).
    Failed(String),
}

/// A message to the engine.
pub enum Msg {
    Generate(GenRequest),
    LoadAdapter {
        name: String,
        path: String,
        reply: oneshot::Sender<Result<(), ApiError>>,
    },
    UnloadAdapter {
        name: String,
        reply: oneshot::Sender<Result<(), ApiError>>,
    },
    /// Reward model scores of rows `{prompt?, response}` (text or messages), between
    /// decoding steps.
    Score {
        rows: Vec<crate::data::Row>,
        reply: oneshot::Sender<Result<(Vec<f32>, usize), ApiError>>,
    },
}

/// The models the engine holds, shared with the HTTP side for `/v1/models` and for
/// answering "unknown model" before a request is queued.
#[derive(Debug, Default)]
pub struct Registry {
    /// Adapter name -> the folder it was loaded from.
    pub adapters: std::sync::RwLock<Vec<(String, String)>>,
}

impl Registry {
    pub fn has_adapter(&self, name: &str) -> bool {
        let adapters = self.adapters.read().expect("not poisoned");
        adapters.iter().any(|(n, _)| n == name)
    }
}

/// One choice being decoded.
struct Seq {
    req: Rc<GenRequest>,
    model: usize,
    choice: usize,
    rng: ChaCha8Rng,
    text: SeqText,
    slot: Option<SlotId>,
    /// The token to feed at the next step.
    next: u32,
}

/// A request admitted this turn: its prompt is prefilled in `slot`.
struct Prefill {
    req: Rc<GenRequest>,
    model: usize,
    slot: SlotId,
}

pub struct Engine<B: FusedOps> {
    /// Model `0` is the base; the others are adapters (`None` once unloaded and unused).
    models: Vec<Option<Rc<LlamaForCausalLM<B>>>>,
    /// Adapter name -> index in `models`.
    names: HashMap<String, usize>,
    /// `None` without a decoder.
    cache: Option<KvCache<B>>,
    tok: Option<std::sync::Arc<Tokenizer>>,
    eos: Vec<u32>,
    rm: Option<super::rewards::RmState<B>>,
    registry: std::sync::Arc<Registry>,
    waiting: VecDeque<(Rc<GenRequest>, usize)>,
    running: Vec<Seq>,
}

impl<B: FusedOps> Engine<B> {
    /// An engine for `decoder` (with its tokenizer) with `slots` sequences of up to
    /// `capacity` tokens, and for the reward model `rm`; either may be absent.
    pub fn new(
        decoder: Option<(LlamaForCausalLM<B>, std::sync::Arc<Tokenizer>)>,
        slots: usize,
        capacity: usize,
        registry: std::sync::Arc<Registry>,
        rm: Option<super::rewards::RmState<B>>,
    ) -> Self {
        let (models, cache, tok) = match decoder {
            Some((lm, tok)) => {
                let cache = lm.new_cache(slots, capacity);
                (vec![Some(Rc::new(lm))], Some(cache), Some(tok))
            }
            None => (Vec::new(), None, None),
        };
        Self {
            models,
            names: HashMap::new(),
            cache,
            eos: tok
                .as_ref()
                .map(|t| t.eos_ids().to_vec())
                .unwrap_or_default(),
            tok,
            rm,
            registry,
            waiting: VecDeque::new(),
            running: Vec::new(),
        }
    }

    /// Put the adapter in folder `path` on a copy of the base model under `name`.
    pub fn load_adapter(&mut self, name: &str, path: &str) -> Result<(), ApiError> {
        if self.names.contains_key(name) {
            return Err(ApiError::bad_request(format!(
                "an adapter named `{name}` is already loaded; unload it first or pick another name"
            )));
        }
        let dir = Path::new(path);
        let adapter = AdapterDir::open(dir)
            .map_err(|e| ApiError::bad_request(format!("{e:#}")))?
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "{path}: no adapter_config.json there (the path is read on the server's filesystem)"
                ))
            })?;
        let weights = adapter
            .weights()
            .map_err(|e| ApiError::bad_request(format!("{e:#}")))?;
        let Some(Some(base)) = self.models.first() else {
            return Err(ApiError::not_found(
                "this server hosts no decoder to put an adapter on (start it with --model)",
            ));
        };
        let mut lm = LlamaForCausalLM::clone(base).without_adapters();
        adapter
            .apply(lm.linears_mut(), &weights)
            .map_err(|e| ApiError::bad_request(format!("{e:#}")))?;
        let index = match self.models.iter().skip(1).position(Option::is_none) {
            Some(free) => free + 1,
            None => {
                self.models.push(None);
                self.models.len() - 1
            }
        };
        self.models[index] = Some(Rc::new(lm));
        self.names.insert(name.to_string(), index);
        let mut adapters = self.registry.adapters.write().expect("not poisoned");
        adapters.push((name.to_string(), path.to_string()));
        Ok(())
    }

    /// Remove adapter `name` for new requests; requests already using it finish on it.
    pub fn unload_adapter(&mut self, name: &str) -> Result<(), ApiError> {
        if self.names.remove(name).is_none() {
            return Err(ApiError::not_found(format!(
                "no adapter named `{name}` is loaded"
            )));
        }
        self.registry
            .adapters
            .write()
            .expect("not poisoned")
            .retain(|(n, _)| n != name);
        self.drop_unused_adapters();
        Ok(())
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Generate(req) => {
                let model = match &req.adapter {
                    None => Some(0),
                    Some(name) => self.names.get(name).copied(),
                };
                match model {
                    Some(m) => self.waiting.push_back((Rc::new(req), m)),
                    // Unloaded between the handler's check and here: dropping the
                    // request closes its events, and the handler answers 404.
                    None => drop(req),
                }
            }
            Msg::LoadAdapter { name, path, reply } => {
                let _ = reply.send(self.load_adapter(&name, &path));
            }
            Msg::UnloadAdapter { name, reply } => {
                let _ = reply.send(self.unload_adapter(&name));
            }
            Msg::Score { rows, reply } => {
                let scored = match &self.rm {
                    Some(rm) => rm.score(rows),
                    None => Err(ApiError::not_found(
                        "this server hosts no reward model (start it with --reward-model)",
                    )),
                };
                let _ = reply.send(scored);
            }
        }
    }

    /// Serve until every sender of `rx` is gone and the work in hand is done.
    pub fn run(mut self, rx: Receiver<Msg>) -> Result<()> {
        let mut open = true;
        loop {
            if self.running.is_empty() && self.waiting.is_empty() {
                if !open {
                    return Ok(());
                }
                match rx.recv() {
                    Ok(msg) => self.handle(msg),
                    Err(_) => return Ok(()),
                }
            }
            while open {
                match rx.try_recv() {
                    Ok(msg) => self.handle(msg),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => open = false,
                }
            }
            self.turn()?;
        }
    }

    /// Admit what fits, then one step per model in use.
    fn turn(&mut self) -> Result<()> {
        if self.running.is_empty() && self.waiting.is_empty() {
            return Ok(());
        }
        let (Some(cache), Some(tok)) = (self.cache.as_mut(), self.tok.as_ref()) else {
            // Without a decoder the handlers send no generation requests.
            self.waiting.clear();
            return Ok(());
        };
        // Drop choices whose client went away.
        let mut dropped = Vec::new();
        self.running.retain(|s| {
            let gone = s.req.events.is_closed();
            if gone && let Some(slot) = s.slot {
                dropped.push(slot);
            }
            !gone
        });
        for slot in dropped {
            cache.free(slot);
        }
        let mut prefills: Vec<Prefill> = Vec::new();
        let mut free = cache.spec().slots - cache.used();
        while let Some((req, _)) = self.waiting.front() {
            if req.events.is_closed() {
                self.waiting.pop_front();
                continue;
            }
            if req.n > free {
                break;
            }
            let (req, model) = self.waiting.pop_front().expect("a front");
            free -= req.n;
            let slot = cache.alloc().expect("counted free");
            prefills.push(Prefill { req, model, slot });
            // The other n - 1 slots are taken by forks after the step; `free` holds them.
        }
        let mut in_use: Vec<usize> = prefills
            .iter()
            .map(|p| p.model)
            .chain(self.running.iter().map(|s| s.model))
            .collect();
        in_use.sort_unstable();
        in_use.dedup();
        let mut finished: Vec<usize> = Vec::new();
        let mut new_seqs: Vec<Seq> = Vec::new();
        for model in in_use {
            let lm = self.models[model].clone().expect("a model in use is kept");
            let pre: Vec<&Prefill> = prefills.iter().filter(|p| p.model == model).collect();
            let dec: Vec<usize> = (0..self.running.len())
                .filter(|&i| self.running[i].model == model)
                .collect();
            let singles: Vec<[u32; 1]> = dec.iter().map(|&i| [self.running[i].next]).collect();
            let rows: Vec<(SlotId, &[u32])> = pre
                .iter()
                .map(|p| (p.slot, p.req.prompt.as_slice()))
                .chain(
                    dec.iter()
                        .zip(&singles)
                        .map(|(&i, t)| (self.running[i].slot.expect("a slot"), t.as_slice())),
                )
                .collect();
            let logits = lm.step(cache, &rows);
            let logits: Vec<f32> = logits
                .into_data()
                .convert::<f32>()
                .into_vec::<f32>()
                .map_err(|e| anyhow::anyhow!("reading logits: {e:?}"))?;
            let vocab = logits.len() / rows.len();
            let row = |r: usize| &logits[r * vocab..(r + 1) * vocab];
            for (r, p) in pre.iter().enumerate() {
                // Every choice picks its first token from the prompt's logits with its
                // own random source; the first that goes on keeps the prompt's slot, the
                // others get copies of it.
                let mut going_on: Vec<Seq> = Vec::with_capacity(p.req.n);
                for choice in 0..p.req.n {
                    let mut seq = Seq {
                        req: p.req.clone(),
                        model,
                        choice,
                        rng: row_rng(p.req.seed, p.req.seed_stream.wrapping_add(choice as u64)),
                        text: SeqText::default(),
                        slot: None,
                        next: 0,
                    };
                    if !advance(tok, &self.eos, &mut seq, row(r)) {
                        going_on.push(seq);
                    }
                }
                if going_on.is_empty() {
                    // Every choice ended on its first token.
                    cache.free(p.slot);
                } else {
                    let copies = match going_on.len() - 1 {
                        0 => Vec::new(),
                        k => cache.fork(p.slot, k).expect("slots reserved at admission"),
                    };
                    let slots = std::iter::once(p.slot).chain(copies);
                    for (mut seq, slot) in going_on.into_iter().zip(slots) {
                        seq.slot = Some(slot);
                        new_seqs.push(seq);
                    }
                }
            }
            for (k, &i) in dec.iter().enumerate() {
                let seq = &mut self.running[i];
                if advance(tok, &self.eos, seq, row(pre.len() + k)) {
                    if let Some(s) = seq.slot.take() {
                        cache.free(s);
                    }
                    finished.push(i);
                }
            }
        }
        finished.sort_unstable();
        for &i in finished.iter().rev() {
            self.running.swap_remove(i);
        }
        self.running.extend(new_seqs);
        self.drop_unused_adapters();
        Ok(())
    }

    /// Free the adapters no name points to and no request uses (an adapter unloaded while
    /// requests ran on it goes once they end).
    fn drop_unused_adapters(&mut self) {
        for index in 1..self.models.len() {
            if self.models[index].is_some()
                && !self.names.values().any(|&i| i == index)
                && !self.running.iter().any(|s| s.model == index)
                && !self.waiting.iter().any(|(_, m)| *m == index)
            {
                self.models[index] = None;
            }
        }
    }
}

/// Sample the next token of `seq` from `logits` and tell its handler; true when the
/// choice ended (a token the tokenizer cannot decode ends it with an error event: one
/// request's failure is not the server's).
fn advance(tok: &Tokenizer, eos: &[u32], seq: &mut Seq, logits: &[f32]) -> bool {
    let params = &seq.req.params;
    let token = pick(logits, params, &mut seq.rng);
    let logprob = seq
        .req
        .logprobs
        .map(|top| token_logprob(logits, token, top));
    let last = seq.text.ids().len() + 1 >= params.max_new_tokens;
    let eos = if seq.req.ignore_eos { &[] } else { eos };
    let events = &seq.req.events;
    let (text, done) = match seq.text.push(token, tok, eos, params, last) {
        Ok(pushed) => pushed,
        Err(e) => {
            let _ = events.send(Event::Failed(format!("decoding token {token}: {e}")));
            return true;
        }
    };
    let _ = events.send(Event::Token {
        choice: seq.choice,
        id: token,
        text,
        logprob,
    });
    seq.next = token;
    match done {
        Some(completion) => {
            let _ = events.send(Event::Done {
                choice: seq.choice,
                completion,
            });
            true
        }
        None => false,
    }
}

/// `log_softmax(logits)[token]` and the `top` most likely tokens', computed in f64.
pub fn token_logprob(logits: &[f32], token: u32, top: usize) -> TokenLogprob {
    let max = logits
        .iter()
        .copied()
        .filter(|l| l.is_finite())
        .fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits
        .iter()
        .map(|&l| (f64::from(l) - f64::from(max)).exp())
        .sum();
    let norm = f64::from(max) + sum.ln();
    let lp = |i: usize| (f64::from(logits[i]) - norm) as f32;
    let top = if top == 0 {
        Vec::new()
    } else {
        let mut order: Vec<u32> = (0..logits.len() as u32).collect();
        let k = top.min(order.len());
        let by = |a: &u32, b: &u32| {
            logits[*b as usize]
                .total_cmp(&logits[*a as usize])
                .then(a.cmp(b))
        };
        order.select_nth_unstable_by(k - 1, by);
        order.truncate(k);
        order.sort_unstable_by(by);
        order.into_iter().map(|i| (i, lp(i as usize))).collect()
    };
    TokenLogprob {
        id: token,
        logprob: lp(token as usize),
        top,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logprobs_are_a_log_softmax_with_the_top_tokens_in_order() {
        let logits = [1.0f32, 3.0, 2.0, 3.0];
        let got = token_logprob(&logits, 2, 3);
        let z: f64 = logits.iter().map(|&l| f64::from(l).exp()).sum();
        assert!((f64::from(got.logprob) - (2.0 - z.ln())).abs() < 1e-6);
        assert_eq!(
            got.top.iter().map(|t| t.0).collect::<Vec<_>>(),
            [1, 3, 2],
            "ties by id"
        );
        let total: f64 = logits
            .iter()
            .enumerate()
            .map(|(i, _)| f64::from(token_logprob(&logits, i as u32, 0).logprob).exp())
            .sum();
        assert!((total - 1.0).abs() < 1e-6);
    }
}
