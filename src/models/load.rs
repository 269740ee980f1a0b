//! Hugging Face safetensors in and out.
//!
//! A module's parameter paths are its field names joined with dots
//! (`model.layers.3.self_attn.q_proj.weight`), and every architecture file names its
//! fields after the checkpoint's keys, so loading and saving need no remapping tables.
//! Two layout facts are handled here, once, for every model:
//! - burn's `Linear` stores its weight as `[in, out]`, PyTorch as `[out, in]`: weights
//!   whose parent is a `Linear` are transposed on the way in and out;
//! - enum modules (a backbone that is either a decoder or an encoder) add no path segment.
//!
//! Weights are read through a memory map; f32, bf16 and f16 are cast to the compute dtype.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::prelude::*;
use memmap2::Mmap;
use safetensors::Dtype;

/// Why a checkpoint could not be read or did not fit the model.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: not a valid safetensors file ({reason}); the file may be truncated or corrupt"
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "{path}: tensor `{name}` has dtype {dtype:?}; only F32, BF16 and F16 weights are supported"
    )]
    Dtype {
        path: PathBuf,
        name: String,
        dtype: Dtype,
    },
    #[error("{dir}: no weights found (expected model.safetensors or model.safetensors.index.json)")]
    NoWeights { dir: PathBuf },
    #[error("{path}: {reason}")]
    Index { path: PathBuf, reason: String },
    #[error("{}", format_missing(.missing, .source_desc))]
    Missing {
        missing: Vec<(String, Vec<usize>)>,
        source_desc: String,
    },
    #[error(
        "{source_desc}: tensor `{name}` has shape {found:?}, but the model built from config.json expects {expected:?}"
    )]
    Shape {
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
        source_desc: String,
    },
}

fn format_missing(missing: &[(String, Vec<usize>)], source: &str) -> String {
    let shown: Vec<String> = missing
        .iter()
        .take(5)
        .map(|(n, s)| format!("`{n}` (expected shape {s:?})"))
        .collect();
    let more = if missing.len() > 5 {
        format!(" and {} more", missing.len() - 5)
    } else {
        String::new()
    };
    format!(
        "{source}: {} tensor(s) missing: {}{more}",
        missing.len(),
        shown.join(", ")
    )
}

/// Values and shape of a tensor read to the host.
pub type HostTensor = (Vec<f32>, Vec<usize>);

#[derive(Debug, Clone)]
struct Entry {
    file: usize,
    dtype: Dtype,
    shape: Vec<usize>,
    start: usize,
    end: usize,
}

/// The tensors of a checkpoint (one file or a sharded set), memory-mapped; or random
/// values in their place ([`Weights::random`]).
pub struct Weights {
    files: Vec<(PathBuf, Mmap)>,
    entries: HashMap<String, Entry>,
    desc: String,
    random: Option<RandomInit>,
}

/// Random weights in place of a checkpoint (`--random-weights`: benchmarks of real
/// configurations without their checkpoints, and training from scratch). Norm weights
/// are 1, biases 0, every other tensor uniform with mean 0 and standard deviation `std`
/// (the config's `initializer_range`). Each tensor's values depend only on the seed and
/// its name, in fixed chunks, so they are the same whatever the thread count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomInit {
    pub seed: u64,
    pub std: f32,
}

impl RandomInit {
    const CHUNK: usize = 1 << 16;

    /// The values of tensor `name` with `numel` elements.
    pub fn values(&self, name: &str, numel: usize) -> Vec<f32> {
        use rayon::prelude::*;
        let is_norm = name.ends_with("norm.weight") || name.ends_with("LayerNorm.weight");
        if is_norm {
            return vec![1.0; numel];
        }
        if name.ends_with(".bias") {
            return vec![0.0; numel];
        }
        // Uniform on [-a, a] has standard deviation a / sqrt(3).
        let a = self.std * 3f32.sqrt();
        let stream = self.seed ^ fnv1a(name);
        let mut out = vec![0f32; numel];
        out.par_chunks_mut(Self::CHUNK)
            .enumerate()
            .for_each(|(i, chunk)| {
                let mut state = splitmix(stream ^ splitmix(i as u64));
                for v in chunk {
                    state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                    // 24 random bits -> [0, 1) -> [-a, a).
                    let u = (splitmix(state) >> 40) as f32 / (1u64 << 24) as f32;
                    *v = (2.0 * u - 1.0) * a;
                }
            });
        out
    }
}

