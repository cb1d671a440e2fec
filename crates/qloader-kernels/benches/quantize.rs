//! Criterion benchmarks of quantization: the grouped quantizer's grid
//! search (what the analyzer and the packer spend their time in),
//! de-quantization back to `f32`, and `f16` conversion, on a SmolLM2-sized
//! MLP weight (1536 × 576) of bell-shaped values. Throughput is in weights.
//!
//! `cargo bench -p qloader-kernels --bench quantize` (add `-- --quick` for a
//! short run); the tier is the dispatched one (cap it with `QLOADER_ISA`).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use qloader_format::grouped::GroupedLayout;
use qloader_kernels::{DenseMatrix, GroupedMatrix, HalfMatrix, Kernels};

const ROWS: usize = 1536;
const COLS: usize = 576;

/// Bell-shaped values (sum of four uniforms), like trained weights.
fn weights() -> DenseMatrix {
    let mut state = 12345u32;
    let mut next = || {
        state = state.wrapping_mul(1664525).wrapping_add(1013904223);
        (state >> 8) as f32 / (1u32 << 24) as f32
    };
    let data =
        (0..ROWS * COLS).map(|_| ((0..4).map(|_| next()).sum::<f32>() - 2.0) * 0.05).collect();
    DenseMatrix::new(ROWS, COLS, data).expect("rows·cols values")
}

fn quantize(c: &mut Criterion) {
    let w = weights();
    let isa = Kernels::detect().isa;
    let mut group = c.benchmark_group(format!("quantize_{ROWS}x{COLS}"));
    group.throughput(Throughput::Elements((ROWS * COLS) as u64));
    group.sample_size(10);
    for (bits, size) in [(4u8, 32usize), (3, 128), (2, 32)] {
        let layout = GroupedLayout::new(bits, size).expect("valid layout");
        group.bench_function(BenchmarkId::new(format!("int{bits}g{size}"), isa), |b| {
            b.iter(|| GroupedMatrix::quantize(&w, layout))
        });
    }
    let int4 = GroupedMatrix::quantize(&w, GroupedLayout::new(4, 32).expect("valid layout"));
    group.bench_function(BenchmarkId::new("dequantize_int4g32", isa), |b| {
        b.iter(|| int4.dequantize())
    });
    let f16 = HalfMatrix::quantize(&w);
    group.bench_function(BenchmarkId::new("f16", isa), |b| b.iter(|| HalfMatrix::quantize(&w)));
    group.bench_function(BenchmarkId::new("dequantize_f16", isa), |b| b.iter(|| f16.dequantize()));
    group.finish();
}

criterion_group!(benches, quantize);
criterion_main!(benches);
