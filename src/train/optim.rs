//! AdamW with decoupled weight decay, gradient accumulation and global-norm clipping,
//! written over burn's [`GradientsParams`] (gradients keyed by parameter id).
//!
//! The arithmetic is `torch.optim.AdamW`'s (single-tensor path), in f32, in the same
//! order: `p *= 1 - lr*wd; m = m + (g - m)(1 - b1); v = v*b2 + (1 - b2) g g;
//! p -= lr/(1 - b1^t) * m / (sqrt(v)/sqrt(1 - b2^t) + eps)`. Clipping is
//! `clip_grad_norm_`'s: the total norm is the norm of the per-tensor norms and every
//! gradient is multiplied by `min(1, max_norm / (norm + 1e-6))`. Weight decay skips the
//! parameters a transformers `Trainer` skips: biases and normalisation weights.
//!
//! The moments are saved as safetensors by parameter *name*, in PyTorch layout
//! (`model.layers.0.mlp.up_proj.weight.exp_avg`), so a checkpoint can be read with
//! `safetensors` and compared with a torch optimizer's state.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use anyhow::{Context, Result, bail};
use burn::module::{AutodiffModule, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

use super::loss_scale::LossScale;
use super::schedule::LrSchedule;
use crate::kernels::{self, AdamWStep, FusedOps};
use crate::models::load::{ParamInfo, SaveDtype, SaveTensor, Weights, write_safetensors_file};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    /// transformers' `TrainingArguments` defaults.
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// The safetensors metadata key of the optimizer file: `{"step": N, "config": {...}}`.
const META_KEY: &str = "rmtk_adamw";

/// Whether weight decay applies to a parameter, by transformers' rule
/// (`Trainer.get_decay_parameter_names`): not to biases nor to norm layers.
pub fn decays(name: &str) -> bool {
    let lower = name.to_lowercase();
    let segments: Vec<&str> = lower.split('.').collect();
    !(lower.contains("bias")
        || lower.contains("layernorm")
        || lower.contains("rmsnorm")
        || segments.contains(&"norm")
        || segments.iter().any(|s| s.ends_with("_norm")))
}

/// First and second moments of one parameter, flattened.
struct Moments<B: Backend> {
    m: Tensor<B, 1>,
    v: Tensor<B, 1>,
}

/// AdamW state over the parameters of one model. `B` is the backend the update runs on
/// (the autodiff backend's inner one).
pub struct AdamW<B: Backend> {
    cfg: AdamWConfig,
    /// Updates applied so far (torch's `state["step"]`).
    step: u64,
    moments: HashMap<ParamId, Moments<B>>,
    params: Vec<ParamInfo>,
    no_decay: HashSet<ParamId>,
}

impl<B: Backend> AdamW<B> {
    /// An optimizer for the parameters listed (`models::load::param_infos`).
    pub fn new(cfg: AdamWConfig, params: Vec<ParamInfo>) -> Self {
        let no_decay = params
            .iter()
            .filter(|p| !decays(&p.name))
            .map(|p| p.id)
            .collect();
        Self {
            cfg,
            step: 0,
            moments: HashMap::new(),
            params,
            no_decay,
        }
    }

    pub fn config(&self) -> &AdamWConfig {
        &self.cfg
    }

    /// Updates applied so far.
    pub fn steps_done(&self) -> u64 {
        self.step
    }

    pub fn params(&self) -> &[ParamInfo] {
        &self.params
    }

    /// One update of every parameter that has a gradient; `grad_scale` multiplies the
    /// gradients first (the clipping factor).
    pub fn step<AB, M>(
        &mut self,
        module: M,
        mut grads: GradientsParams,
        lr: f64,
        grad_scale: f32,
    ) -> M
    where
        AB: AutodiffBackend<InnerBackend = B>,
        B: FusedOps,
        M: AutodiffModule<AB>,
    {
        self.step += 1;
        let t = self.step as i32;
        let mut mapper = AdamWMapper::<AB> {
            cfg: self.cfg,
            lr,
            bias1: 1.0 - self.cfg.beta1.powi(t),
            bias2: 1.0 - self.cfg.beta2.powi(t),
            grad_scale,
            grads: &mut grads,
            moments: &mut self.moments,
            no_decay: &self.no_decay,
        };
        module.map(&mut mapper)
    }

    /// The moments as named tensors in PyTorch layout (zeros for parameters that have
    /// not been updated yet), read when written.
    pub fn state_tensors(&self) -> Vec<SaveTensor> {
        let mut out = Vec::with_capacity(2 * self.params.len());
        for p in &self.params {
            let n: usize = p.shape.iter().product();
            let moments = self.moments.get(&p.id);
            for (suffix, first) in [("exp_avg", true), ("exp_avg_sq", false)] {
                let info = p.clone();
                let tensor = moments.map(|mo| if first { mo.m.clone() } else { mo.v.clone() });
                out.push(SaveTensor::new(
                    format!("{}.{suffix}", p.name),
                    p.torch_shape(),
                    move || match &tensor {
                        Some(t) => torch_layout(t.clone(), &info),
                        None => vec![0.0; n],
                    },
                ));
            }
        }
        out
    }

    /// Write the state to one safetensors file (f32, atomically, one tensor in memory at
    /// a time); the step count and hyper-parameters go in its metadata.
    pub fn save(&self, path: &Path) -> Result<()> {
        let tensors = self.state_tensors();
        // One metadata entry, so the file's bytes do not depend on a hash map's order.
        let mut meta = HashMap::new();
        meta.insert(
            META_KEY.to_string(),
            serde_json::json!({"step": self.step, "config": self.cfg}).to_string(),
        );
        let refs: Vec<&SaveTensor> = tensors.iter().collect();
        write_safetensors_file(path, &refs, SaveDtype::F32, meta)
            .with_context(|| format!("writing {}", path.display()))
    }

    /// Restore the state written by [`AdamW::save`] for the same parameters.
    pub fn load(&mut self, path: &Path, device: &B::Device) -> Result<()> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
            .with_context(|| format!("{}: not a safetensors file", path.display()))?;
        let meta = meta.metadata().clone().unwrap_or_default();
        let Some(info) = meta
            .get(META_KEY)
            .and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok())
        else {
            bail!("{}: not an rmtk AdamW state", path.display());
        };
        let step = info
            .get("step")
            .and_then(serde_json::Value::as_u64)
            .with_context(|| format!("{}: no step count in the metadata", path.display()))?;
        drop(bytes);
        let weights = Weights::from_files(&[path.to_path_buf()])?;
        let mut moments = HashMap::new();
        for p in &self.params {
            let read = |suffix: &str| -> Result<Tensor<B, 1>> {
                let key = format!("{}.{suffix}", p.name);
                let (values, shape) = weights
                    .read_f32(&key)
                    .with_context(|| format!("{}: no tensor `{key}`", path.display()))??;
                if shape != p.torch_shape() {
                    bail!(
                        "{}: `{key}` has shape {shape:?}, the parameter has {:?}",
                        path.display(),
                        p.torch_shape()
                    );
                }
                Ok(from_torch_layout(values, p, device))
            };
            moments.insert(
                p.id,
                Moments {
                    m: read("exp_avg")?,
                    v: read("exp_avg_sq")?,
                },
            );
        }
        self.moments = moments;
        self.step = step;
        Ok(())
    }
}