/// SplitMix64's output function.
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Weights {
    /// Open `model.safetensors` or a sharded `model.safetensors.index.json` in a model folder.
    pub fn from_dir(dir: &Path) -> Result<Self, LoadError> {
        let single = dir.join("model.safetensors");
        let index = dir.join("model.safetensors.index.json");
        if index.is_file() {
            let text = std::fs::read_to_string(&index).map_err(|source| LoadError::Io {
                path: index.clone(),
                source,
            })?;
            let json: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| LoadError::Index {
                    path: index.clone(),
                    reason: format!("not valid JSON: {e}"),
                })?;
            let map = json
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| LoadError::Index {
                    path: index.clone(),
                    reason: "no `weight_map` object".into(),
                })?;
            let mut shards: Vec<String> = map
                .values()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            shards.sort();
            shards.dedup();
            let paths: Vec<PathBuf> = shards.iter().map(|s| dir.join(s)).collect();
            let weights = Self::from_files(&paths)?;
            for name in map.keys() {
                if !weights.entries.contains_key(name) {
                    return Err(LoadError::Index {
                        path: index,
                        reason: format!("tensor `{name}` is listed but not found in its shard"),
                    });
                }
            }
            Ok(weights)
        } else if single.is_file() {
            Self::from_files(&[single])
        } else {
            Err(LoadError::NoWeights {
                dir: dir.to_path_buf(),
            })
        }
    }

    /// Open one or more safetensors files as one set of tensors.
    pub fn from_files(paths: &[PathBuf]) -> Result<Self, LoadError> {
        let mut files = Vec::new();
        let mut entries = HashMap::new();
        for (i, path) in paths.iter().enumerate() {
            let file = File::open(path).map_err(|source| LoadError::Io {
                path: path.clone(),
                source,
            })?;
            // SAFETY: the map is read-only and the file is not modified while we hold it;
            // a concurrent truncation by another process is the usual mmap caveat.
            let mmap = unsafe { Mmap::map(&file) }.map_err(|source| LoadError::Io {
                path: path.clone(),
                source,
            })?;
            let corrupt = |reason: String| LoadError::Corrupt {
                path: path.clone(),
                reason,
            };
            let (header_len, meta) = safetensors::SafeTensors::read_metadata(&mmap[..])
                .map_err(|e| corrupt(e.to_string()))?;
            let data_start = 8 + header_len;
            for (name, info) in meta.tensors() {
                let (s, e) = info.data_offsets;
                let start = data_start + s;
                let end = data_start + e;
                if end > mmap.len() || start > end {
                    return Err(corrupt(format!(
                        "tensor `{name}` lies beyond the end of the file"
                    )));
                }
                let numel: usize = info.shape.iter().product();
                // Buffers such as BERT's int64 `position_ids` may sit beside the weights;
                // they are only an error if the model asks for them.
                let width = info.dtype.bitsize() / 8;
                if width > 0 && numel * width != end - start {
                    return Err(corrupt(format!(
                        "tensor `{name}` has {} bytes for shape {:?}",
                        end - start,
                        info.shape
                    )));
                }
                entries.insert(
                    name,
                    Entry {
                        file: i,
                        dtype: info.dtype,
                        shape: info.shape.clone(),
                        start,
                        end,
                    },
                );
            }
            files.push((path.clone(), mmap));
        }
        let desc = match paths {
            [one] => one.display().to_string(),
            _ => format!(
                "{} ({} shards)",
                paths
                    .first()
                    .and_then(|p| p.parent())
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                paths.len()
            ),
        };
        Ok(Self {
            files,
            entries,
            desc,
            random: None,
        })
    }

    /// Random tensors of the given names and (PyTorch-layout) shapes; see [`RandomInit`].
    pub fn random(shapes: Vec<(String, Vec<usize>)>, init: RandomInit, desc: String) -> Self {
        let entries = shapes
            .into_iter()
            .map(|(name, shape)| {
                let entry = Entry {
                    file: 0,
                    dtype: Dtype::F32,
                    shape,
                    start: 0,
                    end: 0,
                };
                (name, entry)
            })
            .collect();
        Self {
            files: Vec::new(),
            entries,
            desc,
            random: Some(init),
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.entries.get(name).map(|e| e.shape.as_slice())
    }

    /// The dtype most of the stored weights have (what `rmtk info` reports).
    pub fn dominant_dtype(&self) -> Option<Dtype> {
        let mut count: BTreeMap<String, (usize, Dtype)> = BTreeMap::new();
        for e in self.entries.values() {
            let n: usize = e.shape.iter().product();
            let slot = count
                .entry(format!("{:?}", e.dtype))
                .or_insert((0, e.dtype));
            slot.0 += n;
        }
        count.into_values().max_by_key(|(n, _)| *n).map(|(_, d)| d)
    }

    /// Number of float values (weights; integer buffers are not parameters).
    pub fn num_elements(&self) -> usize {
        self.entries
            .values()
            .filter(|e| matches!(e.dtype, Dtype::F32 | Dtype::BF16 | Dtype::F16))
            .map(|e| e.shape.iter().product::<usize>())
            .sum()
    }

    /// A tensor's values as f32, and its shape; `Err` for a dtype that is not a float
    /// weight type.
    pub fn read_f32(&self, name: &str) -> Option<Result<HostTensor, LoadError>> {
        let e = self.entries.get(name)?;
        if let Some(init) = &self.random {
            let numel = e.shape.iter().product();
            return Some(Ok((init.values(name, numel), e.shape.clone())));
        }
        if !matches!(e.dtype, Dtype::F32 | Dtype::BF16 | Dtype::F16) {
            return Some(Err(LoadError::Dtype {
                path: self.files[e.file].0.clone(),
                name: name.to_string(),
                dtype: e.dtype,
            }));
        }
        let bytes = &self.files[e.file].1[e.start..e.end];
        let values = match e.dtype {
            Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::BF16 => bytes
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            _ => unreachable!("checked above"),
        };
        Some(Ok((values, e.shape.clone())))
    }

    pub fn describe(&self) -> &str {
        &self.desc
    }
}

