//! Measures what nesting costs, for the multi-plan file of issue 22 (see
//! `docs/multi-plan.md`). Nested codes share one uniform grid per group
//! of 32: the k-bit code of a weight is the top k bits of its 8-bit code.
//! The example runs SmolLM2's perplexity on Botchan with every quantizable
//! tensor in the nested k-bit variant, and beside it the direct grouped
//! format of the same bytes.
//!
//! ```sh
//! cargo run --release -p qloader-runtime --example nested_codes -- FIT WIDTHS [WINDOWS]
//! # e.g. grid fitted for 3 bits, variants of 3, 4 and 8 bits, 8 windows of 512:
//! cargo run --release -p qloader-runtime --example nested_codes -- 3 3,4,8 8
//! # the grid of the direct 3-bit format's own search:
//! cargo run --release -p qloader-runtime --example nested_codes -- direct3 3,4,8 8
//! # per group, the blend of the direct 3- and 4-bit grids best for both:
//! cargo run --release -p qloader-runtime --example nested_codes -- joint3-4 3,4 8
//! # the compact chain: int3k's codes and sub-block grids, refined by bit planes:
//! cargo run --release -p qloader-runtime --example nested_codes -- chain3k 3,4,5,8 8
//! ```
//!
//! A group's grid covers `[lo, hi)` in `2^k` equal bins, each value at its
//! bin's centre. With FIT a width, `lo` and `hi` are searched around the
//! group's minimum and maximum: from 9 % beyond them to 9 % inside, in steps
//! of 1.5 % of the range, for the least squared error at that width, and
//! kept in f32. With FIT `directK`, the grid is the one the direct `intKg32`
//! quantizer stores (scale `d`, offset `a`, both f16): `[a − d/2, a +
//! (2^K − ½)·d)`, whose K-bit variant is that format's weight exactly. With
//! FIT `jointL-H`, each group's frame is one of nine blends (in eighths) of
//! its direct L- and H-bit frames: the one whose larger relative error
//! (each width's error over its direct frame's) is least. With FIT `chainLk`
//! the base is the compact format `intLk` (round to nearest): a k-bit
//! variant keeps each weight's L-bit code and splits that code's bin (its
//! sub-block's scale wide, centred on the level) into `2^(k−L)` equal
//! parts, the value at the centre of the part holding the weight; it is
//! compared with the compact format of k bits (`int4k`, `int5k`) or `q8_0`.
//! Needs the fixtures (`scripts/fetch-fixtures.sh`).

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use half::f16;
use qloader_format::compact::{for_each_code, CompactLayout};
use qloader_format::gguf::GgufFile;
use qloader_format::{fixtures, ActivationFormat, WeightFormat};
use qloader_kernels::DenseMatrix;
use qloader_models::decoder;
use qloader_quant::{LinearWeight, StoredParts};
use qloader_runtime::packed::Quantization;
use qloader_runtime::DecoderSession;
use rayon::prelude::*;

/// Weights per group.
const GROUP: usize = 32;

/// The value of `x` on the `k`-bit grid over `[lo, hi)`.
fn on_grid(x: f32, lo: f32, hi: f32, k: u32) -> f32 {
    let bins = (1u32 << k) as f32;
    let step = (hi - lo) / bins;
    if step <= 0.0 {
        return lo;
    }
    let code = ((x - lo) / step).floor().clamp(0.0, bins - 1.0);
    lo + (code + 0.5) * step
}

/// The grid `[lo, hi)` of `group` with the least squared error at `fit` bits.
fn fit_grid(group: &[f32], fit: u32) -> (f32, f32) {
    let min = group.iter().copied().fold(f32::INFINITY, f32::min);
    let max = group.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let range = max - min;
    let mut best = (f64::INFINITY, min, max);
    for a in -6..7 {
        for b in -6..7 {
            let (lo, hi) = (min + range * 0.015 * a as f32, max - range * 0.015 * b as f32);
            let error: f64 =
                group.iter().map(|&x| f64::from(x - on_grid(x, lo, hi, fit)).powi(2)).sum();
            if error < best.0 {
                best = (error, lo, hi);
            }
        }
    }
    (best.1, best.2)
}

/// `rows × cols` weights as their nested `k`-bit variant, the grids fitted
/// at `fit` bits.
fn nested(weights: &[f32], cols: usize, fit: u32, k: u32) -> Vec<f32> {
    let mut out = vec![0.0; weights.len()];
    weights.par_chunks(cols).zip(out.par_chunks_mut(cols)).for_each(|(row, out)| {
        for (group, out) in row.chunks(GROUP).zip(out.chunks_mut(GROUP)) {
            let (lo, hi) = fit_grid(group, fit);
            group.iter().zip(out).for_each(|(&x, y)| *y = on_grid(x, lo, hi, k));
        }
    });
    out
}

