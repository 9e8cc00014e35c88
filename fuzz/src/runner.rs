//! A stable, time-boxed fuzzing driver: no coverage feedback, just a small
//! deterministic mutator walking away from the seeds of a corpus.
//!
//! Each execution starts from a corpus entry (or from the input before it,
//! so that mutations pile up), applies a few random edits — flip a bit, set
//! a byte to a random or an edge value, insert, delete or duplicate a run of
//! bytes, splice in a piece of another entry — and runs the target. A panic
//! is caught and returned with the input that caused it. The same seed gives
//! the same sequence of inputs.

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A fuzz target: panics when its input reveals a bug.
pub type Target = fn(&[u8]);

/// Inputs are kept at most this long.
pub const MAX_INPUT: usize = 4096;

/// Xorshift64*: a tiny deterministic generator (not for cryptography).
#[derive(Clone, Debug)]
pub struct Xorshift(u64);

impl Xorshift {
    /// A generator from `seed` (any value; 0 is replaced).
    pub fn new(seed: u64) -> Self {
        Xorshift(if seed == 0 { 0x9e37_79b9_7f4a_7c15 } else { seed })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `bound` (0 when `bound` is 0).
    pub fn below(&mut self, bound: usize) -> usize {
        if bound == 0 {
            0
        } else {
            (self.next_u64() % bound as u64) as usize
        }
    }
}

/// Applies one to eight random edits to `input`, taking pieces from `corpus`.
pub fn mutate(rng: &mut Xorshift, input: &mut Vec<u8>, corpus: &[Vec<u8>]) {
    const EDGES: [u8; 8] = [0, 1, 0x7f, 0x80, 0xfe, 0xff, b';', b'"'];
    for _ in 0..1 + rng.below(8) {
        let len = input.len();
        match rng.below(8) {
            0 if len > 0 => {
                let at = rng.below(len);
                input[at] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let at = rng.below(len);
                input[at] = rng.next_u64() as u8;
            }
            2 if len > 0 => {
                let at = rng.below(len);
                input[at] = EDGES[rng.below(EDGES.len())];
            }
            3 => {
                let at = rng.below(len + 1);
                input.insert(at, rng.next_u64() as u8);
            }
            4 if len > 0 => {
                let from = rng.below(len);
                let to = (from + 1 + rng.below(16)).min(len);
                input.drain(from..to);
            }
            5 if len > 0 => {
                let from = rng.below(len);
                let to = (from + 1 + rng.below(32)).min(len);
                let piece: Vec<u8> = input[from..to].to_vec();
                let at = rng.below(len + 1);
                input.splice(at..at, piece);
            }
            6 if !corpus.is_empty() => {
                let other = &corpus[rng.below(corpus.len())];
                if !other.is_empty() {
                    let from = rng.below(other.len());
                    let to = (from + 1 + rng.below(64)).min(other.len());
                    let at = rng.below(len + 1);
                    input.splice(at..at, other[from..to].iter().copied());
                }
            }
            _ => {
                let extra = 1 + rng.below(8);
                input.extend((0..extra).map(|_| rng.next_u64() as u8));
            }
        }
    }
    input.truncate(MAX_INPUT);
}

/// The directory of `target`'s committed corpus: `fuzz/corpus/TARGET`.
pub fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target)
}

/// Every file of `dir`, in name order (so that a run is reproducible).
pub fn load_corpus(dir: &Path) -> std::io::Result<Vec<Vec<u8>>> {
    let mut paths: Vec<PathBuf> =
        std::fs::read_dir(dir)?.map(|entry| entry.map(|e| e.path())).collect::<Result<_, _>>()?;
    paths.retain(|path| path.is_file());
    paths.sort();
    paths.iter().map(std::fs::read).collect()
}

/// An input that made the target panic, and the panic's message.
#[derive(Debug)]
pub struct Finding {
    /// The input.
    pub input: Vec<u8>,
    /// What the target said.
    pub message: String,
}

/// What a campaign did.
#[derive(Clone, Copy, Debug)]
pub struct Report {
    /// Inputs run, corpus entries included.
    pub executions: u64,
    /// Corpus entries run as they are.
    pub seeds: usize,
    /// Time spent.
    pub elapsed: Duration,
}

/// Runs `target` on `input`, turning a panic into a [`Finding`].
pub fn run_one(target: Target, input: &[u8]) -> Result<(), Finding> {
    panic::catch_unwind(AssertUnwindSafe(|| target(input))).map_err(|payload| {
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic without a message".into());
        Finding { input: input.to_vec(), message }
    })
}

/// Runs `target` on every corpus entry, then on mutated inputs until
/// `budget` has passed. Stops at the first panic.
pub fn run(target: Target, corpus: &[Vec<u8>], budget: Duration, seed: u64) -> Result<Report, Finding> {
    let started = Instant::now();
    for entry in corpus {
        run_one(target, entry)?;
    }
    let mut rng = Xorshift::new(seed);
    let mut executions = corpus.len() as u64;
    let mut input = Vec::new();
    while started.elapsed() < budget {
        // Mostly go on from the last input; now and then start again from a seed.
        if input.is_empty() || rng.below(8) == 0 {
            input = corpus.get(rng.below(corpus.len())).cloned().unwrap_or_default();
        }
        mutate(&mut rng, &mut input, corpus);
        run_one(target, &input)?;
        executions += 1;
    }
    Ok(Report { executions, seeds: corpus.len(), elapsed: started.elapsed() })
}
