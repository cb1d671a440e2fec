//! The kernel registry: which (weight format, activation format, ISA)
//! products this process can run, filled at start-up from run-time CPU
//! detection, and the choice the loader makes for each tensor — the fastest
//! kernel for its format, or, where the device has none (a disabled family,
//! or one a device profile lacks), the cheapest format it converts to
//! exactly or nearly that has one.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use qloader_format::fallback::{resolve, Fidelity};
use qloader_format::{ActivationFormat, FormatFamily, WeightFormat};
use qloader_hw::profile::DeviceProfile;
use qloader_kernels::{Isa, Kernels};

/// One product the process can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KernelKey {
    /// Weight-format family (`int4` covers every int4 group size).
    pub weights: FormatFamily,
    /// Activation format the product takes.
    pub activations: ActivationFormat,
    /// The instruction-set tier it is compiled for.
    pub isa: Isa,
}

impl fmt::Display for KernelKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let act = match self.activations {
            ActivationFormat::F32 => "f32",
            ActivationFormat::Int8 => "a8",
        };
        write!(f, "{}/{}·{act}", self.isa, self.weights)
    }
}

/// How one tensor runs.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelChoice {
    /// The format the file stores.
    pub stored: WeightFormat,
    /// The format it runs in (`stored`, or what it is converted to at load).
    pub runs_as: WeightFormat,
    /// Whether converting is exact, when it is converted.
    pub conversion: Option<Fidelity>,
    /// The product that multiplies by it.
    pub kernel: KernelKey,
}

/// Why a tensor cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no kernel for {format} weights on this device, and no format it converts to has one")]
pub struct NoKernel {
    /// The stored format.
    pub format: WeightFormat,
}

/// The products available here.
#[derive(Debug, Clone)]
pub struct KernelRegistry {
    entries: BTreeSet<KernelKey>,
    /// Conversions a device profile prescribes (family → family).
    fallbacks: BTreeMap<FormatFamily, FormatFamily>,
}

impl KernelRegistry {
    /// Every product of every tier this CPU runs, up to the tier the
    /// process multiplies with ([`Kernels::detect`], capped by
    /// `QLOADER_ISA`).
    pub fn detect() -> Self {
        let top = Kernels::detect().isa;
        let mut entries = BTreeSet::new();
        for isa in Isa::ALL.into_iter().filter(|&i| i <= top && i.is_available()) {
            for weights in FormatFamily::ALL {
                entries.insert(KernelKey { weights, activations: ActivationFormat::F32, isa });
                if weights.takes_int8_activations() {
                    entries.insert(KernelKey { weights, activations: ActivationFormat::Int8, isa });
                }
            }
        }
        Self { entries, fallbacks: BTreeMap::new() }
    }

    /// Removes every product for weights of `family`, as if the device had
    /// none.
    pub fn disable(&mut self, family: FormatFamily) {
        self.entries.retain(|k| k.weights != family);
    }

    /// Keeps only the families `profile` has kernels for, and adopts its
    /// fallbacks.
    pub fn restrict_to(&mut self, profile: &DeviceProfile) {
        self.entries.retain(|k| profile.kernel(k.weights, k.activations).is_some());
        self.fallbacks = profile.fallbacks.clone();
    }

    /// The fastest product for `format` with `act` (the highest tier; float
    /// weights take `f32` activations whatever `act` is).
    pub fn best(&self, format: WeightFormat, act: ActivationFormat) -> Option<KernelKey> {
        self.best_for(format.family(), act)
    }

    /// [`KernelRegistry::best`] for weights of `family`.
    fn best_for(&self, family: FormatFamily, act: ActivationFormat) -> Option<KernelKey> {
        let act = family.product_activations(act);
        self.entries.iter().rev().find(|k| k.weights == family && k.activations == act).copied()
    }

