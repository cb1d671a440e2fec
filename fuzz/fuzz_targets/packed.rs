//! A packed model: the container opened (header and layout validated),
//! every checksum verified, every variant of every tensor rebuilt as a
//! weight (in place, or from its chain for a nested one) and multiplied, the whole model loaded as `qloader run`
//! loads it (each of a multi-plan file's first plans by name, and by a
//! small memory limit), and exported to GGUF (which must then open).
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use qloader_format::gguf::GgufFile;
use qloader_format::PackedFile;
use qloader_fuzz::file;
use qloader_kernels::StableBytes;
use qloader_quant::LinearWeight;
use qloader_runtime::packed::export::{export_gguf, ExportOptions};
use qloader_runtime::packed::{open_packed, rebuild_nested, LoadOptions, PlanChoice};

fuzz_target!(|data: &[u8]| {
    let path = file("model.qlm", data);
    let Ok(packed) = PackedFile::open(&path) else { return };
    let _ = packed.verify_all();
    let owner: Arc<dyn StableBytes> = packed.shared_map();
    for t in packed.all_variants() {
        let weight = rebuild_nested(&t)
            .unwrap_or_else(|| LinearWeight::from_mapped_parts(t.rows(), t.cols(), t.parts(), &owner));
        if let Ok(w) = weight {
            if t.cols() <= 4096 && t.rows() <= 4096 {
                let x = vec![0.5f32; t.cols()];
                let mut y = vec![0.0f32; t.rows()];
                w.matmul(&x, 1, &mut y);
                w.matmul_a8(&x, 1, &mut y);
            }
        }
    }
    let names: Vec<String> = packed.plans().take(4).map(|p| p.name().to_owned()).collect();
    drop(packed);
    let _ = open_packed(&path, &LoadOptions::default(), &mut |_| {});
    if names.len() > 1 {
        let mut choices: Vec<PlanChoice> = names.into_iter().map(PlanChoice::Named).collect();
        choices.push(PlanChoice::Memory(1 << 20));
        for plan in choices {
            let options = LoadOptions { plan, ..LoadOptions::default() };
            let _ = open_packed(&path, &options, &mut |_| {});
        }
    }
    let out = path.with_extension("gguf");
    let options = ExportOptions { convert: true, ..ExportOptions::default() };
    if export_gguf(&path, &out, &options).is_ok() {
        GgufFile::open(&out).expect("an exported file opens");
    }
    let _ = std::fs::remove_file(&out);
});
