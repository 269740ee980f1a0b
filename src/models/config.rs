//! Reading Hugging Face `config.json`: typed accessors and architecture detection.

use serde_json::Value;

/// A config.json that does not describe a model rmtk can build.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConfigError {
    #[error("`{key}` is missing")]
    Missing { key: String },
    #[error("`{key}` should be {expected}, found {found}")]
    Type {
        key: String,
        expected: &'static str,
        found: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error(
        "model type `{found}` is not supported (supported: llama, qwen2, mistral and other Llama-architecture decoders such as SmolLM2; bert and MiniLM encoders)"
    )]
    Unsupported { found: String },
}

impl ConfigError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        ConfigError::Invalid(msg.into())
    }
}

fn type_err(key: &str, expected: &'static str, v: &Value) -> ConfigError {
    ConfigError::Type {
        key: key.into(),
        expected,
        found: v.to_string(),
    }
}

pub fn opt_usize(json: &Value, key: &str) -> Result<Option<usize>, ConfigError> {
    match json.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(|n| Some(n as usize))
            .ok_or_else(|| type_err(key, "a non-negative integer", v)),
    }
}

pub fn get_usize(json: &Value, key: &str) -> Result<usize, ConfigError> {
    opt_usize(json, key)?.ok_or_else(|| ConfigError::Missing { key: key.into() })
}

pub fn get_f64(json: &Value, key: &str) -> Option<f64> {
    json.get(key).and_then(Value::as_f64)
}

pub fn get_bool(json: &Value, key: &str) -> Option<bool> {
    json.get(key).and_then(Value::as_bool)
}

/// Token ids given as a number or a list of numbers (`eos_token_id: [1, 2]`).
pub fn token_ids(json: &Value, key: &str) -> Vec<u32> {
    match json.get(key) {
        Some(Value::Number(n)) => n.as_u64().map(|n| vec![n as u32]).unwrap_or_default(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_u64().map(|n| n as u32))
            .collect(),
        _ => Vec::new(),
    }
}

/// The two families rmtk builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Llama-architecture decoders (llama, qwen2, mistral).
    Llama,
    /// BERT-architecture encoders (bert, MiniLM).
    Bert,
}

/// Decide the family from `model_type`, falling back to `architectures`.
pub fn family(json: &Value) -> Result<Family, ConfigError> {
    let model_type = json.get("model_type").and_then(Value::as_str).unwrap_or("");
    match model_type {
        "llama" | "qwen2" | "mistral" => return Ok(Family::Llama),
        "bert" => return Ok(Family::Bert),
        "" => {}
        other => {
            return Err(ConfigError::Unsupported {
                found: other.to_string(),
            });
        }
    }
    let arch = json
        .get("architectures")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(Value::as_str)
        .unwrap_or("");
    if ["Llama", "Qwen2", "Mistral"]
        .iter()
        .any(|p| arch.starts_with(p))
    {
        Ok(Family::Llama)
    } else if arch.starts_with("Bert") {
        Ok(Family::Bert)
    } else {
        Err(ConfigError::Unsupported {
            found: if arch.is_empty() {
                "(none given)".into()
            } else {
                arch.into()
            },
        })
    }
}
