//! README command 1, `ferry quickstart`, end to end: embedded cluster, sample records, the
//! directory sink, and its summary line.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;

#[test]
fn quickstart_writes_every_sample_record_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("qs");
    let mut ferry = Ferry::spawn(
        &ferry_bin(),
        &[
            "quickstart",
            "--records",
            "250",
            "--dir",
            work.to_str().unwrap(),
        ],
        dir.path(),
        "qs",
    );
    let status = ferry.wait(Duration::from_secs(60));
    assert!(status.success(), "{}", ferry.log());
    let summary = std::fs::read_to_string(&ferry.stdout).unwrap();
    assert!(
        summary.starts_with("ferry quickstart: 250 records produced"),
        "{summary}"
    );
    // Check the output independently of the quickstart's own count: 250 JSON documents,
    // each the sample of its key's number, spread over the topic's 3 partitions.
    let mut ids = Vec::new();
    for p in 0..3 {
        for entry in std::fs::read_dir(work.join(format!("out/alerts/{p}"))).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            ids.push(v["objectId"].as_str().unwrap().to_string());
        }
    }
    ids.sort();
    let expected: Vec<String> = (0..250).map(|i| format!("ZTF-SAMPLE-{i:06}")).collect();
    assert_eq!(ids, expected);
    let offsets = offset_file(&work.join("connect.offsets"));
    assert_eq!(
        offsets["quickstart-directory-sink"].values().sum::<i64>(),
        250
    );
    // A second run starts clean rather than resuming past a fresh cluster's offsets.
    let mut again = Ferry::spawn(
        &ferry_bin(),
        &[
            "quickstart",
            "--records",
            "10",
            "--dir",
            work.to_str().unwrap(),
        ],
        dir.path(),
        "qs2",
    );
    assert!(
        again.wait(Duration::from_secs(60)).success(),
        "{}",
        again.log()
    );
    assert!(
        std::fs::read_to_string(&again.stdout)
            .unwrap()
            .contains("10 records produced")
    );
}