/// How checkpoint keys relate to the module's parameter paths.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Path prefixes that may be absent from the checkpoint (a fresh head on a
    /// pretrained backbone): those parameters keep their initial values.
    pub allow_missing: Vec<String>,
    /// Path prefixes that may be stripped to find a key: a `bert.` wrapper loading a
    /// bare `BertModel` checkpoint.
    pub strip_prefixes: Vec<String>,
    /// Prefixes that may be prepended to find a key: a bare encoder loading a
    /// checkpoint saved from a `BertFor*` wrapper.
    pub add_prefixes: Vec<String>,
    /// The dtype tensors are created in (`None`: f32). Each is converted on the host as
    /// it is read, so the whole model never exists in f32.
    pub dtype: Option<burn::tensor::DType>,
}

/// Fill a module's parameters from a checkpoint, by path. Returns the module and the
/// checkpoint keys it did not use.
pub fn load_module<B: Backend, M: Module<B>>(
    module: M,
    weights: &Weights,
    options: &LoadOptions,
) -> Result<(M, Vec<String>), LoadError> {
    let mut mapper = Loader {
        weights,
        options,
        path: Vec::new(),
        containers: Vec::new(),
        missing: Vec::new(),
        shape_error: None,
        used: Vec::new(),
    };
    let module = module.map(&mut mapper);
    if let Some(err) = mapper.shape_error {
        return Err(err);
    }
    if !mapper.missing.is_empty() {
        return Err(LoadError::Missing {
            missing: mapper.missing,
            source_desc: weights.describe().to_string(),
        });
    }
    let used: std::collections::HashSet<&str> = mapper.used.iter().map(String::as_str).collect();
    let mut unused: Vec<String> = weights
        .names()
        .filter(|n| !used.contains(n))
        .map(str::to_string)
        .collect();
    unused.sort();
    Ok((module, unused))
}

