//! ipBlock addresses: CIDRs and the placeholders bound at run time (`${ip x/b}/32`,
//! `${ip ext:web}/32`).

use std::net::IpAddr;

use ipnet::IpNet;

use crate::model::PodId;
use crate::model::policy::AddrExpr;

/// Parses the text of an ipBlock address.
///
/// # Errors
/// A sentence saying what is wrong.
pub fn parse_addr(s: &str) -> Result<AddrExpr, String> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix("${") {
        let (inner, tail) = rest.split_once('}').ok_or_else(|| {
            format!("`{s}` opens a placeholder with `${{` but never closes it with `}}`")
        })?;
        let target = inner
            .trim()
            .strip_prefix("ip ")
            .map(str::trim)
            .ok_or_else(|| format!("`${{{inner}}}` is not a placeholder netreach knows; the only one is `${{ip <pod or ext:name>}}`"))?;
        let prefix_text = tail.strip_prefix('/').ok_or_else(|| {
            format!("`{s}` has no prefix length; write e.g. `${{ip {target}}}/32`")
        })?;
        let prefix: u8 = prefix_text
            .parse()
            .ok()
            .filter(|p| *p <= 128)
            .ok_or_else(|| {
                format!("`/{prefix_text}` is not a prefix length (0-32 for IPv4, 0-128 for IPv6)")
            })?;
        if let Some(name) = target.strip_prefix("ext:") {
            return Ok(AddrExpr::ExternalIp {
                name: name.to_owned(),
                prefix,
            });
        }
        return match target.split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() => Ok(AddrExpr::PodIp {
                pod: PodId::new(ns, name),
                prefix,
            }),
            _ => Err(format!(
                "`{target}` is not a pod (`namespace/pod`) or an external endpoint (`ext:name`)"
            )),
        };
    }
    if !s.contains('/') {
        return match s.parse::<IpAddr>() {
            Ok(ip) => Err(format!(
                "`{s}` is an address, not a CIDR; write `{ip}/{}`",
                if ip.is_ipv4() { 32 } else { 128 }
            )),
            Err(_) => Err(format!("`{s}` is not a CIDR")),
        };
    }
    let net: IpNet = s.parse().map_err(|_| format!("`{s}` is not a CIDR"))?;
    if net.trunc() != net {
        return Err(format!(
            "`{s}` has host bits set; the network is `{}`",
            net.trunc()
        ));
    }
    Ok(AddrExpr::Literal(net))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            parse_addr("10.0.0.0/8"),
            Ok(AddrExpr::Literal("10.0.0.0/8".parse().expect("cidr")))
        );
        assert_eq!(
            parse_addr("${ip x/b}/32"),
            Ok(AddrExpr::PodIp {
                pod: PodId::new("x", "b"),
                prefix: 32
            })
        );
        assert_eq!(
            parse_addr("${ip ext:web}/24"),
            Ok(AddrExpr::ExternalIp {
                name: "web".into(),
                prefix: 24
            })
        );
        for bad in [
            "10.0.0.1",
            "10.0.0.1/8",
            "nope/8",
            "${ip x/b}",
            "${ip x/b/32",
            "${host x/b}/32",
            "${ip x}/32",
            "${ip x/b}/200",
        ] {
            assert!(parse_addr(bad).is_err(), "{bad}");
        }
    }
}
