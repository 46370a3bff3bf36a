//! The local cloud's errors: one variant per failed operation.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::group::GroupError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is outside what is allowed.
    #[error("{field} = {value}: must be {allowed}")]
    Config {
        field: &'static str,
        value: String,
        allowed: &'static str,
    },
    /// The workload binary is missing.
    #[error("workload binary {0} not found (build it: cargo build --release -p workload)")]
    Workload(PathBuf),
    /// A function binary is missing.
    #[error("function binary {0} not found (build them: cargo build --release -p functions)")]
    Functions(PathBuf),
    /// A listener could not bind.
    #[error("could not listen on {addr} for the {what}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The log directory could not be created or written.
    #[error("cannot write instance logs to {path} (--log-dir)")]
    LogDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// No group of that name.
    #[error("no group {group:?} (groups: {groups})")]
    NoSuchGroup { group: String, groups: String },
    /// No running instance of that id.
    #[error("no running instance {0}")]
    NoSuchInstance(String),
    /// No availability zone of that name.
    #[error("no availability zone {az:?} (zones: {azs})")]
    NoSuchAz { az: String, azs: String },
    /// The group refused a change; nothing was changed.
    #[error("group {group}: {source}")]
    Group {
        group: String,
        #[source]
        source: GroupError,
    },
    /// A wait for a group's state ran out of time.
    #[error("group {group}: not ready within {waited:?}")]
    Timeout { group: String, waited: Duration },
}
