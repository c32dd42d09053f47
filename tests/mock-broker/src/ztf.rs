//! ZTF alerts for tests and benchmarks, all from the repository so a fresh clone runs every
//! test that decodes them:
//!
//! - [`real_alert_files`]: six real alerts of the ZTF public stream (schema 3.3) in
//!   `tests/data/ztf` (origin and licence in `tests/data/README.md`);
//! - [`synthetic_alerts`]: any number of valid Avro container files of a ZTF-shaped schema
//!   of ferry's own ([`SYNTHETIC_SCHEMA`]), written with `apache-avro`, deterministic, with
//!   incompressible cutouts so each is 60–78 KB like a real alert;
//! - [`alert_files`]: the real ones, then synthetic ones up to a count, for tests that
//!   carry alerts as bytes and need volume. Tests that decode alerts into one table keep
//!   the two families apart (their schemas differ).
//!
//! Benchmarks may use a larger set of real alerts from outside the repository
//! ([`bench_alerts`]); nothing requires it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use apache_avro::types::Value;
use apache_avro::{Schema, Writer};

/// The directory of the real alerts in the repository.
pub fn real_alert_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/ztf")
}

/// The real alert files of `tests/data/ztf`, sorted. An error when there are none: they
/// are part of the repository, so a missing one means a damaged checkout.
pub fn real_alert_files() -> std::io::Result<Vec<PathBuf>> {
    avro_files(&real_alert_dir())
}

/// The real alerts' bytes, in [`real_alert_files`]' order.
pub fn real_alerts() -> std::io::Result<Vec<Vec<u8>>> {
    real_alert_files()?.iter().map(std::fs::read).collect()
}

/// The `*.avro` files of `dir`, sorted; an error naming `dir` when it has none.
fn avro_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let read = |e: std::io::Error| {
        std::io::Error::new(e.kind(), format!("cannot list {}: {e}", dir.display()))
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read)? {
        let path = entry.map_err(read)?.path();
        if path.extension().is_some_and(|e| e == "avro") {
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no *.avro files in {}", dir.display()),
        ));
    }
    files.sort();
    Ok(files)
}

/// The schema of the synthetic alerts: ZTF's shape (an alert with a nested `candidate`
/// record, a nullable array of earlier detections and three cutout images as bytes),
/// written for ferry's tests, much smaller than ZTF's own (which it does not copy).
pub const SYNTHETIC_SCHEMA: &str = r#"{
  "type": "record",
  "name": "alert",
  "namespace": "ferry.test.ztf_shaped",
  "doc": "A synthetic alert shaped like a ZTF alert, written by ferry's tests.",
  "fields": [
    {"name": "schemavsn", "type": "string", "doc": "Version of this schema."},
    {"name": "publisher", "type": "string", "doc": "Who wrote the alert."},
    {"name": "objectId", "type": "string", "doc": "Object identifier."},
    {"name": "candid", "type": "long", "doc": "Identifier of the triggering detection."},
    {"name": "candidate", "doc": "The detection that triggered the alert.", "type": {
      "type": "record",
      "name": "candidate",
      "fields": [
        {"name": "jd", "type": "double", "doc": "Julian date of the exposure [days]."},
        {"name": "fid", "type": "int", "doc": "Filter: 1 g, 2 r, 3 i."},
        {"name": "pid", "type": "long", "doc": "Processing identifier."},
        {"name": "candid", "type": "long"},
        {"name": "programid", "type": "int"},
        {"name": "isdiffpos", "type": "string", "doc": "t: positive difference, f: negative."},
        {"name": "ra", "type": "double", "doc": "Right ascension [deg]."},
        {"name": "dec", "type": "double", "doc": "Declination [deg]."},
        {"name": "magpsf", "type": "float", "doc": "PSF-fit magnitude [mag]."},
        {"name": "sigmapsf", "type": "float", "doc": "1-sigma error of magpsf [mag]."},
        {"name": "diffmaglim", "type": ["null", "float"], "default": null},
        {"name": "magap", "type": ["null", "float"], "default": null},
        {"name": "rb", "type": ["null", "float"], "default": null, "doc": "Real-bogus score."},
        {"name": "drb", "type": ["null", "float"], "default": null},
        {"name": "ssdistnr", "type": ["null", "float"], "default": null},
        {"name": "ssnamenr", "type": ["null", "string"], "default": null},
        {"name": "ndethist", "type": "int"},
        {"name": "jdstarthist", "type": ["null", "double"], "default": null},
        {"name": "nid", "type": ["null", "int"], "default": null},
        {"name": "rcid", "type": ["null", "int"], "default": null}
      ]
    }},
    {"name": "prv_candidates", "default": null, "doc": "Earlier detections and upper limits.", "type": ["null", {
      "type": "array",
      "items": {
        "type": "record",
        "name": "prv_candidate",
        "fields": [
          {"name": "jd", "type": "double"},
          {"name": "fid", "type": "int"},
          {"name": "pid", "type": "long"},
          {"name": "candid", "type": ["null", "long"], "default": null, "doc": "Null for an upper limit."},
          {"name": "diffmaglim", "type": ["null", "float"], "default": null},
          {"name": "magpsf", "type": ["null", "float"], "default": null},
          {"name": "sigmapsf", "type": ["null", "float"], "default": null},
          {"name": "ra", "type": ["null", "double"], "default": null},
          {"name": "dec", "type": ["null", "double"], "default": null},
          {"name": "isdiffpos", "type": ["null", "string"], "default": null}
        ]
      }
    }]},
    {"name": "cutoutScience", "default": null, "type": ["null", {
      "type": "record",
      "name": "cutout",
      "fields": [
        {"name": "fileName", "type": "string"},
        {"name": "stampData", "type": "bytes", "doc": "The image (gzipped FITS in ZTF's alerts)."}
      ]
    }]},
    {"name": "cutoutTemplate", "type": ["null", "cutout"], "default": null},
    {"name": "cutoutDifference", "type": ["null", "cutout"], "default": null}
  ]
}"#;

