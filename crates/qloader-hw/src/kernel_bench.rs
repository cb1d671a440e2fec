//! Every weight format's `Y = X·Wᵀ` timed side by side on the same weights:
//! time (median), weights per second, weight bytes read per second and that
//! as a share of the measured read bandwidth, the speed-up over f32 and
//! int8 in the same run, and — for batches where quantized rows are expanded
//! once and reused — the unpacking overhead against the same loop on weights
//! expanded to f32 in advance.
//!
//! Weights are timed cold: each format is cloned until the copies together
//! exceed a working-set size (a multiple of the last-level cache), and
//! successive products rotate through the copies, so a matrix that would fit
//! in cache on its own is still read from memory, as in a real model whose
//! layers together are far larger than the cache. Cold cases also time, in
//! turn with the product, a plain streaming read of the same number of bytes
//! from memory ([`ColdReads`]): their ratio is the share of the read
//! bandwidth the kernel reaches, measured side by side, so that a machine
//! whose bandwidth drifts during the run (a shared VM) does not skew it.

use qloader_format::grouped::GroupedLayout;
use qloader_format::{ActivationFormat, WeightFormat};
use qloader_kernels::{DenseMatrix, GroupedMatrix};
use qloader_quant::LinearWeight;
use serde::Serialize;

use crate::bandwidth::ColdReads;
use crate::timing::{interleaved_median_seconds, TimingBudget};

/// What to measure.
#[derive(Debug, Clone)]
pub struct KernelBenchConfig {
    /// Weight shapes as `(out, in)` = `(rows, cols)`.
    pub shapes: Vec<(usize, usize)>,
    /// Activation rows per product.
    pub batches: Vec<usize>,
    /// Formats to time; f32 is always timed too (it is the baseline).
    pub formats: Vec<WeightFormat>,
    /// Also time integer formats with activations quantized to int8 per row.
    pub int8_activations: bool,
    /// How long to time each case.
    pub budget: TimingBudget,
    /// Rotate through enough copies of each weight that together they hold
    /// at least this many bytes (0: time one copy, warm in cache if it fits).
    pub cold_set_bytes: usize,
}

/// The working set [`KernelBenchConfig::cold_set_bytes`] should default to:
/// four times the last-level cache, or 256 MiB when its size is unknown.
pub fn default_cold_set_bytes(last_level_cache: Option<usize>) -> usize {
    last_level_cache.map_or(256 << 20, |c| c.saturating_mul(4))
}

/// How many copies of a `bytes`-byte weight fill `cold_set_bytes`.
fn copies_for(bytes: usize, cold_set_bytes: usize) -> usize {
    cold_set_bytes.div_ceil(bytes.max(1)).max(1)
}

/// Copies of `value` to rotate through, and the index of the next one.
struct Rotation<T> {
    copies: Vec<T>,
    next: usize,
}

impl<T: Clone> Rotation<T> {
    fn new(value: T, bytes: usize, cold_set_bytes: usize) -> Self {
        let n = copies_for(bytes, cold_set_bytes);
        Self { copies: vec![value; n], next: 0 }
    }

    /// The next copy in turn.
    fn next(&mut self) -> &T {
        let i = self.next;
        self.next = (i + 1) % self.copies.len();
        &self.copies[i]
    }
}

/// One timed case.
#[derive(Debug, Clone, Serialize)]
pub struct KernelBenchRow {
    /// Output features.
    pub rows: usize,
    /// Input features.
    pub cols: usize,
    /// Activation rows.
    pub batch: usize,
    /// Weight format.
    pub format: WeightFormat,
    /// How activations enter the product.
    pub activations: ActivationFormat,
    /// Bytes of the weights in this format.
    pub weight_bytes: usize,
    /// Median seconds per product.
    pub seconds: f64,
    /// Weights processed per second (`rows · cols / seconds`).
    pub weights_per_second: f64,
    /// Weight bytes read per second (each weight byte is read once per product).
    pub bytes_per_second: f64,
    /// `bytes_per_second` over the read bandwidth: the streaming read timed
    /// in turn with this case when the weights are cold, else the bandwidth
    /// measured before the run.
    pub bandwidth_share: f64,
    /// The streaming read bandwidth timed in turn with this case (cold
    /// weights only), bytes per second.
    pub side_by_side_bandwidth: Option<f64>,
    /// f32 time over this time (> 1: faster than f32).
    pub speedup_vs_f32: f64,
    /// int8 time over this time, when int8 was timed.
    pub speedup_vs_int8: Option<f64>,
    /// The share of the time spent unpacking: for f32 activations at batches
    /// that expand rows once, `(t − t_f32) / t` (the same loop on rows already
    /// in f32); for grouped `·a8` rows, `(t − t_expanded) / t` with the same
    /// kernel on codes expanded to one byte each in advance. Negative when
    /// reading fewer bytes wins.
    pub unpack_overhead: Option<f64>,
}

