//! Ctrl-C and SIGTERM: the first signal stops every run of this process from creating more and
//! deletes what they created, within a deadline; a second signal exits at once, saying what may
//! be left and the `netreach gc` command that removes it. Exit code 130 either way.

use std::sync::mpsc;
use std::time::Duration;

use crate::exit;
use crate::kube::{self, CleanupReport};

/// How long cleanup after an interrupt may take before netreach exits anyway.
pub const CLEANUP_DEADLINE: Duration = Duration::from_secs(30);

/// Installs the handler (once per process). Cleanup runs on its own thread, so a second signal
/// is seen even while the API server hangs.
pub fn cleanup_on_interrupt() {
    let Ok(mut signals) = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ]) else {
        eprintln!(
            "netreach: cannot install the interrupt handler; an interrupted run may leave namespaces (`netreach gc` removes them)"
        );
        return;
    };
    std::thread::spawn(move || {
        if signals.forever().next().is_none() {
            return;
        }
        eprintln!(
            "netreach: interrupted; deleting what this run created (at most {} s; Ctrl-C again to exit at once)",
            CLEANUP_DEADLINE.as_secs()
        );
        let (tx, rx) = mpsc::channel::<CleanupReport>();
        std::thread::spawn(move || {
            let _ = tx.send(kube::cleanup_live(CLEANUP_DEADLINE));
        });
        // Whichever comes first: cleanup finishing, or a second signal.
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            if signals.forever().next().is_some() {
                let _ = stop_tx.send(());
            }
        });
        loop {
            if let Ok(r) = rx.recv_timeout(Duration::from_millis(100)) {
                for d in &r.deleted {
                    eprintln!("netreach: deleted {d}");
                }
                if !r.left.is_empty() {
                    report_left(&r.left, &r.contexts);
                }
                std::process::exit(exit::INTERRUPTED);
            }
            if stop_rx.try_recv().is_ok() {
                eprintln!(
                    "netreach: interrupted again: exiting without waiting for cleanup; namespaces and \
                     containers of this run may be left"
                );
                report_left(&[], &[]);
                std::process::exit(exit::INTERRUPTED);
            }
        }
    });
}

/// Names what may be left and the gc command that removes it (after cleanup that left some, or a
/// second signal that did not wait for cleanup).
fn report_left(left: &[String], contexts: &[String]) {
    for l in left {
        eprintln!("netreach: may be left: {l}");
    }
    let ctx = contexts
        .first()
        .map_or_else(|| "<context>".to_owned(), Clone::clone);
    eprintln!(
        "netreach: `netreach gc --context {ctx} --stale-after 0` removes what a run left once it is no longer alive"
    );
}
