//! Probing through the exec API: one exec per source pod per round (or one per cell, for
//! benchmarks), its probes in one bash script, results parsed by the core's `probe` module.
//!
//! Failures are typed ([`ProbeError`]): an exec the API server refuses is `Forbidden` (the
//! round fails at once, never retried); one that could not start or whose stream broke is
//! `Transport`; one that outlived its deadline is `Deadline`; a probe whose line never came is
//! `Lost`. The session retries lost answers once, at once.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, AttachParams};
use tokio::io::AsyncReadExt;

use netreach_core::bind::{BoundProbe, ProbeAction};
use netreach_core::outcome::{Observation, Outcome, ProbeError};
use netreach_core::probe::{self, Command, ProbeTimeout};

/// One probe of a batch: (index, action, argv).
type BatchItem<'a> = (usize, &'a ProbeAction, Vec<String>);

/// One exec: (real namespace, pod name, cell index in per-cell mode or 0).
pub type SourcePod = (String, String, usize);

/// Execs in flight across every session of this process (`--parallelism` of a run with
/// `--jobs`): set once, before the first round.
static LIMIT: std::sync::OnceLock<std::sync::Arc<tokio::sync::Semaphore>> =
    std::sync::OnceLock::new();

/// Bounds the execs in flight across all sessions of this process (first call wins).
pub fn set_global_limit(n: usize) {
    let _ = LIMIT.set(std::sync::Arc::new(tokio::sync::Semaphore::new(n.max(1))));
}

/// How long an exec of probes bounded by `t` may take: the probes run concurrently, so one
/// timeout plus curl's extra second, plus room for exec start-up on a loaded node.
pub fn exec_deadline(t: ProbeTimeout) -> Duration {
    Duration::from_secs(u64::from(t.0.max(1)) * 2 + 10)
}

/// After the output ended, how long to wait for the exec's status before calling the
/// stream cut (a cut stream never sends one).
const STATUS_GRACE: Duration = Duration::from_secs(2);

/// Runs `script` in the `probe` container of a pod and returns its stdout.
///
/// # Errors
/// Typed: forbidden, transport, deadline.
pub async fn exec_script(
    client: Client,
    namespace: String,
    pod: String,
    script: String,
    limit: Duration,
) -> Result<String, ProbeError> {
    let api: Api<Pod> = Api::namespaced(client, &namespace);
    let params = AttachParams::default()
        .container("probe")
        .stdin(false)
        .stdout(true)
        .stderr(false);
    let run = async {
        let mut proc = api
            .exec(&pod, ["bash", "-c", script.as_str()], &params)
            .await
            .map_err(|e| match &e {
                kube::Error::Api(s) if s.code == 403 => ProbeError::Forbidden {
                    what: format!("create pods/exec in namespace {namespace}"),
                    detail: s.message.clone(),
                },
                _ => ProbeError::Transport {
                    detail: e.to_string(),
                },
            })?;
        // Read stdout while watching the exec's own task: when the stream breaks, kube-rs ends
        // that task with an error but never closes stdout, so reading alone would wait for the
        // deadline. A task that ends first ends the read (after draining what is buffered).
        let mut stdout = proc.stdout();
        let status = proc.take_status();
        let mut join = Box::pin(proc.join());
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        // `Some(Err(why))`: the exec's task ended with an error (its error type is private).
        let mut ended: Option<Result<(), String>> = None;
        if let Some(so) = stdout.as_mut() {
            loop {
                tokio::select! {
                    n = so.read(&mut chunk) => match n {
                        Ok(0) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        Err(e) => {
                            return Err(ProbeError::Transport {
                                detail: format!("exec output lost: {e}"),
                            })
                        }
                    },
                    j = &mut join, if ended.is_none() => {
                        ended = Some(j.map_err(|e| e.to_string()));
                        while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(100), so.read(&mut chunk)).await {
                            if n == 0 {
                                break;
                            }
                            buf.extend_from_slice(&chunk[..n]);
                        }
                        break;
                    }
                }
            }
        }
        if let Some(Err(e)) = &ended {
            return Err(ProbeError::Transport {
                detail: format!("the exec stream broke: {e}"),
            });
        }
        let status = match status {
            Some(s) => tokio::time::timeout(STATUS_GRACE, s).await.ok().flatten(),
            None => None,
        };
        if ended.is_none() {
            let _ = tokio::time::timeout(STATUS_GRACE, &mut join).await;
        }
        let out = String::from_utf8_lossy(&buf).into_owned();
        if let Some(s) = status
            && s.status.as_deref() == Some("Failure")
            && out.is_empty()
        {
            return Err(ProbeError::Transport {
                detail: s.message.unwrap_or_default(),
            });
        }
        Ok(out)
    };
    tokio::time::timeout(limit, run)
        .await
        .map_err(|_| ProbeError::Deadline {
            seconds: limit.as_secs(),
        })?
}