/// Flattened burn-layout values -> PyTorch-layout host values.
fn torch_layout<B: Backend>(flat: Tensor<B, 1>, p: &ParamInfo) -> Vec<f32> {
    let t = if p.transposed {
        flat.reshape([p.shape[0], p.shape[1]])
            .transpose()
            .reshape([p.shape[0] * p.shape[1]])
    } else {
        flat
    };
    t.into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .expect("f32 data")
}

fn from_torch_layout<B: Backend>(
    values: Vec<f32>,
    p: &ParamInfo,
    device: &B::Device,
) -> Tensor<B, 1> {
    let n = values.len();
    if p.transposed {
        let ts = p.torch_shape();
        Tensor::<B, 2>::from_data(TensorData::new(values, [ts[0], ts[1]]), device)
            .transpose()
            .reshape([n])
    } else {
        Tensor::from_data(TensorData::new(values, [n]), device)
    }
}

struct AdamWMapper<'a, AB: AutodiffBackend> {
    cfg: AdamWConfig,
    lr: f64,
    bias1: f64,
    bias2: f64,
    grad_scale: f32,
    grads: &'a mut GradientsParams,
    moments: &'a mut HashMap<ParamId, Moments<AB::InnerBackend>>,
    no_decay: &'a HashSet<ParamId>,
}

