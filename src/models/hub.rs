//! Where a `--model` argument points: a local folder, or a Hugging Face hub id resolved
//! through `hf-hub` (its cache under `HF_HOME`, downloads unless `HF_HUB_OFFLINE=1`).

use std::path::{Path, PathBuf};

use hf_hub::Cache;
use hf_hub::api::sync::ApiBuilder;

/// Files a model folder may hold; the weights are found through the index when sharded.
const FILES: [&str; 6] = [
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "generation_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
];

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("model `{0}`: no such folder")]
    NoFolder(String),
    #[error(
        "model `{id}`: not in the Hugging Face cache ({cache}) and HF_HUB_OFFLINE is set; download it where the hub is reachable (`huggingface-cli download {id} --local-dir DIR`) and pass --model DIR"
    )]
    OfflineMiss { id: String, cache: String },
    #[error(
        "model `{id}`: could not fetch `{file}` from the hub ({reason}); to work offline, download it elsewhere (`huggingface-cli download {id} --local-dir DIR`) and pass --model DIR"
    )]
    Download {
        id: String,
        file: String,
        reason: String,
    },
}

fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .map(|v| matches!(v.trim(), "1" | "true" | "TRUE" | "yes" | "on"))
        .unwrap_or(false)
}

/// Does the argument look like a hub id (`org/name`, `name`) rather than a path?
fn looks_like_hub_id(spec: &str) -> bool {
    let parts: Vec<&str> = spec.split('/').collect();
    !spec.starts_with('.')
        && !spec.starts_with('/')
        && !spec.starts_with('~')
        && parts.len() <= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        })
        && parts.len() == 2
}

/// The local folder holding the model `spec`.
pub fn resolve(spec: &str) -> Result<PathBuf, HubError> {
    let path = Path::new(spec);
    if path.is_dir() {
        return Ok(path.to_path_buf());
    }
    if !looks_like_hub_id(spec) {
        return Err(HubError::NoFolder(spec.to_string()));
    }
    let cache = Cache::from_env();
    let cached = cache.model(spec.to_string());
    if let Some(config) = cached.get("config.json") {
        let dir = config.parent().map(Path::to_path_buf).unwrap_or_default();
        if dir.join("model.safetensors").exists()
            || dir.join("model.safetensors.index.json").exists()
        {
            return Ok(dir);
        }
    }
    if offline() {
        return Err(HubError::OfflineMiss {
            id: spec.to_string(),
            cache: cache.path().display().to_string(),
        });
    }
    download(spec)
}

fn download(id: &str) -> Result<PathBuf, HubError> {
    let err = |file: &str, reason: String| HubError::Download {
        id: id.to_string(),
        file: file.to_string(),
        reason,
    };
    let api = ApiBuilder::from_env()
        .with_progress(true)
        .build()
        .map_err(|e| err("(client)", e.to_string()))?;
    let repo = api.model(id.to_string());
    let config = repo
        .get("config.json")
        .map_err(|e| err("config.json", e.to_string()))?;
    for file in FILES.iter().skip(1) {
        // Optional files: a model without them is still usable.
        let _ = repo.get(file);
    }
    match repo.get("model.safetensors.index.json") {
        Ok(index) => {
            let text = std::fs::read_to_string(&index)
                .map_err(|e| err("model.safetensors.index.json", e.to_string()))?;
            let json: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| err("model.safetensors.index.json", e.to_string()))?;
            let mut shards: Vec<String> = json["weight_map"]
                .as_object()
                .map(|m| {
                    m.values()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            shards.sort();
            shards.dedup();
            for shard in shards {
                repo.get(&shard).map_err(|e| err(&shard, e.to_string()))?;
            }
        }
        Err(_) => {
            repo.get("model.safetensors")
                .map_err(|e| err("model.safetensors", e.to_string()))?;
        }
    }
    Ok(config.parent().map(Path::to_path_buf).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_ids_and_paths_are_told_apart() {
        assert!(looks_like_hub_id("HuggingFaceTB/SmolLM2-135M-Instruct"));
        assert!(!looks_like_hub_id("./models/x"));
        assert!(!looks_like_hub_id("/abs/path"));
        assert!(!looks_like_hub_id("models/a/b"));
        assert!(!looks_like_hub_id("single"));
    }

    #[test]
    fn a_missing_path_is_a_clear_error() {
        let err = resolve("./no/such/model").unwrap_err();
        assert_eq!(err.to_string(), "model `./no/such/model`: no such folder");
    }
}
