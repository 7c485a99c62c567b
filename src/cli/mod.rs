//! The command line, one module per group of subcommands. One convention for every
//! subcommand: a concept has one flag name everywhere (run.py's names as aliases), layer specs
//! are '-'-separated and every other list ','-separated, every flag has a help line that says
//! its default, and the data, configuration and runs are the library's.

pub mod args;
pub mod data;
pub mod inspect;
pub mod ladder;
pub mod plain;
pub mod semantic;
pub mod tune;

use std::sync::atomic::Ordering;

use clap::{Parser, Subcommand};

use ::ladder::experiment::run::INTERRUPTED;

#[derive(Parser)]
#[command(
    name = "ladder",
    version,
    about = "Semi-supervised classifier training with Ladder networks"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Train a Ladder network (or a baseline) and write a run directory.
    #[command(args_override_self = true)]
    Train(ladder::TrainCmd),
    /// Recompute the test error of a finished run from its checkpoint, on its recorded data.
    Evaluate(inspect::EvaluateCmd),
    /// Label the images of an IDX file with a trained run.
    Predict(inspect::PredictCmd),
    /// Measure training throughput; ends with `examples_per_second: N`.
    #[command(args_override_self = true)]
    Bench(ladder::BenchCmd),
    /// Train a plain network: model A (standard), B (adversarial, FGSM) or C (Gaussian noise).
    #[command(name = "train-plain", args_override_self = true)]
    TrainPlain(plain::PlainCmd),
    /// Robust accuracy of trained models: PGD, APGD-CE, Square Attack and FGSM within a clipped
    /// threat model with the worst case per example, and the thesis's unclipped FGSM and
    /// Gaussian-noise test sets: CSV, Markdown, PNG.
    Robustness(inspect::RobustnessCmd),
    /// Pictures of a trained model's first-layer weights and W1·…·WL class patterns.
    Weights(inspect::WeightsCmd),
    /// Write a finished run's inference network as a safetensors file (tensors and metadata
    /// documented in `experiment::export`), for PyTorch and other tools.
    Export(inspect::ExportCmd),
    /// The papers' datasets in the local cache: `data fetch NAME`, `data list`.
    #[command(subcommand)]
    Data(data::DataCmd),
    /// Learning curves of runs of any method (or multi-seed runs: mean and a band of one std):
    /// costs and error rates against the epoch, PNG and SVG.
    Plot(inspect::PlotCmd),
    /// Train every combination of a grid of settings, choose by validation error, tabulate.
    #[command(args_override_self = true)]
    Sweep(ladder::SweepCmd),
    /// Tune one method on a validation split with the same budget as every other (Oliver et
    /// al. 2018), then train its chosen setting on fresh seeds and report the test error.
    #[command(args_override_self = true)]
    Tune(tune::TuneCmd),
    /// Train semantic-noise-modeling networks (003) and their baselines over a grid of models,
    /// training-set sizes and seeds; writes Table 1's layout.
    #[command(name = "train-semantic", args_override_self = true)]
    TrainSemantic(semantic::SemanticCmd),
    /// Rewrite and print the table of a train-semantic grid from its finished cells.
    #[command(name = "semantic-table")]
    SemanticTable(semantic::SemanticTableCmd),
    /// Pictures of a semantic run: reconstructions of perturbed latents (003 Fig. 5) and a
    /// t-SNE of latents with perturbed training examples (Fig. 6).
    #[command(name = "semantic-figures")]
    SemanticFigures(semantic::SemanticFiguresCmd),
    /// List the presets.
    Presets,
}

/// First Ctrl-C: finish the step, save, exit with a resume hint. Second: exit at once.
pub fn install_interrupt_handler() {
    let result = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            eprintln!("\ninterrupted again: exiting without saving");
            std::process::exit(130);
        }
        eprintln!(
            "\ninterrupted: finishing the current step and saving a checkpoint (Ctrl-C again to quit now)"
        );
    });
    if let Err(e) = result {
        eprintln!(
            "warning: cannot handle Ctrl-C ({e}); an interrupted run resumes from its last checkpoint"
        );
    }
}

