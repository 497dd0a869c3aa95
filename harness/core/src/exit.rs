//! Exit codes of the `netreach` binary: named, documented, stable.
//!
//! When several apply, the most important wins, in this order: [`INVALID`] (nothing ran),
//! [`MISMATCH`] (the cluster disagrees with a scenario: the signal netreach exists for),
//! [`INFRASTRUCTURE`] (some cells could not be decided), [`DRIFT`] (`--baseline`: cells changed
//! since the baseline run), [`UNSUPPORTED`], [`SUCCESS`].

/// Every probed cell agreed with its expectation; `validate` found no error.
pub const SUCCESS: i32 = 0;
/// At least one cell disagreed with its expectation (`run`), a scenario is invalid
/// (`validate`, whose only job is to judge scenarios), or `lint` / `audit` found an error or a
/// warning.
pub const MISMATCH: i32 = 1;
/// Bad command line (clap's code).
pub const USAGE: i32 = 2;
/// `run` was given a scenario that does not validate; nothing was deployed.
pub const INVALID: i32 = 3;
/// The cluster could not be used or some probes failed for reasons that are not policy (API
/// unreachable, pod not ready, exec lost): those cells are neither passed nor failed.
pub const INFRASTRUCTURE: i32 = 4;
/// No mismatch and no infrastructure error, but some cells could not be tested on this cluster
/// (e.g. SCTP where the kernel has none); `audit`: an object that may change what connects
/// (AdminNetworkPolicy, an unknown kind) is not modelled.
pub const UNSUPPORTED: i32 = 5;
/// `run --baseline` (or `diff`): some cell's observation changed since the baseline report,
/// although nothing else failed (opened, closed, or another change).
pub const DRIFT: i32 = 6;
/// Interrupted (Ctrl-C, SIGTERM): what the run created was deleted first (or, after a second
/// signal, what may be left was named).
pub const INTERRUPTED: i32 = 130;

/// Name and meaning of every code, for `--help` and docs.
pub const TABLE: [(i32, &str, &str); 8] = [
    (
        SUCCESS,
        "success",
        "every cell agreed; validate found no error",
    ),
    (
        MISMATCH,
        "mismatch",
        "a cell disagreed with its expectation (validate: a scenario is invalid; lint, audit: an error or warning finding)",
    ),
    (USAGE, "usage", "bad command line"),
    (
        INVALID,
        "invalid",
        "run was given an invalid scenario; nothing was deployed",
    ),
    (
        INFRASTRUCTURE,
        "infrastructure",
        "the cluster or a probe failed for reasons that are not policy",
    ),
    (
        UNSUPPORTED,
        "unsupported",
        "some cells cannot be tested on this cluster (e.g. SCTP); audit: an object is not modelled",
    ),
    (
        DRIFT,
        "drift",
        "run --baseline / diff: a cell's observation changed since the baseline",
    ),
    (
        INTERRUPTED,
        "interrupted",
        "Ctrl-C / SIGTERM; what the run created was deleted first",
    ),
];
