//! `qloader pack`: a model and a plan (or one format) into a packed model;
//! or several plans (files, or budgets planned here) into one file that the
//! loader picks a plan from.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Instant;

use anyhow::{Context, Result};
use qloader_format::{fixtures, PlanRef, QuantMethod};
use qloader_runtime::packed::{
    pack_model, pack_model_plans_with, quantizable_tensors, Nesting, PlanToPack,
};
use qloader_schedule::{make_plan, Budget, Plan, PlanOptions, Sources};

use crate::args::PackArgs;
use crate::commands::method::Method;
use crate::output::{format_counts, human_bytes, print_format_table};

/// Runs the subcommand.
pub fn run(args: PackArgs) -> Result<()> {
    if !args.plans.is_empty() || !args.budgets.is_empty() {
        return run_plans(args);
    }
    anyhow::ensure!(args.nest.is_none(), "--nest needs several plans (--plans or --budgets)");
    let model = args.model.clone().unwrap_or_else(fixtures::smollm2_gguf);
    let plan = args.plan.as_deref().map(|path| Ok::<_, anyhow::Error>((path, Plan::read(path)?)));
    let plan = plan.transpose()?;
    // The plan's method unless --method names one.
    let planned_method = plan.as_ref().map_or(QuantMethod::Rtn, |(_, p)| p.inputs.method);
    let method = Method::from_args(&args.method, planned_method)?;
    let (formats, plan_ref) = match (&plan, args.quant) {
        (Some((path, plan)), _) => (plan_formats(plan), Some(plan_ref(path)?)),
        (None, Some(format)) => {
            let names = quantizable_tensors(&model)
                .with_context(|| format!("reading {}", model.display()))?;
            (names.into_iter().map(|n| (n, format)).collect(), None)
        }
        (None, None) => anyhow::bail!("give --plan PLAN or --quant FORMAT"),
    };
    let verbose = std::io::stderr().is_terminal();
    let mut progress = |done: usize, total: usize| {
        if verbose && done < total {
            eprint!("\rquantizing block {}/{total}", done + 1);
        } else if verbose {
            eprintln!();
        }
    };
    let clock = Instant::now();
    let what = match &plan_ref {
        Some(_) => "plan".to_owned(),
        None => args.quant.map(|f| f.to_string()).unwrap_or_default(),
    };
    let (quantization, calibration) =
        method.quantization(&model, &what, &|name| formats.get(name).copied())?;
    let report = pack_model(&model, &formats, quantization, plan_ref, &args.output, &mut progress)
        .with_context(|| format!("packing {} into {}", model.display(), args.output.display()))?;
    let seconds = clock.elapsed().as_secs_f64();

    println!("packed {} ({}) into {}", model.display(), report.architecture, args.output.display());
    println!();
    print_format_table(
        report.summary.tensors.iter().map(|t| (t.format.to_string(), t.params, t.bytes)),
    );
    println!();
    println!(
        "quantizable tensors: {} at {:.2} bits/weight; file {}; {:.1} s",
        human_bytes(report.summary.quantized_bytes()),
        report.summary.quantized_bits_per_weight(),
        human_bytes(report.file_bytes as usize),
        seconds
    );
    if let Some(line) = calibration {
        println!("{}: {line}", method.method);
    }
    Ok(())
}

/// A plan's format per tensor.
fn plan_formats(plan: &Plan) -> BTreeMap<String, qloader_format::WeightFormat> {
    plan.tensors.iter().map(|t| (t.name.clone(), t.format)).collect()
}

/// The header's record of the plan file at `path`.
fn plan_ref(path: &std::path::Path) -> Result<PlanRef> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let sha256 = qloader_schedule::planner::sha256_hex(&bytes);
    Ok(PlanRef { path: path.display().to_string(), sha256 })
}

