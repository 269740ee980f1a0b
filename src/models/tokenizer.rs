//! Tokenizer (`tokenizer.json`) and chat template (`tokenizer_config.json`, Jinja).
//!
//! Plain text is encoded with the tokenizer's own special tokens (BOS where its
//! post-processor adds one); text rendered from a chat template already carries them,
//! so it is encoded without, exactly as `apply_chat_template(tokenize=True)` does.

use std::path::{Path, PathBuf};

use minijinja::{Environment, Error as JinjaError, ErrorKind, context};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::config::token_ids;

#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error(
        "{path}: this model has no chat template (tokenizer_config.json has no `chat_template`); drop --chat or use a chat model"
    )]
    NoTemplate { path: PathBuf },
    #[error("chat template: {0}")]
    Template(String),
    #[error("tokenizer: {0}")]
    Encode(String),
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: &str) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
}

pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    chat_template: Option<String>,
    config_path: PathBuf,
    bos_token: Option<String>,
    eos_token: Option<String>,
    /// Ids that end generation.
    eos_ids: Vec<u32>,
    pad_id: Option<u32>,
    /// The chat template, compiled on first use (a conversation per row: parsing the
    /// template each time cost more than tokenizing).
    template_env: std::sync::OnceLock<Result<Environment<'static>, String>>,
}

fn token_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

fn read_json(path: &Path) -> Result<Option<Value>, TokenizerError> {
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| TokenizerError::File {
        path: path.into(),
        reason: e.to_string(),
    })?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| TokenizerError::File {
            path: path.into(),
            reason: format!("not valid JSON: {e}"),
        })
}

