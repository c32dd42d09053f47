//! ZTF alerts — one Avro container file per Kafka message — through the directory sink,
//! byte for byte: the real alerts of tests/data/ztf, then synthetic ZTF-shaped ones, 52 in
//! all, 13 per partition.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;

#[test]
fn ztf_alerts_pass_through_the_directory_sink_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let alerts = ferry_mock_broker::ztf::alert_files(dir.path(), 52).unwrap();
    eprintln!("ZTF test: {}", alerts.describe());
    let files = alerts.files;
    let mut broker = Broker::start(1, 300);
    let topic = "ztf_20210901_programid1";
    // Four partitions keep each well under the mock's 5 MB retention.
    broker.create_topic(topic, 4);
    let mut by_partition: Vec<Vec<PathBuf>> = vec![Vec::new(); 4];
    for (i, f) in files.iter().enumerate() {
        by_partition[i % 4].push(f.clone());
    }
    for (p, fs) in by_partition.iter().enumerate() {
        produce_files(&broker.bootstrap, topic, p as i32, fs);
    }
    let out = dir.path().join("alerts");
    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    let connector = dir.path().join("ztf-directory.properties");
    std::fs::write(
        &connector,
        format!(
            "name=ztf-alerts-to-directory\nconnector.class=directory\ntasks.max=2\ntopics.regex=ztf_\\\\d{{8}}_programid1\ndirectory.path={}\ndirectory.filename.template={{topic}}/{{partition}}/{{offset}}.avro\n",
            out.display()
        ),
    )
    .unwrap();
    run_to_end(
        dir.path(),
        &[],
        &worker,
        &[&connector],
        Duration::from_secs(120),
    );
    let mut checked = 0;
    for (p, fs) in by_partition.iter().enumerate() {
        for (offset, f) in fs.iter().enumerate() {
            let written = std::fs::read(out.join(format!("{topic}/{p}/{offset}.avro"))).unwrap();
            let original = std::fs::read(f).unwrap();
            assert!(written.starts_with(b"Obj\x01"), "{}", f.display());
            assert_eq!(written.len(), original.len(), "{}", f.display());
            assert!(written == original, "{} differs", f.display());
            checked += 1;
        }
    }
    assert_eq!(checked, files.len());
    let offsets = offset_file(&dir.path().join("connect.offsets"));
    let total: i64 = offsets["ztf-alerts-to-directory"].values().sum();
    assert_eq!(total, files.len() as i64);
}
