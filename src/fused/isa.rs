//! Which instruction set the CPU kernels are compiled for, chosen once per process.
//!
//! Every kernel has one body, compiled three times: for AVX-512 (16 lanes), for AVX2 with FMA
//! (8 lanes) and for the x86-64 baseline (no target features: SSE2, multiply-adds through
//! libm's exact `fmaf`). The bodies fix their order of operations and their accumulators by
//! the data's shape alone, never by the vector width, so the three builds give the same bits;
//! the choice moves only the speed. `LADDER_ISA=avx512|avx2|scalar` forces one (to test that
//! identity on one machine); by default the widest the CPU has runs.

use std::sync::OnceLock;

/// The environment variable that forces a kernel build.
pub const ISA_VAR: &str = "LADDER_ISA";

/// A build of the CPU kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512F, 16 lanes.
    Avx512,
    /// AVX2 with FMA, 8 lanes.
    Avx2,
    /// The x86-64 baseline, or any other architecture: no target features.
    Scalar,
}

impl Isa {
    /// The name `LADDER_ISA` takes and run records show.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2",
            Isa::Scalar => "scalar",
        }
    }

    /// Every build, widest first.
    pub const ALL: [Isa; 3] = [Isa::Avx512, Isa::Avx2, Isa::Scalar];

    fn parse(s: &str) -> Option<Isa> {
        Isa::ALL.into_iter().find(|i| i.name() == s)
    }

    /// The builds this CPU runs, widest first (the baseline always).
    pub fn available() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|i| i.supported()).collect()
    }

    /// Whether this CPU can run the build.
    pub fn supported(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            match self {
                Isa::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
                Isa::Avx2 => {
                    std::arch::is_x86_feature_detected!("avx2")
                        && std::arch::is_x86_feature_detected!("fma")
                }
                Isa::Scalar => true,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == Isa::Scalar
        }
    }

    /// The widest build this CPU runs.
    pub fn widest() -> Isa {
        Isa::available()[0]
    }
}

/// The build `LADDER_ISA` asks for (the widest when it is unset), or why it cannot run here.
pub fn requested() -> Result<Isa, String> {
    let Ok(value) = std::env::var(ISA_VAR) else {
        return Ok(Isa::widest());
    };
    let isa = Isa::parse(value.trim()).ok_or_else(|| {
        format!("{ISA_VAR}={value:?} is not a kernel build (avx512, avx2 or scalar)")
    })?;
    if !isa.supported() {
        return Err(format!(
            "{ISA_VAR}={} asks for a kernel build this CPU cannot run",
            isa.name()
        ));
    }
    Ok(isa)
}

/// The environment variable that trades the fixed summation order of the matrix products for
/// the gemm crate's CPU-chosen kernels and blocking: `fast`, or `fixed` (the default).
pub const NUMERICS_VAR: &str = "LADDER_NUMERICS";

/// How the CPU's matrix products sum (`fused::matmul`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Products {
    /// The order fixed by the shape alone: the same bits on every host and thread count.
    Fixed,
    /// gemm's kernels, chosen by the CPU and its caches: faster where the fixed order costs
    /// (Conv-Small on AVX-512, RESULTS.md), the last bits host-dependent.
    Fast,
}

impl Products {
    pub fn name(self) -> &'static str {
        match self {
            Products::Fixed => "fixed",
            Products::Fast => "fast",
        }
    }
}

/// The products `LADDER_NUMERICS` asks for (fixed when it is unset), or why the value means
/// nothing.
pub fn requested_products() -> Result<Products, String> {
    let Ok(value) = std::env::var(NUMERICS_VAR) else {
        return Ok(Products::Fixed);
    };
    match value.trim() {
        "fixed" => Ok(Products::Fixed),
        "fast" => Ok(Products::Fast),
        _ => Err(format!(
            "{NUMERICS_VAR}={value:?} is not a kind of products (fixed or fast)"
        )),
    }
}

static PRODUCTS: OnceLock<Products> = OnceLock::new();

/// The products of this process, fixed at their first use (a bad value panics here; the
/// command line reports it first through [`check_environment`]).
pub fn products() -> Products {
    *PRODUCTS.get_or_init(|| requested_products().unwrap_or_else(|e| panic!("{e}")))
}

/// Errors for a `LADDER_ISA` or `LADDER_NUMERICS` this process cannot honour, before any work.
pub fn check_environment() -> Result<(), String> {
    requested()?;
    requested_products()?;
    Ok(())
}

static SELECTED: OnceLock<Isa> = OnceLock::new();

/// The build every kernel of this process runs, fixed at its first use. The command line
/// checks [`requested`] first and reports a bad `LADDER_ISA`; a library caller that sets one
/// gets this panic rather than other kernels than it asked for.
pub fn selected() -> Isa {
    *SELECTED.get_or_init(|| requested().unwrap_or_else(|e| panic!("{e}")))
}

/// Defines `$name`, which runs `$body` (an `#[inline(always)]` function) compiled for the
/// [`selected`] build. The builds do the same IEEE operations in the same order (the bodies
/// see no vector width), so the numbers do not depend on which one runs.
macro_rules! widest {
    ($name:ident, $body:ident, ($($arg:ident: $ty:ty),*) $(-> $ret:ty)?) => {
        fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            match $crate::fused::isa::selected() {
                $crate::fused::isa::Isa::Avx512 => {
                    #[target_feature(enable = "avx512f")]
                    unsafe fn wide($($arg: $ty),*) $(-> $ret)? {
                        $body($($arg),*)
                    }
                    // SAFETY: the CPU supports AVX-512F (`selected` runs only supported builds).
                    return unsafe { wide($($arg),*) };
                }
                $crate::fused::isa::Isa::Avx2 => {
                    #[target_feature(enable = "avx2,fma")]
                    unsafe fn wide($($arg: $ty),*) $(-> $ret)? {
                        $body($($arg),*)
                    }
                    // SAFETY: the CPU supports AVX2 and FMA (as above).
                    return unsafe { wide($($arg),*) };
                }
                $crate::fused::isa::Isa::Scalar => {}
            }
            $body($($arg),*)
        }
    };
}
pub(crate) use widest;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_the_baseline_always_runs() {
        for isa in [Isa::Avx512, Isa::Avx2, Isa::Scalar] {
            assert_eq!(Isa::parse(isa.name()), Some(isa));
        }
        assert_eq!(Isa::parse("sse"), None);
        assert!(Isa::Scalar.supported());
        assert!(Isa::widest().supported());
    }
}
