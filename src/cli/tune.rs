//! `tune`: one method tuned on a validation split with the same budget as every other, then
//! its chosen setting trained on fresh seeds (`experiment::tune`).

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;

use ladder::experiment::parse_seeds;
use ladder::experiment::run::fresh_dir;
use ladder::experiment::sweep::GridAxis;
use ladder::experiment::tune::{
    DEFAULT_BUDGET, DEFAULT_VALIDATION, Family, SEARCH_DIR, TUNE_FILE, TuneOutcome, TuneSpec,
    search_space, status, tune,
};

use super::args::{DataArgs, RunArgs, ShareArgs, read_resumed, refuse_with_resume};
use super::ladder::ConfigArgs;

#[derive(Args)]
pub struct TuneCmd {
    /// The method and its network: a preset, --method and flags as `train` takes them (e.g.
    /// `--preset mnist-100-vat`); the search space is the method's own (see
    /// `experiment::tune::search_space`). Without --validation-samples, 1000 training examples
    /// are held out for the choice.
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// Replace the method's search space with these axes (`field=v1,v2,…`, repeatable; `a+b=v`
    /// sets both fields); still held to --budget [default: the method's built-in space].
    #[arg(long = "grid")]
    pub grid: Vec<String>,
    /// The most settings the search may try: the same for every method of a comparison.
    #[arg(long, default_value_t = DEFAULT_BUDGET)]
    pub budget: usize,
    /// Seeds each setting of the search is trained with; the choice is on their mean
    /// validation error.
    #[arg(long, default_value = "1")]
    pub select_seeds: String,
    /// Seeds the chosen setting is trained with for the reported test error (a search run
    /// with the same seed is the same run, and is reused).
    #[arg(long, default_value = "1-5")]
    pub seeds: String,
    /// Output directory [default: a fresh one under runs/].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Finish the tune in this directory on its recorded method, space, seeds and data
    /// [default: start a new tune].
    #[arg(long, value_name = "TUNE_DIR", conflicts_with_all = ["out", "force", "grid", "seeds", "select_seeds", "budget"])]
    pub resume: Option<PathBuf>,
    /// Print the state of every run of the tune in this directory and train nothing; exits 1
    /// while runs are not done [default: train].
    #[arg(long, value_name = "TUNE_DIR", conflicts_with_all = ["out", "force", "grid", "seeds", "select_seeds", "budget", "resume"])]
    pub status: Option<PathBuf>,
    #[command(flatten)]
    pub share: ShareArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

pub fn run_tune(cmd: TuneCmd) -> Result<()> {
    if let Some(dir) = &cmd.status {
        return print_status(dir, &cmd.share);
    }
    let share = cmd
        .share
        .task("tune", cmd.resume.is_some(), cmd.out.is_some())?;
    refuse_with_resume(cmd.resume.as_deref(), &cmd.config.given())?;
    let (spec, out, data) = match &cmd.resume {
        Some(dir) => {
            let spec: TuneSpec = read_resumed(dir, TUNE_FILE, "tune")?;
            // The search's sweep records the data the tune trains on.
            let data = cmd
                .data
                .of_run(&dir.join(SEARCH_DIR), spec.base.num_classes)?;
            (spec, dir.clone(), data)
        }
        None => {
            let spec = new_spec(&cmd)?;
            let data = cmd.data.load(spec.base.num_classes)?;
            let out = cmd
                .out
                .clone()
                .unwrap_or_else(|| fresh_dir(std::path::Path::new("runs"), "tune"));
            (spec, out, data)
        }
    };
    let opts = cmd.run.options(cmd.resume.is_some(), spec.preset.clone())?;
    let quiet = cmd.run.quiet;
    let share = cmd.share.share_or_whole(share, &out, quiet)?;
    if !quiet {
        eprintln!(
            "tuning {} on {} validation examples: {} settings × seeds {:?}, then seeds {:?}",
            spec.family.name(),
            spec.base.validation_samples,
            ladder::experiment::sweep::cells(&spec.axes).len(),
            spec.select_seeds,
            spec.seeds
        );
    }
    let outcome = tune(&spec, &data, &out, &opts, &share, &mut |m| {
        if !quiet {
            eprintln!("{m}");
        }
    })?;
    match outcome {
        TuneOutcome::Done(report) => {
            print!("{}", report.to_markdown());
            println!("tune directory: {}", out.display());
        }
        TuneOutcome::Waiting(why) => println!(
            "this task's share is done; {why}: the same command continues once they have \
             ended (ladder tune --status {} shows them)",
            out.display()
        ),
    }
    Ok(())
}

/// A new tune from the flags: the method's configuration (with the default validation split
/// when none is given) and its search space.
fn new_spec(cmd: &TuneCmd) -> Result<TuneSpec> {
    if cmd.config.seed.is_some() {
        bail!("tune trains with --select-seeds and --seeds: give those, not --seed");
    }
    let mut base = cmd.config.resolve()?;
    if cmd.config.validation_samples.is_none() && base.validation_samples == 0 {
        base.validation_samples = DEFAULT_VALIDATION;
    }
    let family = Family::of(&base);
    let axes = if cmd.grid.is_empty() {
        search_space(family)?
    } else {
        cmd.grid
            .iter()
            .map(|g| GridAxis::parse(g))
            .collect::<std::result::Result<Vec<_>, _>>()?
    };
    if axes.iter().any(|a| a.name == "method") {
        bail!("tune tunes one method: give it with --preset or --method, not as a grid axis");
    }
    let spec = TuneSpec {
        base,
        family,
        preset: cmd.config.preset.clone(),
        axes,
        budget: cmd.budget,
        select_seeds: parse_seeds(&cmd.select_seeds)?,
        seeds: parse_seeds(&cmd.seeds)?,
    };
    spec.validate()?;
    Ok(spec)
}

fn print_status(dir: &std::path::Path, share: &ShareArgs) -> Result<()> {
    let states = status(dir, &share.claims()?)?;
    let mut open = Vec::new();
    for (name, state) in &states {
        println!("{name}: {}", state.word());
        if state.word() != "done" && state.word() != "diverged" {
            open.push(name.clone());
        }
    }
    let final_begun = states.iter().any(|(n, _)| n.starts_with("final/"));
    if open.is_empty() && final_begun {
        println!("every run of the tune in {} is done", dir.display());
        return Ok(());
    }
    if open.is_empty() {
        bail!(
            "the search in {} is done; its final runs have not begun (ladder tune --resume {})",
            dir.display(),
            dir.display()
        );
    }
    bail!(
        "{} runs of the tune in {} are not done",
        open.len(),
        dir.display()
    )
}
