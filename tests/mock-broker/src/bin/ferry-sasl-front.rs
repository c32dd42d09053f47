//! `ferry-sasl-front`: SASL/GSSAPI fronts for mock brokers, in their own process (so the
//! service keytab in `KRB5_KTNAME` and `KRB5_CONFIG` apply to it alone).
//!
//! ```text
//! ferry-sasl-front --upstream 127.0.0.1:PORT [--upstream …] [--max-connection-age-secs N]
//! ```
//!
//! Listens on one free 127.0.0.1 port per upstream broker and prints
//! `ports=<p1>,<p2>,…` (in the order of the `--upstream` arguments) as its first line,
//! then one line per connection: `auth <peer> <principal>` or `reject <peer> <reason>`.
//! Runs until killed.

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use ferry_mock_broker::sasl_front;

fn main() -> ExitCode {
    let mut upstreams: Vec<SocketAddr> = Vec::new();
    let mut max_age = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--upstream", Some(a)) => match a.parse() {
                Ok(a) => upstreams.push(a),
                Err(e) => return usage(&format!("--upstream {a}: {e}")),
            },
            ("--max-connection-age-secs", Some(n)) => match n.parse() {
                Ok(n) => max_age = Some(Duration::from_secs(n)),
                Err(e) => return usage(&format!("--max-connection-age-secs {n}: {e}")),
            },
            _ => return usage(&format!("unexpected argument `{arg}`")),
        }
    }
    if upstreams.is_empty() {
        return usage("give at least one --upstream");
    }
    let (tx, rx) = mpsc::channel();
    let mut ports = Vec::new();
    for upstream in upstreams {
        let listener = match TcpListener::bind("127.0.0.1:0") {
            Ok(l) => l,
            Err(e) => {
                eprintln!("ferry-sasl-front: cannot listen on 127.0.0.1: {e}");
                return ExitCode::FAILURE;
            }
        };
        ports.push(
            listener
                .local_addr()
                .map(|a| a.port())
                .unwrap_or(0)
                .to_string(),
        );
        let tx = tx.clone();
        thread::spawn(move || sasl_front::serve(listener, upstream, max_age, tx));
    }
    drop(tx);
    let mut out = std::io::stdout().lock();
    if writeln!(out, "ports={}", ports.join(","))
        .and_then(|()| out.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    for event in rx {
        if writeln!(out, "{event}").and_then(|()| out.flush()).is_err() {
            break;
        }
    }
    ExitCode::SUCCESS
}

fn usage(msg: &str) -> ExitCode {
    eprintln!(
        "ferry-sasl-front: {msg} (usage: ferry-sasl-front --upstream HOST:PORT… [--max-connection-age-secs N])"
    );
    ExitCode::from(2)
}
