//! Probe commands, classification, batch scripts and their parsing.

use super::*;
use crate::model::{CellKey, PodId, Target, Via};

fn tcp() -> ProbeAction {
    ProbeAction::Connect {
        host: "10.244.0.5".into(),
        port: 80,
        protocol: Protocol::Tcp,
        served: true,
    }
}
fn udp() -> ProbeAction {
    ProbeAction::Connect {
        host: "10.244.0.5".into(),
        port: 53,
        protocol: Protocol::Udp,
        served: true,
    }
}
fn dns() -> ProbeAction {
    ProbeAction::Resolve {
        name: "kubernetes.default".into(),
    }
}

#[test]
fn commands() {
    let Command::Run(argv) = command(&tcp(), ProbeTimeout(1)) else {
        panic!("runs")
    };
    assert_eq!(
        argv.join(" "),
        "curl --verbose --silent --show-error --output /dev/null --connect-timeout 1 --max-time 2 http://10.244.0.5:80/"
    );
    let v6 = ProbeAction::Connect {
        host: "fd00::5".into(),
        port: 80,
        protocol: Protocol::Tcp,
        served: true,
    };
    let Command::Run(argv) = command(&v6, ProbeTimeout(1)) else {
        panic!("runs")
    };
    assert!(argv.last().is_some_and(|u| u == "http://[fd00::5]:80/"));
    let Command::Run(argv) = command(&udp(), ProbeTimeout(2)) else {
        panic!("runs")
    };
    assert_eq!(argv[2], "printf ping | nc -u -w 2 10.244.0.5 53");
    let sctp = ProbeAction::Connect {
        host: "h".into(),
        port: 9,
        protocol: Protocol::Sctp,
        served: true,
    };
    assert_eq!(
        command(&sctp, ProbeTimeout(1)),
        Command::Decided(Outcome::Unsupported(
            "SCTP: refused by the probe image: it has no SCTP client (the kernel was not asked whether it carries SCTP)".into()
        ))
    );
    // Should an SCTP client ever run, the reason says which layer refused.
    assert_eq!(
        classify(&sctp, 1, "socket: Protocol not supported\n"),
        Outcome::Unsupported(
            "SCTP: refused by the kernel: the source pod's node has no SCTP support (socket: Protocol not supported)".into()
        )
    );
    assert_eq!(
        classify(&sctp, 127, "sh: sctp_test: not found"),
        Outcome::Unsupported(
            "SCTP: refused by the probe image: it has no SCTP client (the kernel was not asked whether it carries SCTP) (sh: sctp_test: not found)".into()
        )
    );
    let Command::Run(argv) = command(&dns(), ProbeTimeout(1)) else {
        panic!("runs")
    };
    assert_eq!(
        argv.join(" "),
        "dig +search +time=1 +tries=1 kubernetes.default"
    );
}

/// (action, exit code, output, outcome)
#[test]
fn classification() {
    let dig_ok = ";; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 1\n;; flags: qr aa rd; QUERY: 1, ANSWER: 1, AUTHORITY: 0\n";
    let dig_nx = ";; ->>HEADER<<- opcode: QUERY, status: NXDOMAIN, id: 2\n;; flags: qr; QUERY: 1, ANSWER: 0\n";
    let dig_empty = ";; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 2\n;; flags: qr; QUERY: 1, ANSWER: 0\n";
    let cases: Vec<(ProbeAction, i32, &str, Outcome)> = vec![
        (tcp(), 0, "", Outcome::Connected),
        (
            tcp(),
            7,
            "curl: (7) Failed to connect to 10.244.0.5 port 80: Connection refused",
            Outcome::Refused,
        ),
        (
            tcp(),
            7,
            "*   Trying 10.244.1.3:80...\n* connect to 10.244.1.3 port 80 from 10.244.1.2 port 41234 failed: Connection refused\n* Failed to connect to 10.244.1.3 port 80 after 0 ms: Couldn't connect to server\ncurl: (7) Failed to connect to 10.244.1.3 port 80 after 0 ms: Couldn't connect to server",
            Outcome::Refused,
        ),
        (
            tcp(),
            7,
            "curl: (7) Failed to connect to 10.244.0.5 port 80: No route to host",
            Outcome::Error(ProbeError::Tool {
                tool: "curl".into(),
                exit_code: 7,
                output: "curl: (7) Failed to connect to 10.244.0.5 port 80: No route to host"
                    .into(),
            }),
        ),
        (
            tcp(),
            28,
            "curl: (28) Connection timed out after 1001 milliseconds",
            Outcome::TimedOut,
        ),
        (
            tcp(),
            28,
            "curl: (28) Resolving timed out after 2000 milliseconds",
            Outcome::DnsFailure("curl: (28) Resolving timed out after 2000 milliseconds".into()),
        ),
        (
            tcp(),
            6,
            "curl: (6) Could not resolve host: web.x",
            Outcome::DnsFailure("curl: (6) Could not resolve host: web.x".into()),
        ),
        (
            tcp(),
            127,
            "sh: curl: not found",
            Outcome::Error(ProbeError::ToolMissing {
                tool: "curl".into(),
            }),
        ),
        (udp(), 0, "netreach x/b 53/udp\n", Outcome::Connected),
        (udp(), 0, "", Outcome::TimedOut),
        (
            udp(),
            1,
            "nc: read(net): Connection refused",
            Outcome::Refused,
        ),
        (dns(), 0, dig_ok, Outcome::Resolved),
        (dns(), 0, dig_nx, Outcome::NameNotFound),
        (dns(), 0, dig_empty, Outcome::NameNotFound),
        (
            dns(),
            9,
            ";; connection timed out; no servers could be reached\n",
            Outcome::TimedOut,
        ),
        (
            dns(),
            9,
            ";; communications error to 10.96.0.10#53: connection refused\n",
            Outcome::Refused,
        ),
        (
            dns(),
            0,
            ";; ->>HEADER<<- opcode: QUERY, status: SERVFAIL, id: 3\n",
            Outcome::Error(ProbeError::DnsAnswer {
                status: ";; ->>HEADER<<- opcode: QUERY, status: SERVFAIL, id: 3".into(),
            }),
        ),
    ];
    for (a, rc, out, want) in cases {
        assert_eq!(classify(&a, rc, out), want, "{a:?} {rc} {out:?}");
    }
}

