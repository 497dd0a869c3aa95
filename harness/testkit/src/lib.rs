//! Faults for netreach's cluster tests and `cargo xtask soak --faults`: a TCP proxy in front of
//! a Kubernetes API server (TLS passes through untouched) that can delay, hang or cut the
//! connections going through it — what a real cluster cannot be asked to do on demand.
//! Test code only: std threads, no dependencies.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the fault proxy does with traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyMode {
    /// Forward as it comes.
    Pass,
    /// Hold every chunk this long before forwarding it (a slow API server).
    Delay(Duration),
    /// Forward nothing (a hung API server); connections stay open.
    Hang,
}

/// A TCP proxy in front of the API server (TLS passes through untouched).
#[derive(Clone, Debug)]
pub struct FaultProxy {
    mode: Arc<Mutex<ProxyMode>>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    /// The local port it listens on (`https://127.0.0.1:<port>` reaches the upstream).
    pub port: u16,
}

impl FaultProxy {
    /// Starts a proxy for `upstream` (`host:port`, e.g. kind's `127.0.0.1:40123`).
    ///
    /// # Errors
    /// When no local port can be bound.
    pub fn start(upstream: &str) -> std::io::Result<FaultProxy> {
        let upstream = upstream.to_owned();
        let l = TcpListener::bind("127.0.0.1:0")?;
        let port = l.local_addr()?.port();
        let mode = Arc::new(Mutex::new(ProxyMode::Pass));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (m, cs) = (Arc::clone(&mode), Arc::clone(&conns));
        std::thread::spawn(move || {
            for down in l.incoming().flatten() {
                let Ok(up) = TcpStream::connect(&upstream) else {
                    continue;
                };
                if let Ok(mut v) = cs.lock() {
                    v.extend(down.try_clone().ok());
                    v.extend(up.try_clone().ok());
                }
                for (from, to) in [
                    (down.try_clone(), up.try_clone()),
                    (up.try_clone(), down.try_clone()),
                ] {
                    let (Ok(mut from), Ok(mut to)) = (from, to) else {
                        continue;
                    };
                    let m = Arc::clone(&m);
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16384];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 {
                                break;
                            }
                            loop {
                                let mode = m.lock().map(|g| *g).unwrap_or(ProxyMode::Pass);
                                match mode {
                                    ProxyMode::Pass => break,
                                    ProxyMode::Delay(d) => {
                                        std::thread::sleep(d);
                                        break;
                                    }
                                    ProxyMode::Hang => {
                                        std::thread::sleep(Duration::from_millis(50))
                                    }
                                }
                            }
                            if to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Write);
                    });
                }
            }
        });
        Ok(FaultProxy { mode, conns, port })
    }

    /// Changes what it does from now on.
    pub fn set(&self, mode: ProxyMode) {
        if let Ok(mut m) = self.mode.lock() {
            *m = mode;
        }
    }

    /// Cuts every connection open now (a broken stream, as a restarting API server or a lost
    /// network gives).
    pub fn cut(&self) {
        if let Ok(mut v) = self.conns.lock() {
            for c in v.drain(..) {
                let _ = c.shutdown(Shutdown::Both);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on a local port, for the proxy to stand in front of.
    fn echo() -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            for mut c in l.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = c.read(&mut buf) {
                        if n == 0 || c.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        port
    }

    fn roundtrip(c: &mut TcpStream, msg: &[u8]) -> std::io::Result<Vec<u8>> {
        c.write_all(msg)?;
        let mut got = vec![0u8; msg.len()];
        c.read_exact(&mut got)?;
        Ok(got)
    }

    #[test]
    fn passes_hangs_and_cuts_on_demand() {
        let proxy = FaultProxy::start(&format!("127.0.0.1:{}", echo())).expect("start");
        let mut c = TcpStream::connect(("127.0.0.1", proxy.port)).expect("connect");
        c.set_read_timeout(Some(Duration::from_millis(500)))
            .expect("timeout");
        assert_eq!(roundtrip(&mut c, b"one").expect("pass"), b"one");

        proxy.set(ProxyMode::Hang);
        assert!(
            roundtrip(&mut c, b"two").is_err(),
            "a hung proxy must forward nothing"
        );
        proxy.set(ProxyMode::Pass);
        let mut late = [0u8; 3];
        c.read_exact(&mut late)
            .expect("held data arrives once released");
        assert_eq!(&late, b"two");

        proxy.set(ProxyMode::Delay(Duration::from_millis(100)));
        let t = std::time::Instant::now();
        assert_eq!(roundtrip(&mut c, b"three").expect("delayed"), b"three");
        assert!(
            t.elapsed() >= Duration::from_millis(200),
            "both directions are delayed"
        );
        proxy.set(ProxyMode::Pass);

        proxy.cut();
        let mut buf = [0u8; 8];
        let after = c.write_all(b"four").and_then(|()| c.read(&mut buf));
        assert!(
            matches!(after, Ok(0) | Err(_)),
            "a cut connection is closed: {after:?}"
        );

        let mut fresh = TcpStream::connect(("127.0.0.1", proxy.port)).expect("reconnect");
        fresh
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        assert_eq!(
            roundtrip(&mut fresh, b"five").expect("new connections pass"),
            b"five"
        );
    }
}