/// `--plans` or `--budgets`: several plans into one file.
fn run_plans(args: PackArgs) -> Result<()> {
    let model = args.model.clone().unwrap_or_else(fixtures::smollm2_gguf);
    // (name, plan, plan file if any), smallest first as given.
    let mut plans: Vec<(String, Plan, Option<PlanRef>)> = Vec::new();
    for path in &args.plans {
        let name = path
            .file_stem()
            .map_or_else(|| path.display().to_string(), |s| s.to_string_lossy().into_owned());
        plans.push((name, Plan::read(path)?, Some(plan_ref(path)?)));
    }
    if !args.budgets.is_empty() {
        let (Some(table), Some(profile)) = (&args.table, &args.profile) else {
            anyhow::bail!("--budgets needs --table and --profile");
        };
        let sources = Sources::read(table, profile)?;
        for text in &args.budgets {
            let budget: Budget =
                text.parse().map_err(|e| anyhow::anyhow!("--budgets: `{text}`: {e}"))?;
            let options = PlanOptions { budget: Some(budget), ..PlanOptions::default() };
            let plan = make_plan(&sources, &options)
                .with_context(|| format!("planning for the budget {text}"))?;
            plans.push((text.clone(), plan, None));
        }
    }
    if let Some((name, _, _)) =
        plans.iter().enumerate().find_map(|(i, p)| plans[..i].iter().find(|q| q.0 == p.0))
    {
        anyhow::bail!("two plans are named `{name}`: give plan files distinct names");
    }
    let planned_method = plans.first().map_or(QuantMethod::Rtn, |(_, p, _)| p.inputs.method);
    let method = Method::from_args(&args.method, planned_method)?;
    let verbose = std::io::stderr().is_terminal();
    let clock = Instant::now();
    let mut to_pack = Vec::with_capacity(plans.len());
    let mut calibration = None;
    for (name, plan, plan_ref) in plans {
        let formats = plan_formats(&plan);
        let (quantization, line) =
            method.quantization(&model, &name, &|n| formats.get(n).copied())?;
        calibration = calibration.or(line);
        to_pack.push(PlanToPack {
            name,
            formats,
            quantization,
            predicted_loss: Some(plan.totals.loss),
            tensor_losses: plan.tensors.iter().map(|t| (t.name.clone(), t.loss)).collect(),
            plan: plan_ref,
        });
    }
    let mut progress = |plan: &str, done: usize, total: usize| {
        if verbose && done < total && plan == "nesting" {
            eprint!("\rnesting: tensor {}/{total}", done + 1);
        } else if verbose && done < total {
            eprint!("\rplan {plan}: quantizing block {}/{total}", done + 1);
        } else if verbose {
            eprintln!();
        }
    };
    let nesting = match args.nest {
        Some(ratio) if ratio.is_finite() && ratio > 0.0 => Some(Nesting { max_error_ratio: ratio }),
        Some(ratio) => anyhow::bail!("--nest {ratio}: the ratio must be a positive number"),
        None => None,
    };
    let report = pack_model_plans_with(&model, to_pack, nesting, &args.output, &mut progress)
        .with_context(|| format!("packing {} into {}", model.display(), args.output.display()))?;
    let seconds = clock.elapsed().as_secs_f64();
    println!(
        "packed {} ({}) into {}: {} plans",
        model.display(),
        report.architecture,
        args.output.display(),
        report.plans.len()
    );
    println!();
    println!("| plan | bits/weight (quantizable) | bytes it loads | formats |");
    println!("|---|---:|---:|---|");
    let mut largest = 0u64;
    for (name, summary, bytes) in &report.plans {
        largest = largest.max(*bytes);
        let formats =
            format_counts(summary.tensors.iter().filter(|t| t.quantizable).map(|t| t.format));
        println!(
            "| {name} | {:.3} | {} | {} |",
            summary.quantized_bits_per_weight(),
            human_bytes(*bytes as usize),
            formats
        );
    }
    if !report.nested.is_empty() {
        let mut chains: BTreeMap<String, usize> = BTreeMap::new();
        for (root, links) in report.nested.values() {
            let names: Vec<String> =
                std::iter::once(root).chain(links).map(|f| f.to_string()).collect();
            *chains.entry(names.join(" → ")).or_default() += 1;
        }
        let chains: Vec<String> = chains.iter().map(|(c, n)| format!("{n}× {c}")).collect();
        println!();
        println!("nested (bit planes on a compact root): {}", chains.join(", "));
    }
    println!();
    println!(
        "file {} ({:.3}× the largest plan's bytes); {:.1} s",
        human_bytes(report.file_bytes as usize),
        report.file_bytes as f64 / largest.max(1) as f64,
        seconds
    );
    if let Some(line) = calibration {
        println!("{}: {line}", method.method);
    }
    Ok(())
}
