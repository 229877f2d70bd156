//! The library side of the `bindery` binary: the registry of every binding this build carries
//! (chosen by cargo features), shared by the binary, its tools and its tests.

mod registry;

pub use registry::registry;
