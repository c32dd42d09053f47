//! Servers for ferry's tests and benchmarks: librdkafka's mock Kafka cluster, owned and
//! controlled from Rust, and Google's Pub/Sub emulator ([`pubsub_emulator`]).
//!
//! `rdkafka::mocking::MockCluster` wraps the same cluster but keeps its native handle
//! private, so it cannot set the group's initial rebalance delay (3 s by default, which
//! would dominate every start-up measured here) or re-advertise a broker's port. This crate
//! owns the handle itself; the `unsafe` is confined to the small wrappers below, each a
//! direct call into librdkafka's documented mock API with a handle that lives as long as
//! `MockBroker`.
//!
//! What the mock is and is not (librdkafka 2.12): produce, fetch, consumer groups and
//! offset commits behave like a broker; there is no SASL and no admin API; each partition
//! keeps only its newest ~5 MB of batches (older ones are silently deleted), so size test
//! data accordingly.
#![allow(unsafe_code)]

pub mod kdc;
pub mod pubsub_emulator;
pub mod sasl_front;
pub mod ztf;

use std::ffi::{CStr, CString};
use std::fmt;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka_sys as sys;
use rdkafka_sys::types::RDKafkaRespErr;

/// Error from the mock cluster's control API.
#[derive(Debug)]
pub struct MockError(pub String);

impl fmt::Display for MockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MockError {}

type Result<T> = std::result::Result<T, MockError>;

/// A running mock cluster. Brokers listen on 127.0.0.1, ephemeral ports, until drop.
pub struct MockBroker {
    cluster: *mut sys::rd_kafka_mock_cluster_t,
    brokers: i32,
    // The cluster runs on this client's threads; it must outlive `cluster`
    // (destroyed first in `Drop`).
    _handle: BaseProducer,
}

// SAFETY: librdkafka's mock cluster API is thread-safe: every call posts an operation to
// the cluster's own thread and waits for it.
unsafe impl Send for MockBroker {}
// SAFETY: as above; no method hands out interior references.
unsafe impl Sync for MockBroker {}

impl fmt::Debug for MockBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockBroker")
            .field("bootstrap", &self.bootstrap())
            .field("brokers", &self.brokers)
            .finish()
    }
}

fn check(err: RDKafkaRespErr, what: &str) -> Result<()> {
    if err == RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR {
        Ok(())
    } else {
        let code: rdkafka::types::RDKafkaErrorCode = err.into();
        Err(MockError(format!("{what}: {code}")))
    }
}

fn cstring(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| MockError(format!("`{s}` contains a NUL byte")))
}

impl MockBroker {
    /// Starts a cluster of `brokers` brokers with a zero initial rebalance delay, so a
    /// lone consumer's group forms at once.
    pub fn start(brokers: i32) -> Result<Self> {
        Self::start_with_delay(brokers, Duration::ZERO)
    }

    /// Starts a cluster whose groups wait `delay` for more members before the first
    /// assignment (the broker's `group.initial.rebalance.delay.ms`).
    ///
    /// Use a few hundred milliseconds when several consumers start together: the mock
    /// handles a member joining an *established* group by waiting the session timeout
    /// (45 s by default) minus one second before reassigning, so members must all land in
    /// the first round.
    pub fn start_with_delay(brokers: i32, delay: Duration) -> Result<Self> {
        let handle: BaseProducer = ClientConfig::new()
            // The handle only hosts the cluster; keep its own logging quiet.
            .set("log_level", "3")
            .create()
            .map_err(|e| MockError(format!("cannot create the mock cluster's handle: {e}")))?;
        // SAFETY: the handle is a valid client for the duration of this call and outlives
        // the cluster (see the field order comment and `Drop`).
        let cluster =
            unsafe { sys::rd_kafka_mock_cluster_new(handle.client().native_ptr(), brokers) };
        if cluster.is_null() {
            return Err(MockError(
                "librdkafka could not start the mock cluster".into(),
            ));
        }
        let broker = Self {
            cluster,
            brokers,
            _handle: handle,
        };
        // SAFETY: `cluster` is valid until drop.
        let ms = i32::try_from(delay.as_millis()).unwrap_or(i32::MAX);
        unsafe { sys::rd_kafka_mock_group_initial_rebalance_delay_ms(broker.cluster, ms) };
        Ok(broker)
    }

    /// The broker-side settings of KIP-848 (`group.protocol=consumer`) groups: the
    /// broker's `group.consumer.session.timeout.ms` and
    /// `group.consumer.heartbeat.interval.ms` (the mock's defaults are 30 s and 3 s). They
    /// apply to members that join after the call.
    pub fn consumer_group_timing(&self, session: Duration, heartbeat: Duration) -> Result<()> {
        let ms = |d: Duration| i32::try_from(d.as_millis()).unwrap_or(i32::MAX);
        if session.is_zero() || heartbeat.is_zero() || heartbeat >= session {
            return Err(MockError(
                "the heartbeat interval must be positive and shorter than the session timeout"
                    .into(),
            ));
        }
        // SAFETY: `cluster` is valid until drop; both calls only set integers under the
        // cluster's lock.
        unsafe {
            sys::rd_kafka_mock_set_group_consumer_session_timeout_ms(self.cluster, ms(session));
            sys::rd_kafka_mock_set_group_consumer_heartbeat_interval_ms(
                self.cluster,
                ms(heartbeat),
            );
        }
        Ok(())
    }

