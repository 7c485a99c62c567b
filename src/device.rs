//! The device a command computes on, chosen by name in one place.

use burn::prelude::*;

use crate::error::{LadderError, Result};

/// The devices a command can be asked to compute on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum DeviceKind {
    /// The pure-Rust CPU backend (Flex) with the fused CPU operations.
    #[default]
    #[value(alias = "flex")]
    Cpu,
    /// NVIDIA GPUs through CubeCL (builds with `--features cuda`).
    Cuda,
    /// GPUs through WebGPU/Vulkan (builds with `--features wgpu`).
    Wgpu,
}

crate::named_choice!(DeviceKind, "device");

impl DeviceKind {
    /// Whether this build can compute on it.
    pub fn built(self) -> bool {
        match self {
            DeviceKind::Cpu => true,
            DeviceKind::Cuda => cfg!(feature = "cuda"),
            DeviceKind::Wgpu => cfg!(feature = "wgpu"),
        }
    }
}

/// The names of the devices this build offers.
pub fn available() -> Vec<String> {
    crate::choice::all::<DeviceKind>()
        .into_iter()
        .filter(|k| k.built())
        .map(|k| k.to_string())
        .collect()
}

/// Whether `device` is the CPU (Flex), with or without autodiff.
pub fn is_cpu(device: &Device) -> bool {
    *device == Device::flex() || *device == Device::flex().autodiff()
}

/// The training device `kind`, with autodiff. A device this build or machine cannot give is
/// an error, never a fallback.
pub fn training_device(kind: DeviceKind) -> Result<Device> {
    if !kind.built() {
        return Err(LadderError::Setting(format!(
            "device '{kind}' is not in this build (build with --features {kind}); this build \
             offers {}",
            available().join(", ")
        )));
    }
    let base = match kind {
        DeviceKind::Cpu => Device::flex(),
        #[cfg(feature = "cuda")]
        DeviceKind::Cuda => {
            if !cuda_driver_present() {
                return Err(LadderError::Setting(
                    "device 'cuda': no CUDA driver on this machine (libcuda.so.1 does not load)"
                        .into(),
                ));
            }
            Device::cuda(0)
        }
        #[cfg(feature = "wgpu")]
        DeviceKind::Wgpu => Device::wgpu(Default::default()),
        #[allow(unreachable_patterns)]
        _ => unreachable!("built() holds"),
    };
    Ok(base.autodiff())
}

/// Whether the CUDA driver library loads; without it cubecl panics on first use.
#[cfg(feature = "cuda")]
fn cuda_driver_present() -> bool {
    ["libcuda.so.1", "libcuda.so"].iter().any(|name| {
        let name = std::ffi::CString::new(*name).expect("no interior NUL");
        // SAFETY: dlopen with a valid C string; the handle is closed right away.
        unsafe {
            let handle = libc::dlopen(name.as_ptr(), libc::RTLD_LAZY | libc::RTLD_LOCAL);
            let found = !handle.is_null();
            if found {
                libc::dlclose(handle);
            }
            found
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_outside_the_build_is_named_with_the_ones_on_offer() {
        assert!(training_device(DeviceKind::Cpu).is_ok());
        assert_eq!("flex".parse::<DeviceKind>().unwrap(), DeviceKind::Cpu);
        if !cfg!(feature = "cuda") {
            let err = training_device(DeviceKind::Cuda).unwrap_err().to_string();
            assert!(
                err.contains("'cuda' is not in this build") && err.contains("cpu"),
                "{err}"
            );
        }
    }
}
