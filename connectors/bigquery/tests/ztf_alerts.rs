//! The real ZTF alerts (Avro container files, schema embedded) map to a BigQuery table and
//! rows with no schema written by hand. Skipped, with the reason printed, when the alerts
//! are not there (they live beside the project, not in it).
#![allow(clippy::unwrap_used)]

use apache_avro::Reader;
use apache_avro::types::Value;
use ferry_connector_bigquery::rows::row;
use ferry_connector_bigquery::schema::{Kind, Mode, table_fields};

fn field<'a>(v: &'a Value, name: &str) -> &'a Value {
    let Value::Record(fields) = v else {
        panic!("not a record")
    };
    let found = &fields.iter().find(|(n, _)| n == name).unwrap().1;
    match found {
        Value::Union(_, inner) => inner,
        other => other,
    }
}

#[test]
fn every_real_ztf_alert_maps_to_a_table_and_a_row() {
    let files = ferry_mock_broker::ztf::real_alert_files();
    if files.is_empty() {
        // Recorded where tests/run.sh counts skips.
        let reason = format!(
            "bigquery::every_real_ztf_alert_maps_to_a_table_and_a_row: no ZTF alerts at {} (set FERRY_ZTF_ALERTS)",
            ferry_mock_broker::ztf::alert_dir().display()
        );
        eprintln!("SKIPPED {reason}");
        let skips =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-skips.txt");
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(skips)
        {
            use std::io::Write;
            let _ = writeln!(f, "{reason}");
        }
        return;
    }
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        let reader = Reader::new(&bytes[..]).unwrap();
        let columns = table_fields(reader.writer_schema()).unwrap();
        let candidate = columns.iter().find(|f| f.name == "candidate").unwrap();
        assert_eq!(
            (candidate.kind, candidate.mode),
            (Kind::Record, Mode::Required)
        );
        let prv = columns.iter().find(|f| f.name == "prv_candidates").unwrap();
        assert_eq!(prv.mode, Mode::Repeated, "{}", path.display());
        let values: Vec<Value> = reader.map(|v| v.unwrap()).collect();
        assert_eq!(values.len(), 1, "one alert per file");
        let alert = &values[0];
        let r = row(alert).unwrap();
        // The row carries what the Avro value carries, field for field.
        let Value::String(object_id) = field(alert, "objectId") else {
            panic!()
        };
        assert_eq!(r["objectId"], object_id.as_str());
        let Value::Long(candid) = field(alert, "candid") else {
            panic!()
        };
        assert_eq!(r["candid"], candid.to_string());
        let Value::Double(jd) = field(field(alert, "candidate"), "jd") else {
            panic!()
        };
        assert_eq!(r["candidate"]["jd"].as_f64().unwrap(), *jd);
        let prv_len = match field(alert, "prv_candidates") {
            Value::Array(a) => a.len(),
            _ => 0,
        };
        assert_eq!(r["prv_candidates"].as_array().map_or(0, Vec::len), prv_len);
        let Value::Bytes(stamp) = field(field(alert, "cutoutScience"), "stampData") else {
            panic!()
        };
        let b64 = r["cutoutScience"]["stampData"].as_str().unwrap();
        assert_eq!(b64.len(), stamp.len().div_ceil(3) * 4);
    }
    eprintln!("{} real ZTF alerts mapped", files.len());
}
