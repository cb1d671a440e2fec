//! `qloader analyze`: build a sensitivity table (with a progress bar on a
//! terminal), write it atomically and print its summary; or, with
//! `--summary`, print the summary of an existing table.

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use qloader_analyze::request::{run as analyze, AnalyzeRequest, Stage};
use qloader_analyze::summary::summarize;
use qloader_analyze::SensitivityTable;
use qloader_format::fixtures;
use qloader_format::weight_format::join_names;

use crate::args::AnalyzeArgs;

/// Runs the command.
pub fn run(args: AnalyzeArgs) -> Result<()> {
    if let Some(path) = &args.summary {
        let table = SensitivityTable::read(path)?;
        print_summary(&table, &args)?;
        return Ok(());
    }
    let model = args.model.clone().unwrap_or_else(fixtures::smollm2_gguf);
    let calibration = args.calib.clone().unwrap_or_else(fixtures::alice_text);
    if !model.exists() {
        bail!("{}: no such model (run scripts/fetch-fixtures.sh for the default)", model.display());
    }
    if !args.data_free && !calibration.exists() {
        bail!(
            "{}: no such calibration text (run scripts/fetch-fixtures.sh for the default, or pass --data-free)",
            calibration.display()
        );
    }
    let req = AnalyzeRequest {
        model: model.clone(),
        calibration,
        formats: args.formats.clone(),
        samples: args.samples,
        window: args.window,
        e2e_samples: args.e2e_samples,
        e2e_formats: args.e2e_formats.clone(),
        data_free: args.data_free,
        method: args.method,
    };
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {pos}/{len} measurements, {elapsed_precise} elapsed, ETA {eta}",
        )
        .context("progress template")?
        .progress_chars("=> "),
    );
    let mut on_stage = |stage: Stage| match stage {
        Stage::Loading => bar.set_message(format!("loading {}", model.display())),
        Stage::Measuring(p) => {
            if bar.length() != Some(p.total as u64) {
                bar.set_length(p.total as u64);
                bar.set_message("analyzing");
            }
            bar.set_position(p.done as u64);
        }
    };
    let table =
        analyze(&req, &mut on_stage).with_context(|| format!("analyzing {}", model.display()))?;
    bar.finish_and_clear();
    table.write(&args.output)?;
    eprintln!("wrote {}", args.output.display());
    print_summary(&table, &args)
}

fn print_summary(table: &SensitivityTable, args: &AnalyzeArgs) -> Result<()> {
    if let Some(f) = args.rank_format {
        if !table.formats.contains(&f) {
            bail!("format {f} is not in the table (it has {})", join_names(&table.formats));
        }
    }
    print!("{}", summarize(table, args.rank_format, args.top));
    Ok(())
}