    /// How a tensor stored as `format` runs: natively if a product exists,
    /// else converted at load as [`qloader_format::fallback::resolve`]
    /// decides (the profile's declared fallbacks first, else the smallest
    /// format it converts to that has a product) — the rule the planner
    /// predicts with.
    pub fn choose(
        &self,
        format: WeightFormat,
        act: ActivationFormat,
    ) -> Result<KernelChoice, NoKernel> {
        let has_kernel = |family| self.best_for(family, act).is_some();
        let resolved = resolve(format, has_kernel, |family| self.fallbacks.get(&family).copied())
            .ok_or(NoKernel { format })?;
        let kernel = self.best(resolved.runs_as, act).ok_or(NoKernel { format })?;
        Ok(KernelChoice {
            stored: format,
            runs_as: resolved.runs_as,
            conversion: resolved.conversion,
            kernel,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str) -> WeightFormat {
        name.parse().unwrap()
    }

    fn family(name: &str) -> FormatFamily {
        name.parse().unwrap()
    }

    #[test]
    fn every_format_runs_natively_when_nothing_is_disabled() {
        let r = KernelRegistry::detect();
        for name in [
            "f32", "f16", "int8", "int8g64", "int4", "int3g128", "int2", "int4k", "int5k", "int2k",
            "nl4k",
        ] {
            let c = r.choose(f(name), ActivationFormat::Int8).unwrap();
            assert_eq!((c.runs_as, c.conversion), (f(name), None), "{name}");
            assert_eq!(c.kernel.isa, Kernels::detect().isa, "{name}: the tier the products use");
        }
        let c = r.choose(f("f16"), ActivationFormat::Int8).unwrap();
        assert_eq!(c.kernel.activations, ActivationFormat::F32, "float weights take f32");
    }

    #[test]
    fn a_disabled_family_widens_exactly_to_the_cheapest_kernel() {
        let mut r = KernelRegistry::detect();
        r.disable(family("int2"));
        r.disable(family("int3"));
        let c = r.choose(f("int2g64"), ActivationFormat::F32).unwrap();
        assert_eq!((c.runs_as, c.conversion), (f("int4g64"), Some(Fidelity::Exact)));
        r.disable(family("int4"));
        let c = r.choose(f("int3"), ActivationFormat::F32).unwrap();
        assert_eq!((c.runs_as, c.conversion), (f("int8g32"), Some(Fidelity::Exact)));
        r.disable(family("int8"));
        let c = r.choose(f("int8"), ActivationFormat::F32).unwrap();
        assert_eq!((c.runs_as, c.conversion), (f("f16"), Some(Fidelity::Rounded)));
        r.disable(family("f16"));
        let c = r.choose(f("int2"), ActivationFormat::F32).unwrap();
        assert_eq!((c.runs_as, c.conversion), (f("f32"), Some(Fidelity::Exact)));
        r.disable(family("f32"));
        assert!(r.choose(f("int2"), ActivationFormat::F32).is_err());
    }

    #[test]
    fn compact_codes_widen_within_compact_layouts() {
        let mut r = KernelRegistry::detect();
        r.disable(family("int2"));
        let c = r.choose(f("int2k"), ActivationFormat::Int8).unwrap();
        assert_eq!((c.runs_as, c.conversion), (f("int3k"), Some(Fidelity::Exact)));
        r.disable(family("int3"));
        r.disable(family("int4"));
        let c = r.choose(f("int2k"), ActivationFormat::Int8).unwrap();
        assert_eq!(c.runs_as, f("int5k"), "int8 kernels run int5k");
        assert_eq!(c.conversion, Some(Fidelity::Exact));
        r.disable(family("int8"));
        let c = r.choose(f("int2k"), ActivationFormat::Int8).unwrap();
        assert_eq!((c.runs_as, c.conversion), (f("f16"), Some(Fidelity::Rounded)));
    }

    #[test]
    fn a_profile_restricts_kernels_and_names_the_fallback() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../profiles/int8-only.toml"
        ))
        .unwrap();
        let profile = DeviceProfile::from_toml(&text).unwrap();
        let mut r = KernelRegistry::detect();
        r.restrict_to(&profile);
        let c = r.choose(f("int2g128"), ActivationFormat::F32).unwrap();
        assert_eq!(c.runs_as, f("int8g128"));
        assert!(r.choose(f("f16"), ActivationFormat::F32).is_err(), "int8-only cannot run f16");
    }
}
