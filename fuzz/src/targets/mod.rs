//! The fuzz targets: each decodes its input and panics on a wrong answer.

mod exec_loader;
mod paging_model;
mod region_set;
mod shell_parser;

pub use exec_loader::exec_loader;
pub use paging_model::paging_model;
pub use region_set::region_set;
pub use shell_parser::shell_parser;
