//! The device a command computes on, chosen by name in one place.

use burn::prelude::*;

use crate::error::{LadderError, Result};

/// The names of the devices this build offers.
pub fn available() -> Vec<&'static str> {
    let mut names = vec!["cpu"];
    if cfg!(feature = "cuda") {
        names.push("cuda");
    }
    if cfg!(feature = "wgpu") {
        names.push("wgpu");
    }
    names
}

/// The training device `name` (`cpu`, or `cuda` / `wgpu` in builds with those features), with
/// autodiff. A device this build or machine cannot give is an error, never a fallback.
pub fn training_device(name: &str) -> Result<Device> {
    let base = match name {
        "cpu" | "flex" => Device::flex(),
        #[cfg(feature = "cuda")]
        "cuda" => {
            if !cuda_driver_present() {
                return Err(LadderError::Setting(
                    "device 'cuda': no CUDA driver on this machine (libcuda.so.1 does not load)"
                        .into(),
                ));
            }
            Device::cuda(0)
        }
        #[cfg(feature = "wgpu")]
        "wgpu" => Device::wgpu(Default::default()),
        other => {
            return Err(LadderError::Setting(format!(
                "unknown or unavailable device '{other}': this build offers {}",
                available().join(", ")
            )));
        }
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
    fn an_unknown_device_is_named_with_the_ones_on_offer() {
        assert!(training_device("cpu").is_ok());
        let err = training_device("tpu").unwrap_err().to_string();
        assert!(err.contains("'tpu'") && err.contains("offers cpu"), "{err}");
    }
}
