//! Backbones against golden values from PyTorch `transformers` (scripts/gen-tiny-goldens.py):
//! tiny random checkpoints (GQA + llama3 RoPE stored bf16; q/k/v bias + tied embeddings
//! stored f32 in shards; BERT stored f16), fixed token ids, f32 logits within 1e-4,
//! with and without KV cache, with and without left padding.

use burn::prelude::*;
use rmtk::device::Cpu;
use rmtk::models::{self, KvCache, LlamaForCausalLM, ModelDir, PaddingMask, SlotId};
use serde_json::Value;

type B = Cpu;
const TOL: f32 = 1e-4;

fn fixture(name: &str) -> (ModelDir, Value) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let golden: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("golden.json")).unwrap()).unwrap();
    (ModelDir::open_dir(&dir, name).unwrap(), golden)
}

fn ids_of(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}

fn floats(v: &Value) -> Vec<f32> {
    let mut out = Vec::new();
    fn walk(v: &Value, out: &mut Vec<f32>) {
        match v {
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Value::Number(n) => out.push(n.as_f64().unwrap() as f32),
            other => panic!("not a number: {other}"),
        }
    }
    walk(v, &mut out);
    out
}

fn to_vec<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().into_vec::<f32>().unwrap()
}

fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let (i, d) = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .enumerate()
        .fold(
            (0, 0.0f32),
            |acc, (i, d)| if d > acc.1 { (i, d) } else { acc },
        );
    assert!(
        d <= TOL,
        "{what}: max abs diff {d} at {i} (got {}, want {})",
        got[i],
        want[i]
    );
}

fn ids_tensor(rows: &[Vec<i64>]) -> Tensor<B, 2, Int> {
    let w = rows[0].len();
    let flat: Vec<i64> = rows.iter().flatten().copied().collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), w]), &Default::default())
}

