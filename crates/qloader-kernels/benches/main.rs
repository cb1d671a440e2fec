//! Criterion benchmarks of the kernels: for each weight format, the product
//! `Y = X·Wᵀ` on a decode shape (batch 1, bandwidth-bound) and a prefill
//! shape (batch 8), for the generic tier, every tier this host has, and the
//! dispatched choice. Throughput is the weight bytes read per product (each
//! weight is read once whatever the batch).
//!
//! `cargo bench -p qloader-kernels` (add `-- --quick` for a short run). The
//! side-by-side table with bandwidth shares is `qloader bench kernels`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use qloader_format::grouped::GroupedLayout;
use qloader_kernels::activations::QuantizedActivations;
use qloader_kernels::matmul::*;
use qloader_kernels::{DenseMatrix, GroupedMatrix, HalfMatrix, Int8Matrix, Isa, Kernels};

/// Shapes `(out, in)`: a SmolLM2-sized MLP projection and a Llama-7B-sized
/// one (larger than any cache).
const SHAPES: [(usize, usize); 2] = [(1536, 576), (4096, 11008)];
const BATCHES: [usize; 2] = [1, 8];

fn weights(rows: usize, cols: usize) -> DenseMatrix {
    let data =
        (0..rows * cols).map(|i| ((i * 2_654_435_761) % 2001) as f32 / 1000.0 - 1.0).collect();
    DenseMatrix::new(rows, cols, data).expect("rows·cols values")
}

fn kernels(c: &mut Criterion) {
    let tiers: Vec<&'static Kernels> = Isa::ALL.into_iter().filter_map(Kernels::for_isa).collect();
    for (rows, cols) in SHAPES {
        let w = weights(rows, cols);
        let int8 = Int8Matrix::quantize(&w);
        let f16 = HalfMatrix::quantize(&w);
        let grouped: Vec<GroupedMatrix> = [4u8, 3, 2]
            .map(|b| GroupedMatrix::quantize(&w, GroupedLayout::new(b, 32).expect("valid layout")))
            .into();
        for m in BATCHES {
            let x: Vec<f32> = (0..m * cols).map(|i| (i % 17) as f32 / 17.0 - 0.5).collect();
            let xq = QuantizedActivations::quantize(&x, m, cols, 32);
            let mut y = vec![0.0f32; m * rows];
            let mut group = c.benchmark_group(format!("matmul_{rows}x{cols}_m{m}"));
            group.sample_size(10);
            for k in &tiers {
                let isa = k.isa.name();
                group.throughput(Throughput::Bytes((rows * cols * 4) as u64));
                group.bench_function(BenchmarkId::new("f32", isa), |b| {
                    b.iter(|| matmul_f32_with(k, &x, m, &w, &mut y))
                });
                group.throughput(Throughput::Bytes((rows * cols * 2) as u64));
                group.bench_function(BenchmarkId::new("f16", isa), |b| {
                    b.iter(|| matmul_f16_with(k, &x, m, &f16, &mut y))
                });
                group.throughput(Throughput::Bytes(int8.storage_bytes() as u64));
                group.bench_function(BenchmarkId::new("int8", isa), |b| {
                    b.iter(|| matmul_int8_with(k, &x, m, &int8, &mut y))
                });
                group.bench_function(BenchmarkId::new("int8_a8", isa), |b| {
                    b.iter(|| matmul_int8_a8_with(k, &xq, &int8, &mut y))
                });
                for g in &grouped {
                    let name = format!("int{}", g.layout().bits());
                    group.throughput(Throughput::Bytes(g.storage_bytes() as u64));
                    group.bench_function(BenchmarkId::new(&name, isa), |b| {
                        b.iter(|| matmul_grouped_with(k, &x, m, g, &mut y))
                    });
                    group.bench_function(BenchmarkId::new(format!("{name}_a8"), isa), |b| {
                        b.iter(|| matmul_grouped_a8_with(k, &xq, g, &mut y))
                    });
                }
            }
            group.throughput(Throughput::Bytes(grouped[0].storage_bytes() as u64));
            group.bench_function(BenchmarkId::new("int4_a8", "dispatched"), |b| {
                b.iter(|| matmul_grouped_a8(&x, m, &grouped[0], &mut y))
            });
            group.finish();
        }
    }
}

criterion_group!(benches, kernels);
criterion_main!(benches);
