//! Integration tests: run the built `nshelper` against real namespaces, veths and processes
//! in private worlds made with unshare, and compare it with iproute2 and util-linux run in
//! the same namespace.

mod engine;
mod errors;
mod exec;
mod guarantees;
mod host;
mod links;
mod load;
mod project;
mod rootless;
mod scale;
mod schema;
mod table;
mod util;
mod verbose;
