//! The task against a real HTTP exchange on loopback (a small scripted HTTP/1.1 server)
//! and test doubles of the runtime's producer and errant reporter.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use ferry_connector_api::{
    ConnectorProps, ErrantRecordReporter, NoCommitRequests, NoProducers, ProducerRecord,
    RecordError, RecordProducer, SinkRecord, SinkTask, TaskContext, TaskError, TopicPartition,
    Value, async_trait,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::config::HttpConfig;
use crate::service::Service;

/// What the server saw and what it answers next.
#[derive(Default)]
struct Script {
    /// Statuses to answer, in order; 200 with `{"echo": <body>}` when empty.
    answers: VecDeque<u16>,
    /// (authorization header, body) of every request.
    seen: Vec<(Option<String>, String)>,
}

async fn server(script: Arc<Mutex<Script>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let script = script.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    // Read one request: headers, then Content-Length bytes.
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        let mut chunk = [0u8; 4096];
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let header = |name: &str| {
                        head.lines().find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.trim()
                                .eq_ignore_ascii_case(name)
                                .then(|| v.trim().to_string())
                        })
                    };
                    let len: usize = header("content-length")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    while buf.len() < head_end + len {
                        let mut chunk = [0u8; 4096];
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).to_string();
                    buf.drain(..head_end + len);
                    let status = {
                        let mut s = script.lock().unwrap();
                        s.seen.push((header("authorization"), body.clone()));
                        s.answers.pop_front().unwrap_or(200)
                    };
                    let answer = if status == 200 {
                        format!(r#"{{"echo":{}}}"#, serde_json::to_string(&body).unwrap())
                    } else {
                        format!("failed with {status}")
                    };
                    let response = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\ncontent-type: application/json\r\n\r\n{answer}",
                        answer.len()
                    );
                    if sock.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{addr}/api/transformations/execute")
}

/// A producer double: fails the first `fail` sends, records the rest.
#[derive(Debug, Default)]
struct Producer {
    fail: Mutex<usize>,
    sent: Mutex<Vec<ProducerRecord>>,
}

#[async_trait]
impl RecordProducer for Producer {
    async fn send(&self, record: ProducerRecord) -> Result<(), TaskError> {
        let mut fail = self.fail.lock().unwrap();
        if *fail > 0 {
            *fail -= 1;
            return Err(TaskError::retriable("broker unavailable"));
        }
        self.sent.lock().unwrap().push(record);
        Ok(())
    }
}

/// errors.tolerance=all (records the reports) or none (fails).
#[derive(Debug, Default)]
struct Errant {
    tolerate: bool,
    reports: Mutex<Vec<(i64, String)>>,
}

impl ErrantRecordReporter for Errant {
    fn report(&self, record: &SinkRecord, error: &RecordError) -> Result<(), TaskError> {
        if !self.tolerate {
            return Err(TaskError::fatal(format!(
                "{}: {error}",
                record.coordinates()
            )));
        }
        self.reports
            .lock()
            .unwrap()
            .push((record.offset, error.reason.clone()));
        Ok(())
    }
}

fn record(offset: i64, value: &str) -> SinkRecord {
    SinkRecord {
        topic: Arc::from("hd-execution-topic"),
        partition: 0,
        offset,
        timestamp: None,
        key: Some(Value::Bytes(Bytes::from(format!("exec_job_{offset}")))),
        value: Some(Value::Bytes(Bytes::copy_from_slice(value.as_bytes()))),
        headers: vec![],
        original_topic: None,
    }
}

fn tp() -> TopicPartition {
    TopicPartition::new("hd-execution-topic", 0)
}

struct Setup {
    task: HttpSinkTask,
    producer: Arc<Producer>,
    errant: Arc<Errant>,
}

fn setup(url: &str, extra: &[(&str, &str)], tolerate: bool, replies: bool) -> Setup {
    let mut pairs: Vec<(String, String)> = vec![
        ("http.api.url".into(), url.into()),
        ("retry.backoff.ms".into(), "10".into()),
        ("max.retries".into(), "2".into()),
        ("retry.on.status.codes".into(), "500-".into()),
    ];
    pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let config = Arc::new(
        HttpConfig::from_props(&mut ConnectorProps::new(pairs.into_iter().collect())).unwrap(),
    );
    let producer = Arc::new(Producer::default());
    let errant = Arc::new(Errant {
        tolerate,
        ..Errant::default()
    });
    let ctx = TaskContext {
        connector: "hetida".into(),
        task_id: 0,
        errant: errant.clone(),
        commits: Arc::new(NoCommitRequests),
        producers: Arc::new(NoProducers),
    };
    let replies = replies.then(|| Replies {
        producer: producer.clone(),
        result_topic: Some("replies".into()),
        error_topic: Some("errors".into()),
        errors_as: ErrorsAs::ErrorString,
    });
    let service = Service::new(config.clone()).unwrap();
    Setup {
        task: HttpSinkTask::new(config, service, ctx, replies),
        producer,
        errant,
    }
}

