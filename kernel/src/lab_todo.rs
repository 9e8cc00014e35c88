//! The Paging Lab's bodies still unwritten in this build.
//!
//! In a student kit (`cargo xtask lab new`) each body a student writes
//! starts as a line that is only `todo!("Task N: ...")` (or `todo!("Extra
//! credit (...): ...")`); `build.rs` lists those lines of the kernel's and
//! the paging crates' sources. The reference has none. The kernel itself
//! never runs a lab body to boot (its own map is built without them, see
//! `address_space::base`); what runs one only to try the student's paging
//! code on its own, the shell's startup test, asks here first and names
//! the unwritten bodies instead of stopping the kernel at the first
//! `todo!`. Everything else the student asks for (`as add`, `pagingTest`,
//! ...) runs the code as it is, and an unwritten body panics naming its
//! task.

include!(concat!(env!("OUT_DIR"), "/lab_todo.rs"));

/// Every unwritten body's `todo!` message (`Task 1: add_region: ...`), in
/// source order; empty in the reference.
pub fn unwritten() -> &'static [&'static str] {
    UNWRITTEN
}

/// The unwritten bodies of the tasks named, each by the start of its
/// messages (`"Task 1"`, `"Extra credit (shootdown)"`): task by task in
/// the order given, each task's in source order.
pub fn unwritten_of<'a>(tasks: &'a [&str]) -> impl Iterator<Item = &'static str> + 'a {
    tasks.iter().flat_map(|task| unwritten().iter().copied().filter(move |message| is_of_task(message, task)))
}

/// True when `message` is the `todo!` message of a body of `task`: it
/// starts with the task's name followed by `:` (so "Task 1" is not "Task 10").
fn is_of_task(message: &str, task: &str) -> bool {
    message.strip_prefix(task).is_some_and(|rest| rest.starts_with(':'))
}
