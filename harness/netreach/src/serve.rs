//! `netreach serve`: the server inside every probe pod (and the external endpoint).
//!
//! Listens on the declared TCP and UDP ports. TCP connections get an HTTP answer naming the
//! server (`netreach <identity> <port>/tcp`), so `curl` can tell "reached this pod" from "reached
//! something"; UDP datagrams are answered with the same line, so a prober can tell "reached" from
//! "nothing answered" (`nc -u -z` cannot). Writes a ready file only once every port is bound, and
//! exits cleanly on SIGTERM/SIGINT. Plain threads, no async runtime.
//!
//! The server checks itself every second ([`health_check`]: each TCP port must answer its line
//! over loopback, each UDP port its datagram); after three failures in a row the ready file is
//! removed, so the pod turns not-Ready and netreach's liveness check makes every cell to it an
//! error instead of a "blocked" that a dead server would look like. (Loopback inside the pod is
//! never subject to NetworkPolicy.)

use std::io::{Read, Write};
use std::net::{Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

use crate::model::{PortProto, Protocol};

/// Why the server could not start.
#[derive(Debug, Error)]
pub enum ServeError {
    /// A port could not be bound.
    #[error("cannot listen on {port}: {source}")]
    Bind {
        /// The port.
        port: PortProto,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// SCTP is not served by this server.
    #[error("cannot serve {0}: netreach's server has no SCTP support")]
    Sctp(PortProto),
    /// The ready file could not be written.
    #[error("cannot write the ready file {path}: {source}")]
    Ready {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Signal handling could not be set up.
    #[error("cannot install signal handlers: {0}")]
    Signals(#[source] std::io::Error),
}

/// What to serve.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Who this is, for answers (`ns/pod`).
    pub identity: String,
    /// Ports to listen on.
    pub ports: Vec<PortProto>,
    /// Written once every port listens; removed on exit.
    pub ready_file: Option<PathBuf>,
}

/// The line a server answers with.
pub fn answer_line(identity: &str, port: PortProto) -> String {
    format!("netreach {identity} {port}\n")
}

/// Binds every port (IPv6 dual-stack where available, else IPv4) and returns the sockets, so a
/// failure is reported before anything is declared ready.
fn bind_all(cfg: &ServeConfig) -> Result<Vec<(PortProto, Socket)>, ServeError> {
    let mut out = Vec::new();
    for &p in &cfg.ports {
        let sock = match p.protocol {
            Protocol::Tcp => Socket::Tcp(
                bind_tcp(p.port).map_err(|source| ServeError::Bind { port: p, source })?,
            ),
            Protocol::Udp => Socket::Udp(
                bind_udp(p.port).map_err(|source| ServeError::Bind { port: p, source })?,
            ),
            Protocol::Sctp => return Err(ServeError::Sctp(p)),
        };
        out.push((p, sock));
    }
    Ok(out)
}

enum Socket {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

fn bind_tcp(port: u16) -> std::io::Result<TcpListener> {
    TcpListener::bind(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)))
        .or_else(|_| TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port))))
}

fn bind_udp(port: u16) -> std::io::Result<UdpSocket> {
    UdpSocket::bind(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)))
        .or_else(|_| UdpSocket::bind(SocketAddr::from(([0, 0, 0, 0], port))))
}

/// Handles one TCP connection: if the client speaks HTTP, answer HTTP; otherwise send the line.
fn handle_tcp(mut s: TcpStream, line: &str) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 2048];
    let n = s.read(&mut buf).unwrap_or(0);
    let req = &buf[..n];
    let is_http = ["GET ", "HEAD ", "POST ", "PUT ", "OPTIONS "]
        .iter()
        .any(|m| req.starts_with(m.as_bytes()));
    let _ = if is_http {
        let body = if req.starts_with(b"HEAD ") { "" } else { line };
        s.write_all(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                line.len()
            )
            .as_bytes(),
        )
    } else {
        s.write_all(line.as_bytes())
    };
}

