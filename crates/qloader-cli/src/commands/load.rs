//! Opening a packed model as `run` and `eval` do: load options from the
//! command line, one line on standard error per tensor converted at load,
//! and the `--explain` table of how every tensor runs.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use qloader_format::{ActivationFormat, WeightFormat};
use qloader_hw::profile::DeviceProfile;
use qloader_runtime::packed::{open_packed, LoadOptions, LoadedModel, PlacementRole, PlanChoice};
use qloader_runtime::registry::KernelRegistry;

use crate::args::LoadArgs;
use crate::output::human_bytes;

/// The load options `args` ask for (`activations`: `None` for the
/// architecture's default).
pub fn options(args: &LoadArgs, activations: Option<ActivationFormat>) -> Result<LoadOptions> {
    let mut registry = KernelRegistry::detect();
    if let Some(path) = &args.profile {
        let profile = DeviceProfile::read(path)?;
        registry.restrict_to(&profile);
    }
    for &family in &args.disable_kernels {
        registry.disable(family);
    }
    Ok(LoadOptions {
        verify: !args.no_verify,
        activations,
        registry,
        fallback_cache: args.fallback_cache,
        plan: match (&args.plan, args.memory) {
            (Some(name), _) => PlanChoice::Named(name.clone()),
            (None, Some(bytes)) => PlanChoice::Memory(bytes),
            (None, None) => PlanChoice::Available,
        },
    })
}

/// Opens `path`, reporting conversions on standard error.
pub fn open(path: &Path, options: &LoadOptions) -> Result<LoadedModel> {
    let mut on_conversion = |line: &str| eprintln!("qloader: {line}");
    open_packed(path, options, &mut on_conversion)
        .with_context(|| format!("loading {}", path.display()))
}

/// One line about the load: time, bytes mapped and owned, conversions; for
/// a file of several plans, a line before it on the plan chosen.
pub fn describe(model: &LoadedModel) -> String {
    let plan = if model.plan.candidates.len() > 1 {
        format!("chose {}\n", model.plan)
    } else {
        String::new()
    };
    let mapped: usize = model.placements.iter().filter(|p| p.mapped).map(|p| p.bytes).sum();
    let owned: usize = model.placements.iter().filter(|p| !p.mapped).map(|p| p.bytes).sum();
    let converted: Vec<_> = model.placements.iter().filter(|p| p.convert_seconds > 0.0).collect();
    let convert_seconds: f64 = converted.iter().map(|p| p.convert_seconds).sum();
    let grouped = model.placements.iter().any(|p| {
        matches!(
            p.stored,
            WeightFormat::Grouped(_) | WeightFormat::Compact(_) | WeightFormat::Block(_)
        ) && (p.kernel.is_some() || p.role == PlacementRole::LookUp)
    });
    format!(
        "{plan}loaded {} in {:.2} s: {} tensors, {} read in place from the map, {} in memory{}{}",
        model.file.path().display(),
        model.load_seconds,
        model.placements.len(),
        human_bytes(mapped),
        human_bytes(owned),
        if converted.is_empty() {
            String::new()
        } else {
            format!("; {} converted at load in {:.2} s", converted.len(), convert_seconds)
        },
        if grouped {
            "; weights multiplied in 16-row tiles keep only the tiles (their mapped pages let go)"
        } else {
            ""
        }
    )
}

/// Prints the file's plans (for a file of several), how every tensor runs,
/// then a count per kernel.
pub fn explain(model: &LoadedModel) {
    if model.plan.candidates.len() > 1 {
        println!(
            "| plan | bits/weight | read from the file | kept at run time | predicted loss | |"
        );
        println!("|---|---:|---:|---:|---:|---|");
        for (i, c) in model.plan.candidates.iter().enumerate() {
            let mark = if i == model.plan.index {
                "loaded"
            } else if model.plan.limit.is_some_and(|l| c.run_bytes > l) {
                "does not fit"
            } else {
                ""
            };
            println!(
                "| {} | {} | {} | {} | {} | {mark} |",
                c.name,
                c.bits_per_weight.map_or("—".to_owned(), |b| format!("{b:.3}")),
                human_bytes(c.stored_bytes as usize),
                human_bytes(c.run_bytes as usize),
                c.predicted_loss.map_or("—".to_owned(), |l| format!("{l:.4}")),
            );
        }
        println!();
    }
    println!("| tensor | shape | stored | runs as | kernel | bytes | where |");
    println!("|---|---|---|---|---|---:|---|");
    let mut per_kernel: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for p in &model.placements {
        let (runs_as, kernel) = match &p.kernel {
            Some(k) => {
                let runs = if k.runs_as == k.stored {
                    k.runs_as.to_string()
                } else {
                    format!(
                        "{} (converted, {})",
                        k.runs_as,
                        k.conversion.map_or("exact", |f| f.name())
                    )
                };
                (runs, k.kernel.to_string())
            }
            None => (p.stored.to_string(), format!("{} (no product)", p.role.name())),
        };
        let entry = per_kernel.entry(kernel.clone()).or_default();
        entry.0 += 1;
        entry.1 += p.bytes;
        println!(
            "| {} | {}×{} | {} | {} | {} | {} | {} |",
            p.name,
            p.shape[0],
            p.shape[1],
            p.stored,
            runs_as,
            kernel,
            human_bytes(p.bytes),
            if p.mapped { "mapped" } else { "memory" }
        );
    }
    println!();
    println!("| kernel | tensors | bytes |");
    println!("|---|---:|---:|");
    for (kernel, (n, bytes)) in per_kernel {
        println!("| {kernel} | {n} | {} |", human_bytes(bytes));
    }
}
