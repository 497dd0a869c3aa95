//! External endpoints: a container of the probe image on the kind cluster's Docker network,
//! started with testcontainers and labelled with the run id, so cleanup after a crash (`netreach
//! gc`, `cargo xtask cluster down`) finds it by label.
//!
//! testcontainers' own cleanup (removal when the handle is dropped) covers the normal path; the
//! label covers a process that never got to drop it. Its `get_bridge_ip_address` reads the
//! address on the container's network mode, which is the named network here (Docker 20.10 has
//! no network called `default`, so the address is never read from there).

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::{ListContainersOptionsBuilder, RemoveContainerOptionsBuilder};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use netreach_core::cluster::InfraError;
use netreach_core::model::External;

use crate::live::{Kind, LiveRun};
use crate::{MANAGED_BY, RUN_LABEL};

/// A running external endpoint (removed when dropped).
pub struct Endpoint {
    /// The container's name.
    pub name: String,
    /// Its address on the network.
    pub ip: IpAddr,
    container: Option<ContainerAsync<GenericImage>>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("name", &self.name)
            .field("ip", &self.ip)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// Removes the container now.
    ///
    /// # Errors
    /// When Docker refuses (a container that is already gone is not an error).
    pub async fn remove(mut self) -> Result<(), String> {
        match self.container.take() {
            Some(c) => c
                .rm()
                .await
                .map_err(|e| format!("cannot remove container {}: {e}", self.name)),
            None => Ok(()),
        }
    }
}

/// The container name of an endpoint of a run.
pub fn container_name(run_id: &str, endpoint: &str) -> String {
    format!("netreach-ext-{run_id}-{endpoint}")
}

/// `repository` and `tag` of an image reference (`name:tag`, `host:5000/name:tag`, `name`).
fn split_image(image: &str) -> (&str, &str) {
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (image, "latest"),
    }
}

/// Starts one external endpoint serving its ports (`netreach serve`, the image's entrypoint).
///
/// # Errors
/// When the container cannot be started or has no address on `network`.
pub async fn start(
    run: &LiveRun,
    e: &External,
    image: &str,
    network: &str,
) -> Result<Endpoint, InfraError> {
    let name = container_name(&run.run_id, &e.name);
    let what = format!("external endpoint {} (container {name})", e.name);
    let deploy = |reason: String| InfraError::Deploy {
        what: what.clone(),
        reason,
    };
    let (repo, tag) = split_image(image);
    let mut args = vec!["--identity".to_owned(), format!("ext:{}", e.name)];
    for p in &e.ports {
        args.push("--port".into());
        args.push(p.port.to_string());
    }
    let request = GenericImage::new(repo, tag)
        .with_container_name(name.clone())
        .with_network(network)
        .with_label(RUN_LABEL, run.run_id.clone())
        .with_label(MANAGED_BY.0, MANAGED_BY.1)
        .with_cmd(args)
        .with_startup_timeout(Duration::from_secs(60));
    let _call = run.begin(Kind::Container, &name)?;
    let container = request
        .start()
        .await
        .map_err(|err| deploy(format!("cannot start it: {err}")))?;
    let ip = container.get_bridge_ip_address().await.map_err(|err| {
        deploy(format!(
            "no address on Docker network `{network}` ({err}); is the cluster a kind cluster on that network? \
             (NETREACH_DOCKER_NETWORK names another)"
        ))
    })?;
    Ok(Endpoint {
        name,
        ip,
        container: Some(container),
    })
}

/// A Docker client that speaks the engine's API version (Docker 20.10 answers 1.41 at most).
async fn docker() -> Result<Docker, String> {
    let d =
        Docker::connect_with_local_defaults().map_err(|e| format!("cannot reach Docker: {e}"))?;
    d.negotiate_version()
        .await
        .map_err(|e| format!("cannot reach Docker: {e}"))
}

/// A container netreach started, as found by its labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Labelled {
    /// Name (without the leading `/`).
    pub name: String,
    /// The run id label.
    pub run_id: String,
    /// Created, unix seconds.
    pub created: u64,
}

/// Containers labelled with [`RUN_LABEL`] (any run, or one run).
///
/// # Errors
/// When Docker cannot be reached (then there is nothing of ours to find there either way).
pub async fn list(run_id: Option<&str>) -> Result<Vec<Labelled>, String> {
    let d = docker().await?;
    let label = match run_id {
        Some(id) => format!("{RUN_LABEL}={id}"),
        None => RUN_LABEL.to_owned(),
    };
    let filters = HashMap::from([("label".to_owned(), vec![label])]);
    let opts = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let list = d
        .list_containers(Some(opts))
        .await
        .map_err(|e| format!("cannot list containers: {e}"))?;
    Ok(list
        .into_iter()
        .filter_map(|c| {
            let name = c.names?.first()?.trim_start_matches('/').to_owned();
            let run_id = c.labels?.get(RUN_LABEL)?.clone();
            Some(Labelled {
                name,
                run_id,
                created: u64::try_from(c.created.unwrap_or(0)).unwrap_or(0),
            })
        })
        .collect())
}

/// Removes containers by name (force; a missing one is not an error).
///
/// # Errors
/// Per container: why it could not be removed.
pub async fn remove(names: &[String]) -> Vec<Result<String, String>> {
    let d = match docker().await {
        Ok(d) => d,
        Err(e) => {
            return names
                .iter()
                .map(|n| Err(format!("container {n}: {e}")))
                .collect();
        }
    };
    let mut out = Vec::new();
    for n in names {
        let opts = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        out.push(match d.remove_container(n, Some(opts)).await {
            Ok(()) => Ok(n.clone()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(n.clone()),
            Err(e) => Err(format!("container {n}: {e}")),
        });
    }
    out
}

/// For interrupt cleanup: removes the run's containers, recorded or labelled, within `limit`.
pub fn remove_by_run(
    run_id: &str,
    recorded: &BTreeSet<String>,
    limit: Duration,
) -> Vec<Result<String, String>> {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return vec![Err("cannot start a runtime to remove containers".into())];
    };
    rt.block_on(async {
        let work = async {
            let mut names: BTreeSet<String> = recorded.clone();
            if let Ok(found) = list(Some(run_id)).await {
                names.extend(found.into_iter().map(|c| c.name));
            }
            if names.is_empty() {
                return Vec::new();
            }
            let names: Vec<String> = names.into_iter().collect();
            remove(&names).await
        };
        tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
            vec![Err(format!(
                "containers of run {run_id}: the cleanup deadline passed"
            ))]
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_split_into_repository_and_tag() {
        assert_eq!(split_image("netreach-probe:abc"), ("netreach-probe", "abc"));
        assert_eq!(
            split_image("registry.example:5000/team/netreach-probe:1.2"),
            ("registry.example:5000/team/netreach-probe", "1.2")
        );
        assert_eq!(
            split_image("registry.example:5000/netreach-probe"),
            ("registry.example:5000/netreach-probe", "latest")
        );
        assert_eq!(split_image("netreach-probe"), ("netreach-probe", "latest"));
    }
}