/// One segment of the module path: `None` for an enum variant (no key segment).
struct Loader<'a> {
    weights: &'a Weights,
    options: &'a LoadOptions,
    path: Vec<Option<String>>,
    containers: Vec<String>,
    missing: Vec<(String, Vec<usize>)>,
    /// The first tensor that exists but does not fit (shape or dtype).
    shape_error: Option<LoadError>,
    used: Vec<String>,
}

fn key_of(path: &[Option<String>]) -> String {
    path.iter().flatten().cloned().collect::<Vec<_>>().join(".")
}

/// A `weight` whose parent is a `Linear` or a LoRA factor: `[in, out]` in memory,
/// `[out, in]` in PyTorch.
fn is_linear_weight(path: &[Option<String>], containers: &[String]) -> bool {
    matches!(path.last(), Some(Some(last)) if last == "weight")
        && matches!(
            containers.last().map(String::as_str),
            Some("Struct:Linear" | "Struct:LoraFactor")
        )
}

/// The key segment a field contributes: none for an enum variant, and a Rust keyword
/// spelled with a trailing underscore (`self_`) stands for the keyword itself (`self`).
fn segment(name: &str, container_type: &str) -> Option<String> {
    if container_type.starts_with("Enum:") {
        return None;
    }
    const KEYWORDS: [&str; 5] = ["self", "type", "ref", "mod", "match"];
    let name = match name.strip_suffix('_') {
        Some(stem) if KEYWORDS.contains(&stem) => stem,
        _ => name,
    };
    Some(name.to_string())
}

/// The checkpoint key for a module path, trying the declared fallbacks.
fn resolve(weights: &Weights, options: &LoadOptions, key: &str) -> Option<String> {
    if weights.contains(key) {
        return Some(key.to_string());
    }
    for prefix in &options.strip_prefixes {
        if let Some(rest) = key.strip_prefix(prefix.as_str())
            && weights.contains(rest)
        {
            return Some(rest.to_string());
        }
    }
    for prefix in &options.add_prefixes {
        let candidate = format!("{prefix}{key}");
        if weights.contains(&candidate) {
            return Some(candidate);
        }
    }
    // Old BERT checkpoints name LayerNorm parameters gamma/beta.
    let legacy = key
        .strip_suffix("LayerNorm.weight")
        .map(|p| format!("{p}LayerNorm.gamma"))
        .or_else(|| {
            key.strip_suffix("LayerNorm.bias")
                .map(|p| format!("{p}LayerNorm.beta"))
        });
    legacy.and_then(|legacy| resolve(weights, options, &legacy))
}

/// Check, from the checkpoint's header alone, that every parameter of a (lazily
/// initialised) module is present with the right shape. Nothing is read or allocated.
pub fn check_module<B: Backend, M: Module<B>>(
    module: &M,
    weights: &Weights,
    options: &LoadOptions,
) -> Result<usize, LoadError> {
    let mut checker = Checker {
        weights,
        options,
        path: Vec::new(),
        containers: Vec::new(),
        missing: Vec::new(),
        error: None,
        count: 0,
    };
    module.visit(&mut checker);
    if let Some(err) = checker.error {
        return Err(err);
    }
    if !checker.missing.is_empty() {
        return Err(LoadError::Missing {
            missing: checker.missing,
            source_desc: weights.describe().to_string(),
        });
    }
    Ok(checker.count)
}

struct Checker<'a> {
    weights: &'a Weights,
    options: &'a LoadOptions,
    path: Vec<Option<String>>,
    containers: Vec<String>,
    missing: Vec<(String, Vec<usize>)>,
    error: Option<LoadError>,
    count: usize,
}

