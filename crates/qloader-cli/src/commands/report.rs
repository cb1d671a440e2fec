//! `qloader report`: the whole pipeline measured — plans per budget, uniform
//! formats and llama.cpp's recipes, each packed and evaluated — written as
//! Markdown, HTML, charts and JSON, with the table printed.

use anyhow::{bail, Context, Result};
use qloader_format::fixtures;
use qloader_hw::{measure_profile, ProfileMeasurement};
use qloader_report::{llama_files, render};
use qloader_report::{make_report, ReportOptions};

use crate::args::ReportArgs;

/// Runs the subcommand.
pub fn run(args: ReportArgs) -> Result<()> {
    let mut budgets = Vec::with_capacity(args.budgets.len());
    for b in &args.budgets {
        let v: f64 = b
            .trim_end_matches("bpw")
            .parse()
            .with_context(|| format!("--budgets: `{b}` is not a number of bits per weight"))?;
        if !(v > 0.0 && v <= 32.0) {
            bail!("--budgets: {v} bits per weight is outside (0, 32]");
        }
        budgets.push(v);
    }
    if args.windows == 0 || args.windows > 1024 {
        bail!("--windows must be between 1 and 1024");
    }
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;
    let profile = match &args.profile {
        Some(p) => p.clone(),
        None => {
            eprintln!("measuring this machine's profile …");
            let profile =
                measure_profile("this-machine", &ProfileMeasurement::default(), &mut |_| {});
            let path = args.output.join("profile.toml");
            profile.write(&path)?;
            path
        }
    };
    let options = ReportOptions {
        model: args.model.clone().unwrap_or_else(fixtures::smollm2_gguf),
        table: args.table.clone(),
        profile,
        budgets,
        uniform: args.uniform.clone(),
        recipes: !args.no_recipes,
        windows: args.windows,
        out_dir: args.output.clone(),
        keep_packed: args.keep_packed,
        method: args.method,
        llama_cpp: match (&args.llama_cpp_types, args.llama_cpp) {
            (Some(types), _) => types.clone(),
            (None, true) => llama_files::DEFAULT_TYPES.map(String::from).to_vec(),
            (None, false) => Vec::new(),
        },
    };
    let report = make_report(&options, &mut |line| eprintln!("{line}"))
        .with_context(|| format!("reporting on {}", options.model.display()))?;
    render::write(&report, &args.output)?;
    print!("{}", render::markdown(&report));
    eprintln!(
        "wrote {}/report.md, report.html, frontier.svg, predicted.svg, report.json",
        args.output.display()
    );
    Ok(())
}