/// Deterministic weights with a bell-shaped distribution (sum of four
/// uniforms, like trained weights in shape, not in values).
pub fn synthetic_weights(rows: usize, cols: usize, seed: u64) -> DenseMatrix {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    let data = (0..rows * cols).map(|_| (next() + next() + next() + next() - 2.0) * 0.05).collect();
    DenseMatrix::new(rows, cols, data).expect("length is rows·cols")
}

/// Times every case. `bandwidth` is the measured read bandwidth (bytes/s);
/// `progress` hears about each shape and format as it starts.
pub fn run(
    config: &KernelBenchConfig,
    bandwidth: f64,
    progress: &mut dyn FnMut(&str),
) -> Vec<KernelBenchRow> {
    let mut formats = vec![WeightFormat::F32];
    formats.extend(config.formats.iter().copied().filter(|f| *f != WeightFormat::F32));
    let mut out = Vec::new();
    for &(rows, cols) in &config.shapes {
        let dense = synthetic_weights(rows, cols, (rows * 31 + cols) as u64);
        let timed = time_shape(config, &formats, dense, progress);
        let time_of = |f: WeightFormat, a8: bool, b: usize| {
            timed.iter().find(|t| t.format == f && t.a8 == a8).map(|t| t.seconds[b])
        };
        for (b, &batch) in config.batches.iter().enumerate() {
            let f32_time = time_of(WeightFormat::F32, false, b).expect("f32 is always timed");
            for case in &timed {
                let t = case.seconds[b];
                let expanded = batch >= qloader_kernels::matmul::UNPACK_MIN_ROWS && !case.a8;
                let quantized = case.format != WeightFormat::F32;
                let side_by_side = case.stream_seconds.as_ref().map(|s| case.bytes as f64 / s[b]);
                out.push(KernelBenchRow {
                    rows,
                    cols,
                    batch,
                    format: case.format,
                    activations: if case.a8 {
                        ActivationFormat::Int8
                    } else {
                        ActivationFormat::F32
                    },
                    weight_bytes: case.bytes,
                    seconds: t,
                    weights_per_second: (rows * cols) as f64 / t,
                    bytes_per_second: case.bytes as f64 / t,
                    bandwidth_share: case.bytes as f64 / t / side_by_side.unwrap_or(bandwidth),
                    side_by_side_bandwidth: side_by_side,
                    speedup_vs_f32: f32_time / t,
                    speedup_vs_int8: time_of(WeightFormat::Int8PerChannel, case.a8, b)
                        .map(|i| i / t),
                    unpack_overhead: match &case.expanded_seconds {
                        Some(e) => Some((t - e[b]) / t),
                        None => (expanded && quantized).then(|| (t - f32_time) / t),
                    },
                });
            }
        }
    }
    out
}

impl KernelBenchRow {
    /// The format's name, with `·a8` when activations are quantized to int8.
    pub fn label(&self) -> String {
        match self.activations {
            ActivationFormat::Int8 => format!("{}·a8", self.format),
            ActivationFormat::F32 => self.format.name(),
        }
    }
}

/// One format (and activation mode) timed at every batch.
struct TimedCase {
    format: WeightFormat,
    a8: bool,
    bytes: usize,
    seconds: Vec<f64>,
    /// For grouped `·a8` cases: the same kernel on codes expanded in advance.
    expanded_seconds: Option<Vec<f64>>,
    /// For cold weights: a streaming read of `bytes` bytes, timed in turn.
    stream_seconds: Option<Vec<f64>>,
}

fn time_shape(
    config: &KernelBenchConfig,
    formats: &[WeightFormat],
    dense: DenseMatrix,
    progress: &mut dyn FnMut(&str),
) -> Vec<TimedCase> {
    let (rows, cols) = (dense.rows(), dense.cols());
    // Windows for the side-by-side streaming read: larger than the working
    // set and than twice the largest (f32) weight, so every read is cold.
    let mut cold = (config.cold_set_bytes > 0)
        .then(|| ColdReads::new(config.cold_set_bytes.max(2 * rows * cols * 4)));
    let mut timed = Vec::new();
    for &format in formats {
        progress(&format!("{rows}×{cols} {format}"));
        let weight = LinearWeight::quantize(dense.clone(), format);
        // Built before the copies are made, so that every copy has them.
        weight.prepare_products();
        let bytes = weight.storage_bytes();
        let modes: &[bool] = if config.int8_activations && weight.has_a8_kernel() {
            &[false, true]
        } else {
            &[false]
        };
        for &a8 in modes {
            let input = |m: usize| -> Vec<f32> {
                (0..m * cols).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect()
            };
            // Grouped ·a8 cases are timed alternately with the same product
            // on the same codes expanded in advance to one byte each (8-bit
            // tiles, which the kernel only loads), so their ratio is side by
            // side.
            let mut expanded = match (&weight, a8) {
                (LinearWeight::Grouped(g), true) if g.layout().bits() < 8 => {
                    let e = LinearWeight::Grouped(expanded_codes(g));
                    e.prepare_products();
                    let bytes = e.storage_bytes();
                    Some(Rotation::new(e, bytes, config.cold_set_bytes))
                }
                _ => None,
            };
            let mut weights = Rotation::new(weight.clone(), bytes, config.cold_set_bytes);
            let mut seconds = Vec::new();
            let mut expanded_seconds = Vec::new();
            let mut stream_seconds = Vec::new();
            for &m in &config.batches {
                let x = input(m);
                let mut y = vec![0.0f32; m * rows];
                let mut y2 = vec![0.0f32; m * rows];
                let mut product = || {
                    if a8 {
                        weights.next().matmul_a8(&x, m, &mut y)
                    } else {
                        weights.next().matmul(&x, m, &mut y)
                    }
                };
                let x_ref = &x;
                let mut on_expanded =
                    expanded.as_mut().map(|e| move || e.next().matmul_a8(x_ref, m, &mut y2));
                let mut stream = cold.as_mut().map(|c| {
                    move || {
                        c.read(bytes);
                    }
                });
                // Timed in turn: the product, then its expanded twin, then
                // the streaming read, whichever apply.
                let mut turns: Vec<&mut dyn FnMut()> = vec![&mut product];
                if let Some(f) = on_expanded.as_mut() {
                    turns.push(f);
                }
                if let Some(f) = stream.as_mut() {
                    turns.push(f);
                }
                let t = interleaved_median_seconds(config.budget, &mut turns);
                let mut t = t.into_iter();
                seconds.push(t.next().unwrap_or(0.0));
                if on_expanded.is_some() {
                    expanded_seconds.push(t.next().unwrap_or(0.0));
                }
                if stream.is_some() {
                    stream_seconds.push(t.next().unwrap_or(0.0));
                }
            }
            let expanded_seconds = expanded.is_some().then_some(expanded_seconds);
            let stream_seconds = cold.is_some().then_some(stream_seconds);
            timed.push(TimedCase { format, a8, bytes, seconds, expanded_seconds, stream_seconds });
        }
    }
    timed
}

