//! The device profiles shipped in `profiles/` are valid, and each says what
//! its comment promises about kernels, fallbacks and memory.

use std::path::PathBuf;

use qloader_format::{ActivationFormat, WeightFormat};
use qloader_hw::DeviceProfile;

fn shipped(name: &str) -> DeviceProfile {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../profiles").join(name);
    DeviceProfile::read(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn format(name: &str) -> WeightFormat {
    name.parse().unwrap()
}

#[test]
fn every_shipped_profile_is_valid() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../profiles");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            DeviceProfile::read(&path).unwrap_or_else(|e| panic!("{e}"));
            count += 1;
        }
    }
    assert!(count >= 4, "expected the four shipped profiles, found {count}");
}

#[test]
fn edge_profile_runs_int3_and_int2_as_int4() {
    let p = shipped("edge-arm-512mib.toml");
    assert_eq!(p.model_bytes(), Some(512 << 20));
    for (planned, runs_as) in [("int2", "int4"), ("int3g64", "int4g64"), ("int4", "int4")] {
        let e = p.execution(format(planned), ActivationFormat::F32).unwrap();
        assert_eq!(e.runs_as, format(runs_as), "{planned}");
        assert_eq!(e.fallback, planned != runs_as, "{planned}");
    }
}

#[test]
fn int8_only_profile_cannot_run_floats() {
    let p = shipped("int8-only.toml");
    assert!(p.execution(WeightFormat::F16, ActivationFormat::F32).is_none());
    assert!(p.execution(WeightFormat::F32, ActivationFormat::F32).is_none());
    let e = p.execution(format("int4"), ActivationFormat::F32).unwrap();
    assert_eq!((e.runs_as, e.fallback), (format("int8g32"), true));
}

#[test]
fn llama_cpp_profile_allows_only_gguf_layouts() {
    let p = shipped("llama-cpp.toml");
    assert_eq!(p.layouts, qloader_hw::profile::Layouts::Gguf);
    for (name, cols, allowed) in [
        ("int4", 576, true),
        ("f16", 576, true),
        ("int4k", 576, false),
        ("int4k", 1536, true),
        ("nl4k", 1536, true),
        ("int3", 576, false),
        ("int8", 576, false),
        ("int4g128", 1536, false),
        ("q4_0", 576, true),
        ("q8_0", 576, true),
        ("q5_0", 576, true),
        ("int5k", 1536, true),
        ("int5k", 576, false),
        ("iq4_nl", 576, true),
        ("q4_0", 100, false),
    ] {
        assert_eq!(p.layouts.allows(format(name), cols), allowed, "{name} at {cols}");
    }
    // Each of them runs natively there (int8 activations where integer).
    for name in ["q4_0", "q5_0", "q8_0", "iq4_nl", "int4", "int4k", "int5k", "nl4k"] {
        let f = format(name);
        assert!(p.kernel(f.family(), ActivationFormat::Int8).is_some(), "{name}");
    }
    // Round trip through TOML keeps the rule.
    assert_eq!(DeviceProfile::from_toml(&p.to_toml()).unwrap(), p);
}
