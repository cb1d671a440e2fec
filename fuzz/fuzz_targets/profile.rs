//! A device profile parsed and validated, and every format's execution
//! (kernel or fallback chain) resolved.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qloader_format::{ActivationFormat, WeightFormat};
use qloader_hw::profile::DeviceProfile;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(profile) = DeviceProfile::from_toml(text) else { return };
    for format in WeightFormat::all() {
        for act in [ActivationFormat::F32, ActivationFormat::Int8] {
            if let Some(e) = profile.execution(format, act) {
                // Whatever the profile says, a conversion never re-quantizes.
                assert!(qloader_format::fallback::conversion(format, e.runs_as).is_some());
                let _ = e.kernel.seconds(64, 64, 3);
            }
        }
    }
    let _ = profile.to_toml();
});
