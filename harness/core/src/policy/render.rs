//! Rendering a validated policy for a run: the manifest with real namespace names (also in
//! `kubernetes.io/metadata.name` selectors) and real addresses in ipBlocks.

use ipnet::IpNet;
use serde_json::{Map, Value, json};

use crate::bind::{BindError, Bindings};
use crate::model::policy::{
    AddrExpr, LabelSelector, NAMESPACE_NAME_LABEL, NetworkPolicy, Peer, PolicyPort, PortValue,
};

impl LabelSelector {
    fn to_json(&self, map_ns: &dyn Fn(&str) -> String, is_ns_selector: bool) -> Value {
        let mut m = Map::new();
        if !self.match_labels.is_empty() {
            let labels: Map<String, Value> = self
                .match_labels
                .iter()
                .map(|(k, v)| {
                    let v = if is_ns_selector && k == NAMESPACE_NAME_LABEL {
                        map_ns(v)
                    } else {
                        v.clone()
                    };
                    (k.clone(), Value::String(v))
                })
                .collect();
            m.insert("matchLabels".into(), Value::Object(labels));
        }
        if !self.match_expressions.is_empty() {
            let exprs: Vec<Value> = self
                .match_expressions
                .iter()
                .map(|r| {
                    let values: Vec<String> = if is_ns_selector && r.key == NAMESPACE_NAME_LABEL {
                        r.values.iter().map(|v| map_ns(v)).collect()
                    } else {
                        r.values.clone()
                    };
                    let mut e = json!({"key": r.key, "operator": r.operator.as_str()});
                    if !values.is_empty() {
                        e["values"] = json!(values);
                    }
                    e
                })
                .collect();
            m.insert("matchExpressions".into(), Value::Array(exprs));
        }
        Value::Object(m)
    }
}

impl AddrExpr {
    /// The CIDR once addresses are known.
    ///
    /// # Errors
    /// When the bindings lack the address, or the prefix does not fit the address family.
    pub fn resolve(&self, b: &Bindings) -> Result<IpNet, BindError> {
        let (ip, prefix, what) = match self {
            AddrExpr::Literal(n) => return Ok(*n),
            AddrExpr::PodIp { pod, prefix } => (b.pod_ip(pod)?, *prefix, pod.to_string()),
            AddrExpr::ExternalIp { name, prefix } => {
                (b.external_ip(name)?, *prefix, format!("ext:{name}"))
            }
        };
        IpNet::new(ip, prefix)
            .map(|n| n.trunc())
            .map_err(|_| BindError::Prefix { what, ip, prefix })
    }
}

impl NetworkPolicy {
    /// The manifest to apply in a run: real namespace names and addresses.
    ///
    /// # Errors
    /// When a namespace or address the policy needs is not bound.
    pub fn to_manifest(&self, b: &Bindings) -> Result<Value, BindError> {
        let map_ns = |l: &str| b.namespace(l).map_or_else(|_| l.to_owned(), str::to_owned);
        let mut meta = json!({"name": self.name, "namespace": b.namespace(&self.ns)?});
        if !self.labels.is_empty() {
            meta["labels"] = json!(self.labels);
        }
        if !self.annotations.is_empty() {
            meta["annotations"] = json!(self.annotations);
        }
        let mut spec = Map::new();
        spec.insert(
            "podSelector".into(),
            self.pod_selector.to_json(&map_ns, false),
        );
        if let Some(t) = &self.policy_types {
            spec.insert(
                "policyTypes".into(),
                json!(t.iter().map(|t| t.as_str()).collect::<Vec<_>>()),
            );
        }
        for (key, peer_key, rules) in [
            ("ingress", "from", &self.ingress),
            ("egress", "to", &self.egress),
        ] {
            let Some(rules) = rules else { continue };
            let mut out = Vec::new();
            for r in rules {
                let mut rule = Map::new();
                if let Some(peers) = &r.peers {
                    let mut ps = Vec::new();
                    for p in peers {
                        ps.push(peer_json(p, b, &map_ns)?);
                    }
                    rule.insert(peer_key.into(), Value::Array(ps));
                }
                if let Some(ports) = &r.ports {
                    rule.insert(
                        "ports".into(),
                        Value::Array(ports.iter().map(port_json).collect()),
                    );
                }
                out.push(Value::Object(rule));
            }
            spec.insert(key.into(), Value::Array(out));
        }
        Ok(json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": meta,
            "spec": spec,
        }))
    }
}

fn peer_json(p: &Peer, b: &Bindings, map_ns: &dyn Fn(&str) -> String) -> Result<Value, BindError> {
    Ok(match p {
        Peer::Selectors { pods, namespaces } => {
            let mut m = Map::new();
            if let Some(s) = pods {
                m.insert("podSelector".into(), s.to_json(map_ns, false));
            }
            if let Some(s) = namespaces {
                m.insert("namespaceSelector".into(), s.to_json(map_ns, true));
            }
            Value::Object(m)
        }
        Peer::IpBlock(ib) => {
            let cidr = ib.cidr.resolve(b)?;
            for e in &ib.except {
                let inner = e.resolve(b)?;
                if !cidr.contains(&inner) || inner == cidr {
                    return Err(BindError::Except {
                        except: inner.to_string(),
                        cidr: cidr.to_string(),
                    });
                }
            }
            let mut block = json!({"cidr": cidr.to_string()});
            if !ib.except.is_empty() {
                let ex: Result<Vec<String>, _> = ib
                    .except
                    .iter()
                    .map(|e| e.resolve(b).map(|n| n.to_string()))
                    .collect();
                block["except"] = json!(ex?);
            }
            json!({"ipBlock": block})
        }
    })
}

fn port_json(p: &PolicyPort) -> Value {
    let mut m = json!({"protocol": p.protocol.k8s_name()});
    match &p.port {
        Some(PortValue::Number(n)) => m["port"] = json!(n),
        Some(PortValue::Name(n)) => m["port"] = json!(n),
        None => {}
    }
    if let Some(e) = p.end_port {
        m["endPort"] = json!(e);
    }
    m
}
