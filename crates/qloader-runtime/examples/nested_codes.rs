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
//! ```
//!
//! A group's grid covers `[lo, hi)` in `2^k` equal bins, each value at its
//! bin's centre. With FIT a width, `lo` and `hi` are searched around the
//! group's minimum and maximum: from 9 % beyond them to 9 % inside, in steps
//! of 1.5 % of the range, for the least squared error at that width, and
//! kept in f32. With FIT `directK`, the grid is the one the direct `intKg32`
//! quantizer stores (scale `d`, offset `a`, both f16): `[a − d/2, a +
//! (2^K − ½)·d)`, whose K-bit variant is that format's weight exactly. Needs
//! the fixtures (`scripts/fetch-fixtures.sh`).

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use half::f16;
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

/// `rows × cols` weights as their nested `k`-bit variant of the grids the
/// direct `fit`-bit quantizer stores.
fn nested_on_direct_grids(
    weights: Vec<f32>,
    rows: usize,
    cols: usize,
    fit: u32,
    k: u32,
) -> Result<Vec<f32>> {
    let format: WeightFormat = format!("int{fit}g{GROUP}").parse()?;
    let matrix = DenseMatrix::new(rows, cols, weights.clone()).context("tensor shape")?;
    let StoredParts::Grouped { scales, offsets, .. } =
        LinearWeight::quantize(matrix, format).stored_parts()
    else {
        bail!("{format} is not a grouped format");
    };
    let halves = |bytes: &[u8]| -> Vec<f32> {
        bytes.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
    };
    let (scales, offsets) = (halves(&scales), halves(&offsets));
    let groups = cols.div_ceil(GROUP);
    let mut out = vec![0.0; weights.len()];
    for (r, (row, out)) in weights.chunks(cols).zip(out.chunks_mut(cols)).enumerate() {
        for (g, (group, out)) in row.chunks(GROUP).zip(out.chunks_mut(GROUP)).enumerate() {
            let (d, a) = (scales[r * groups + g], offsets[r * groups + g]);
            let (lo, hi) = (a - d / 2.0, a + ((1u32 << fit) as f32 - 0.5) * d);
            group.iter().zip(out).for_each(|(&x, y)| *y = on_grid(x, lo, hi, k));
        }
    }
    Ok(out)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [fit, widths, rest @ ..] = args.as_slice() else {
        bail!("usage: nested_codes FIT WIDTHS [WINDOWS], e.g. nested_codes 3 3,4,8 8");
    };
    let (direct, fit) = match fit.strip_prefix("direct") {
        Some(width) => (true, width),
        None => (false, fit.as_str()),
    };
    let fit: u32 = fit.parse().context("FIT")?;
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
            let values = if direct {
                nested_on_direct_grids(t.data, rows, cols, fit, k)?
            } else {
                nested(&t.data, cols, fit, k)
            };
            let values = DenseMatrix::new(rows, cols, values).context("tensor shape")?;
            replacements.insert(name.clone(), LinearWeight::quantize(values, WeightFormat::F32));
        }
        let nested = perplexity(WeightFormat::F32, replacements)?;
        let direct: WeightFormat = format!("int{k}g{GROUP}").parse()?;
        println!(
            "| {k} | {fit} | {nested:.3} | {:.3} | {direct} |",
            perplexity(direct, BTreeMap::new())?
        );
    }
    Ok(())
}
