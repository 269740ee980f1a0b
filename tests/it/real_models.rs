//! The real small models (built by `scripts/fetch-models.sh`) against goldens from
//! transformers (`scripts/gen-real-goldens.py`): tokenization, chat template,
//! teacher-forced loss, greedy decoding, and sentence embeddings.

use burn::prelude::*;
use rmtk::device::Cpu;
use rmtk::models::generate::{SamplingParams, generate, row_rng};
use rmtk::models::{self, Message, ModelDir, PaddingMask};
use serde_json::Value;

type B = Cpu;

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn golden() -> Value {
    let text = std::fs::read_to_string(root().join("tests/golden/real-models.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn model(name: &str) -> ModelDir {
    let dir = root().join("models").join(name);
    assert!(
        dir.join("model.safetensors").is_file(),
        "{} is missing: run scripts/fetch-models.sh first (the README's test command does)",
        dir.display()
    );
    ModelDir::open_dir(&dir, name).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn tensor_ids(ids: &[u32]) -> Tensor<B, 2, Int> {
    let v: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
    Tensor::from_data(TensorData::new(v, [1, ids.len()]), &Default::default())
}

#[test]
fn smollm2_tokenizes_scores_and_answers_like_transformers() {
    let g = golden();
    let g = &g["smollm2"];
    let dir = model("smollm2-135m-instruct");
    let tok = dir.tokenizer().unwrap();
    let lm = models::load_causal_lm::<B>(&dir, &Default::default()).unwrap();

    // Tokenization of plain text (digits split one by one, no BOS).
    let text = g["paragraph"]["text"].as_str().unwrap();
    let para = tok.encode(text, true).unwrap();
    assert_eq!(para, ids(&g["paragraph"]["ids"]));

    // Teacher-forced mean NLL within 1e-3 of transformers.
    let n = para.len();
    let hidden = lm
        .model
        .forward(tensor_ids(&para), &PaddingMask::all_valid(1, n));
    let (logp, _) = lm.token_logprobs(
        hidden.narrow(1, 0, n - 1),
        tensor_ids(&para[1..]),
        64,
        false,
    );
    let logp = logp.into_data().convert::<f32>().into_vec::<f32>().unwrap();
    let nll = -logp.iter().sum::<f32>() / logp.len() as f32;
    let want = g["paragraph"]["teacher_forced_mean_nll"].as_f64().unwrap() as f32;
    assert!(
        (nll - want).abs() < 1e-3,
        "mean NLL {nll}, transformers {want}"
    );

    // Chat template rendering and its ids.
    let chat = &g["chat"];
    let messages: Vec<Message> = serde_json::from_value(chat["messages"].clone()).unwrap();
    let rendered = tok.apply_chat_template(&messages, true).unwrap();
    assert_eq!(rendered, chat["rendered"].as_str().unwrap());
    let prompt = tok.encode(&rendered, false).unwrap();
    assert_eq!(prompt, ids(&chat["ids"]));

    // Greedy decoding stops at <|im_end|> with the same ids and says Paris.
    let mut rngs = vec![row_rng(0, 0)];
    let out = generate(
        &lm,
        &tok,
        &[prompt],
        &SamplingParams::greedy(20),
        &mut rngs,
        |_, _| {},
    )
    .unwrap();
    let greedy = &chat["greedy"]["stop_at_eos"];
    assert_eq!(out[0].ids, ids(&greedy["ids"]));
    assert_eq!(out[0].text, greedy["text_skip_special"].as_str().unwrap());
    assert!(out[0].text.contains("Paris"));
}

#[test]
fn minilm_mean_pooled_embeddings_match_sentence_transformers() {
    let g = golden();
    let dir = model("all-minilm-l6-v2");
    let tok = dir.tokenizer().unwrap();
    let bert = models::load_bert::<B>(&dir, true, &Default::default()).unwrap();
    for s in g["minilm"]["sentences"].as_array().unwrap() {
        let text = s["text"].as_str().unwrap();
        let got_ids = tok.encode(text, true).unwrap();
        assert_eq!(got_ids, ids(&s["ids"]), "ids of {text:?}");
        let n = got_ids.len();
        let mask = PaddingMask::all_valid(1, n);
        let hidden = bert.forward(tensor_ids(&got_ids), None, &mask);
        let pooled = models::bert::mean_pool(hidden, &mask)
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .unwrap();
        let want: Vec<f32> = s["mean_pooled"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        let dot: f32 = pooled.iter().zip(&want).map(|(a, b)| a * b).sum();
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        let cosine = dot / (norm(&pooled) * norm(&want));
        assert!(cosine > 0.9999, "cosine {cosine} for {text:?}");
    }
}
