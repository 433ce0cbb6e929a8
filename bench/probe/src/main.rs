//! `medulla-bench`: the client side of Medulla's benchmark harness (`bench/`).
//!
//! - `latency`: end-to-end and acknowledgement latency at a fixed offered rate, with
//!   rdkafka (`latency.rs`).
//! - `conns`: many connections, each a long-polling consumer, over kafka-protocol and
//!   tokio (`conns.rs`, `wire.rs`).
//!
//! Each prints a one-line summary on stdout and, with `--out`, writes a JSON report
//! whose fields the harness reads. Errors go to stderr with exit status 1; `latency`
//! also exits 1, after its report, when a measured record was lost.

mod conns;
mod latency;
mod limits;
mod stats;
mod wire;

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde::Serialize;

#[derive(Parser)]
#[command(
    name = "medulla-bench",
    version,
    about = "Client side of Medulla's benchmark harness"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// End-to-end latency at a fixed offered rate (rdkafka producer and consumer).
    Latency(latency::Args),
    /// Many connections, each a long-polling consumer of one partition, until SIGTERM.
    Conns(conns::Args),
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("medulla-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Latency(args) => {
            let report = latency::run(&args)?;
            println!("{}", report.summary_line());
            write_report(args.out.as_deref(), &report)?;
            if !report.complete() {
                eprintln!(
                    "medulla-bench: error: {} of {} measured records received, {} delivery errors",
                    report.records_received, report.records_sent, report.delivery_errors
                );
                return Ok(ExitCode::FAILURE);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Conns(args) => {
            let report = conns::run(&args)?;
            println!("{}", report.summary_line());
            write_report(args.out.as_deref(), &report)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn write_report(out: Option<&Path>, report: &impl Serialize) -> anyhow::Result<()> {
    let Some(out) = out else {
        return Ok(());
    };
    let mut json = serde_json::to_string_pretty(report).context("encode the report")?;
    json.push('\n');
    std::fs::write(out, json).with_context(|| format!("write {}", out.display()))
}
