//! `qloader pack`: a model and a plan (or one format) into a packed model.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Instant;

use anyhow::{Context, Result};
use qloader_format::{fixtures, PlanRef, QuantMethod};
use qloader_runtime::packed::{pack_model, quantizable_tensors};
use qloader_schedule::Plan;

use crate::args::PackArgs;
use crate::commands::method::Method;
use crate::output::{human_bytes, print_format_table};

/// Runs the subcommand.
pub fn run(args: PackArgs) -> Result<()> {
    let model = args.model.clone().unwrap_or_else(fixtures::smollm2_gguf);
    let plan = args.plan.as_deref().map(|path| Ok::<_, anyhow::Error>((path, Plan::read(path)?)));
    let plan = plan.transpose()?;
    // The plan's method unless --method names one.
    let planned_method = plan.as_ref().map_or(QuantMethod::Rtn, |(_, p)| p.inputs.method);
    let method = Method::from_args(&args.method, planned_method)?;
    let (formats, plan_ref) = match (&plan, args.quant) {
        (Some((path, plan)), _) => {
            let mut formats = BTreeMap::new();
            for t in &plan.tensors {
                formats.insert(t.name.clone(), t.format);
            }
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let sha256 = qloader_schedule::planner::sha256_hex(&bytes);
            (formats, Some(PlanRef { path: path.display().to_string(), sha256 }))
        }
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
