//! Bit identity with llama.cpp's `Q4_1`: a grouped `int4` matrix with
//! 32-value groups holds each `Q4_1` block's fields as they are — the f16
//! scale `d` as the group's scale, the f16 minimum `m` as its offset, the 16
//! code bytes as the group's packed codes (value r in byte r mod 16, low
//! nibble for r < 16). Blocks written by llama.cpp's own quantizer
//! (`scripts/make-llama-blocks.sh`, checked in beside the `Q4_K`/`IQ4_XS`
//! ones) de-quantize to llama.cpp's floats bit for bit, in the matrix, in
//! its tiles' product and in the GGUF reader: exporting such a tensor to
//! GGUF is moving fields, and reading one is not a conversion.

use half::f16;
use qloader_format::gguf::{dequantize, GgmlType};
use qloader_format::grouped::{pack_block, unpack_block, GroupedLayout, BLOCK};
use qloader_kernels::GroupedMatrix;

const ROWS: usize = 2;
const COLS: usize = 512;
/// `Q4_1` block: f16 `d`, f16 `m`, 16 code bytes.
const BLOCK_BYTES: usize = 20;

fn data(name: &str) -> Vec<u8> {
    let path = format!("{}/../qloader-format/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn floats(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

/// The llama.cpp blocks moved field by field into a grouped `int4` g32
/// matrix.
fn matrix_of_blocks(bytes: &[u8]) -> GroupedMatrix {
    let (mut codes, mut scales, mut offsets) = (Vec::new(), Vec::new(), Vec::new());
    for block in bytes.chunks_exact(BLOCK_BYTES) {
        scales.push(f16::from_le_bytes([block[0], block[1]]));
        offsets.push(f16::from_le_bytes([block[2], block[3]]));
        codes.extend_from_slice(&block[4..]);
    }
    let layout = GroupedLayout::new(4, 32).unwrap();
    GroupedMatrix::from_parts(ROWS, COLS, layout, codes, scales, offsets)
        .expect("Q4_1 blocks have the grouped int4 g32 shape")
}

#[test]
fn int4_g32_holds_llama_cpp_q4_1_blocks() {
    let (bytes, want) = (data("llama-q4_1.bin"), floats(&data("llama-q4_1.f32")));
    assert_eq!(bytes.len(), ROWS * COLS / BLOCK * BLOCK_BYTES);
    let matrix = matrix_of_blocks(&bytes);
    let ours = matrix.dequantize();
    for (i, (a, b)) in ours.data().iter().zip(&want).enumerate() {
        assert_eq!(a.to_bits(), b.to_bits(), "value {i}: {a} vs llama.cpp {b}");
    }
    let mut read = vec![0.0f32; ROWS * COLS];
    dequantize(GgmlType::Q4_1, &bytes, &mut read).unwrap();
    assert_eq!(read, want, "the GGUF reader agrees");
    // The code bytes are the grouped layout's own packing: unpacked and
    // packed again, they are unchanged.
    for block in bytes.chunks_exact(BLOCK_BYTES) {
        let codes: [u8; BLOCK] = unpack_block(4, &block[4..]);
        let mut repacked = [0u8; BLOCK / 2];
        pack_block(4, &codes, &mut repacked);
        assert_eq!(&repacked[..], &block[4..]);
    }
}

#[test]
fn the_product_of_q4_1_blocks_matches_llama_cpp_floats() {
    let (bytes, want) = (data("llama-q4_1.bin"), floats(&data("llama-q4_1.f32")));
    let matrix = matrix_of_blocks(&bytes);
    let x: Vec<f32> = (0..COLS).map(|i| ((i * 7919) % 263) as f32 / 131.0 - 1.0).collect();
    let mut y = vec![0.0f32; ROWS];
    qloader_kernels::matmul::matmul_grouped(&x, 1, &matrix, &mut y);
    for (r, got) in y.iter().enumerate() {
        let exact: f64 =
            want[r * COLS..(r + 1) * COLS].iter().zip(&x).map(|(&w, &v)| w as f64 * v as f64).sum();
        let scale: f64 = want[r * COLS..(r + 1) * COLS]
            .iter()
            .zip(&x)
            .map(|(&w, &v)| (w as f64 * v as f64).abs())
            .sum();
        assert!(
            (*got as f64 - exact).abs() <= 1e-5 * scale.max(1e-6),
            "row {r}: {got} vs {exact} from llama.cpp's floats"
        );
    }
}