/// `w`'s codes, scales and offsets as 8-bit codes: the same values with
/// nothing to unpack.
fn expanded_codes(w: &GroupedMatrix) -> GroupedMatrix {
    let layout = GroupedLayout::new(8, w.layout().group()).expect("8-bit layouts exist");
    let codes: Vec<u8> = (0..w.rows()).flat_map(|r| w.row_codes(r)).collect();
    GroupedMatrix::from_codes(
        w.rows(),
        w.cols(),
        layout,
        &codes,
        w.scales().to_vec(),
        w.offsets().to_vec(),
    )
    .expect("the same shape, codes within 8 bits")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn small_run_reports_every_case_consistently() {
        let config = KernelBenchConfig {
            shapes: vec![(16, 64)],
            batches: vec![1, 8],
            formats: vec!["int8".parse().unwrap(), "int4".parse().unwrap()],
            int8_activations: true,
            budget: TimingBudget { min_runs: 1, min_total: Duration::ZERO, max_runs: 1 },
            cold_set_bytes: 64 << 10,
        };
        let rows = run(&config, 1e10, &mut |_| {});
        assert!(rows.iter().all(|r| r.side_by_side_bandwidth.is_some_and(|b| b > 0.0)));
        let warm =
            run(&KernelBenchConfig { cold_set_bytes: 0, ..config.clone() }, 1e10, &mut |_| {});
        assert!(warm.iter().all(|r| r.side_by_side_bandwidth.is_none()));
        assert!(warm.iter().all(|r| r.bandwidth_share == r.bytes_per_second / 1e10));
        // f32 (the added baseline), int8, int8·a8, int4, int4·a8 at two batches.
        assert_eq!(rows.len(), 2 * 5);
        for r in &rows {
            assert!(r.seconds > 0.0 && r.bytes_per_second > 0.0);
            let a8 = r.activations == ActivationFormat::Int8;
            let float = r.format == WeightFormat::F32;
            let expected =
                if a8 { r.format == WeightFormat::int4() } else { r.batch >= 4 && !float };
            assert_eq!(r.unpack_overhead.is_some(), expected, "{}", r.label());
            assert_eq!(r.speedup_vs_int8.is_some(), !float || !a8);
        }
        let f32_row = rows.iter().find(|r| r.format == WeightFormat::F32).unwrap();
        assert_eq!(f32_row.speedup_vs_f32, 1.0);
        assert_eq!(f32_row.weight_bytes, 16 * 64 * 4);
    }

    #[test]
    fn rotation_cycles_through_enough_copies() {
        assert_eq!(copies_for(100, 1000), 10);
        assert_eq!(copies_for(300, 1000), 4);
        assert_eq!(copies_for(5000, 1000), 1);
        assert_eq!(copies_for(0, 0), 1);
        let mut r = Rotation::new(7u8, 40, 100);
        assert_eq!(r.copies.len(), 3);
        let order: Vec<usize> = (0..5)
            .map(|_| {
                let p = r.next() as *const u8;
                r.copies.iter().position(|c| std::ptr::eq(c, p)).unwrap()
            })
            .collect();
        assert_eq!(order, [0, 1, 2, 0, 1]);
        assert_eq!(default_cold_set_bytes(Some(32 << 20)), 128 << 20);
        assert_eq!(default_cold_set_bytes(None), 256 << 20);
    }
}
