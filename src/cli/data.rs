//! `data fetch` and `data list`: the papers' datasets in the local cache.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use ladder::data::fetch;

#[derive(Subcommand)]
pub enum DataCmd {
    /// Download a dataset (mnist, fashion-mnist, cifar10, cifar100) into the cache, checking every file's
    /// SHA-256; an interrupted download resumes.
    Fetch(FetchCmd),
    /// The datasets `fetch` knows, and whether each is in the cache.
    List(CacheArgs),
}

#[derive(Args)]
pub struct CacheArgs {
    /// The cache [default: $XDG_CACHE_HOME/ladder or ~/.cache/ladder].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Args)]
pub struct FetchCmd {
    /// The dataset: mnist, fashion-mnist or cifar10.
    pub name: String,
    #[command(flatten)]
    pub cache: CacheArgs,
    /// Download the files from this base URL (a mirror holding the same file names) instead of
    /// their official locations [default: the official URLs].
    #[arg(long)]
    pub mirror: Option<String>,
    /// Download again files that are in the cache but fail their checksum.
    #[arg(long)]
    pub force: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn data(cmd: DataCmd) -> Result<()> {
    match cmd {
        DataCmd::Fetch(cmd) => fetch_cmd(cmd),
        DataCmd::List(cache) => {
            let dir = fetch::cache_dir(cache.data_dir.as_deref())?;
            for set in fetch::datasets() {
                let here = fetch::data_path(&set, &dir).exists();
                let state = if here { "fetched" } else { "not fetched" };
                println!("{:<14} {state:<12} {}", set.name, set.about);
            }
            println!("cache: {}", dir.display());
            Ok(())
        }
    }
}

fn fetch_cmd(cmd: FetchCmd) -> Result<()> {
    let set = fetch::dataset(&cmd.name)?;
    let cache = fetch::cache_dir(cmd.cache.data_dir.as_deref())?;
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if cmd.quiet {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let mut progress = |url: &str, done: u64, total: Option<u64>| {
        bar.set_message(url.rsplit('/').next().unwrap_or(url).to_string());
        if let Some(t) = total {
            bar.set_length(t);
        }
        bar.set_position(done);
    };
    let dir = fetch::fetch(
        &set,
        &cache,
        cmd.mirror.as_deref(),
        cmd.force,
        &mut progress,
    )?;
    bar.finish_and_clear();
    println!("{}: {}", set.name, dir.display());
    eprintln!("use it with --data {}", set.name);
    Ok(())
}