/// Runs the server until SIGTERM or SIGINT.
///
/// # Errors
/// When a port cannot be bound or the ready file cannot be written.
pub fn serve(cfg: &ServeConfig) -> Result<(), ServeError> {
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])
    .map_err(ServeError::Signals)?;
    if let Some(f) = &cfg.ready_file {
        let _ = std::fs::remove_file(f);
    }
    let sockets = bind_all(cfg)?;
    for (p, sock) in sockets {
        let line = answer_line(&cfg.identity, p);
        match sock {
            Socket::Tcp(l) => {
                std::thread::spawn(move || {
                    for conn in l.incoming().flatten() {
                        let line = line.clone();
                        std::thread::spawn(move || handle_tcp(conn, &line));
                    }
                });
            }
            Socket::Udp(u) => {
                std::thread::spawn(move || {
                    let mut buf = [0u8; 2048];
                    while let Ok((_, from)) = u.recv_from(&mut buf) {
                        let _ = u.send_to(line.as_bytes(), from);
                    }
                });
            }
        }
    }
    if let Some(f) = &cfg.ready_file {
        write_ready(f, cfg)?;
        let (f, c) = (f.clone(), cfg.clone());
        std::thread::spawn(move || watchdog(&f, &c));
    }
    eprintln!(
        "netreach serve: {} listening on {}",
        cfg.identity,
        cfg.ports
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    // Block until asked to stop.
    let sig = signals.forever().next();
    if let Some(f) = &cfg.ready_file {
        let _ = std::fs::remove_file(f);
    }
    eprintln!("netreach serve: stopping on signal {}", sig.unwrap_or(0));
    Ok(())
}

/// Checks that every port answers as a probe would: a TCP connection gets the answer line, a UDP
/// datagram gets it back.
///
/// # Errors
/// The first port that did not answer, and how.
pub fn health_check(cfg: &ServeConfig, timeout: Duration) -> Result<(), String> {
    for &p in &cfg.ports {
        let want = answer_line(&cfg.identity, p);
        let local = SocketAddr::from(([127, 0, 0, 1], p.port));
        match p.protocol {
            Protocol::Tcp => {
                let mut s = TcpStream::connect_timeout(&local, timeout)
                    .map_err(|e| format!("{p}: cannot connect over loopback: {e}"))?;
                let _ = s.set_read_timeout(Some(timeout));
                let _ = s.set_write_timeout(Some(timeout));
                s.write_all(b"HEAD / HTTP/1.0\r\n\r\n")
                    .map_err(|e| format!("{p}: {e}"))?;
                let mut got = String::new();
                let _ = s.read_to_string(&mut got);
                if !got.starts_with("HTTP/1.1 200") {
                    return Err(format!("{p}: no answer over loopback"));
                }
            }
            Protocol::Udp => {
                let u = UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("{p}: {e}"))?;
                let _ = u.set_read_timeout(Some(timeout));
                u.send_to(b"health", local)
                    .map_err(|e| format!("{p}: {e}"))?;
                let mut buf = [0u8; 512];
                let n = u
                    .recv(&mut buf)
                    .map_err(|e| format!("{p}: no answer over loopback ({e})"))?;
                if buf[..n] != *want.as_bytes() {
                    return Err(format!("{p}: a wrong answer over loopback"));
                }
            }
            Protocol::Sctp => {}
        }
    }
    Ok(())
}

/// Every second: if three health checks in a row fail (2 s each: a throttled pod on a loaded
/// node is slow, not dead), the ready file goes (and comes back when the server answers again).
fn watchdog(ready: &Path, cfg: &ServeConfig) {
    let mut failures = 0;
    loop {
        std::thread::sleep(Duration::from_secs(1));
        match health_check(cfg, Duration::from_secs(2)) {
            Ok(()) => {
                if failures >= 3 && write_ready(ready, cfg).is_ok() {
                    eprintln!("netreach serve: answering again; ready");
                }
                failures = 0;
            }
            Err(e) => {
                failures += 1;
                if failures == 3 {
                    let _ = std::fs::remove_file(ready);
                    eprintln!("netreach serve: health check failed 3 times ({e}); not ready");
                }
            }
        }
    }
}