impl<AB: AutodiffBackend> ModuleMapper<AB> for AdamWMapper<'_, AB>
where
    AB::InnerBackend: FusedOps,
{
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<AB, D>>) -> Param<Tensor<AB, D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<AB::InnerBackend, D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let shape = grad.shape();
        let n = shape.num_elements();
        let device = grad.device();
        let c = &self.cfg;
        let decay = if c.weight_decay != 0.0 && !self.no_decay.contains(&id) {
            (1.0 - self.lr * c.weight_decay) as f32
        } else {
            1.0
        };
        let (m, v) = match self.moments.remove(&id) {
            Some(mo) => (mo.m, mo.v),
            None => (Tensor::zeros([n], &device), Tensor::zeros([n], &device)),
        };
        let step = AdamWStep {
            grad_scale: self.grad_scale,
            decay,
            one_minus_beta1: (1.0 - c.beta1) as f32,
            beta2: c.beta2 as f32,
            one_minus_beta2: (1.0 - c.beta2) as f32,
            bias2_sqrt: self.bias2.sqrt() as f32,
            eps: c.eps as f32,
            step_size: (self.lr / self.bias1) as f32,
        };
        let (p, m, v) = kernels::adamw(tensor.inner().reshape([n]), grad.reshape([n]), m, v, &step);
        self.moments.insert(id, Moments { m, v });
        let updated = Tensor::<AB, D>::from_inner(p.reshape(shape)).require_grad();
        Param::from_mapped_value(id, updated, mapper)
    }
}

/// The global L2 norm of the gradients of a module's parameters (the norm of the
/// per-tensor norms, as `torch.nn.utils.clip_grad_norm_`), computed with one host read.
pub fn global_grad_norm<AB: AutodiffBackend, M: AutodiffModule<AB>>(
    module: &M,
    grads: &GradientsParams,
) -> f32 {
    struct Norms<'a, AB: AutodiffBackend> {
        grads: &'a GradientsParams,
        squares: Vec<Tensor<AB::InnerBackend, 1>>,
    }
    impl<AB: AutodiffBackend> ModuleVisitor<AB> for Norms<'_, AB> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AB, D>>) {
            if let Some(g) = self.grads.get::<AB::InnerBackend, D>(param.id) {
                let n = g.shape().num_elements();
                let norm = g.reshape([n]).square().sum().sqrt();
                self.squares.push(norm.square());
            }
        }
    }
    let mut v = Norms::<AB> {
        grads,
        squares: Vec::new(),
    };
    module.visit(&mut v);
    if v.squares.is_empty() {
        return 0.0;
    }
    Tensor::cat(v.squares, 0)
        .sum()
        .sqrt()
        .into_scalar()
        .to_f32()
}

/// Sums the gradients of the micro-batches of one update. Each micro-batch's loss must
/// be scaled by its share of the update (its pairs over the update's pairs) before
/// `backward`, so the sum is the gradient of the mean over the whole update.
pub struct Accumulator<M> {
    inner: GradientsAccumulator<M>,
    pending: usize,
}

impl<M> Default for Accumulator<M> {
    fn default() -> Self {
        Self {
            inner: GradientsAccumulator::new(),
            pending: 0,
        }
    }
}

impl<M> Accumulator<M> {
    pub fn add<AB: AutodiffBackend>(&mut self, module: &M, grads: AB::Gradients)
    where
        M: AutodiffModule<AB>,
    {
        let grads = GradientsParams::from_grads(grads, module);
        self.inner.accumulate(module, grads);
        self.pending += 1;
    }

    /// Add one micro-batch's gradients already keyed by parameter (a checkpointed
    /// backward pass, `train::checkpointing`).
    pub fn add_params<AB: AutodiffBackend>(&mut self, module: &M, grads: GradientsParams)
    where
        M: AutodiffModule<AB>,
    {
        self.inner.accumulate(module, grads);
        self.pending += 1;
    }