impl<B: Backend> ModuleVisitor<B> for Checker<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.push(segment(name, container_type));
        self.containers.push(container_type.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
        self.containers.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let key = key_of(&self.path);
        let mut expected = param.lazy_shape().to_vec();
        if D == 2 && is_linear_weight(&self.path, &self.containers) {
            expected.reverse();
        }
        match resolve(self.weights, self.options, &key) {
            None => {
                if !self
                    .options
                    .allow_missing
                    .iter()
                    .any(|p| key.starts_with(p.as_str()))
                {
                    self.missing.push((key, expected));
                }
            }
            Some(found) => {
                let shape = self.weights.shape(&found).unwrap_or_default().to_vec();
                if shape != expected && self.error.is_none() {
                    self.error = Some(LoadError::Shape {
                        name: found,
                        expected,
                        found: shape,
                        source_desc: self.weights.describe().to_string(),
                    });
                }
                self.count += 1;
            }
        }
    }
}

impl<B: Backend> ModuleMapper<B> for Loader<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.push(segment(name, container_type));
        self.containers.push(container_type.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
        self.containers.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let key = key_of(&self.path);
        let transpose = D == 2 && is_linear_weight(&self.path, &self.containers);
        let mut expected = param.lazy_shape().to_vec();
        if transpose {
            expected.reverse();
        }
        let Some(found_key) = resolve(self.weights, self.options, &key) else {
            let optional = self
                .options
                .allow_missing
                .iter()
                .any(|p| key.starts_with(p.as_str()));
            if !optional {
                self.missing.push((key, expected));
                return param;
            }
            // A fresh parameter (a new head): keep its initial value, under its key's id.
            let (_, tensor, _) = param.consume();
            return Param::initialized(param_id(&key), tensor);
        };
        let (values, shape) = match self.weights.read_f32(&found_key) {
            Some(Ok(read)) => read,
            Some(Err(err)) => {
                self.shape_error.get_or_insert(err);
                return param;
            }
            None => return param,
        };
        if shape != expected {
            if self.shape_error.is_none() {
                self.shape_error = Some(LoadError::Shape {
                    name: found_key,
                    expected,
                    found: shape,
                    source_desc: self.weights.describe().to_string(),
                });
            }
            return param;
        }
        self.used.push(found_key);
        let device = param.lazy_device();
        // Transpose on the host so the weight is contiguous in burn's layout: a strided
        // view would be copied again by every matmul that reshapes it.
        let (values, shape) = if transpose {
            (
                transpose_2d(&values, shape[0], shape[1]),
                vec![shape[1], shape[0]],
            )
        } else {
            (values, shape)
        };
        let dtype = self.options.dtype.unwrap_or(burn::tensor::DType::F32);
        let data = match dtype {
            burn::tensor::DType::BF16 => TensorData::new(
                values
                    .into_iter()
                    .map(half::bf16::from_f32)
                    .collect::<Vec<_>>(),
                shape,
            ),
            burn::tensor::DType::F16 => TensorData::new(
                values
                    .into_iter()
                    .map(half::f16::from_f32)
                    .collect::<Vec<_>>(),
                shape,
            ),
            _ => TensorData::new(values, shape),
        };
        let tensor = Tensor::<B, D>::from_data(data, (&device, dtype));
        Param::initialized(param_id(&key), tensor.require_grad())
    }
}

/// Every parameter of a (lazily initialised) module as its checkpoint key and PyTorch
/// shape (linear weights `[out, in]`), without allocating anything.
pub fn torch_shapes<B: Backend, M: Module<B>>(module: &M) -> Vec<(String, Vec<usize>)> {
    let mut lister = ShapeLister {
        path: Vec::new(),
        containers: Vec::new(),
        out: Vec::new(),
    };
    module.visit(&mut lister);
    lister.out
}

struct ShapeLister {
    path: Vec<Option<String>>,
    containers: Vec<String>,
    out: Vec<(String, Vec<usize>)>,
}

impl<B: Backend> ModuleVisitor<B> for ShapeLister {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.push(segment(name, container_type));
        self.containers.push(container_type.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
        self.containers.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let mut shape = param.lazy_shape().to_vec();
        if D == 2 && is_linear_weight(&self.path, &self.containers) {
            shape.reverse();
        }
        self.out.push((key_of(&self.path), shape));
    }
}

