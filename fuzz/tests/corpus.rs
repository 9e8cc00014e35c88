//! Every fuzz target over its committed corpus, then two seconds of
//! mutation each: the short campaign `cargo xtask test` runs.

use nacre_fuzz::runner::{self, corpus_dir, load_corpus};
use nacre_fuzz::TARGETS;
use std::time::Duration;

/// Mutation time per target.
const BUDGET: Duration = Duration::from_secs(2);

fn campaign(name: &str) {
    let target = nacre_fuzz::target(name).expect("a known target");
    let corpus = load_corpus(&corpus_dir(name)).expect("the committed corpus");
    assert!(corpus.len() >= 3, "{name}: the corpus has {} entries", corpus.len());
    match runner::run(target, &corpus, BUDGET, 0x5eed) {
        Ok(report) => {
            println!("{name}: {} executions in {:?}", report.executions, report.elapsed);
            assert!(report.executions > corpus.len() as u64, "{name}: no mutated input ran");
        }
        Err(finding) => panic!("{name}: {}\ninput: {:?}", finding.message, finding.input),
    }
}

#[test]
fn region_set_corpus_and_mutations() {
    campaign("region_set");
}

#[test]
fn paging_model_corpus_and_mutations() {
    campaign("paging_model");
}

#[test]
fn shell_parser_corpus_and_mutations() {
    campaign("shell_parser");
}

#[test]
fn exec_loader_corpus_and_mutations() {
    campaign("exec_loader");
}

#[test]
fn every_target_has_a_test_above() {
    let names: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, ["region_set", "paging_model", "shell_parser", "exec_loader"]);
}

#[test]
fn the_mutator_is_deterministic_and_bounded() {
    let corpus = vec![b"seed one".to_vec(), vec![0xff; 100]];
    let walk = |seed| {
        let mut rng = runner::Xorshift::new(seed);
        let mut input = corpus[0].clone();
        (0..2000)
            .map(|_| {
                runner::mutate(&mut rng, &mut input, &corpus);
                input.clone()
            })
            .collect::<Vec<_>>()
    };
    let first = walk(7);
    assert_eq!(first, walk(7), "the same seed gives the same inputs");
    assert_ne!(first, walk(8));
    assert!(first.iter().all(|input| input.len() <= runner::MAX_INPUT));
    assert!(first.iter().any(|input| input != &corpus[0]));
}

#[test]
fn a_panicking_target_is_reported_with_its_input() {
    fn fails_on_x(data: &[u8]) {
        assert!(!data.contains(&b'x'), "found an x");
    }
    let corpus = vec![b"abc".to_vec(), b"axc".to_vec()];
    let finding = runner::run(fails_on_x, &corpus, BUDGET, 1).expect_err("the second seed fails");
    assert_eq!(finding.input, b"axc");
    assert!(finding.message.contains("found an x"), "{}", finding.message);
}