    /// Micro-batches added since the last [`Accumulator::take`].
    pub fn pending(&self) -> usize {
        self.pending
    }

    pub fn take(&mut self) -> GradientsParams {
        self.pending = 0;
        self.inner.grads()
    }
}

/// What one update did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpdateStats {
    /// The learning rate the update used.
    pub lr: f64,
    /// The global gradient norm before clipping (unscaled under f16's loss scaling).
    pub grad_norm: f32,
    /// f16: the loss scale the gradients carried.
    pub loss_scale: Option<f32>,
    /// f16: the gradients overflowed, so nothing was updated (the scale halves).
    pub skipped: bool,
}

/// Clipping, the schedule and AdamW, applied together once per update.
pub struct Updater<B: Backend> {
    pub optim: AdamW<B>,
    pub schedule: LrSchedule,
    /// `None` or a non-positive value: no clipping.
    pub max_grad_norm: Option<f64>,
    /// f16 training: the dynamic loss scale (`None` in f32 and bf16).
    pub loss_scale: Option<LossScale>,
}

impl<B: Backend> Updater<B> {
    pub fn new(optim: AdamW<B>, schedule: LrSchedule, max_grad_norm: Option<f64>) -> Self {
        Self {
            optim,
            schedule,
            max_grad_norm,
            loss_scale: None,
        }
    }

    /// What each micro-batch's loss is multiplied by before its backward pass (1
    /// without loss scaling).
    pub fn loss_scale(&self) -> f32 {
        self.loss_scale.map_or(1.0, |s| s.scale)
    }

    /// The learning rate of the next update.
    pub fn next_lr(&self) -> f64 {
        self.schedule.lr(self.optim.steps_done())
    }