/// The grids the direct `bits`-bit quantizer stores for `rows × cols`
/// weights, one per row and group, as nested frames `[lo, hi)`: scale `d`,
/// offset `a` (both f16) give `[a − d/2, a + (2^bits − ½)·d)`.
fn direct_frames(weights: &[f32], rows: usize, cols: usize, bits: u32) -> Result<Vec<(f32, f32)>> {
    let format: WeightFormat = format!("int{bits}g{GROUP}").parse()?;
    let matrix = DenseMatrix::new(rows, cols, weights.to_vec()).context("tensor shape")?;
    let StoredParts::Grouped { scales, offsets, .. } =
        LinearWeight::quantize(matrix, format).stored_parts()
    else {
        bail!("{format} is not a grouped format");
    };
    let halves = |bytes: &[u8]| -> Vec<f32> {
        bytes.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
    };
    let levels = (1u32 << bits) as f32;
    Ok(halves(&scales)
        .into_iter()
        .zip(halves(&offsets))
        .map(|(d, a)| (a - d / 2.0, a + (levels - 0.5) * d))
        .collect())
}

/// Squared error of `group` on the `k`-bit grid of `frame`.
fn frame_error(group: &[f32], (lo, hi): (f32, f32), k: u32) -> f64 {
    group.iter().map(|&x| f64::from(x - on_grid(x, lo, hi, k)).powi(2)).sum()
}

/// `rows × cols` weights as their nested `k`-bit variant, each group's frame
/// chosen by `choose(group index, group)`.
fn nested_on_frames(
    weights: &[f32],
    cols: usize,
    k: u32,
    choose: impl Fn(usize, &[f32]) -> (f32, f32),
) -> Vec<f32> {
    let groups = cols.div_ceil(GROUP);
    let mut out = vec![0.0; weights.len()];
    for (r, (row, out)) in weights.chunks(cols).zip(out.chunks_mut(cols)).enumerate() {
        for (g, (group, out)) in row.chunks(GROUP).zip(out.chunks_mut(GROUP)).enumerate() {
            let (lo, hi) = choose(r * groups + g, group);
            group.iter().zip(out).for_each(|(&x, y)| *y = on_grid(x, lo, hi, k));
        }
    }
    out
}

/// The frame between the direct `low`- and `high`-bit frames (blended in
/// eighths) whose larger relative error (each width's error over its own
/// direct frame's) is least.
fn joint_frame(group: &[f32], low: (u32, (f32, f32)), high: (u32, (f32, f32))) -> (f32, f32) {
    let floor = |e: f64| e.max(1e-30);
    let best_low = floor(frame_error(group, low.1, low.0));
    let best_high = floor(frame_error(group, high.1, high.0));
    (0..=8)
        .map(|t| {
            let t = t as f32 / 8.0;
            let frame =
                (low.1 .0 + t * (high.1 .0 - low.1 .0), low.1 .1 + t * (high.1 .1 - low.1 .1));
            let cost = (frame_error(group, frame, low.0) / best_low)
                .max(frame_error(group, frame, high.0) / best_high);
            (cost, frame)
        })
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map_or(low.1, |(_, frame)| frame)
}

/// How each group's grid is fitted.
#[derive(Clone, Copy)]
enum Fit {
    /// The simple search at this width.
    Search(u32),
    /// The direct quantizer's grid at this width.
    Direct(u32),
    /// Between the direct grids of these two widths.
    Joint(u32, u32),
    /// Refining the compact format of this width.
    Chain(u32),
}

/// `rows × cols` weights as the `k`-bit refinement of their `int{base}k`
/// codes (see the module documentation).
fn chained(weights: &[f32], rows: usize, cols: usize, base: u32, k: u32) -> Result<Vec<f32>> {
    let layout = CompactLayout::new(base as u8)?;
    let dense = DenseMatrix::new(rows, cols, weights.to_vec()).context("tensor shape")?;
    let StoredParts::Compact { codes, .. } =
        LinearWeight::quantize(dense, WeightFormat::Compact(layout)).stored_parts()
    else {
        bail!("int{base}k is stored as a compact format");
    };
    let row_bytes = layout.row_bytes(cols);
    let parts = 1u32 << (k - base);
    let mut out = vec![0.0f32; rows * cols];
    out.par_chunks_mut(cols).enumerate().for_each(|(r, out)| {
        let row = &codes[r * row_bytes..(r + 1) * row_bytes];
        for_each_code(layout, row, cols, |c, scale, offset, q| {
            let low = scale * q as f32 + offset - scale / 2.0;
            let step = scale / parts as f32;
            out[c] = if step > 0.0 {
                let j = ((weights[r * cols + c] - low) / step).floor();
                low + (j.clamp(0.0, (parts - 1) as f32) + 0.5) * step
            } else {
                offset
            };
        });
    });
    Ok(out)
}

