//! `qloader`: the command-line front end. It parses arguments, calls the
//! library crates and prints; it holds no numeric code.

mod args;
mod commands;
mod output;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Output piped into a reader that stops early (`qloader inspect … |
    // head`) ends the program quietly, as other command-line tools do,
    // instead of a panic on the failed write.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any
    // thread is started; no handler is installed.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = args::Cli::parse();
    let result = match cli.command {
        args::Command::Embed(a) => commands::embed::run(a),
        args::Command::Eval(a) => commands::eval::run(a),
        args::Command::Generate(a) => commands::generate::run(a),
        args::Command::Perplexity(a) => commands::perplexity::run(a),
        args::Command::Analyze(a) => commands::analyze::run(a),
        args::Command::Bench(args::BenchCommand::Kernels(a)) => commands::bench::run_kernels(a),
        args::Command::Bench(args::BenchCommand::Model(a)) => commands::bench_model::run(a),
        args::Command::Profile(a) => commands::profile::run(a),
        args::Command::Plan(a) => commands::plan::run(a),
        args::Command::Pack(a) => commands::pack::run(a),
        args::Command::Inspect(a) => commands::inspect::run(a),
        args::Command::Export(a) => commands::export::run(a),
        args::Command::Run(a) => commands::run::run(a),
        args::Command::Report(a) => commands::report::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