fn header(r: &ProducerRecord, k: &str) -> String {
    r.headers
        .iter()
        .find(|h| h.key == k)
        .and_then(|h| h.value.as_ref())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn each_answer_is_replied_with_the_request_key_and_then_committable() {
    let script = Arc::new(Mutex::new(Script::default()));
    let url = server(script.clone()).await;
    let mut s = setup(&url, &[("request.body.format", "json")], false, true);
    s.task
        .put(&[
            record(0, r#"{"job_id":"a"}"#),
            record(1, r#"{"job_id":"b"}"#),
        ])
        .await
        .unwrap();
    let bodies: Vec<String> = script
        .lock()
        .unwrap()
        .seen
        .iter()
        .map(|(_, b)| b.clone())
        .collect();
    assert_eq!(bodies, [r#"{"job_id":"a"}"#, r#"{"job_id":"b"}"#]);
    let sent = s.producer.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].topic, "replies");
    assert_eq!(sent[1].key.as_deref(), Some(&b"exec_job_1"[..]));
    assert_eq!(
        sent[1].value.as_deref(),
        Some(&br#"{"echo":"{\"job_id\":\"b\"}"}"#[..])
    );
    assert_eq!(header(&sent[1], "input_record_offset"), "1");
    assert_eq!(header(&sent[1], "http_status_code"), "200");
    let c = s.task.pre_commit(&Offsets::new()).await.unwrap();
    assert_eq!(c[&tp()], 2);
}

#[tokio::test]
async fn an_unacknowledged_reply_holds_the_offset_and_the_request_is_not_sent_again() {
    let script = Arc::new(Mutex::new(Script::default()));
    let url = server(script.clone()).await;
    let mut s = setup(&url, &[], false, true);
    *s.producer.fail.lock().unwrap() = 2;
    let batch = [record(0, "a"), record(1, "b")];
    let err = s.task.put(&batch).await.unwrap_err();
    assert!(err.is_retriable(), "{err}");
    assert!(
        err.one_line()
            .contains("producing a reply to replies failed"),
        "{}",
        err.one_line()
    );
    // Nothing committable: the reply of offset 0 is not acknowledged (the flush fails too).
    assert!(
        s.task
            .pre_commit(&Offsets::new())
            .await
            .unwrap_err()
            .is_retriable()
    );
    // The runtime redelivers the batch: offset 0's request is not sent again.
    s.task.put(&batch).await.unwrap();
    let bodies: Vec<String> = script
        .lock()
        .unwrap()
        .seen
        .iter()
        .map(|(_, b)| b.clone())
        .collect();
    assert_eq!(bodies, ["a", "b"]);
    let sent = s.producer.sent.lock().unwrap().clone();
    assert_eq!(
        sent.iter()
            .map(|r| header(r, "input_record_offset"))
            .collect::<Vec<_>>(),
        ["0", "1"]
    );
    assert_eq!(s.task.pre_commit(&Offsets::new()).await.unwrap()[&tp()], 2);
}

#[tokio::test]
async fn server_errors_are_retried_then_handed_back_with_nothing_committed() {
    let script = Arc::new(Mutex::new(Script::default()));
    script.lock().unwrap().answers.extend([500, 503, 502]);
    let url = server(script.clone()).await;
    let mut s = setup(&url, &[], false, true);
    let err = s.task.put(&[record(0, "a")]).await.unwrap_err();
    assert!(err.is_retriable());
    assert!(
        err.one_line().contains("answered 502 after 3 attempt(s)"),
        "{}",
        err.one_line()
    );
    assert_eq!(s.task.pre_commit(&Offsets::new()).await.unwrap()[&tp()], 0);
    assert!(s.producer.sent.lock().unwrap().is_empty());
    // Redelivered: the server answers now.
    s.task.put(&[record(0, "a")]).await.unwrap();
    assert_eq!(script.lock().unwrap().seen.len(), 4);
    assert_eq!(s.task.pre_commit(&Offsets::new()).await.unwrap()[&tp()], 1);
}

#[tokio::test]
async fn a_refused_request_is_a_record_error_and_goes_to_the_error_topic() {
    let script = Arc::new(Mutex::new(Script::default()));
    script.lock().unwrap().answers.extend([400]);
    let url = server(script.clone()).await;
    let mut s = setup(&url, &[], true, true);
    s.task
        .put(&[record(0, "bad"), record(1, "good")])
        .await
        .unwrap();
    // 400 is not in retry.on.status.codes=500-: one attempt.
    assert_eq!(script.lock().unwrap().seen.len(), 2);
    let reports = s.errant.reports.lock().unwrap().clone();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].0, 0);
    assert!(
        reports[0]
            .1
            .contains("answered 400 after 1 attempt(s): failed with 400"),
        "{}",
        reports[0].1
    );
    let sent = s.producer.sent.lock().unwrap().clone();
    assert_eq!(sent[0].topic, "errors");
    assert_eq!(header(&sent[0], "http_status_code"), "400");
    assert_eq!(sent[1].topic, "replies");
    assert_eq!(s.task.pre_commit(&Offsets::new()).await.unwrap()[&tp()], 2);
}

#[tokio::test]
async fn under_tolerance_none_a_refused_request_fails_the_task_and_commits_nothing() {
    let script = Arc::new(Mutex::new(Script::default()));
    script.lock().unwrap().answers.extend([404]);
    let url = server(script.clone()).await;
    let mut s = setup(&url, &[], false, true);
    let err = s.task.put(&[record(0, "x")]).await.unwrap_err();
    assert!(!err.is_retriable());
    assert!(s.producer.sent.lock().unwrap().is_empty());
    assert_eq!(s.task.pre_commit(&Offsets::new()).await.unwrap()[&tp()], 0);
}

#[tokio::test]
async fn batches_and_auth_reach_the_server() {
    let script = Arc::new(Mutex::new(Script::default()));
    let url = server(script.clone()).await;
    let mut s = setup(
        &url,
        &[
            ("batch.max.size", "3"),
            ("batch.prefix", "["),
            ("batch.separator", ","),
            ("batch.suffix", "]"),
            ("auth.type", "basic"),
            ("connection.user", "hd"),
            ("connection.password", "pw"),
        ],
        false,
        false,
    );
    let recs: Vec<_> = (0..4).map(|i| record(i, &i.to_string())).collect();
    s.task.put(&recs).await.unwrap();
    let seen = script.lock().unwrap().seen.clone();
    assert_eq!(
        seen,
        [
            (Some("Basic aGQ6cHc=".to_string()), "[0,1,2]".to_string()),
            (Some("Basic aGQ6cHc=".to_string()), "[3]".to_string()),
        ]
    );
    assert_eq!(s.task.pre_commit(&Offsets::new()).await.unwrap()[&tp()], 4);
}

#[tokio::test]
async fn a_server_that_is_down_is_retriable() {
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/x", listener.local_addr().unwrap());
    drop(listener);
    let mut s = setup(&url, &[], false, true);
    let err = s.task.put(&[record(5, "a")]).await.unwrap_err();
    assert!(err.is_retriable(), "{err}");
    assert!(
        err.one_line().contains("failed after 3 attempt(s)"),
        "{}",
        err.one_line()
    );
    assert_eq!(s.task.pre_commit(&Offsets::new()).await.unwrap()[&tp()], 5);
}

#[tokio::test]
async fn max_retries_counts_across_redeliveries_when_waits_are_long() {
    let script = Arc::new(Mutex::new(Script::default()));
    script.lock().unwrap().answers.extend([404, 404, 404]);
    let url = server(script.clone()).await;
    // A wait longer than the sink keeps a request: each delivery makes one attempt and
    // hands the batch back; the third attempt is the last (max.retries=2).
    let mut s = setup(
        &url,
        &[
            ("retry.on.status.codes", "400-"),
            ("retry.backoff.ms", "5000"),
        ],
        true,
        true,
    );
    for attempt in 1..=2 {
        let err = s.task.put(&[record(0, "x")]).await.unwrap_err();
        assert!(err.is_retriable());
        assert!(
            err.one_line()
                .contains(&format!("answered 404 (attempt {attempt} of 3;")),
            "{}",
            err.one_line()
        );
        assert_eq!(s.task.pre_commit(&Offsets::new()).await.unwrap()[&tp()], 0);
    }
    s.task.put(&[record(0, "x")]).await.unwrap();
    let reports = s.errant.reports.lock().unwrap().clone();
    assert_eq!(reports.len(), 1);
    assert!(
        reports[0].1.contains("answered 404 after 3 attempt(s)"),
        "{}",
        reports[0].1
    );
    assert_eq!(script.lock().unwrap().seen.len(), 3);
    assert_eq!(s.task.pre_commit(&Offsets::new()).await.unwrap()[&tp()], 1);
}
