//! Which backend and device a command runs on: `--device cpu|cuda|cuda:N`.
//!
//! Commands are written once, generic over burn's `Backend`; a [`Job`] is handed to
//! [`run_on`], which picks the concrete backend. The CPU backend is burn's `Flex`
//! (chosen by measurement, see the README); CUDA is compiled in with `--features cuda`.

use crate::kernels::FusedOps;
use std::fmt;
use std::str::FromStr;

use anyhow::Result;

/// The CPU backend.
pub type Cpu = burn::backend::Flex;

/// The CUDA backend (fusion and autotune enabled by the `cuda` feature).
#[cfg(feature = "cuda")]
pub type Gpu = burn::backend::Cuda;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceSpec {
    #[default]
    Cpu,
    Cuda(usize),
}

impl FromStr for DeviceSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" | "gpu" => Ok(DeviceSpec::Cuda(0)),
            other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(i)) => Ok(DeviceSpec::Cuda(i)),
                _ => Err(format!("`{s}` is not a device (use cpu, cuda or cuda:N)")),
            },
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Cpu => write!(f, "cpu"),
            DeviceSpec::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

/// A command body that runs on any backend.
pub trait Job {
    type Output;
    fn run<B: FusedOps>(self, device: B::Device) -> Result<Self::Output>;
}

/// Run `job` on the backend and device `spec` names.
pub fn run_on<J: Job>(spec: DeviceSpec, job: J) -> Result<J::Output> {
    match spec {
        DeviceSpec::Cpu => job.run::<Cpu>(Default::default()),
        DeviceSpec::Cuda(index) => run_cuda(index, job),
    }
}

#[cfg(not(feature = "cuda"))]
fn run_cuda<J: Job>(index: usize, _job: J) -> Result<J::Output> {
    anyhow::bail!(
        "--device cuda:{index}: this rmtk was built without CUDA support; rebuild it with `cargo build --release --features cuda`"
    )
}

#[cfg(feature = "cuda")]
fn run_cuda<J: Job>(index: usize, job: J) -> Result<J::Output> {
    let device = burn::backend::cuda::CudaDevice::new(index);
    probe_cuda(index, &device)?;
    job.run::<Gpu>(device)
}

/// Touch the device once, turning the driver's panic on a machine without a usable GPU
/// into an error that says so.
#[cfg(feature = "cuda")]
fn probe_cuda(index: usize, device: &burn::backend::cuda::CudaDevice) -> Result<()> {
    use burn::tensor::Tensor;
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let probe = std::panic::catch_unwind(|| {
        Tensor::<Gpu, 1>::ones([1], device)
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .ok()
    });
    std::panic::set_hook(previous);
    match probe {
        Ok(Some(v)) if v == [1.0] => Ok(()),
        Ok(_) => anyhow::bail!("--device cuda:{index}: the device returned wrong results"),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown driver error".into());
            anyhow::bail!(
                "--device cuda:{index}: no usable CUDA device ({}); use --device cpu",
                msg.lines().next().unwrap_or("")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_specs_parse() {
        assert_eq!("cpu".parse::<DeviceSpec>(), Ok(DeviceSpec::Cpu));
        assert_eq!("cuda".parse::<DeviceSpec>(), Ok(DeviceSpec::Cuda(0)));
        assert_eq!("cuda:3".parse::<DeviceSpec>(), Ok(DeviceSpec::Cuda(3)));
        assert!("tpu".parse::<DeviceSpec>().is_err());
        assert!("cuda:x".parse::<DeviceSpec>().is_err());
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_is_a_clear_error() {
        struct Nothing;
        impl Job for Nothing {
            type Output = ();
            fn run<B: FusedOps>(self, _device: B::Device) -> Result<()> {
                Ok(())
            }
        }
        let err = run_on(DeviceSpec::Cuda(0), Nothing)
            .unwrap_err()
            .to_string();
        assert!(err.contains("built without CUDA"), "{err}");
    }
}