fn decoder_checks(name: &str) {
    let (dir, golden) = fixture(name);
    let lm: LlamaForCausalLM<B> = models::load_causal_lm(&dir, &Default::default()).unwrap();
    let vocab = lm.model.vocab_size();
    let per_row = golden["per_row"].as_array().unwrap();

    for (r, row) in per_row.iter().enumerate() {
        let ids = ids_of(&row["ids"]);
        let want = floats(&row["logits"]);
        let n = ids.len();

        // Whole row, no cache.
        let logits = lm.forward(
            ids_tensor(std::slice::from_ref(&ids)),
            &PaddingMask::all_valid(1, n),
        );
        assert_close(&format!("{name} row {r} logits"), &to_vec(logits), &want);

        // Prefill part, then decode one token at a time with the cache.
        let split = n / 2;
        let tokens: Vec<u32> = ids.iter().map(|&t| t as u32).collect();
        let mut cache: KvCache<B> = lm.new_cache(1, n);
        let slot = cache.alloc().unwrap();
        let prefill = lm
            .model
            .forward_cached(&mut cache, &[(slot, &tokens[..split])]);
        let mut got = to_vec(lm.logits(prefill.unsqueeze()));
        for token in &tokens[split..] {
            got.extend(to_vec(
                lm.step(&mut cache, &[(slot, std::slice::from_ref(token))]),
            ));
        }
        assert_close(&format!("{name} row {r} logits with KV cache"), &got, &want);
        assert_eq!(cache.len(slot), n);

        // Teacher-forced log-probs of the next tokens.
        let hidden = lm.model.forward(
            ids_tensor(std::slice::from_ref(&ids)),
            &PaddingMask::all_valid(1, n),
        );
        let hidden = hidden.narrow(1, 0, n - 1);
        let targets = ids_tensor(&[ids[1..].to_vec()]);
        let (logp, entropy) = lm.token_logprobs(hidden, targets, 3, true);
        let logp = to_vec(logp);
        assert_close(
            &format!("{name} row {r} next-token log-probs"),
            &logp,
            &floats(&row["next_token_logprobs"]),
        );
        let nll = -logp.iter().sum::<f32>() / logp.len() as f32;
        let want_nll = row["mean_nll"].as_f64().unwrap() as f32;
        assert!(
            (nll - want_nll).abs() < TOL,
            "{name} row {r} mean NLL {nll} vs {want_nll}"
        );
        assert!(
            to_vec(entropy.unwrap())
                .iter()
                .all(|e| *e >= 0.0 && *e <= (vocab as f32).ln() + 1e-4)
        );
    }

    // Left-padded batch: every valid position matches its unpadded row, and so does
    // decoding on from the padded prefill with the cache.
    let batch = &golden["left_padded_batch"];
    let rows: Vec<Vec<i64>> = batch["input_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(ids_of)
        .collect();
    let mask_rows: Vec<Vec<i64>> = batch["attention_mask"]
        .as_array()
        .unwrap()
        .iter()
        .map(ids_of)
        .collect();
    let width = rows[0].len();
    let mask = PaddingMask {
        batch: rows.len(),
        seq: width,
        valid: mask_rows.iter().flatten().map(|&m| m == 1).collect(),
    };
    let logits = to_vec(lm.forward(ids_tensor(&rows), &mask));
    for (r, row) in per_row.iter().enumerate() {
        let want = floats(&row["logits"]);
        let n = ids_of(&row["ids"]).len();
        let pad = width - n;
        let got = &logits[(r * width + pad) * vocab..(r * width + width) * vocab];
        assert_close(&format!("{name} left-padded row {r}"), got, &want);
    }

    // Ragged prefill of every row's tokens but its last (each in its own slot, one step,
    // no padding stored), then one cached step of every row's last token.
    let real: Vec<Vec<u32>> = rows
        .iter()
        .zip(&mask_rows)
        .map(|(r, m)| {
            r.iter()
                .zip(m)
                .filter(|(_, m)| **m == 1)
                .map(|(&t, _)| t as u32)
                .collect()
        })
        .collect();
    let mut cache = lm.new_cache(real.len() + 1, width);
    let slots: Vec<SlotId> = real.iter().map(|_| cache.alloc().unwrap()).collect();
    let prefill: Vec<(SlotId, &[u32])> = slots
        .iter()
        .zip(&real)
        .map(|(&s, r)| (s, &r[..r.len() - 1]))
        .collect();
    // Packed: row r's tokens follow row r - 1's.
    let prefilled = to_vec(lm.logits(lm.model.forward_cached(&mut cache, &prefill).unsqueeze()));
    let last: Vec<(SlotId, &[u32])> = slots
        .iter()
        .zip(&real)
        .map(|(&s, r)| (s, &r[r.len() - 1..]))
        .collect();
    let step = to_vec(lm.step(&mut cache, &last));
    let mut offset = 0;
    for (r, row) in per_row.iter().enumerate() {
        let want = floats(&row["logits"]);
        let n = real[r].len();
        assert_close(
            &format!("{name} ragged prefill, row {r}"),
            &prefilled[offset * vocab..(offset + n - 1) * vocab],
            &want[..(n - 1) * vocab],
        );
        offset += n - 1;
        assert_close(
            &format!("{name} ragged prefill + cached step, row {r}"),
            &step[r * vocab..(r + 1) * vocab],
            &want[(n - 1) * vocab..n * vocab],
        );
    }

    // One step that mixes decoding and prefill (as continuous batching meets it): row 0
    // rolls back its last token and decodes it again while row 1 is prefilled whole in a
    // fresh slot; and a fork of row 0's slot decodes the same token to the same logits.
    cache.truncate(slots[0], real[0].len() - 1);
    cache.free(slots[1]);
    let fresh = cache.alloc().unwrap();
    let fork = cache.fork(slots[0], 1).unwrap()[0];
    let mixed = to_vec(lm.step(
        &mut cache,
        &[
            (slots[0], &real[0][real[0].len() - 1..]),
            (fresh, &real[1]),
            (fork, &real[0][real[0].len() - 1..]),
        ],
    ));
    for (i, r) in [(0, 0), (1, 1), (2, 0)] {
        let want = floats(&per_row[r]["logits"]);
        let n = real[r].len();
        assert_close(
            &format!("{name} mixed step, row {i}"),
            &mixed[i * vocab..(i + 1) * vocab],
            &want[(n - 1) * vocab..n * vocab],
        );
    }
    assert_eq!(
        rmtk::kernels::flex::kv_shared_writes(),
        0,
        "the KV cache was copied instead of written in place"
    );
}

#[test]
fn tiny_llama_gqa_llama3_rope_bf16_matches_transformers() {
    decoder_checks("tiny-llama");
}

#[test]
fn tiny_qwen2_bias_tied_sharded_matches_transformers() {
    decoder_checks("tiny-qwen2");
}

#[test]
fn tiny_bert_f16_matches_transformers() {
    let (dir, golden) = fixture("tiny-bert");
    let bert = models::load_bert::<B>(&dir, false, &Default::default()).unwrap();
    let batch = &golden["right_padded_batch"];
    let rows: Vec<Vec<i64>> = batch["input_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(ids_of)
        .collect();
    let types: Vec<Vec<i64>> = batch["token_type_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(ids_of)
        .collect();
    let masks: Vec<Vec<i64>> = batch["attention_mask"]
        .as_array()
        .unwrap()
        .iter()
        .map(ids_of)
        .collect();
    let width = rows[0].len();
    let mask = PaddingMask {
        batch: rows.len(),
        seq: width,
        valid: masks.iter().flatten().map(|&m| m == 1).collect(),
    };
    let hidden = bert.forward(ids_tensor(&rows), Some(ids_tensor(&types)), &mask);
    let h = bert.hidden_size();
    let pooled = to_vec(models::bert::mean_pool(hidden.clone(), &mask));
    let hidden = to_vec(hidden);
    for (r, row) in golden["per_row"].as_array().unwrap().iter().enumerate() {
        let n = ids_of(&row["ids"]).len();
        let got = &hidden[r * width * h..(r * width + n) * h];
        assert_close(
            &format!("bert row {r} last_hidden_state"),
            got,
            &floats(&row["last_hidden_state"]),
        );
        assert_close(
            &format!("bert row {r} cls"),
            &got[..h],
            &floats(&row["cls"]),
        );
        assert_close(
            &format!("bert row {r} mean pooled"),
            &pooled[r * h..(r + 1) * h],
            &floats(&row["mean_pooled"]),
        );
    }
}

/// Continuation log-probs of a batch of (prompt, continuation) splits of the golden rows
/// equal transformers' teacher-forced log-probs of those tokens.
#[test]
fn continuation_logprobs_match_teacher_forcing() {
    use rmtk::models::llama::ContinuationBatch;
    for name in ["tiny-llama", "tiny-qwen2"] {
        let (dir, golden) = fixture(name);
        let lm: LlamaForCausalLM<B> = models::load_causal_lm(&dir, &Default::default()).unwrap();
        let rows: Vec<Vec<u32>> = golden["per_row"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| ids_of(&r["ids"]).iter().map(|&i| i as u32).collect())
            .collect();
        // Split each row at a different point.
        let splits: Vec<usize> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| 1 + (i * 2) % (r.len() - 1))
            .collect();
        let prompts: Vec<&[u32]> = rows.iter().zip(&splits).map(|(r, &k)| &r[..k]).collect();
        let conts: Vec<&[u32]> = rows.iter().zip(&splits).map(|(r, &k)| &r[k..]).collect();
        let batch = ContinuationBatch::<B>::new(&prompts, &conts, 0, &Default::default());
        let (logp, _) = lm.continuation_logprobs(&batch, 4, false);
        let logp = to_vec(logp);
        for (r, row) in golden["per_row"].as_array().unwrap().iter().enumerate() {
            let want = floats(&row["next_token_logprobs"]);
            let k = splits[r];
            let got = &logp[r * batch.width..r * batch.width + conts[r].len()];
            assert_close(
                &format!("{name} row {r} continuation log-probs"),
                got,
                &want[k - 1..],
            );
        }
    }
}

/// A causal LM saved by rmtk loads back with identical logits (tied and untied heads).
#[test]
fn causal_lm_save_and_reload_round_trips() {
    for name in ["tiny-llama", "tiny-qwen2"] {
        let (dir, golden) = fixture(name);
        let lm: LlamaForCausalLM<B> = models::load_causal_lm(&dir, &Default::default()).unwrap();
        let out = std::env::temp_dir().join(format!("rmtk-save-{name}-{}", std::process::id()));
        models::save_causal_lm(&lm, &out, &dir, rmtk::models::load::SaveDtype::F32, None).unwrap();
        let saved = ModelDir::open_dir(&out, name).unwrap();
        assert!(!out.join("model.safetensors.index.json").exists());
        let again: LlamaForCausalLM<B> =
            models::load_causal_lm(&saved, &Default::default()).unwrap();
        assert_eq!(
            again.lm_head.is_none(),
            lm.lm_head.is_none(),
            "{name}: tying kept"
        );
        let row = ids_of(&golden["per_row"][0]["ids"]);
        let mask = PaddingMask::all_valid(1, row.len());
        let a = to_vec(lm.forward(ids_tensor(std::slice::from_ref(&row)), &mask));
        let b = to_vec(again.forward(ids_tensor(std::slice::from_ref(&row)), &mask));
        assert_eq!(a, b, "{name}: logits after save/load");
        let _ = std::fs::remove_dir_all(&out);
    }
}
