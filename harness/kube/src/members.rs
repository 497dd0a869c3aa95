//! A step's `remove:`: deleting a pod (with its Service and EndpointSlice) or a namespace the
//! run created, and waiting until it is gone, so that the step's probes see the cluster
//! without it. (A step's `add:` reuses the deployment's own jobs, `crate::deploy`.)

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;

use netreach_core::cluster::InfraError;

use crate::client::{Req, api_error};

/// How often a removal is checked while waiting for it.
const POLL: Duration = Duration::from_millis(250);

/// Deletes `name` (404: gone already) and waits until the API server no longer has it, within
/// `within`.
async fn delete_and_wait<K>(
    api: &Api<K>,
    context: &str,
    req: Req<'_>,
    name: &str,
    what: &str,
    within: Duration,
) -> Result<(), InfraError>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let apply_err = |reason: String| InfraError::Apply {
        what: what.to_owned(),
        reason,
    };
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => return Ok(()),
        Err(e) => return Err(api_error(context, req, &e, apply_err)),
    }
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match api.get_opt(name).await {
            Ok(None) => return Ok(()),
            Ok(Some(_)) if tokio::time::Instant::now() >= deadline => {
                return Err(apply_err(format!(
                    "still there {} s after the delete",
                    within.as_secs()
                )));
            }
            Ok(Some(_)) => tokio::time::sleep(POLL).await,
            Err(e) => {
                return Err(api_error(
                    context,
                    Req { verb: "get", ..req },
                    &e,
                    apply_err,
                ));
            }
        }
    }
}

/// Deletes a probe pod of the run and, when it has one, its Service and EndpointSlice; waits
/// until the pod is gone.
///
/// # Errors
/// When a delete is refused, or the pod is still there after `within`.
pub async fn remove_pod(
    client: &Client,
    context: &str,
    namespace: &str,
    name: &str,
    service: bool,
    within: Duration,
) -> Result<(), InfraError> {
    if service {
        let svc: Api<Service> = Api::namespaced(client.clone(), namespace);
        let what = format!("remove service {namespace}/{name}");
        delete_and_wait(
            &svc,
            context,
            Req::ns("delete", "services", namespace),
            name,
            &what,
            within,
        )
        .await?;
        let eps: Api<EndpointSlice> = Api::namespaced(client.clone(), namespace);
        let slice = format!("{name}-netreach");
        let what = format!("remove endpointslice {namespace}/{slice}");
        delete_and_wait(
            &eps,
            context,
            Req::ns("delete", "endpointslices", namespace),
            &slice,
            &what,
            within,
        )
        .await?;
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let what = format!("remove pod {namespace}/{name}");
    delete_and_wait(
        &pods,
        context,
        Req::ns("delete", "pods", namespace),
        name,
        &what,
        within,
    )
    .await
}

/// Deletes a namespace of the run and waits until it is gone (its pods and policies with it).
///
/// # Errors
/// When the delete is refused, or the namespace is still there after `within`.
pub async fn remove_namespace(
    client: &Client,
    context: &str,
    namespace: &str,
    within: Duration,
) -> Result<(), InfraError> {
    let api: Api<Namespace> = Api::all(client.clone());
    let what = format!("remove namespace {namespace}");
    delete_and_wait(
        &api,
        context,
        Req::cluster("delete", "namespaces"),
        namespace,
        &what,
        within,
    )
    .await
}