    pub fn apply<AB, M>(&mut self, module: M, grads: GradientsParams) -> (M, UpdateStats)
    where
        AB: AutodiffBackend<InnerBackend = B>,
        B: FusedOps,
        M: AutodiffModule<AB>,
    {
        let mut grad_norm = global_grad_norm::<AB, M>(&module, &grads);
        let lr = self.next_lr();
        // Loss scaling: an overflowed update is skipped; a finite one is unscaled
        // (the scale is a power of two, so exactly) before clipping.
        let mut unscale = 1.0f32;
        if let Some(ls) = &mut self.loss_scale {
            let scale = ls.scale;
            let finite = grad_norm.is_finite();
            ls.update(finite);
            if !finite {
                let stats = UpdateStats {
                    lr,
                    grad_norm,
                    loss_scale: Some(scale),
                    skipped: true,
                };
                return (module, stats);
            }
            unscale = 1.0 / scale;
            grad_norm *= unscale;
        }
        let scale = match self.max_grad_norm {
            Some(max) if max > 0.0 => {
                // torch: clip_coef = max_norm / (total_norm + 1e-6), clamped to 1, in f32.
                let coef = max as f32 / (grad_norm + 1e-6);
                coef.min(1.0)
            }
            _ => 1.0,
        };
        let module = self.optim.step(module, grads, lr, scale * unscale);
        let stats = UpdateStats {
            lr,
            grad_norm,
            loss_scale: self.loss_scale.map(|_| 1.0 / unscale),
            skipped: false,
        };
        (module, stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Autodiff;
    use burn::nn::{Linear, LinearConfig};

    type Cpu = crate::device::Cpu;
    type Ad = Autodiff<Cpu>;

    #[test]
    fn decay_follows_the_transformers_rule() {
        for name in [
            "model.layers.0.input_layernorm.weight",
            "model.layers.0.post_attention_layernorm.weight",
            "model.norm.weight",
            "bert.encoder.layer.0.attention.output.LayerNorm.weight",
            "bert.embeddings.LayerNorm.bias",
            "model.layers.0.self_attn.q_proj.bias",
            "classifier.bias",
        ] {
            assert!(!decays(name), "{name}");
        }
        for name in [
            "model.embed_tokens.weight",
            "model.layers.0.self_attn.q_proj.weight",
            "score.weight",
            "bert.pooler.dense.weight",
        ] {
            assert!(decays(name), "{name}");
        }
    }

    /// One AdamW step on `w` for the loss `sum(w * x)`, whose gradient is `x`, against
    /// the arithmetic of torch.optim.AdamW written out by hand.
    #[test]
    fn one_step_is_torch_adamw() {
        let device = Default::default();
        let w0 = [0.5f32, -1.0, 2.0, 0.0];
        let x = [0.1f32, -2.0, 3.0, 1e-3];
        let mut lin: Linear<Ad> = LinearConfig::new(4, 1).with_bias(false).init(&device);
        lin.weight = Param::initialized(
            crate::models::load::param_id("w"),
            Tensor::<Ad, 2>::from_data(TensorData::new(w0.to_vec(), [4, 1]), &device)
                .require_grad(),
        );
        let infos = crate::models::load::param_infos::<Ad, _>(&lin);
        let cfg = AdamWConfig {
            weight_decay: 0.1,
            ..AdamWConfig::default()
        };
        let mut opt = AdamW::<Cpu>::new(cfg, infos);
        let lr = 0.01;
        let mut w = w0.map(f64::from);
        let (mut m, mut v) = ([0.0f64; 4], [0.0f64; 4]);
        for t in 1..=3 {
            let input = Tensor::<Ad, 2>::from_data(TensorData::new(x.to_vec(), [1, 4]), &device);
            let loss = lin.forward(input).sum();
            let grads = GradientsParams::from_grads(loss.backward(), &lin);
            lin = opt.step(lin, grads, lr, 1.0);
            for i in 0..4 {
                let g = f64::from(x[i]);
                w[i] *= 1.0 - lr * 0.1;
                m[i] = 0.9 * m[i] + 0.1 * g;
                v[i] = 0.999 * v[i] + 0.001 * g * g;
                let mh = m[i] / (1.0 - 0.9f64.powi(t));
                let vh = v[i] / (1.0 - 0.999f64.powi(t));
                w[i] -= lr * mh / (vh.sqrt() + 1e-8);
            }
        }
        let got = lin
            .weight
            .val()
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .unwrap();
        for i in 0..4 {
            assert!((f64::from(got[i]) - w[i]).abs() < 1e-6, "{got:?} vs {w:?}");
        }
        assert_eq!(opt.steps_done(), 3);
    }

    #[test]
    fn state_round_trips_through_safetensors_by_name() {
        let device = Default::default();
        let mut lin: Linear<Ad> = LinearConfig::new(3, 2).init(&device);
        // Give the parameters key-derived ids, as a loaded model has.
        lin.weight = Param::initialized(
            crate::models::load::param_id("lin.weight"),
            lin.weight.val().require_grad(),
        );
        let infos = crate::models::load::param_infos::<Ad, _>(&lin);
        assert_eq!(infos[0].name, "weight");
        assert!(infos[0].transposed);
        assert_eq!(infos[0].torch_shape(), vec![2, 3]);
        let mut opt = AdamW::<Cpu>::new(AdamWConfig::default(), infos.clone());
        let input =
            Tensor::<Ad, 2>::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0], [1, 3]), &device);
        let grads = GradientsParams::from_grads(lin.forward(input).square().sum().backward(), &lin);
        lin = opt.step(lin, grads, 1e-3, 1.0);
        let dir = std::env::temp_dir().join(format!("rmtk-optim-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("optimizer.safetensors");
        opt.save(&path).unwrap();
        let mut again = AdamW::<Cpu>::new(AdamWConfig::default(), infos);
        again.load(&path, &device).unwrap();
        assert_eq!(again.steps_done(), 1);
        let a = opt.state_tensors();
        let b = again.state_tensors();
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.name, y.name);
            assert_eq!(x.values(), y.values());
        }
        // The first moment of a Linear weight is stored as PyTorch's [out, in].
        let m = a.iter().find(|t| t.name == "weight.exp_avg").unwrap();
        assert_eq!(m.shape, vec![2, 3]);
        let _ = lin;
    }

    #[test]
    fn grad_norm_and_clipping() {
        let device = Default::default();
        let mut lin: Linear<Ad> = LinearConfig::new(2, 1).with_bias(false).init(&device);
        lin.weight = Param::initialized(
            crate::models::load::param_id("w"),
            Tensor::<Ad, 2>::from_data(TensorData::new(vec![0.0f32, 0.0], [2, 1]), &device)
                .require_grad(),
        );
        let input = Tensor::<Ad, 2>::from_data(TensorData::new(vec![3.0f32, 4.0], [1, 2]), &device);
        let grads = GradientsParams::from_grads(lin.forward(input).sum().backward(), &lin);
        assert!((global_grad_norm::<Ad, _>(&lin, &grads) - 5.0).abs() < 1e-6);
        let infos = crate::models::load::param_infos::<Ad, _>(&lin);
        let sched = LrSchedule {
            kind: super::super::ScheduleKind::Constant,
            base_lr: 0.1,
            warmup_steps: 0,
            total_steps: 1,
        };
        let mut up = Updater::new(
            AdamW::<Cpu>::new(AdamWConfig::default(), infos),
            sched,
            Some(1.0),
        );
        let (_, stats) = up.apply(lin, grads);
        assert_eq!(stats.lr, 0.1);
        assert!((stats.grad_norm - 5.0).abs() < 1e-6);
    }

    /// f16's loss scaling: scaled gradients give the update of the unscaled ones, bit for
    /// bit; an overflowed update changes nothing (weights, moments, step count, the
    /// schedule's position) and halves the scale.
    #[test]
    fn loss_scaling_unscales_and_skips_overflow() {
        let device = Default::default();
        let lin = || -> Linear<Ad> {
            let mut lin: Linear<Ad> = LinearConfig::new(2, 1).with_bias(false).init(&device);
            lin.weight = Param::initialized(
                crate::models::load::param_id("w"),
                Tensor::<Ad, 2>::from_data(TensorData::new(vec![0.5f32, -0.25], [2, 1]), &device)
                    .require_grad(),
            );
            lin
        };
        let updater = |lin: &Linear<Ad>| {
            let sched = LrSchedule {
                kind: super::super::ScheduleKind::Linear,
                base_lr: 0.1,
                warmup_steps: 0,
                total_steps: 4,
            };
            let infos = crate::models::load::param_infos::<Ad, _>(lin);
            Updater::new(
                AdamW::<Cpu>::new(AdamWConfig::default(), infos),
                sched,
                Some(1.0),
            )
        };
        let grads_of = |lin: &Linear<Ad>, input: Vec<f32>, scale: f32| {
            let x = Tensor::<Ad, 2>::from_data(TensorData::new(input, [1, 2]), &device);
            let loss = lin.forward(x).sum().mul_scalar(scale);
            GradientsParams::from_grads(loss.backward(), lin)
        };
        let weights = |lin: &Linear<Ad>| lin.weight.val().into_data().to_vec::<f32>().unwrap();

        let (plain, mut up) = (lin(), updater(&lin()));
        let g = grads_of(&plain, vec![3.0, 4.0], 1.0);
        let (plain, want) = up.apply(plain, g);
        assert_eq!((want.loss_scale, want.skipped), (None, false));

        let (scaled, mut up) = (lin(), updater(&lin()));
        up.loss_scale = Some(LossScale::default());
        assert_eq!(up.loss_scale(), 65536.0);
        // An overflow first: skipped, nothing moves.
        let g = grads_of(&scaled, vec![f32::INFINITY, 4.0], up.loss_scale());
        let before = weights(&scaled);
        let (scaled, stats) = up.apply(scaled, g);
        assert!(stats.skipped && stats.loss_scale == Some(65536.0));
        assert_eq!(weights(&scaled), before);
        assert_eq!(up.optim.steps_done(), 0);
        assert_eq!(up.loss_scale(), 32768.0);
        // Then the same finite gradients as the plain run, scaled: the same update.
        let g = grads_of(&scaled, vec![3.0, 4.0], up.loss_scale());
        let (scaled, stats) = up.apply(scaled, g);
        assert!(!stats.skipped && stats.loss_scale == Some(32768.0));
        assert_eq!(stats.grad_norm, want.grad_norm);
        assert_eq!(stats.lr, want.lr);
        assert_eq!(weights(&scaled), weights(&plain));
        assert_eq!(up.loss_scale.unwrap().good_updates, 1);
    }
}