    /// The `bootstrap.servers` string, e.g. `127.0.0.1:39733,127.0.0.1:40221`.
    pub fn bootstrap(&self) -> String {
        // SAFETY: the returned string is owned by the cluster and valid until destroy.
        unsafe { CStr::from_ptr(sys::rd_kafka_mock_cluster_bootstraps(self.cluster)) }
            .to_string_lossy()
            .into_owned()
    }

    pub fn broker_count(&self) -> i32 {
        self.brokers
    }

    /// Creates a topic (the mock has no admin API; this is its side door).
    pub fn create_topic(&self, name: &str, partitions: i32) -> Result<()> {
        let c = cstring(name)?;
        // SAFETY: valid cluster; `c` outlives the call.
        let err =
            unsafe { sys::rd_kafka_mock_topic_create(self.cluster, c.as_ptr(), partitions, 1) };
        check(err, &format!("create topic {name}"))
    }

    /// Takes a broker down: its connections are closed and new ones refused.
    pub fn broker_down(&self, broker_id: i32) -> Result<()> {
        // SAFETY: valid cluster.
        check(
            unsafe { sys::rd_kafka_mock_broker_set_down(self.cluster, broker_id) },
            &format!("broker {broker_id} down"),
        )
    }

    pub fn broker_up(&self, broker_id: i32) -> Result<()> {
        // SAFETY: valid cluster.
        check(
            unsafe { sys::rd_kafka_mock_broker_set_up(self.cluster, broker_id) },
            &format!("broker {broker_id} up"),
        )
    }

    /// Adds a round-trip delay to every response of a broker.
    pub fn broker_rtt(&self, broker_id: i32, rtt: Duration) -> Result<()> {
        let ms = i32::try_from(rtt.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: valid cluster.
        check(
            unsafe { sys::rd_kafka_mock_broker_set_rtt(self.cluster, broker_id, ms) },
            &format!("broker {broker_id} rtt"),
        )
    }

    /// Makes each broker advertise `host:port` in Metadata (for a proxy in front of it).
    pub fn advertise(&self, broker_id: i32, host: &str, port: u16) -> Result<()> {
        let c = cstring(host)?;
        // SAFETY: valid cluster; `c` outlives the call.
        unsafe {
            sys::rd_kafka_mock_broker_set_host_port(
                self.cluster,
                broker_id,
                c.as_ptr(),
                i32::from(port),
            )
        };
        Ok(())
    }

    /// Queues errors for the next requests of an API (one error per request, in order),
    /// whichever broker serves them. API and error names as in [`api_key`] and
    /// [`error_code`].
    pub fn request_errors(&self, api: &str, errors: &[&str]) -> Result<()> {
        let key = api_key(api).ok_or_else(|| MockError(format!("unknown API `{api}`")))?;
        let codes = errors
            .iter()
            .map(|e| error_code(e).ok_or_else(|| MockError(format!("unknown error `{e}`"))))
            .collect::<Result<Vec<_>>>()?;
        // SAFETY: valid cluster; `codes` outlives the call and holds `codes.len()` entries.
        unsafe {
            sys::rd_kafka_mock_push_request_errors_array(
                self.cluster,
                key,
                codes.len(),
                codes.as_ptr(),
            )
        };
        Ok(())
    }
}

impl Drop for MockBroker {
    fn drop(&mut self) {
        // SAFETY: created by `rd_kafka_mock_cluster_new`, destroyed once, before the handle.
        unsafe { sys::rd_kafka_mock_cluster_destroy(self.cluster) };
    }
}

/// Kafka API keys the fault-injection commands accept.
pub fn api_key(name: &str) -> Option<i16> {
    Some(match name {
        "Produce" => 0,
        "Fetch" => 1,
        "ListOffsets" => 2,
        "Metadata" => 3,
        "OffsetCommit" => 8,
        "OffsetFetch" => 9,
        "FindCoordinator" => 10,
        "JoinGroup" => 11,
        "Heartbeat" => 12,
        "LeaveGroup" => 13,
        "SyncGroup" => 14,
        "ApiVersions" => 18,
        _ => return None,
    })
}

/// Kafka error names the fault-injection commands accept.
pub fn error_code(name: &str) -> Option<RDKafkaRespErr> {
    use RDKafkaRespErr::*;
    Some(match name {
        "UNKNOWN_TOPIC_OR_PARTITION" => RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
        "NOT_LEADER_FOR_PARTITION" => RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        "REQUEST_TIMED_OUT" => RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        "COORDINATOR_LOAD_IN_PROGRESS" => RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
        "COORDINATOR_NOT_AVAILABLE" => RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
        "NOT_COORDINATOR" => RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
        "REBALANCE_IN_PROGRESS" => RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS,
        "NETWORK_EXCEPTION" => RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION,
        "LEADER_NOT_AVAILABLE" => RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
        "UNKNOWN_MEMBER_ID" => RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID,
        "ILLEGAL_GENERATION" => RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_and_takes_commands() {
        let broker = MockBroker::start(2).unwrap();
        assert_eq!(broker.bootstrap().split(',').count(), 2);
        broker.create_topic("t", 3).unwrap();
        broker.broker_down(1).unwrap();
        broker.broker_up(1).unwrap();
        broker
            .consumer_group_timing(Duration::from_secs(6), Duration::from_secs(1))
            .unwrap();
        assert!(
            broker
                .consumer_group_timing(Duration::from_secs(1), Duration::from_secs(1))
                .is_err()
        );
        broker
            .request_errors("Fetch", &["NOT_LEADER_FOR_PARTITION"])
            .unwrap();
        assert!(broker.request_errors("Nope", &[]).is_err());
        assert!(broker.request_errors("Fetch", &["NOPE"]).is_err());
    }
}