impl Fit {
    fn parse(text: &str) -> Result<Self> {
        Ok(if let Some(w) = text.strip_prefix("direct") {
            Fit::Direct(w.parse()?)
        } else if let Some(w) = text.strip_prefix("chain").and_then(|w| w.strip_suffix('k')) {
            Fit::Chain(w.parse()?)
        } else if let Some(ws) = text.strip_prefix("joint") {
            let (low, high) = ws.split_once('-').context("jointL-H")?;
            Fit::Joint(low.parse()?, high.parse()?)
        } else {
            Fit::Search(text.parse()?)
        })
    }

    fn label(self) -> String {
        match self {
            Fit::Search(w) => w.to_string(),
            Fit::Direct(w) => format!("direct {w}"),
            Fit::Joint(l, h) => format!("joint {l} and {h}"),
            Fit::Chain(w) => format!("int{w}k's grids"),
        }
    }

    /// `rows × cols` weights as their nested `k`-bit variant.
    fn nested(self, weights: &[f32], rows: usize, cols: usize, k: u32) -> Result<Vec<f32>> {
        Ok(match self {
            Fit::Search(fit) => nested(weights, cols, fit, k),
            Fit::Chain(base) => chained(weights, rows, cols, base, k)?,
            Fit::Direct(fit) => {
                let frames = direct_frames(weights, rows, cols, fit)?;
                nested_on_frames(weights, cols, k, |i, _| frames[i])
            }
            Fit::Joint(low, high) => {
                let (lows, highs) = (
                    direct_frames(weights, rows, cols, low)?,
                    direct_frames(weights, rows, cols, high)?,
                );
                nested_on_frames(weights, cols, k, |i, group| {
                    joint_frame(group, (low, lows[i]), (high, highs[i]))
                })
            }
        })
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [fit, widths, rest @ ..] = args.as_slice() else {
        bail!("usage: nested_codes FIT WIDTHS [WINDOWS], e.g. nested_codes 3 3,4,8 8");
    };
    let fit = Fit::parse(fit).context("FIT: a width, directK or jointL-H")?;
    let widths: Vec<u32> =
        widths.split(',').map(str::parse).collect::<Result<_, _>>().context("WIDTHS")?;
    let windows: usize = rest.first().map_or(Ok(8), |w| w.parse()).context("WINDOWS")?;
    let model = fixtures::smollm2_gguf();
    let text = std::fs::read_to_string(fixtures::botchan_text()).context("Botchan")?;
    let file = GgufFile::open(&model)?;
    let names = decoder::open_checkpoint(&model)?.config().tensor_names();
    let perplexity = |format: WeightFormat, replacements: BTreeMap<String, LinearWeight>| {
        let quantization = Quantization { replacements, ..Quantization::default() };
        let session = DecoderSession::open_quantized(
            &model,
            format,
            ActivationFormat::F32,
            quantization,
            &mut |_, _| {},
        )?;
        anyhow::Ok(session.perplexity(&text, 512, windows, &mut |_, _| {})?.perplexity)
    };
    println!("f32: {:.3}", perplexity(WeightFormat::F32, BTreeMap::new())?);
    println!("| width | grid fitted at | nested | direct | direct format |");
    for k in widths {
        let mut replacements = BTreeMap::new();
        for name in &names {
            // A tied head is the embedding table.
            let stored =
                if file.tensor(name).is_ok() { name.as_str() } else { "token_embd.weight" };
            let t = file.tensor_f32(stored)?;
            let (rows, cols) = (t.shape[0], t.shape[1]);
            let values = fit.nested(&t.data, rows, cols, k)?;
            let values = DenseMatrix::new(rows, cols, values).context("tensor shape")?;
            replacements.insert(name.clone(), LinearWeight::quantize(values, WeightFormat::F32));
        }
        let nested = perplexity(WeightFormat::F32, replacements)?;
        let direct: WeightFormat = match (fit, k) {
            (Fit::Chain(_), 8) => "q8_0".parse()?,
            (Fit::Chain(_), _) => format!("int{k}k").parse()?,
            _ => format!("int{k}g{GROUP}").parse()?,
        };
        println!(
            "| {k} | {} | {nested:.3} | {:.3} | {direct} |",
            fit.label(),
            perplexity(direct, BTreeMap::new())?
        );
    }
    Ok(())
}
