//! A plan in readable form: where it came from, what it had to meet, what
//! it costs and loses, how near optimal it is, and which formats went where.

use std::collections::BTreeMap;
use std::fmt::Write;

use qloader_format::WeightFormat;

use crate::plan_file::{Plan, PlannedTensor};

fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / (1u64 << 20) as f64)
}

fn percent(relative: f64) -> String {
    if relative >= 1e100 {
        "unbounded (the bound is 0)".to_owned()
    } else {
        format!("{:.3}%", relative * 100.0)
    }
}

/// The plan as text; `top` is how many of the lossiest tensors to list.
pub fn explain(plan: &Plan, top: usize) -> String {
    let mut out = String::new();
    let i = &plan.inputs;
    let c = &plan.constraints;
    let t = &plan.totals;
    let short = |h: &str| h.chars().take(12).collect::<String>();
    let _ = writeln!(out, "plan for {} ({}) on device {}", i.model, i.architecture, i.device);
    let _ = writeln!(
        out,
        "inputs: table {} (sha256 {}…), profile {} (sha256 {}…)",
        i.table.path,
        short(&i.table.sha256),
        i.profile.path,
        short(&i.profile.sha256)
    );
    let budget = match (&c.budget, c.budget_bytes) {
        (Some(b), Some(bytes)) => format!("{b} ({})", mib(bytes)),
        _ => "none given".to_owned(),
    };
    let device = c.device_model_bytes.map_or("not stated".to_owned(), mib);
    let _ = writeln!(
        out,
        "limits: budget {budget}; device model memory {device}; applied {}{}",
        mib(c.max_bytes),
        c.max_latency_ms.map_or(String::new(), |ms| format!("; latency ≤ {ms} ms/token"))
    );
    if !c.pins.is_empty() {
        let _ = writeln!(out, "pins: {}", c.pins.join(", "));
    }
    let _ = writeln!(
        out,
        "loss measure: {:?}; kernels with {} activations, latency at batch {}",
        c.measure, c.activations, c.batch
    );
    let s = &plan.solver;
    let _ = writeln!(
        out,
        "solver: {} ({}) in {:.2} ms{}",
        s.name,
        s.method,
        s.seconds * 1e3,
        match (s.proven_optimal, s.nodes) {
            (Some(p), Some(n)) =>
                format!(", {n} nodes, {}", if p { "proven optimal" } else { "node limit reached" }),
            _ => String::new(),
        }
    );
    let _ = writeln!(
        out,
        "\nsize {} = {:.3} bits/weight over {} weights; predicted products {:.2} ms/token",
        mib(t.bytes),
        t.bits_per_weight,
        t.weights,
        t.latency_ms
    );
    let _ = writeln!(
        out,
        "loss {:.6e}; lower bound {:.6e}; certified gap {}",
        t.loss,
        plan.bound,
        percent(plan.gap.relative)
    );
    if let Some(x) = &plan.exact_check {
        let _ = writeln!(
            out,
            "exact solver: loss {:.6e} ({}, {:.2} s); this plan is {} above it",
            x.loss,
            if x.proven_optimal { "proven optimal" } else { "not proven" },
            x.seconds,
            percent(x.greedy_gap)
        );
    }

    let mut by_format: BTreeMap<WeightFormat, (usize, u64, u64, f64)> = BTreeMap::new();
    for p in &plan.tensors {
        let e = by_format.entry(p.format).or_default();
        e.0 += 1;
        e.1 = e.1.saturating_add((p.shape[0] as u64).saturating_mul(p.shape[1] as u64));
        e.2 += p.bytes;
        e.3 += p.loss;
    }
    let _ =
        writeln!(out, "\n| format | tensors | weights | bytes | loss |\n|---|---:|---:|---:|---:|");
    for (f, (n, w, b, l)) in &by_format {
        let _ = writeln!(out, "| {f} | {n} | {w} | {} | {l:.3e} |", mib(*b));
    }

    let formats: Vec<WeightFormat> = by_format.keys().copied().collect();
    let mut by_kind: BTreeMap<&str, BTreeMap<WeightFormat, usize>> = BTreeMap::new();
    for p in &plan.tensors {
        *by_kind.entry(p.kind.as_str()).or_default().entry(p.format).or_default() += 1;
    }
    let names: Vec<String> = formats.iter().map(|f| f.name()).collect();
    let _ = writeln!(out, "\n| kind | {} |", names.join(" | "));
    let _ = writeln!(out, "|---|{}", "---:|".repeat(formats.len()));
    for (kind, counts) in &by_kind {
        let cells: Vec<String> = formats
            .iter()
            .map(|f| counts.get(f).map_or("·".to_owned(), ToString::to_string))
            .collect();
        let _ = writeln!(out, "| {kind} | {} |", cells.join(" | "));
    }

    let fallbacks: Vec<&PlannedTensor> = plan.tensors.iter().filter(|p| p.fallback).collect();
    if fallbacks.is_empty() {
        let _ = writeln!(out, "\nno tensor needs a load-time conversion on this device");
    } else {
        let mut pairs: BTreeMap<(WeightFormat, WeightFormat), usize> = BTreeMap::new();
        for p in &fallbacks {
            *pairs.entry((p.format, p.runs_as)).or_default() += 1;
        }
        let list: Vec<String> =
            pairs.iter().map(|((a, b), n)| format!("{n} × {a} → {b}")).collect();
        let _ = writeln!(out, "\nconverted at load (no kernel on the device): {}", list.join(", "));
    }

    let mut lossiest: Vec<&PlannedTensor> = plan.tensors.iter().collect();
    lossiest.sort_by(|a, b| b.loss.total_cmp(&a.loss));
    let n = top.min(lossiest.len());
    if n > 0 {
        let _ = writeln!(out, "\n## The {n} tensors losing most\n");
        let _ = writeln!(out, "| tensor | kind | format | bytes | loss |\n|---|---|---|---:|---:|");
        for p in &lossiest[..n] {
            let _ = writeln!(
                out,
                "| {} | {} | {}{} | {} | {:.3e} |",
                p.name,
                p.kind,
                p.format,
                if p.pinned { " (pinned)" } else { "" },
                p.bytes,
                p.loss
            );
        }
    }
    out
}
