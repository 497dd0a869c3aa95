//! The probe scripts of the core, run for real: the host's bash and curl against real
//! listeners. (In the kube crate because the core runs no processes.)

use netreach_core::bind::ProbeAction;
use netreach_core::model::Protocol;
use netreach_core::outcome::Outcome;
use netreach_core::probe::{ProbeTimeout, batch_script, build_batch, classify, parse_batch};

/// The parallel curl really runs (the host's curl) against a real listener and a closed port.
#[test]
fn parallel_curl_runs_against_real_ports() {
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("curl is needed for this test (Debian package curl)");
    }
    let open = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let open_port = open.local_addr().expect("addr").port();
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind")
        .port();
    std::thread::spawn(move || {
        for s in open.incoming().flatten() {
            let mut s = s;
            let _ = std::io::Write::write_all(
                &mut s,
                b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    let a = ProbeAction::Connect {
        host: "127.0.0.1".into(),
        port: open_port,
        protocol: Protocol::Tcp,
        served: true,
    };
    let b = ProbeAction::Connect {
        host: "127.0.0.1".into(),
        port: closed_port,
        protocol: Protocol::Tcp,
        served: true,
    };
    let batch = build_batch(&[(0, &a, vec![]), (1, &b, vec![])], ProbeTimeout(1));
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(&batch.script)
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut r = batch.parse(&stdout);
    r.sort_by_key(|x| x.index);
    assert_eq!(r.len(), 2, "{stdout}");
    assert_eq!(
        classify(&a, r[0].exit_code, &r[0].output),
        Outcome::Connected,
        "{stdout}"
    );
    assert_eq!(
        classify(&b, r[1].exit_code, &r[1].output),
        Outcome::Refused,
        "{stdout}"
    );
}

/// The script really runs in bash: every probe reports, concurrently, with exit codes and
/// multi-line output intact.
#[test]
fn batch_script_runs_in_bash() {
    let script = batch_script(&[
        (
            0,
            vec![
                "sh".into(),
                "-c".into(),
                "echo first; echo second >&2; exit 7".into(),
            ],
        ),
        (4, vec!["true".into()]),
        (
            9,
            vec![
                "sh".into(),
                "-c".into(),
                r"sleep 1; echo 'it'\''s | done'".into(),
            ],
        ),
    ]);
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("bash runs");
    let mut r = parse_batch(&String::from_utf8_lossy(&out.stdout));
    r.sort_by_key(|x| x.index);
    assert_eq!(r.len(), 3, "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(
        (r[0].index, r[0].exit_code, r[0].output.as_str()),
        (0, 7, "first\nsecond")
    );
    assert_eq!(
        (r[1].index, r[1].exit_code, r[1].output.as_str()),
        (4, 0, "")
    );
    assert_eq!(r[2].exit_code, 0, "{r:?}");
    assert!(r[2].elapsed_ms >= 900, "{}", r[2].elapsed_ms);
    assert!(
        r[0].elapsed_ms < 900,
        "probes run concurrently: {}",
        r[0].elapsed_ms
    );
}
