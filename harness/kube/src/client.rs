//! A client for the kubeconfig context named explicitly, and API errors as typed
//! infrastructure errors.
//!
//! 403 Forbidden and 401 Unauthorized become [`InfraError::Forbidden`] /
//! [`InfraError::Unauthorized`] naming the verb, resource and namespace: callers never retry
//! them (no retry turns a missing permission into a granted one).

use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use tokio::runtime::Runtime;

use netreach_core::cluster::InfraError;

/// How long one API call may take before it counts as unanswered.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) fn unreachable(context: &str, e: impl std::fmt::Display) -> InfraError {
    InfraError::Unreachable {
        context: context.to_owned(),
        reason: e.to_string(),
    }
}

/// Builds a client for `context` from the kubeconfig (`KUBECONFIG` or `~/.kube/config`).
///
/// # Errors
/// When the kubeconfig cannot be read or has no such context.
pub async fn client_for(context: &str) -> Result<Client, InfraError> {
    client_from(context, None).await
}

/// Builds a client for `context` from `file`, or as [`client_for`] does when `None`.
///
/// # Errors
/// When the kubeconfig cannot be read or has no such context.
pub async fn client_from(
    context: &str,
    file: Option<&std::path::Path>,
) -> Result<Client, InfraError> {
    let kubeconfig = match file {
        Some(f) => Kubeconfig::read_from(f),
        None => Kubeconfig::read(),
    }
    .map_err(|e| unreachable(context, format!("cannot read kubeconfig: {e}")))?;
    if !kubeconfig.contexts.iter().any(|c| c.name == context) {
        let names: Vec<String> = kubeconfig.contexts.iter().map(|c| c.name.clone()).collect();
        return Err(unreachable(
            context,
            format!(
                "no such context in the kubeconfig (contexts: {})",
                if names.is_empty() {
                    "none".into()
                } else {
                    names.join(", ")
                }
            ),
        ));
    }
    let opts = KubeConfigOptions {
        context: Some(context.to_owned()),
        ..KubeConfigOptions::default()
    };
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &opts)
        .await
        .map_err(|e| unreachable(context, e))?;
    config.read_timeout = Some(CALL_TIMEOUT);
    config.connect_timeout = Some(Duration::from_secs(10));
    Client::try_from(config).map_err(|e| unreachable(context, e))
}

/// A request, for error messages: verb, resource, namespace.
#[derive(Clone, Copy, Debug)]
pub struct Req<'a> {
    /// `create`, `get`, `list`, `patch`, `delete`.
    pub verb: &'a str,
    /// `namespaces`, `pods`, `pods/exec`, ...
    pub resource: &'a str,
    /// For namespaced requests.
    pub namespace: Option<&'a str>,
}

impl<'a> Req<'a> {
    /// A namespaced request.
    pub fn ns(verb: &'a str, resource: &'a str, namespace: &'a str) -> Self {
        Req {
            verb,
            resource,
            namespace: Some(namespace),
        }
    }

    /// A cluster-scoped request.
    pub fn cluster(verb: &'a str, resource: &'a str) -> Self {
        Req {
            verb,
            resource,
            namespace: None,
        }
    }
}

/// 403 and 401 as their typed errors; anything else through `other`.
pub fn api_error(
    context: &str,
    req: Req<'_>,
    e: &kube::Error,
    other: impl FnOnce(String) -> InfraError,
) -> InfraError {
    match e {
        kube::Error::Api(s) if s.code == 403 => InfraError::Forbidden {
            verb: req.verb.to_owned(),
            resource: req.resource.to_owned(),
            namespace: req.namespace.map(str::to_owned),
            detail: s.message.clone(),
        },
        kube::Error::Api(s) if s.code == 401 => InfraError::Unauthorized {
            context: context.to_owned(),
            detail: s.message.clone(),
        },
        e => other(e.to_string()),
    }
}

/// A multi-threaded runtime with two workers: one for the caller's `block_on`, one so that
/// background tasks (the heartbeat) keep running while the caller sleeps.
///
/// # Errors
/// When the runtime cannot start.
pub fn runtime(context: &str) -> Result<Runtime, InfraError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| unreachable(context, format!("cannot start the async runtime: {e}")))
}

/// A single-threaded runtime for one blocking call.
///
/// # Errors
/// When the runtime cannot start.
pub fn small_runtime(context: &str) -> Result<Runtime, InfraError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| unreachable(context, e))
}

/// `fut` with [`CALL_TIMEOUT`]; a timeout is the API server not answering.
///
/// # Errors
/// The call's own error, or [`InfraError::Unreachable`] after the timeout.
pub async fn bounded<T>(
    context: &str,
    what: &str,
    fut: impl std::future::Future<Output = Result<T, InfraError>>,
) -> Result<T, InfraError> {
    tokio::time::timeout(CALL_TIMEOUT, fut).await.map_err(|_| {
        unreachable(
            context,
            format!(
                "the API server did not answer {what} within {} s",
                CALL_TIMEOUT.as_secs()
            ),
        )
    })?
}
