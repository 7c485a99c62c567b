//! `ladder`: the command line. Parses, dispatches to the subcommand's module in `cli/`, prints
//! the error of a failed command and exits with its code.

use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

use ladder::LadderError;

mod cli;

use cli::{Cli, Command, data, inspect, ladder as ladder_cli, plain, semantic, tune};

fn main() -> ExitCode {
    ladder::keep_freed_memory();
    let cli = Cli::parse();
    // A kernel build the CPU cannot run (or a misspelt one or kind of products) is refused
    // before any work.
    if let Err(e) = ladder::fused::isa::check_environment() {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    cli::install_interrupt_handler();
    // Run the command on a worker of the thread pool rather than beside it: otherwise, between
    // parallel operations, the pool's spinning workers and this thread are one more runnable
    // thread than there are cores.
    let pool = rayon::ThreadPoolBuilder::new().stack_size(64 << 20).build();
    let result = match pool {
        Ok(pool) => pool.install(|| run(cli.command)),
        Err(e) => Err(anyhow::anyhow!("cannot start the thread pool: {e}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", cli::describe(&e));
            match e.downcast_ref::<LadderError>() {
                Some(LadderError::Interrupted(_)) => ExitCode::from(130),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Train(cmd) => ladder_cli::train(cmd),
        Command::Evaluate(cmd) => inspect::evaluate(cmd),
        Command::Predict(cmd) => inspect::predict(cmd),
        Command::Bench(cmd) => ladder_cli::run_bench(cmd),
        Command::TrainPlain(cmd) => plain::train_plain(cmd),
        Command::Sweep(cmd) => ladder_cli::run_sweep(cmd),
        Command::Tune(cmd) => tune::run_tune(cmd),
        Command::Robustness(cmd) => inspect::robustness_cmd(cmd),
        Command::Weights(cmd) => inspect::weights(cmd),
        Command::Export(cmd) => inspect::export(cmd),
        Command::Data(cmd) => data::data(cmd),
        Command::Plot(cmd) => inspect::plot(cmd),
        Command::TrainSemantic(cmd) => semantic::train_semantic(cmd),
        Command::SemanticTable(cmd) => semantic::table(cmd),
        Command::SemanticFigures(cmd) => semantic::figures(cmd),
        Command::Presets => ladder_cli::presets(),
    }
}