/// The error and its causes, joined by colons; a cause that the message before it already
/// ends with (our errors quote their I/O cause) is not repeated.
pub fn describe(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain().map(ToString::to_string) {
        if text.ends_with(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// Every flag of every subcommand has a help line, and it states the default unless clap
    /// shows one or the flag is a switch.
    #[test]
    fn every_flag_has_a_help_line_with_its_default() {
        let cli = Cli::command();
        let mut missing = Vec::new();
        for sub in cli.get_subcommands() {
            for arg in sub.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                let switch = matches!(arg.get_action(), clap::ArgAction::SetTrue);
                let positional = arg.get_long().is_none();
                let shown = !arg.get_default_values().is_empty();
                let default_said = switch
                    || positional
                    || shown
                    || arg.is_required_set()
                    || help.contains("[default");
                if help.is_empty() || !default_said {
                    missing.push(format!("{} --{id}: '{help}'", sub.get_name()));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "flags without a help line stating the default:\n{}",
            missing.join("\n")
        );
    }

    /// The configuration flags are named as the configuration's fields, so the one resolver
    /// takes each of them (an unknown name would be refused).
    #[test]
    fn every_configuration_flag_names_a_field() {
        let all = Cli::try_parse_from([
            "ladder",
            "train",
            "--encoder-layers",
            "20-10",
            "--decoder-spec",
            "gauss",
            "--denoising-cost-x",
            "1,1,1",
            "--labeled-samples",
            "10",
            "--unlabeled-samples",
            "100",
            "--validation-samples",
            "5",
            "--seed",
            "2",
            "--num-epochs",
            "3",
            "--lr",
            "0.1",
            "--lrate-decay",
            "0.5",
            "--batch-size",
            "10",
            "--super-noise-std",
            "0.2",
            "--f-local-noise-std",
            "0.2",
            "--top-c",
            "false",
            "--act",
            "leakyrelu",
            "--num-classes",
            "10",
            "--eval-every",
            "2",
            "--monitor-moments",
            "0",
            "--adv-sup-kind",
            "grad",
            "--adv-sup-tau",
            "0.1",
            "--adv-sup-gaussian",
            "false",
            "--adv-unsup-kind",
            "sign",
            "--adv-unsup-tau",
            "0.1",
            "--adv-unsup-gaussian",
            "false",
            "--grey",
            "false",
            "--contrast-norm",
            "1",
            "--zca",
            "false",
            "--zca-bias",
            "0.2",
            "--crop",
            "0",
            "--flip",
            "false",
            "--vat-epsilon",
            "0.3",
            "--vat-xi",
            "1e-6",
            "--vat-iterations",
            "2",
            "--vat-weight",
            "0.5",
            "--entmin",
            "true",
            "--lvan-epsilon",
            "0",
            "--lvan-noise-std",
            "0.5",
            "--consistency-weight",
            "0",
            "--consistency-rampup",
            "10",
            "--mean-teacher-decay",
            "0",
        ])
        .unwrap();
        let Command::Train(cmd) = all.command else {
            panic!("not train")
        };
        let c = cmd.config.resolve().unwrap();
        assert_eq!((c.epochs, c.seed, c.lr, c.eval_every), (3, 2, 0.1, 2));
        let plain = Cli::try_parse_from([
            "ladder",
            "train-plain",
            "--model",
            "b",
            "--layers",
            "30",
            "--epsilon",
            "0.1",
            "--alpha",
            "0.4",
            "--optimizer",
            "adam",
            "--lr",
            "0.1",
            "--momentum-start",
            "0.4",
            "--momentum-final",
            "0.9",
            "--momentum-saturate",
            "3",
            "--batch-size",
            "10",
            "--epochs",
            "4",
            "--patience",
            "2",
            "--validation-samples",
            "20",
            "--labeled-samples",
            "0",
            "--sparse-init",
            "0",
            "--seed",
            "3",
            "--num-classes",
            "10",
            "--grey",
            "false",
        ])
        .unwrap();
        let Command::TrainPlain(cmd) = plain.command else {
            panic!("not train-plain")
        };
        let c = cmd.config.resolve().unwrap();
        assert_eq!((c.max_epochs, c.hidden_layers.text(), c.seed), (4, "30", 3));
        let semantic = Cli::try_parse_from([
            "ladder",
            "train-semantic",
            "--out",
            "x",
            "--layers",
            "fc:20",
            "--lambda-input",
            "0.1",
            "--lambda-latent",
            "0.1",
            "--lambda-hidden",
            "0.1",
            "--lambda-supervised",
            "1",
            "--noise-std",
            "0.1",
            "--lr",
            "0.01",
            "--lr-decay-factor",
            "2",
            "--lr-decay-every",
            "2",
            "--lr-decay-until",
            "4",
            "--epochs",
            "4",
            "--batch-size",
            "10",
            "--validation-samples",
            "10",
            "--mean-subtraction",
            "false",
            "--crop",
            "0",
            "--flip",
            "false",
            "--num-classes",
            "10",
        ])
        .unwrap();
        let Command::TrainSemantic(cmd) = semantic.command else {
            panic!("not train-semantic")
        };
        let c = cmd.config.resolve().unwrap();
        assert_eq!((c.epochs, c.layers.text()), (4, "fc:20"));
    }
}
