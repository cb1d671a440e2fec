//! Bit identity with llama.cpp: blocks written by llama.cpp's own quantizer
//! (`scripts/make-llama-blocks.sh` runs `ggml_quantize_chunk`, the files are
//! checked in) read by QLoader's layouts that claim the same bytes give the
//! floats llama.cpp de-quantizes them to, bit for bit, and re-pack to the
//! same bytes — so a plan's `int5k`, `int4k` and `nl4k` tensors are
//! `Q5_K`, `Q4_K` and `IQ4_XS` tensors as they are, and its `q4_0`, `q8_0` and `iq4_nl` ones
//! llama.cpp's blocks of those names. The GGUF reader's de-quantization of
//! those types is checked against the same files, and so is its
//! de-quantization of the lattice and ternary types no layout claims
//! (IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M, TQ1_0, TQ2_0).

use qloader_format::block32::{Block, BlockLayout};
use qloader_format::compact::{for_each_super_block, CompactLayout, SuperBlock};
use qloader_format::gguf::{dequantize, GgmlType};

const ROWS: usize = 2;
const COLS: usize = 512;

fn data(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn floats(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

/// Rows of `layout` written by llama.cpp (`name`.bin, with its floats in
/// `name`.f32) de-quantize to llama.cpp's floats bit for bit (and through
/// the GGUF reader as `gguf`, where it reads the type), and re-pack to the
/// same bytes.
fn rows_are_llama_cpp_blocks(layout: CompactLayout, name: &str, gguf: Option<GgmlType>) {
    let (bytes, want) = (data(&format!("{name}.bin")), floats(&data(&format!("{name}.f32"))));
    let row_bytes = layout.row_bytes(COLS);
    assert_eq!(bytes.len(), ROWS * row_bytes, "{name}: two super-blocks per row");
    for r in 0..ROWS {
        let row = &bytes[r * row_bytes..(r + 1) * row_bytes];
        let mut ours = vec![0.0f32; COLS];
        qloader_format::compact::dequantize_row(layout, row, COLS, &mut ours);
        let theirs = &want[r * COLS..(r + 1) * COLS];
        for (c, (a, b)) in ours.iter().zip(theirs).enumerate() {
            assert_eq!(a.to_bits(), b.to_bits(), "{name} row {r} column {c}: {a} vs llama.cpp {b}");
        }
        if let Some(ty) = gguf {
            let mut read = vec![0.0f32; COLS];
            dequantize(ty, row, &mut read).unwrap();
            assert_eq!(read, ours, "{name}: the GGUF reader agrees");
        }
        let mut repacked = vec![0u8; row_bytes];
        let mut at = 0;
        for_each_super_block(layout, row, COLS, |_, _, subs, block| {
            let len = layout.super_block_bytes(subs);
            SuperBlock::unpack(layout, block, subs).pack(layout, &mut repacked[at..at + len]);
            at += len;
        });
        assert_eq!(repacked, row, "{name}: re-packed");
    }
}

#[test]
fn int4k_rows_are_llama_cpp_q4_k_blocks() {
    rows_are_llama_cpp_blocks(CompactLayout::new(4).unwrap(), "llama-q4_k", Some(GgmlType::Q4K));
}

#[test]
fn int5k_rows_are_llama_cpp_q5_k_blocks() {
    rows_are_llama_cpp_blocks(CompactLayout::int5(), "llama-q5_k", Some(GgmlType::Q5K));
}

#[test]
fn nl4k_rows_are_llama_cpp_iq4_xs_blocks() {
    rows_are_llama_cpp_blocks(CompactLayout::nl4(), "llama-iq4_xs", Some(GgmlType::Iq4Xs));
}

/// Rows of block `layout` written by llama.cpp (`name`.bin, its floats in
/// `name`.f32) de-quantize to llama.cpp's floats bit for bit, through our
/// layout and through the GGUF reader as `gguf`, and re-pack to the same
/// bytes.
fn rows_are_llama_cpp_32_blocks(layout: BlockLayout, name: &str, gguf: GgmlType) {
    let (bytes, want) = (data(&format!("{name}.bin")), floats(&data(&format!("{name}.f32"))));
    let row_bytes = layout.row_bytes(COLS);
    assert_eq!(bytes.len(), ROWS * row_bytes, "{name}: sixteen blocks per row");
    for r in 0..ROWS {
        let row = &bytes[r * row_bytes..(r + 1) * row_bytes];
        let mut ours = vec![0.0f32; COLS];
        qloader_format::block32::dequantize_row(layout, row, COLS, &mut ours);
        let theirs = &want[r * COLS..(r + 1) * COLS];
        for (c, (a, b)) in ours.iter().zip(theirs).enumerate() {
            assert_eq!(a.to_bits(), b.to_bits(), "{name} row {r} column {c}: {a} vs llama.cpp {b}");
        }
        let mut read = vec![0.0f32; COLS];
        dequantize(gguf, row, &mut read).unwrap();
        assert_eq!(read, ours, "{name}: the GGUF reader agrees");
        let mut repacked = vec![0u8; row_bytes];
        for (block, out) in row
            .chunks_exact(layout.block_bytes())
            .zip(repacked.chunks_exact_mut(layout.block_bytes()))
        {
            Block::unpack(layout, block).pack(layout, out);
        }
        assert_eq!(repacked, row, "{name}: re-packed");
    }
}

#[test]
fn q4_0_rows_are_llama_cpp_q4_0_blocks() {
    rows_are_llama_cpp_32_blocks(BlockLayout::Q4_0, "llama-q4_0", GgmlType::Q4_0);
}

#[test]
fn q5_0_rows_are_llama_cpp_q5_0_blocks() {
    rows_are_llama_cpp_32_blocks(BlockLayout::Q5_0, "llama-q5_0", GgmlType::Q5_0);
}

#[test]
fn q8_0_rows_are_llama_cpp_q8_0_blocks() {
    rows_are_llama_cpp_32_blocks(BlockLayout::Q8_0, "llama-q8_0", GgmlType::Q8_0);
}

#[test]
fn iq4_nl_rows_are_llama_cpp_iq4_nl_blocks() {
    rows_are_llama_cpp_32_blocks(BlockLayout::Iq4Nl, "llama-iq4_nl", GgmlType::Iq4Nl);
}

/// Rows of GGUF type `ty` written by llama.cpp (`name`.bin, its floats in
/// `name`.f32) de-quantize through the GGUF reader to llama.cpp's floats bit
/// for bit.
fn gguf_reads_llama_cpp_blocks(ty: GgmlType, name: &str) {
    let (bytes, want) = (data(&format!("{name}.bin")), floats(&data(&format!("{name}.f32"))));
    assert_eq!(bytes.len(), ROWS * ty.row_bytes(COLS as u64).unwrap() as usize, "{name}");
    assert_eq!(want.len(), ROWS * COLS, "{name}");
    let mut read = vec![f32::NAN; ROWS * COLS];
    dequantize(ty, &bytes, &mut read).unwrap();
    for (i, (a, b)) in read.iter().zip(&want).enumerate() {
        let (r, c) = (i / COLS, i % COLS);
        assert_eq!(a.to_bits(), b.to_bits(), "{name} row {r} column {c}: {a} vs llama.cpp {b}");
    }
    // Not a trivial pass: the blocks hold values of both signs.
    assert!(want.iter().any(|&v| v > 0.0) && want.iter().any(|&v| v < 0.0), "{name}");
}

#[test]
fn the_gguf_reader_reads_llama_cpp_iq2_xxs_blocks() {
    gguf_reads_llama_cpp_blocks(GgmlType::Iq2Xxs, "llama-iq2_xxs");
}

#[test]
fn the_gguf_reader_reads_llama_cpp_iq2_xs_blocks() {
    gguf_reads_llama_cpp_blocks(GgmlType::Iq2Xs, "llama-iq2_xs");
}

#[test]
fn the_gguf_reader_reads_llama_cpp_iq2_s_blocks() {
    gguf_reads_llama_cpp_blocks(GgmlType::Iq2S, "llama-iq2_s");
}

#[test]
fn the_gguf_reader_reads_llama_cpp_iq3_xxs_blocks() {
    gguf_reads_llama_cpp_blocks(GgmlType::Iq3Xxs, "llama-iq3_xxs");
}

#[test]
fn the_gguf_reader_reads_llama_cpp_iq3_s_blocks() {
    gguf_reads_llama_cpp_blocks(GgmlType::Iq3S, "llama-iq3_s");
}

#[test]
fn the_gguf_reader_reads_llama_cpp_iq1_s_blocks() {
    gguf_reads_llama_cpp_blocks(GgmlType::Iq1S, "llama-iq1_s");
}

#[test]
fn the_gguf_reader_reads_llama_cpp_iq1_m_blocks() {
    gguf_reads_llama_cpp_blocks(GgmlType::Iq1M, "llama-iq1_m");
}

#[test]
fn the_gguf_reader_reads_llama_cpp_tq1_0_blocks() {
    gguf_reads_llama_cpp_blocks(GgmlType::TQ1_0, "llama-tq1_0");
}

#[test]
fn the_gguf_reader_reads_llama_cpp_tq2_0_blocks() {
    gguf_reads_llama_cpp_blocks(GgmlType::TQ2_0, "llama-tq2_0");
}