/// One round: every probe once. Never fails as a whole; a probe without an answer is an
/// error observation. Returns the observations and the number of execs.
pub async fn probe_round(
    client: &Client,
    context: &str,
    probes: &[BoundProbe],
    t: ProbeTimeout,
    batch: bool,
    parallelism: usize,
) -> (Vec<Observation>, usize) {
    let commands: Vec<Command> = probes
        .iter()
        .map(|p| probe::command(&p.action, t))
        .collect();
    let key = |i: usize, p: &BoundProbe| -> SourcePod {
        (
            p.namespace.clone(),
            p.pod.clone(),
            if batch { 0 } else { i },
        )
    };
    let mut groups: BTreeMap<SourcePod, Vec<BatchItem<'_>>> = BTreeMap::new();
    for (i, (p, c)) in probes.iter().zip(&commands).enumerate() {
        if let Command::Run(argv) = c {
            groups
                .entry(key(i, p))
                .or_default()
                .push((i, &p.action, argv.clone()));
        }
    }
    let execs = groups.len();
    let limit = exec_deadline(t);
    let batches: BTreeMap<SourcePod, probe::Batch> = groups
        .iter()
        .map(|(k, items)| (k.clone(), probe::build_batch(items, t)))
        .collect();
    let outputs: Vec<(SourcePod, Result<String, ProbeError>)> =
        futures::stream::iter(batches.iter().map(|(key, batch)| {
            let client = client.clone();
            let script = batch.script.clone();
            let key = key.clone();
            async move {
                // The process-wide bound, if one is set (waiting for it is not part of the
                // exec's deadline).
                let _permit = match LIMIT.get() {
                    Some(s) => Some(std::sync::Arc::clone(s).acquire_owned().await),
                    None => None,
                };
                let r = exec_script(client, key.0.clone(), key.1.clone(), script, limit).await;
                (key, r)
            }
        }))
        .buffer_unordered(parallelism.max(1))
        .collect()
        .await;
    let mut results = Vec::new();
    let mut failed: BTreeMap<SourcePod, ProbeError> = BTreeMap::new();
    for (key, r) in outputs {
        match r {
            Ok(out) => results.extend(batches[&key].parse(&out)),
            Err(e) => {
                failed.insert(key, e);
            }
        }
    }
    let mut obs = probe::observations(probes, &commands, &results, Some(context), t);
    for (i, (o, p)) in obs.iter_mut().zip(probes).enumerate() {
        if let Some(e) = failed.get(&key(i, p))
            && matches!(o.outcome, Outcome::Error(_))
        {
            o.outcome = Outcome::Error(e.clone());
        }
    }
    (obs, execs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exec_deadline_follows_the_probe_timeout() {
        assert_eq!(exec_deadline(ProbeTimeout(1)), Duration::from_secs(12));
        assert_eq!(exec_deadline(ProbeTimeout(2)), Duration::from_secs(14));
        assert_eq!(exec_deadline(ProbeTimeout(0)), Duration::from_secs(12));
    }
}