/// A parameter's id derived from its checkpoint key (FNV-1a), so the same parameter has
/// the same id in every run: optimizer state saved by id finds its parameter on resume.
pub fn param_id(key: &str) -> ParamId {
    ParamId::from(fnv1a(key))
}

fn fnv1a(key: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// `[rows, cols]` row-major to `[cols, rows]` row-major, in cache-friendly blocks.
pub(crate) fn transpose_2d(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    const BLOCK: usize = 32;
    let mut out = vec![0.0f32; values.len()];
    for r0 in (0..rows).step_by(BLOCK) {
        for c0 in (0..cols).step_by(BLOCK) {
            for r in r0..(r0 + BLOCK).min(rows) {
                for c in c0..(c0 + BLOCK).min(cols) {
                    out[c * rows + r] = values[r * cols + c];
                }
            }
        }
    }
    out
}

/// A parameter as a trainer sees it: its id, its checkpoint key, its shape in burn's
/// layout, and whether that layout is the transpose of PyTorch's (a `Linear` weight).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamInfo {
    pub id: ParamId,
    pub name: String,
    pub shape: Vec<usize>,
    pub transposed: bool,
    /// Whether it takes gradients (false for a frozen base under LoRA).
    pub trainable: bool,
}

impl ParamInfo {
    /// The shape PyTorch (and a checkpoint) gives this parameter.
    pub fn torch_shape(&self) -> Vec<usize> {
        let mut s = self.shape.clone();
        if self.transposed {
            s.reverse();
        }
        s
    }
}

/// Every float parameter of a module, in visiting order, without reading any values.
pub fn param_infos<B: Backend, M: Module<B>>(module: &M) -> Vec<ParamInfo> {
    let mut lister = Lister {
        path: Vec::new(),
        containers: Vec::new(),
        out: Vec::new(),
    };
    module.visit(&mut lister);
    lister.out
}

struct Lister {
    path: Vec<Option<String>>,
    containers: Vec<String>,
    out: Vec<ParamInfo>,
}

impl<B: Backend> ModuleVisitor<B> for Lister {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.push(segment(name, container_type));
        self.containers.push(container_type.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
        self.containers.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.out.push(ParamInfo {
            id: param.id,
            name: key_of(&self.path),
            shape: param.lazy_shape().to_vec(),
            transposed: D == 2 && is_linear_weight(&self.path, &self.containers),
            trainable: param.is_require_grad(),
        });
    }
}

/// A tensor on its way to a checkpoint: key, PyTorch-layout shape, values.
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// A tensor on its way to a file whose values are read (and converted) only as it is
/// written: saving holds one tensor's bytes at a time beside the model, not a copy of
/// the whole model.
pub struct SaveTensor {
    pub name: String,
    pub shape: Vec<usize>,
    read: Box<dyn Fn() -> Vec<f32>>,
}

impl SaveTensor {
    pub fn new(name: String, shape: Vec<usize>, read: impl Fn() -> Vec<f32> + 'static) -> Self {
        Self {
            name,
            shape,
            read: Box::new(read),
        }
    }

    /// Values already on the host.
    pub fn host(t: NamedTensor) -> Self {
        let values = t.values;
        Self::new(t.name, t.shape, move || values.clone())
    }

    pub fn values(&self) -> Vec<f32> {
        (self.read)()
    }

    fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Every float parameter of a module under its checkpoint key, in PyTorch layout, read
/// when written.
pub fn module_tensors<B: Backend, M: Module<B>>(module: &M) -> Vec<SaveTensor> {
    let mut collector = Collector {
        path: Vec::new(),
        containers: Vec::new(),
        out: Vec::new(),
    };
    module.visit(&mut collector);
    collector.out
}

/// Every float parameter of a module under its checkpoint key, in PyTorch layout, with
/// its values.
pub fn collect_tensors<B: Backend, M: Module<B>>(module: &M) -> Vec<NamedTensor> {
    module_tensors(module)
        .into_iter()
        .map(|t| NamedTensor {
            values: t.values(),
            name: t.name,
            shape: t.shape,
        })
        .collect()
}

struct Collector {
    path: Vec<Option<String>>,
    containers: Vec<String>,
    out: Vec<SaveTensor>,
}

impl<B: Backend> ModuleVisitor<B> for Collector {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.push(segment(name, container_type));
        self.containers.push(container_type.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
        self.containers.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let transpose = D == 2 && is_linear_weight(&self.path, &self.containers);
        // A handle on the parameter's storage (no copy), read when written.
        let tensor = param.val();
        let mut shape = tensor.shape().dims::<D>().to_vec();
        if transpose {
            shape.reverse();
        }
        self.out
            .push(SaveTensor::new(key_of(&self.path), shape, move || {
                let t = if transpose {
                    tensor.clone().transpose()
                } else {
                    tensor.clone()
                };
                t.into_data()
                    .convert::<f32>()
                    .into_vec::<f32>()
                    .expect("float parameters convert to f32")
            }));
    }
}

/// The dtype a model computes in (`--dtype`): its activations, and under LoRA its frozen
/// base weights, created and loaded directly in it. Trained parameters stay f32.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ComputeDtype {
    #[default]
    F32,
    Bf16,
    F16,
}

impl ComputeDtype {
    pub fn burn(self) -> burn::tensor::DType {
        match self {
            ComputeDtype::F32 => burn::tensor::DType::F32,
            ComputeDtype::Bf16 => burn::tensor::DType::BF16,
            ComputeDtype::F16 => burn::tensor::DType::F16,
        }
    }

    /// Training's rule: the dtype the weights are created in, and the activations' dtype
    /// where it is not theirs. Under LoRA the frozen base is held in the compute dtype
    /// itself; full fine-tuning keeps f32 master weights computing in it (mixed precision).
    pub fn training_dtypes(self, lora: bool) -> (burn::tensor::DType, Option<burn::tensor::DType>) {
        match self {
            ComputeDtype::F32 => (burn::tensor::DType::F32, None),
            _ if lora => (self.burn(), None),
            _ => (burn::tensor::DType::F32, Some(self.burn())),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ComputeDtype::F32 => "f32",
            ComputeDtype::Bf16 => "bf16",
            ComputeDtype::F16 => "f16",
        }
    }
}

/// The dtype tensors are written in.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum SaveDtype {
    #[default]
    F32,
    Bf16,
    F16,
}

impl SaveDtype {
    fn width(self) -> usize {
        match self {
            SaveDtype::F32 => 4,
            SaveDtype::Bf16 | SaveDtype::F16 => 2,
        }
    }

    fn safetensors(self) -> Dtype {
        match self {
            SaveDtype::F32 => Dtype::F32,
            SaveDtype::Bf16 => Dtype::BF16,
            SaveDtype::F16 => Dtype::F16,
        }
    }

    fn encode(self, values: &[f32]) -> (Dtype, Vec<u8>) {
        match self {
            SaveDtype::F32 => (
                Dtype::F32,
                values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
            SaveDtype::Bf16 => (
                Dtype::BF16,
                values
                    .iter()
                    .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
                    .collect(),
            ),
            SaveDtype::F16 => (
                Dtype::F16,
                values
                    .iter()
                    .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                    .collect(),
            ),
        }
    }

    pub fn torch_name(self) -> &'static str {
        match self {
            SaveDtype::F32 => "float32",
            SaveDtype::Bf16 => "bfloat16",
            SaveDtype::F16 => "float16",
        }
    }
}

/// Largest shard written before splitting into `model-0000i-of-0000n.safetensors`.
pub const DEFAULT_MAX_SHARD_BYTES: usize = 4 << 30;

