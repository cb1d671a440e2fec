//! The GGUF reader on the real SmolLM2-135M-Instruct file fetched by
//! `scripts/fetch-fixtures.sh`: header, metadata, tensor inventory, and one
//! de-quantized weight matrix.

use std::collections::HashMap;
use std::path::PathBuf;

use qloader_format::fixtures::smollm2_gguf;
use qloader_format::{GgmlType, GgufFile};

fn model_path() -> PathBuf {
    let path = smollm2_gguf();
    assert!(
        path.is_file(),
        "{} is missing: run scripts/fetch-fixtures.sh first (set QLOADER_CACHE to use another cache)",
        path.display()
    );
    path
}

#[test]
fn smollm2_header_and_metadata() {
    let g = GgufFile::open(&model_path()).unwrap();
    assert_eq!(g.version(), 3);
    assert_eq!(g.alignment(), 32);
    assert_eq!(g.get_str("general.architecture").unwrap(), "llama");
    assert_eq!(g.get_u64("llama.block_count").unwrap(), 30);
    assert_eq!(g.get_usize("llama.embedding_length").unwrap(), 576);
    assert_eq!(g.get_u64("llama.attention.head_count").unwrap(), 9);
    assert_eq!(g.get_u64("llama.attention.head_count_kv").unwrap(), 3);
    let eps = g.get_f32("llama.attention.layer_norm_rms_epsilon").unwrap();
    assert!(eps > 0.0 && eps < 1e-3, "rms epsilon {eps}");

    let tokens = g.get_str_array("tokenizer.ggml.tokens").unwrap();
    assert_eq!(tokens.len(), 49152);
    assert!(g.get("tokenizer.ggml.merges").is_some());
    assert!(!g.get_str_array("tokenizer.ggml.merges").unwrap().is_empty());
    if g.get("tokenizer.ggml.token_type").is_some() {
        assert_eq!(g.get_i32_array("tokenizer.ggml.token_type").unwrap().len(), 49152);
    }
}

#[test]
fn smollm2_tensor_inventory() {
    let g = GgufFile::open(&model_path()).unwrap();
    assert_eq!(g.tensors().len(), 272);
    let mut by_type: HashMap<GgmlType, usize> = HashMap::new();
    for t in g.tensors() {
        *by_type.entry(t.ggml_type).or_default() += 1;
        assert_eq!(g.tensor_bytes(t).len(), t.byte_len, "{}", t.name);
    }
    assert_eq!(by_type.get(&GgmlType::Q4_1), Some(&210), "{by_type:?}");
    assert_eq!(by_type.get(&GgmlType::F32), Some(&61), "{by_type:?}");
    assert_eq!(by_type.get(&GgmlType::Q8_0), Some(&1), "{by_type:?}");

    let embd = g.tensor("token_embd.weight").unwrap();
    assert_eq!(embd.ggml_type, GgmlType::Q8_0);
    assert_eq!(embd.shape(), vec![49152, 576]);
    assert_eq!(embd.dims, vec![576, 49152]);
    assert_eq!(embd.elements(), 49152 * 576);
}

#[test]
fn smollm2_attn_q_dequantizes_to_plausible_values() {
    let g = GgufFile::open(&model_path()).unwrap();
    assert_eq!(g.tensor("blk.0.attn_q.weight").unwrap().ggml_type, GgmlType::Q4_1);
    let t = g.tensor_f32("blk.0.attn_q.weight").unwrap();
    assert_eq!(t.shape, vec![576, 576]);
    assert_eq!(t.data.len(), 576 * 576);
    assert!(t.data.iter().all(|v| v.is_finite()));
    let n = t.data.len() as f64;
    let mean = t.data.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = t.data.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
    let std = var.sqrt();
    assert!((0.005..1.0).contains(&std), "std {std}");
    assert!(mean.abs() < std, "mean {mean} std {std}");

    let norm = g.tensor_f32("blk.0.attn_norm.weight").unwrap();
    assert_eq!(norm.shape, vec![576]);
    assert!(norm.data.iter().all(|v| v.is_finite()));
}

#[test]
fn smollm2_every_tensor_dequantizes() {
    let g = GgufFile::open(&model_path()).unwrap();
    for t in g.tensors() {
        let d = g.tensor_f32(&t.name).unwrap();
        assert_eq!(d.data.len(), t.elements());
        assert!(d.data.iter().all(|v| v.is_finite()), "{} has non-finite values", t.name);
    }
}