impl Tokenizer {
    /// Load from a Hugging Face model folder. `model_config` is its config.json, whose
    /// token ids complete what the tokenizer files leave out.
    pub fn from_dir(dir: &Path, model_config: &Value) -> Result<Self, TokenizerError> {
        let path = dir.join("tokenizer.json");
        if !path.is_file() {
            return Err(TokenizerError::File {
                path,
                reason: "not found (rmtk needs the fast-tokenizer file tokenizer.json)".into(),
            });
        }
        let mut inner =
            tokenizers::Tokenizer::from_file(&path).map_err(|e| TokenizerError::File {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        // Some tokenizer.json files (sentence-transformers' MiniLM) switch on fixed
        // padding and truncation; rmtk pads batches itself and never cuts silently.
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| TokenizerError::File {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        let config_path = dir.join("tokenizer_config.json");
        let tok_cfg = read_json(&config_path)?.unwrap_or(Value::Null);
        let gen_cfg = read_json(&dir.join("generation_config.json"))?.unwrap_or(Value::Null);
        let chat_template = match tok_cfg.get("chat_template") {
            Some(Value::String(s)) => Some(s.clone()),
            // A list of named templates: take "default".
            Some(Value::Array(list)) => list
                .iter()
                .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
                .or(list.first())
                .and_then(|t| t.get("template"))
                .and_then(Value::as_str)
                .map(str::to_string),
            _ => None,
        }
        .or_else(|| std::fs::read_to_string(dir.join("chat_template.jinja")).ok());
        let bos_token = token_text(tok_cfg.get("bos_token"));
        let eos_token = token_text(tok_cfg.get("eos_token"));
        let mut eos_ids = token_ids(&gen_cfg, "eos_token_id");
        if eos_ids.is_empty() {
            eos_ids = token_ids(model_config, "eos_token_id");
        }
        if let Some(id) = eos_token.as_deref().and_then(|t| inner.token_to_id(t))
            && !eos_ids.contains(&id)
        {
            eos_ids.push(id);
        }
        let pad_id = token_text(tok_cfg.get("pad_token"))
            .and_then(|t| inner.token_to_id(&t))
            .or_else(|| token_ids(&gen_cfg, "pad_token_id").first().copied())
            .or_else(|| token_ids(model_config, "pad_token_id").first().copied());
        Ok(Self {
            inner,
            chat_template,
            config_path,
            bos_token,
            eos_token,
            eos_ids,
            pad_id,
            template_env: std::sync::OnceLock::new(),
        })
    }

    /// Number of ids the tokenizer can produce (vocabulary plus added tokens).
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Highest id the tokenizer can produce.
    pub fn max_token_id(&self) -> Option<u32> {
        self.inner.get_vocab(true).values().copied().max()
    }

    pub fn eos_ids(&self) -> &[u32] {
        &self.eos_ids
    }

    pub fn eos_token(&self) -> Option<&str> {
        self.eos_token.as_deref()
    }

    pub fn bos_token(&self) -> Option<&str> {
        self.bos_token.as_deref()
    }

    /// The id used to pad batches: the tokenizer's pad token, else its EOS, else 0.
    pub fn pad_id(&self) -> u32 {
        self.pad_id
            .or_else(|| self.eos_ids.first().copied())
            .unwrap_or(0)
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    pub fn has_chat_template(&self) -> bool {
        self.chat_template.is_some()
    }

    pub fn chat_template(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }

    /// Encode text; `special` adds the tokenizer's own BOS/EOS (plain text), and is
    /// false for text a chat template rendered.
    pub fn encode(&self, text: &str, special: bool) -> Result<Vec<u32>, TokenizerError> {
        // Ids only: no offsets to track.
        self.inner
            .encode_fast(text, special)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| TokenizerError::Encode(e.to_string()))
    }

    /// Where each token of `text` starts (byte offsets, no special tokens, char
    /// boundaries): `text[starts[j]..]` is the text without its first `j` tokens.
    pub fn token_starts(&self, text: &str) -> Result<Vec<usize>, TokenizerError> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| TokenizerError::Encode(e.to_string()))?;
        let mut starts: Vec<usize> = enc
            .get_offsets()
            .iter()
            .map(|&(s, _)| {
                // A byte-level token may begin inside a character: start at the next one.
                let mut s = s.min(text.len());
                while !text.is_char_boundary(s) {
                    s += 1;
                }
                s
            })
            .collect();
        starts.dedup();
        Ok(starts)
    }

    /// Encode one text, or a pair, as one sequence with the tokenizer's own special
    /// tokens (`[CLS] a [SEP] b [SEP]` for BERT), returning ids and segment ids. With
    /// `max_length` the result is cut to fit, the special tokens kept: a pair loses tokens
    /// from its longer side first (the `longest_first` truncation of
    /// `tokenizer(a, b, truncation=True, max_length=n)`), a single text from its end.
    pub fn encode_segments(
        &self,
        a: &str,
        b: Option<&str>,
        max_length: Option<usize>,
    ) -> Result<(Vec<u32>, Vec<u32>), TokenizerError> {
        use tokenizers::utils::truncation::{
            TruncationParams, TruncationStrategy, truncate_encodings,
        };
        let err = |e: tokenizers::Error| TokenizerError::Encode(e.to_string());
        let first = self.inner.encode(a, false).map_err(err)?;
        let second = match b {
            Some(b) => Some(self.inner.encode(b, false).map_err(err)?),
            None => None,
        };
        let (first, second) = match max_length {
            Some(max) => {
                let added = self.inner.get_post_processor().map_or(0, |p| {
                    tokenizers::PostProcessor::added_tokens(p, second.is_some())
                });
                let params = TruncationParams {
                    max_length: max.saturating_sub(added),
                    strategy: TruncationStrategy::LongestFirst,
                    ..TruncationParams::default()
                };
                truncate_encodings(first, second, &params).map_err(err)?
            }
            None => (first, second),
        };
        let enc = self.inner.post_process(first, second, true).map_err(err)?;
        Ok((enc.get_ids().to_vec(), enc.get_type_ids().to_vec()))
    }

    /// Encode many texts on all cores.
    pub fn encode_batch(
        &self,
        texts: &[String],
        special: bool,
    ) -> Result<Vec<Vec<u32>>, TokenizerError> {
        let inputs: Vec<&str> = texts.iter().map(String::as_str).collect();
        self.inner
            .encode_batch(inputs, special)
            .map(|v| v.into_iter().map(|e| e.get_ids().to_vec()).collect())
            .map_err(|e| TokenizerError::Encode(e.to_string()))
    }

    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String, TokenizerError> {
        self.inner
            .decode(ids, skip_special)
            .map_err(|e| TokenizerError::Encode(e.to_string()))
    }

    /// Render a conversation with the model's chat template.
    pub fn apply_chat_template(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<String, TokenizerError> {
        let template = self
            .chat_template
            .as_deref()
            .ok_or_else(|| TokenizerError::NoTemplate {
                path: self.config_path.clone(),
            })?;
        let env = self
            .template_env
            .get_or_init(|| chat_env(template.to_string()).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| TokenizerError::Template(e.clone()))?;
        render_with(
            env,
            messages,
            add_generation_prompt,
            self.bos_token.as_deref().unwrap_or(""),
            self.eos_token.as_deref().unwrap_or(""),
        )
    }
}

/// Render a Hugging Face (Jinja) chat template with the variables and helpers
/// transformers provides: `messages`, `add_generation_prompt`, `bos_token`,
/// `eos_token`, `raise_exception`, `strftime_now`, and Python string methods.
pub fn render_chat_template(
    template: &str,
    messages: &[Message],
    add_generation_prompt: bool,
    bos_token: &str,
    eos_token: &str,
) -> Result<String, TokenizerError> {
    let env = chat_env(template.to_string())?;
    render_with(&env, messages, add_generation_prompt, bos_token, eos_token)
}

/// A Jinja environment set up as transformers renders chat templates, holding
/// `template` as "chat".
fn chat_env(template: String) -> Result<Environment<'static>, TokenizerError> {
    let mut env = Environment::new();
    // HF renders with trim_blocks and lstrip_blocks.
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function(
        "raise_exception",
        |msg: String| -> Result<String, JinjaError> {
            Err(JinjaError::new(ErrorKind::InvalidOperation, msg))
        },
    );
    env.add_function("strftime_now", |fmt: String| -> String {
        chrono_like_now(&fmt)
    });
    env.add_template_owned("chat", template)
        .map_err(|e| TokenizerError::Template(e.to_string()))?;
    Ok(env)
}

fn render_with(
    env: &Environment<'static>,
    messages: &[Message],
    add_generation_prompt: bool,
    bos_token: &str,
    eos_token: &str,
) -> Result<String, TokenizerError> {
    let tmpl = env
        .get_template("chat")
        .map_err(|e| TokenizerError::Template(e.to_string()))?;
    tmpl.render(context! {
        messages => messages,
        add_generation_prompt => add_generation_prompt,
        bos_token => bos_token,
        eos_token => eos_token,
    })
    .map_err(|e| TokenizerError::Template(e.to_string()))
}

/// `strftime_now` for templates that print today's date (Llama 3.x): only the
/// `%d %b %Y`-style fields those templates use, from the system clock in UTC.
fn chrono_like_now(fmt: &str) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days = secs.div_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    const LONG: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let m = (month - 1) as usize;
    fmt.replace("%d", &format!("{day:02}"))
        .replace("%m", &format!("{month:02}"))
        .replace("%Y", &year.to_string())
        .replace("%b", MONTHS[m])
        .replace("%B", LONG[m])
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHATML: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    #[test]
    fn chatml_renders_like_transformers() {
        let out = render_chat_template(
            CHATML,
            &[Message::new("user", "Hi")],
            true,
            "<|im_start|>",
            "<|im_end|>",
        )
        .unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn python_string_methods_and_raise_exception_work() {
        let t = "{% if messages[0]['role'] == 'bad' %}{{ raise_exception('roles must alternate') }}{% endif %}{{ messages[0]['content'].strip() }}";
        let ok = render_chat_template(t, &[Message::new("user", "  x ")], false, "", "").unwrap();
        assert_eq!(ok, "x");
        let err = render_chat_template(t, &[Message::new("bad", "x")], false, "", "").unwrap_err();
        assert!(err.to_string().contains("roles must alternate"), "{err}");
    }

    #[test]
    fn strftime_now_gives_a_plausible_date() {
        let s = chrono_like_now("%d %b %Y");
        let parts: Vec<&str> = s.split(' ').collect();
        assert_eq!(parts.len(), 3);
        assert!(parts[2].parse::<i32>().unwrap() >= 2024);
    }
}