/// Write tensors as `model.safetensors` (or shards plus an index) in `dir`. Each file is
/// written to a temporary name and renamed into place; each tensor is read and encoded
/// as it is written.
pub fn save_safetensors(
    dir: &Path,
    tensors: &[SaveTensor],
    dtype: SaveDtype,
    max_shard_bytes: usize,
) -> std::io::Result<()> {
    let width = dtype.width();
    let mut shards: Vec<Vec<usize>> = vec![Vec::new()];
    let mut size = 0;
    for (i, t) in tensors.iter().enumerate() {
        let bytes = t.numel() * width;
        if size > 0 && size + bytes > max_shard_bytes {
            shards.push(Vec::new());
            size = 0;
        }
        size += bytes;
        shards.last_mut().expect("one shard exists").push(i);
    }
    let n = shards.len();
    let mut weight_map = serde_json::Map::new();
    for (s, members) in shards.iter().enumerate() {
        let file_name = if n == 1 {
            "model.safetensors".to_string()
        } else {
            format!("model-{:05}-of-{:05}.safetensors", s + 1, n)
        };
        for &i in members {
            weight_map.insert(
                tensors[i].name.clone(),
                serde_json::Value::String(file_name.clone()),
            );
        }
        let mut meta = HashMap::new();
        meta.insert("format".to_string(), "pt".to_string());
        let members: Vec<&SaveTensor> = members.iter().map(|&i| &tensors[i]).collect();
        write_safetensors_file(&dir.join(&file_name), &members, dtype, meta)?;
    }
    let index = dir.join("model.safetensors.index.json");
    if n > 1 {
        let total: usize = tensors.iter().map(|t| t.numel() * width).sum();
        let json = serde_json::json!({
            "metadata": {"total_size": total},
            "weight_map": weight_map,
        });
        crate::util::write_atomic(&index, serde_json::to_string_pretty(&json)?.as_bytes())?;
    } else if index.exists() {
        // A stale index would shadow the single file on the next load.
        std::fs::remove_file(&index)?;
    }
    Ok(())
}

/// One safetensors file, atomically, streaming: one tensor's bytes in memory at a time.
pub fn write_safetensors_file(
    path: &Path,
    tensors: &[&SaveTensor],
    dtype: SaveDtype,
    meta: HashMap<String, String>,
) -> std::io::Result<()> {
    let views = tensors.iter().map(|t| {
        let view = LazyView {
            tensor: t,
            dtype,
            len: t.numel() * dtype.width(),
        };
        (t.name.clone(), view)
    });
    crate::util::write_atomic_with(path, |tmp| {
        safetensors::serialize_to_file(views, Some(meta), tmp).map_err(std::io::Error::other)
    })
}

struct LazyView<'a> {
    tensor: &'a SaveTensor,
    dtype: SaveDtype,
    len: usize,
}

impl safetensors::View for LazyView<'_> {
    fn dtype(&self) -> Dtype {
        self.dtype.safetensors()
    }

    fn shape(&self) -> &[usize] {
        &self.tensor.shape
    }

    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        let (_, bytes) = self.dtype.encode(&self.tensor.values());
        assert_eq!(bytes.len(), self.len, "`{}`: byte length", self.tensor.name);
        std::borrow::Cow::Owned(bytes)
    }

    fn data_len(&self) -> usize {
        self.len
    }
}

/// One safetensors file's bytes (PyTorch's `format: pt` metadata), for files that are
/// not a model's `model.safetensors` (an adapter's weights).
pub fn encode_safetensors(tensors: &[NamedTensor], dtype: SaveDtype) -> std::io::Result<Vec<u8>> {
    let encoded: Vec<(&String, &Vec<usize>, Dtype, Vec<u8>)> = tensors
        .iter()
        .map(|t| {
            let (d, bytes) = dtype.encode(&t.values);
            (&t.name, &t.shape, d, bytes)
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = encoded
        .iter()
        .map(|(name, shape, d, bytes)| {
            let view = safetensors::tensor::TensorView::new(*d, (*shape).clone(), bytes)
                .expect("shape and byte length agree by construction");
            ((*name).clone(), view)
        })
        .collect();
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    safetensors::serialize(views, Some(meta)).map_err(std::io::Error::other)
}

/// Write a small file atomically (used for configs next to the weights).
pub fn write_json(path: &Path, value: &serde_json::Value) -> std::io::Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    crate::util::write_atomic(path, text.as_bytes())
}

/// A fresh parameter id for tensors built outside `Config::init`.
pub fn new_param<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> Param<Tensor<B, D>> {
    Param::initialized(ParamId::new(), tensor.require_grad())
}
