//! `qloader profile`: measure this machine into a device profile (printed,
//! or written atomically with `-o`), or validate and describe a profile
//! with `--check`.

use std::io::IsTerminal;

use anyhow::Result;
use qloader_hw::{measure_profile, DeviceProfile, ProfileMeasurement};

use crate::args::ProfileArgs;
use crate::output::human_bytes;

/// Runs `qloader profile`.
pub fn run(args: ProfileArgs) -> Result<()> {
    if let Some(path) = &args.check {
        let profile = DeviceProfile::read(path)?;
        println!("{}: valid device profile\n", path.display());
        print!("{}", describe(&profile));
        return Ok(());
    }
    let verbose = std::io::stderr().is_terminal();
    let start = std::time::Instant::now();
    let mut profile = measure_profile(&args.name, &ProfileMeasurement::default(), &mut |what| {
        if verbose {
            eprintln!("timing {what}…");
        }
    });
    profile.memory.model_bytes = args.model_memory;
    profile
        .validate()
        .map_err(|reason| anyhow::anyhow!("measured profile is invalid: {reason}"))?;
    eprintln!("measured in {:.1} s", start.elapsed().as_secs_f64());
    match &args.output {
        Some(path) => {
            profile.write(path)?;
            eprint!("{}", describe(&profile));
            eprintln!("wrote {}", path.display());
        }
        None => print!("{}", profile.to_toml()),
    }
    Ok(())
}

/// A profile in a few readable lines: the device, its memory, a kernel
/// table and the fallbacks.
fn describe(p: &DeviceProfile) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "device: {}{}", p.name, if p.measured { " (measured)" } else { "" });
    if !p.description.is_empty() {
        let _ = writeln!(out, "  {}", p.description);
    }
    let _ = writeln!(
        out,
        "cpu: {} ({} cores), tier {}, features: {}",
        p.cpu.model,
        p.cpu.cores,
        p.cpu.kernel_tier,
        if p.cpu.features.is_empty() { "none listed".to_owned() } else { p.cpu.features.join(" ") }
    );
    let size = |b: Option<u64>| b.map_or("not stated".to_owned(), |b| human_bytes(b as usize));
    let _ = writeln!(
        out,
        "memory: {} total, {} for the model, read bandwidth {}",
        size(p.memory.total_bytes),
        size(p.memory.model_bytes),
        p.memory
            .read_bandwidth_bytes_per_second
            .map_or("not stated".to_owned(), |b| format!("{:.1} GB/s", b / 1e9))
    );
    let _ = writeln!(out, "\n| weights | activations | isa | GMAC/s batch 1 | GMAC/s batch 8 |");
    let _ = writeln!(out, "|---|---|---|---:|---:|");
    for k in &p.kernels {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.2} | {:.2} |",
            k.weights,
            k.activations,
            k.isa,
            k.batch1_macs_per_second / 1e9,
            k.batch8_macs_per_second / 1e9
        );
    }
    if p.fallbacks.is_empty() {
        let _ = writeln!(out, "\nfallbacks: none");
    } else {
        let list: Vec<String> = p.fallbacks.iter().map(|(a, b)| format!("{a} → {b}")).collect();
        let _ = writeln!(out, "\nfallbacks (converted at load): {}", list.join(", "));
    }
    out
}