/// The cutout fields, in schema order.
pub const CUTOUTS: [&str; 3] = ["cutoutScience", "cutoutTemplate", "cutoutDifference"];

/// The `candid` of synthetic alert 0; alert `i` has `SYNTHETIC_CANDID + i` (ZTF's are
/// below 2^61, so they cannot collide with a real one).
pub const SYNTHETIC_CANDID: i64 = 3_000_000_000_000_000_000;

/// Synthetic alerts `0..n` (see [`synthetic_alert`]).
pub fn synthetic_alerts(n: usize) -> Vec<Vec<u8>> {
    let schema = synthetic_schema();
    (0..n as u64).map(|i| write_alert(&schema, i)).collect()
}

/// Synthetic alert `i`: one record of [`SYNTHETIC_SCHEMA`] in an Avro container file
/// (codec null, as ZTF's). The same `i` gives the same bytes on every run and machine.
pub fn synthetic_alert(i: u64) -> Vec<u8> {
    write_alert(&synthetic_schema(), i)
}

/// [`SYNTHETIC_SCHEMA`], parsed.
pub fn synthetic_schema() -> Schema {
    // A constant; the unit tests parse it.
    Schema::parse_str(SYNTHETIC_SCHEMA).expect("SYNTHETIC_SCHEMA is a valid Avro schema")
}

fn union(index: u32, value: Value) -> Value {
    Value::Union(index, Box::new(value))
}

fn nullable(value: Option<Value>) -> Value {
    match value {
        Some(v) => union(1, v),
        None => union(0, Value::Null),
    }
}

fn record(fields: Vec<(&str, Value)>) -> Value {
    Value::Record(fields.into_iter().map(|(n, v)| (n.to_owned(), v)).collect())
}