fn write_ready(f: &Path, cfg: &ServeConfig) -> Result<(), ServeError> {
    std::fs::write(f, format!("{}\n", cfg.identity)).map_err(|source| ServeError::Ready {
        path: f.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port")
    }

    #[test]
    fn answers_tcp_http_and_udp_and_writes_ready_last() {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("netreach-serve-{}-{port}", std::process::id()));
        let ready = dir.join("ready");
        std::fs::create_dir_all(&dir).expect("temp dir");
        let cfg = ServeConfig {
            identity: "x/a".into(),
            ports: vec![
                PortProto {
                    port,
                    protocol: Protocol::Tcp,
                },
                PortProto {
                    port,
                    protocol: Protocol::Udp,
                },
            ],
            ready_file: Some(ready.clone()),
        };
        std::thread::spawn(move || serve(&cfg));
        for _ in 0..100 {
            if ready.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            std::fs::read_to_string(&ready).expect("ready file"),
            "x/a\n"
        );
        // HTTP.
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("write");
        let mut got = String::new();
        s.read_to_string(&mut got).expect("read");
        assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
        assert!(
            got.ends_with(&format!("netreach x/a {port}/tcp\n")),
            "{got}"
        );
        // Raw TCP: the line after a short read timeout.
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.write_all(b"hello").expect("write");
        let mut got = String::new();
        s.read_to_string(&mut got).expect("read");
        assert_eq!(got, format!("netreach x/a {port}/tcp\n"));
        // UDP.
        let u = UdpSocket::bind("127.0.0.1:0").expect("udp");
        u.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        u.send_to(b"ping", ("127.0.0.1", port)).expect("send");
        let mut buf = [0u8; 128];
        let n = u.recv(&mut buf).expect("answer");
        assert_eq!(
            std::str::from_utf8(&buf[..n]).expect("utf8"),
            format!("netreach x/a {port}/udp\n")
        );
        // Its own health check passes while it serves.
        let cfg = ServeConfig {
            identity: "x/a".into(),
            ports: vec![
                PortProto {
                    port,
                    protocol: Protocol::Tcp,
                },
                PortProto {
                    port,
                    protocol: Protocol::Udp,
                },
            ],
            ready_file: None,
        };
        health_check(&cfg, Duration::from_secs(1)).expect("healthy");
    }

    /// A port nothing answers on fails the health check (what removes the ready file).
    #[test]
    fn the_health_check_fails_where_nothing_answers() {
        let port = free_port();
        for protocol in [Protocol::Tcp, Protocol::Udp] {
            let cfg = ServeConfig {
                identity: "x/a".into(),
                ports: vec![PortProto { port, protocol }],
                ready_file: None,
            };
            let e = health_check(&cfg, Duration::from_millis(300)).expect_err("nothing listens");
            assert!(e.contains(&port.to_string()), "{e}");
        }
    }

    #[test]
    fn a_port_in_use_fails_before_ready() {
        let l = TcpListener::bind("0.0.0.0:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        let _l6 = TcpListener::bind(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)));
        let ready =
            std::env::temp_dir().join(format!("netreach-serve-busy-{}-{port}", std::process::id()));
        let cfg = ServeConfig {
            identity: "x/a".into(),
            ports: vec![PortProto {
                port,
                protocol: Protocol::Tcp,
            }],
            ready_file: Some(ready.clone()),
        };
        let err = serve(&cfg).expect_err("port is taken");
        assert!(matches!(err, ServeError::Bind { .. }), "{err}");
        assert!(!ready.exists());
        assert!(matches!(
            serve(&ServeConfig {
                ports: vec![PortProto {
                    port: 9,
                    protocol: Protocol::Sctp
                }],
                ..cfg
            }),
            Err(ServeError::Sctp(_))
        ));
    }
}
