//! The stable fuzzing runner.
//!
//! ```text
//! cargo run -p nacre-fuzz --release -- TARGET [--seconds N] [--seed S] [--corpus DIR]
//! ```
//!
//! Runs TARGET (`region_set`, `paging_model`, `shell_parser`) over its corpus
//! (default `fuzz/corpus/TARGET`), then on mutated inputs for N seconds
//! (default 10). On a panic it writes the input to
//! `fuzz/artifacts/TARGET/crash-SEED-LENGTH` (the file `cargo fuzz` would
//! replay too) and exits with status 1.

use nacre_fuzz::runner::{self, corpus_dir, load_corpus};
use nacre_fuzz::TARGETS;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

fn usage() -> ExitCode {
    let names: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    eprintln!("usage: nacre-fuzz TARGET [--seconds N] [--seed S] [--corpus DIR]; targets: {}", names.join(", "));
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(name) = args.first() else { return usage() };
    let Some(target) = nacre_fuzz::target(name) else { return usage() };
    let (mut seconds, mut seed, mut corpus) = (10u64, 1u64, corpus_dir(name));
    let mut rest = args[1..].iter();
    while let Some(flag) = rest.next() {
        let Some(value) = rest.next() else { return usage() };
        match flag.as_str() {
            "--seconds" => match value.parse() {
                Ok(n) => seconds = n,
                Err(_) => return usage(),
            },
            "--seed" => match value.parse() {
                Ok(n) => seed = n,
                Err(_) => return usage(),
            },
            "--corpus" => corpus = PathBuf::from(value),
            _ => return usage(),
        }
    }
    let entries = match load_corpus(&corpus) {
        Ok(entries) => entries,
        Err(error) => {
            eprintln!("cannot read the corpus {}: {error}", corpus.display());
            return ExitCode::from(2);
        }
    };
    match runner::run(target, &entries, Duration::from_secs(seconds), seed) {
        Ok(report) => {
            println!(
                "{name}: {} executions ({} corpus entries) in {:.1} s, seed {seed}, no failure",
                report.executions,
                report.seeds,
                report.elapsed.as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(finding) => {
            let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("artifacts").join(name);
            let file = dir.join(format!("crash-{seed}-{}", finding.input.len()));
            let saved = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&file, &finding.input));
            eprintln!("{name}: FAILED: {}", finding.message);
            match saved {
                Ok(()) => eprintln!("input saved to {}", file.display()),
                Err(error) => eprintln!("input not saved ({error}): {:?}", finding.input),
            }
            ExitCode::FAILURE
        }
    }
}