fn write_alert(schema: &Schema, i: u64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(0x5A7F_A1E7 ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let candid = SYNTHETIC_CANDID + i as i64;
    let jd = 2_461_000.5 + i as f64 * 0.0137;
    let ra = rng.f64() * 360.0;
    let dec = rng.f64() * 120.0 - 30.0;
    let fid = 1 + (i % 3) as i32;
    let pid = 3_000_000_000 + (i as i64) * 7;
    // Some alerts have no history (a first detection), as in the real stream.
    let prv = (!i.is_multiple_of(7)).then(|| {
        (0..rng.usize(1..=24))
            .map(|k| {
                let detected = !rng.u8(..).is_multiple_of(3);
                let mag = 17.0 + rng.f32() * 4.0;
                record(vec![
                    ("jd", Value::Double(jd - 1.0 - k as f64 * 0.9)),
                    ("fid", Value::Int(1 + (k % 2) as i32)),
                    ("pid", Value::Long(pid - 1 - k as i64)),
                    (
                        "candid",
                        nullable(detected.then(|| Value::Long(candid - 1 - k as i64))),
                    ),
                    ("diffmaglim", nullable(Some(Value::Float(mag + 1.5)))),
                    ("magpsf", nullable(detected.then_some(Value::Float(mag)))),
                    (
                        "sigmapsf",
                        nullable(detected.then(|| Value::Float(rng.f32() * 0.2))),
                    ),
                    ("ra", nullable(detected.then_some(Value::Double(ra)))),
                    ("dec", nullable(detected.then_some(Value::Double(dec)))),
                    (
                        "isdiffpos",
                        nullable(detected.then(|| Value::String("t".into()))),
                    ),
                ])
            })
            .collect::<Vec<_>>()
    });
    let ndethist = prv.as_ref().map_or(1, |p| 1 + p.len() as i32);
    let candidate = record(vec![
        ("jd", Value::Double(jd)),
        ("fid", Value::Int(fid)),
        ("pid", Value::Long(pid)),
        ("candid", Value::Long(candid)),
        ("programid", Value::Int(1)),
        (
            "isdiffpos",
            Value::String(if rng.bool() { "t" } else { "f" }.into()),
        ),
        ("ra", Value::Double(ra)),
        ("dec", Value::Double(dec)),
        ("magpsf", Value::Float(16.0 + rng.f32() * 5.0)),
        ("sigmapsf", Value::Float(0.02 + rng.f32() * 0.2)),
        ("diffmaglim", nullable(Some(Value::Float(20.5)))),
        (
            "magap",
            nullable((!i.is_multiple_of(5)).then(|| Value::Float(16.0 + rng.f32() * 5.0))),
        ),
        ("rb", nullable(Some(Value::Float(rng.f32())))),
        (
            "drb",
            nullable((!i.is_multiple_of(4)).then(|| Value::Float(rng.f32()))),
        ),
        (
            "ssdistnr",
            nullable(i.is_multiple_of(11).then(|| Value::Float(rng.f32() * 30.0))),
        ),
        (
            "ssnamenr",
            nullable(
                i.is_multiple_of(11)
                    .then(|| Value::String(format!("{}", 1000 + i))),
            ),
        ),
        ("ndethist", Value::Int(ndethist)),
        (
            "jdstarthist",
            nullable(Some(Value::Double(jd - ndethist as f64))),
        ),
        ("nid", nullable(Some(Value::Int(2000 + (i / 50) as i32)))),
        ("rcid", nullable(Some(Value::Int((i % 64) as i32)))),
    ]);
    // Three incompressible stamps (ZTF's are gzipped FITS) of 18.5–24 KB each: with the
    // schema and the rest, 60–78 KB per alert.
    let mut cutout = |kind: &str| {
        let mut stamp = vec![0u8; rng.usize(18_500..24_000)];
        rng.fill(&mut stamp);
        union(
            1,
            record(vec![
                (
                    "fileName",
                    Value::String(format!("candid{candid}_pid{pid}_targ_{kind}.fits.gz")),
                ),
                ("stampData", Value::Bytes(stamp)),
            ]),
        )
    };
    let (science, template, difference) = (cutout("sci"), cutout("ref"), cutout("diff"));
    let alert = record(vec![
        ("schemavsn", Value::String("ferry-1".into())),
        ("publisher", Value::String("ferry tests".into())),
        ("objectId", Value::String(object_id(i))),
        ("candid", Value::Long(candid)),
        ("candidate", candidate),
        ("prv_candidates", nullable(prv.map(Value::Array))),
        ("cutoutScience", science),
        ("cutoutTemplate", template),
        ("cutoutDifference", difference),
    ]);
    let mut marker = [0u8; 16];
    rng.fill(&mut marker);
    // The values follow the schema by construction (the unit tests read them back).
    let mut writer = Writer::builder()
        .schema(schema)
        .writer(Vec::new())
        .marker(marker)
        .user_metadata(HashMap::new())
        .build()
        .expect("the synthetic schema resolves");
    writer
        .append_value(alert)
        .expect("a synthetic alert follows its schema");
    writer.into_inner().expect("writing to memory")
}

/// `ZTF99` and seven letters: ZTF's form, with a year (2099) no real object has.
fn object_id(i: u64) -> String {
    let mut id = String::from("ZTF99");
    let mut n = i;
    for _ in 0..7 {
        id.push((b'a' + (n % 26) as u8) as char);
        n /= 26;
    }
    id
}

/// Alerts as files: the real ones of `tests/data/ztf`, then synthetic ones written under
/// `scratch` up to `at_least` in all (none when there are that many real ones).
#[derive(Debug)]
pub struct AlertFiles {
    /// Real first, then synthetic.
    pub files: Vec<PathBuf>,
    /// How many of `files` are real.
    pub real: usize,
}

impl AlertFiles {
    /// What the files are, for a test's log: `6 real ZTF alerts (tests/data/ztf) + 46
    /// synthetic ZTF-shaped alerts`.
    pub fn describe(&self) -> String {
        describe(self.real, self.files.len() - self.real)
    }
}

fn describe(real: usize, synthetic: usize) -> String {
    let mut s = format!("{real} real ZTF alerts (tests/data/ztf)");
    if synthetic > 0 {
        s += &format!(" + {synthetic} synthetic ZTF-shaped alerts");
    }
    s
}

/// The real alerts, then synthetic ones written under `scratch` to make `at_least` files.
pub fn alert_files(scratch: &Path, at_least: usize) -> std::io::Result<AlertFiles> {
    let mut files = real_alert_files()?;
    let real = files.len();
    files.extend(write_synthetic_alerts(
        scratch,
        at_least.saturating_sub(real),
    )?);
    Ok(AlertFiles { files, real })
}

/// Synthetic alerts `0..n` as `scratch/synthetic-alerts/synthetic-NNN.avro`.
pub fn write_synthetic_alerts(scratch: &Path, n: usize) -> std::io::Result<Vec<PathBuf>> {
    let dir = scratch.join("synthetic-alerts");
    std::fs::create_dir_all(&dir)?;
    synthetic_alerts(n)
        .into_iter()
        .enumerate()
        .map(|(i, bytes)| {
            let f = dir.join(format!("synthetic-{i:03}.avro"));
            std::fs::write(&f, bytes)?;
            Ok(f)
        })
        .collect()
}

/// Alerts for benchmarks, and what they are: the real alerts of the directory
/// `FERRY_ZTF_ALERTS` names, or of `../shared/data/ztf/alerts` beside the repository, when
/// one exists (an optional, larger set for development machines); otherwise the real
/// alerts of `tests/data/ztf`, then synthetic ones up to `at_least`. A benchmark that
/// decodes every alert into one table passes `at_least = 0`, so its fallback holds one
/// schema.
pub fn bench_alerts(at_least: usize) -> std::io::Result<(Vec<Vec<u8>>, String)> {
    let extra = std::env::var_os("FERRY_ZTF_ALERTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/ztf/alerts")
        });
    bench_alerts_from(&extra, at_least)
}

