//! The bounded list of lines already entered, which the arrow keys walk.

use alloc::collections::VecDeque;
use alloc::string::String;

/// The lines entered so far, oldest first, at most `capacity` of them.
///
/// Blank lines (nothing but ASCII whitespace) are not kept, nor a line equal
/// to the one just before it, so that walking back with the up arrow never
/// shows the same line twice in a row.
#[derive(Clone, Debug)]
pub struct History {
    entries: VecDeque<String>,
    capacity: usize,
}

impl History {
    /// An empty history that keeps at most `capacity` lines (0 keeps none).
    pub fn new(capacity: usize) -> Self {
        History { entries: VecDeque::new(), capacity }
    }

    /// Records `line`, unless it is blank (nothing but ASCII whitespace,
    /// which is all the shell skips) or repeats the newest entry; the oldest
    /// entry is forgotten when the history is full.
    pub fn push(&mut self, line: &str) {
        if self.capacity == 0 || line.trim_ascii().is_empty() {
            return;
        }
        if self.entries.back().is_some_and(|newest| newest == line) {
            return;
        }
        if self.entries.len() >= self.capacity {
            self.entries.pop_front();
        }
        self.entries.push_back(String::from(line));
    }

    /// The entry at `index`, counting from the oldest (0).
    pub fn get(&self, index: usize) -> Option<&str> {
        self.entries.get(index).map(String::as_str)
    }

    /// How many lines are kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no line is kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The most lines kept at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The entries, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(String::as_str)
    }
}