#[test]
fn batch_round_trip() {
    let script = batch_script(&[
        (0, vec!["curl".into(), "http://a:80/".into()]),
        (
            3,
            vec![
                "sh".into(),
                "-c".into(),
                "printf ping | nc -u -w 1 a 53".into(),
            ],
        ),
    ]);
    assert!(script.contains("r 0 curl http://a:80/ &\n"), "{script}");
    assert!(
        script.contains("r 3 sh -c 'printf ping | nc -u -w 1 a 53' &\n"),
        "{script}"
    );
    assert!(script.ends_with("wait\n"));
    let out =
        "noise\n@@3 0 1002 netreach x/b 53/udp\n@@0 7 4 \n@@1 7 3 * Trying | curl: (7) failed\n";
    let r = parse_batch(out);
    assert_eq!(r.len(), 3);
    assert_eq!(
        r[0],
        RawResult {
            index: 3,
            exit_code: 0,
            elapsed_ms: 1002,
            output: "netreach x/b 53/udp".into()
        }
    );
    assert_eq!(r[1].output, "");
    assert_eq!(r[2].output, "* Trying\ncurl: (7) failed");
}

#[test]
fn parallel_curl_results_map_back_by_url_number_and_address() {
    let a = tcp();
    let b = ProbeAction::Connect {
        host: "10.244.0.6".into(),
        port: 81,
        protocol: Protocol::Tcp,
        served: true,
    };
    let by_name = ProbeAction::Connect {
        host: "web.x.svc.cluster.local".into(),
        port: 80,
        protocol: Protocol::Tcp,
        served: true,
    };
    let argv = |x: &ProbeAction| match command(x, ProbeTimeout(1)) {
        Command::Run(v) => v,
        Command::Decided(_) => vec![],
    };
    let batch = build_batch(
        &[
            (0, &a, argv(&a)),
            (1, &by_name, argv(&by_name)),
            (2, &b, argv(&b)),
        ],
        ProbeTimeout(1),
    );
    assert_eq!(
        batch.parallel,
        vec![
            (0, "10.244.0.5 port 80".to_owned()),
            (2, "10.244.0.6 port 81".to_owned())
        ]
    );
    assert!(
        batch.script.contains("r 1 curl"),
        "by-name probes run alone: {}",
        batch.script
    );
    assert!(
        batch.script.contains(
            "-o /dev/null http://10.244.0.5:80/ -o /dev/null http://10.244.0.6:81/ 2>&1 &\nwait\n"
        ),
        "{}",
        batch.script
    );
    let out = "* connect to 10.244.0.6 port 81 from 10.244.0.9 port 5555 failed: Connection refused\n\
               @@T0 0 0.004 \n@@T1 7 0.001 Failed to connect to 10.244.0.6 port 81 after 0 ms: Couldn't connect to server\n\
               @@1 6 3 curl: (6) Could not resolve host: web.x.svc.cluster.local\n";
    let mut r = batch.parse(out);
    r.sort_by_key(|x| x.index);
    assert_eq!(r.len(), 3);
    assert_eq!(
        classify(&a, r[0].exit_code, &r[0].output),
        Outcome::Connected
    );
    assert!(matches!(
        classify(&by_name, r[1].exit_code, &r[1].output),
        Outcome::DnsFailure(_)
    ));
    assert_eq!(classify(&b, r[2].exit_code, &r[2].output), Outcome::Refused);
    assert_eq!(r[0].elapsed_ms, 4);
}

#[test]
fn missing_results_are_errors_with_repro_commands() {
    let cell = CellKey {
        from: PodId::new("x", "a"),
        to: Target::Pod(PodId::new("x", "b")),
        port: None,
        via: Some(Via::Ip),
    };
    let p = BoundProbe {
        cell,
        namespace: "x-1".into(),
        pod: "a".into(),
        action: tcp(),
    };
    let cmds = vec![command(&p.action, ProbeTimeout(1))];
    let obs = observations(
        std::slice::from_ref(&p),
        &cmds,
        &[],
        Some("kind-netreach"),
        ProbeTimeout(1),
    );
    assert!(matches!(
        obs[0].outcome,
        Outcome::Error(ProbeError::Lost { .. })
    ));
    assert_eq!(
        obs[0].detail.command.as_deref(),
        Some(
            "kubectl --context kind-netreach -n x-1 exec a -- curl --verbose --silent --show-error --output /dev/null --connect-timeout 1 --max-time 2 http://10.244.0.5:80/"
        )
    );
    let udp_p = BoundProbe { action: udp(), ..p };
    assert!(
        repro(None, &udp_p, ProbeTimeout(1))
            .is_some_and(|c| c.ends_with("-- sh -c 'printf ping | nc -u -w 1 10.244.0.5 53'"))
    );
}