/// [`bench_alerts`] with the optional directory given.
fn bench_alerts_from(extra: &Path, at_least: usize) -> std::io::Result<(Vec<Vec<u8>>, String)> {
    if let Ok(files) = avro_files(extra) {
        let bytes = files
            .iter()
            .map(std::fs::read)
            .collect::<std::io::Result<Vec<_>>>()?;
        let what = format!("{} real ZTF alerts ({})", bytes.len(), extra.display());
        return Ok((bytes, what));
    }
    let mut bytes = real_alerts()?;
    let real = bytes.len();
    bytes.extend(synthetic_alerts(at_least.saturating_sub(real)));
    let what = describe(real, bytes.len() - real);
    Ok((bytes, what))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use apache_avro::Reader;

    fn field<'a>(fields: &'a [(String, Value)], name: &str) -> &'a Value {
        &fields.iter().find(|(n, _)| n == name).unwrap().1
    }

    fn unwrap_union(v: &Value) -> &Value {
        match v {
            Value::Union(_, inner) => inner,
            other => other,
        }
    }

    #[test]
    fn synthetic_alerts_are_avro_containers_of_the_ztf_shape() {
        let alerts = synthetic_alerts(30);
        let mut candids = std::collections::BTreeSet::new();
        let (mut without_history, mut upper_limits) = (0, 0);
        for (i, bytes) in alerts.iter().enumerate() {
            assert!(
                (60_000..=78_000).contains(&bytes.len()),
                "alert {i}: {} bytes",
                bytes.len()
            );
            let reader = Reader::new(&bytes[..]).unwrap();
            assert_eq!(reader.writer_schema(), &synthetic_schema());
            let records: Vec<Value> = reader.map(Result::unwrap).collect();
            assert_eq!(records.len(), 1, "one alert per container, as ZTF's");
            let Value::Record(alert) = &records[0] else {
                panic!("alert {i} is not a record")
            };
            let Value::String(id) = field(alert, "objectId") else {
                panic!()
            };
            assert!(id.starts_with("ZTF99") && id.len() == 12, "{id}");
            let Value::Long(candid) = field(alert, "candid") else {
                panic!()
            };
            assert!(candids.insert(*candid), "candid {candid} repeats");
            let Value::Record(candidate) = field(alert, "candidate") else {
                panic!("candidate is not a record")
            };
            assert_eq!(field(candidate, "candid"), &Value::Long(*candid));
            assert!(
                matches!(field(candidate, "magpsf"), Value::Float(m) if (16.0..21.0).contains(m))
            );
            match unwrap_union(field(alert, "prv_candidates")) {
                Value::Null => without_history += 1,
                Value::Array(prv) => {
                    assert!(!prv.is_empty());
                    for p in prv {
                        let Value::Record(p) = p else { panic!() };
                        if unwrap_union(field(p, "candid")) == &Value::Null {
                            upper_limits += 1;
                        }
                    }
                }
                other => panic!("prv_candidates: {other:?}"),
            }
            let mut stamps = Vec::new();
            for c in CUTOUTS {
                let Value::Record(cutout) = unwrap_union(field(alert, c)) else {
                    panic!("{c} is not a record")
                };
                let Value::Bytes(stamp) = field(cutout, "stampData") else {
                    panic!()
                };
                assert!(stamp.len() >= 18_500);
                stamps.push(stamp.clone());
            }
            assert_ne!(stamps[0], stamps[1]);
        }
        assert!(without_history > 0 && upper_limits > 0);
    }

    #[test]
    fn synthetic_alerts_are_the_same_on_every_run_and_do_not_compress() {
        assert_eq!(synthetic_alert(3), synthetic_alerts(4)[3]);
        assert_ne!(synthetic_alert(3), synthetic_alert(4));
        // Pseudo-random stamps: like gzipped FITS, deflate cannot shrink them much.
        let bytes = synthetic_alert(1);
        let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut z, &bytes).unwrap();
        let compressed = z.finish().unwrap();
        assert!(
            compressed.len() * 10 > bytes.len() * 9,
            "{} → {}",
            bytes.len(),
            compressed.len()
        );
    }

    #[test]
    fn the_real_alerts_are_in_the_repository() {
        let files = real_alert_files().unwrap();
        assert!(files.len() >= 6, "{files:?}");
        for bytes in real_alerts().unwrap() {
            let reader = Reader::new(&bytes[..]).unwrap();
            assert_eq!(
                reader.writer_schema().name().unwrap().fullname(None),
                "ztf.alert"
            );
        }
    }

    #[test]
    fn alert_files_makes_up_the_count_with_synthetic_ones() {
        let dir = tempfile::tempdir().unwrap();
        let a = alert_files(dir.path(), 10).unwrap();
        assert_eq!(a.files.len(), 10);
        assert_eq!(a.real, real_alert_files().unwrap().len());
        assert_eq!(std::fs::read(&a.files[a.real]).unwrap(), synthetic_alert(0));
        assert_eq!(
            a.describe(),
            format!(
                "{} real ZTF alerts (tests/data/ztf) + {} synthetic ZTF-shaped alerts",
                a.real,
                10 - a.real
            )
        );
    }

    #[test]
    fn benchmarks_use_the_optional_set_when_it_exists_and_the_repositorys_alerts_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let (alerts, what) = bench_alerts_from(dir.path(), 52).unwrap();
        let real = real_alerts().unwrap();
        assert_eq!(alerts.len(), 52);
        assert_eq!(alerts[..real.len()], real[..]);
        assert_eq!(alerts[real.len()], synthetic_alert(0));
        assert_eq!(what, describe(real.len(), 52 - real.len()));
        // at_least 0: the real alerts alone, one schema.
        assert_eq!(bench_alerts_from(dir.path(), 0).unwrap().0, real);

        std::fs::write(dir.path().join("a.avro"), synthetic_alert(7)).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not an alert").unwrap();
        let (alerts, what) = bench_alerts_from(dir.path(), 52).unwrap();
        assert_eq!(alerts, vec![synthetic_alert(7)]);
        assert_eq!(
            what,
            format!("1 real ZTF alerts ({})", dir.path().display())
        );
    }
}
