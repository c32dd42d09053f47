//! `ferry-mock-broker`: a mock Kafka cluster in its own process, for integration tests.
//!
//! Prints `bootstrap=<servers>` on the first line of stdout, then reads one command per
//! line on stdin and answers `ok` or `error: <reason>`:
//!
//! ```text
//! topic <name> <partitions>
//! down <broker-id> | up <broker-id>
//! rtt <broker-id> <ms>
//! errors <Api> <ERROR>[,<ERROR>...]
//! advertise <broker-id> <host> <port>
//! consumer-group <session-ms> <heartbeat-ms>   (KIP-848 groups' broker-side timing)
//! quit
//! ```
//!
//! The cluster lives until `quit`, end of stdin, or the process is killed.

use std::io::{self, BufRead, Write};
use std::process::ExitCode;
use std::time::Duration;

use ferry_mock_broker::MockBroker;

fn main() -> ExitCode {
    let mut brokers = 1;
    let mut delay_ms = 0u64;
    let mut topics = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--brokers" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) => brokers = n,
                None => return usage("--brokers needs a number"),
            },
            "--rebalance-delay-ms" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) => delay_ms = n,
                None => return usage("--rebalance-delay-ms needs a number"),
            },
            "--topic" => match args.next() {
                Some(t) => topics.push(t),
                None => return usage("--topic needs name:partitions"),
            },
            "-h" | "--help" => {
                println!(
                    "usage: ferry-mock-broker [--brokers N] [--rebalance-delay-ms MS] [--topic NAME:PARTITIONS]...\n\
                     Prints bootstrap=<servers>, then takes commands on stdin (see the source's docs)."
                );
                return ExitCode::SUCCESS;
            }
            other => return usage(&format!("unknown argument `{other}`")),
        }
    }
    let broker = match MockBroker::start_with_delay(brokers, Duration::from_millis(delay_ms)) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("ferry-mock-broker: {e}");
            return ExitCode::FAILURE;
        }
    };
    for t in &topics {
        if let Err(e) = run(&broker, &format!("topic {}", t.replacen(':', " ", 1))) {
            eprintln!("ferry-mock-broker: --topic {t}: {e}");
            return ExitCode::FAILURE;
        }
    }
    let mut out = io::stdout().lock();
    if writeln!(out, "bootstrap={}", broker.bootstrap())
        .and_then(|_| out.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    for line in io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line == "quit" {
            break;
        }
        let reply = match run(&broker, line) {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("error: {e}"),
        };
        if writeln!(out, "{reply}").and_then(|_| out.flush()).is_err() {
            break;
        }
    }
    ExitCode::SUCCESS
}

fn usage(msg: &str) -> ExitCode {
    eprintln!("ferry-mock-broker: {msg} (see --help)");
    ExitCode::from(2)
}

fn run(broker: &MockBroker, line: &str) -> Result<(), String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let num = |i: usize| -> Result<i32, String> {
        words
            .get(i)
            .and_then(|w| w.parse().ok())
            .ok_or_else(|| format!("`{line}`: argument {i} must be a number"))
    };
    let res = match words.as_slice() {
        ["topic", name, _] => broker.create_topic(name, num(2)?),
        ["down", _] => broker.broker_down(num(1)?),
        ["up", _] => broker.broker_up(num(1)?),
        ["rtt", _, _] => broker.broker_rtt(num(1)?, Duration::from_millis(num(2)? as u64)),
        ["errors", api, errs] => {
            let errs: Vec<&str> = errs.split(',').collect();
            broker.request_errors(api, &errs)
        }
        ["consumer-group", _, _] => broker.consumer_group_timing(
            Duration::from_millis(num(1)? as u64),
            Duration::from_millis(num(2)? as u64),
        ),
        ["advertise", _, host, _] => broker.advertise(
            num(1)?,
            host,
            u16::try_from(num(3)?).map_err(|_| "port out of range".to_string())?,
        ),
        _ => return Err(format!("unknown command `{line}`")),
    };
    res.map_err(|e| e.to_string())
}
