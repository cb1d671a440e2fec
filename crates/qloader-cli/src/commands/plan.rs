//! `qloader plan`: make a plan from a table and a profile and write it
//! atomically; sweep the frontier with `--pareto` (JSON, CSV and SVG); or
//! print a plan with `--explain`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use qloader_schedule::explain::explain;
use qloader_schedule::frontier::frontier;
use qloader_schedule::{chart, make_plan, Plan, PlanOptions, Sources};

use crate::args::PlanArgs;
use crate::output::human_bytes;

/// Runs `qloader plan`.
pub fn run(args: PlanArgs) -> Result<()> {
    if let Some(path) = &args.explain {
        let plan = Plan::read(path)?;
        print!("{}", explain(&plan, args.top));
        return Ok(());
    }
    let (table, profile) = match (&args.table, &args.profile) {
        (Some(t), Some(p)) => (t, p),
        _ => anyhow::bail!("--table and --profile are required"),
    };
    let sources = Sources::read(table, profile)?;
    let options = PlanOptions {
        budget: args.budget,
        max_latency_ms: args.latency_ms,
        pins: args.pins.clone(),
        solver: args.solver.into(),
        check_exact: args.check_exact,
        activations: args.activations,
        batch: args.batch,
        measure: None,
    };
    if args.pareto {
        return run_pareto(&args, &sources, &options);
    }
    let plan = make_plan(&sources, &options)?;
    let out = args.output.clone().unwrap_or_else(|| PathBuf::from("plan.json"));
    plan.write(&out)?;
    print!("{}", explain(&plan, args.top));
    println!("\nwrote {}", out.display());
    Ok(())
}

fn with_extension(path: &Path, ext: &str) -> PathBuf {
    let mut p = path.to_owned();
    p.set_extension(ext);
    p
}

fn run_pareto(args: &PlanArgs, sources: &Sources, options: &PlanOptions) -> Result<()> {
    if args.steps == 0 || args.steps > 10_000 {
        anyhow::bail!("--steps must be between 1 and 10000");
    }
    let f = frontier(sources, options, args.steps)?;
    let json = args.output.clone().unwrap_or_else(|| PathBuf::from("frontier.json"));
    let json = if json.extension().is_some_and(|e| e == "json") {
        json
    } else {
        with_extension(&json, "json")
    };
    let (csv, svg) = (with_extension(&json, "csv"), with_extension(&json, "svg"));
    f.write(&json)?;
    f.write(&csv)?;
    chart::draw(&f, &svg).with_context(|| format!("drawing {}", svg.display()))?;
    println!(
        "frontier of {} on {}: {} plans from {} to {} (loss measure {:?})\n",
        f.model,
        f.device,
        f.points.len(),
        f.points.first().map_or("-".into(), |p| human_bytes(p.bytes as usize)),
        f.points.last().map_or("-".into(), |p| human_bytes(p.bytes as usize)),
        f.measure
    );
    println!("| uniform format | bits/weight | size | loss | mixed plan, same budget | its loss | loss ratio |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for u in &f.uniform {
        let (size, loss, ratio) = match &u.mixed_at_same_size {
            Some(m) => (
                format!("{:.3} bpw", m.bits_per_weight),
                format!("{:.4e}", m.loss),
                if u.loss > 0.0 { format!("{:.3}", m.loss / u.loss) } else { "—".into() },
            ),
            None => ("—".into(), "—".into(), "—".into()),
        };
        println!(
            "| {} | {:.3} | {} | {:.4e} | {size} | {loss} | {ratio} |",
            u.format,
            u.bits_per_weight,
            human_bytes(u.bytes as usize),
            u.loss
        );
    }
    println!("\nwrote {}, {} and {}", json.display(), csv.display(), svg.display());
    Ok(())
}
