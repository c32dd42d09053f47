//! The text a JVM gives a Kafka Connect value: Google's connector calls `toString()` to
//! make attribute values (and the data of a value without a schema), so ferry prints
//! values as Java does — `Long.toString`, `Double.toString`, `List.toString`,
//! `HashMap.toString` in `HashMap` iteration order, Connect's `Struct.toString`,
//! `BigDecimal.toString`, `java.util.Date.toString`.
//!
//! Where Java's text is not reproducible, ferry prints something useful instead and says so:
//!
//! * bytes: Java prints an object address (`[B@1b6d3586`); ferry prints base64, as the
//!   JSON converter writes bytes.
//! * dates (`Timestamp`, `Date`, `Time`): `Date.toString` uses the JVM's time zone; ferry
//!   prints them as a JVM in UTC does.
//! * `Double.toString`/`Float.toString`: as Java 19 and later print them (see
//!   [`ferry_connector_api::java_text`]).
//! * maps: entries in the order a `HashMap` built in the converter's order iterates them.
//!   Java keeps JSON's document order where ferry's JSON converter sorts keys; the two
//!   differ only for keys that share a hash bucket. Keys that are not strings, numbers or
//!   booleans keep the converter's order.

use std::collections::HashMap;
use std::fmt::Write as _;

use ferry_connector_api::data::{Data, Schema, SchemaKind};
use ferry_connector_api::java_text::{big_decimal, double, float};

/// The Java text of `data`, whose schema is `schema` (`None` for schemaless JSON).
pub(crate) fn text(schema: Option<&Schema>, data: &Data) -> String {
    let mut out = String::new();
    write(&mut out, schema, data);
    out
}

fn write(out: &mut String, schema: Option<&Schema>, data: &Data) {
    let kind = schema.map(|s| &s.kind);
    match data {
        Data::Null => out.push_str("null"),
        Data::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        Data::Int8(v) => push_display(out, v),
        Data::Int16(v) => push_display(out, v),
        Data::Int32(v) => push_display(out, v),
        Data::Int64(v) => push_display(out, v),
        Data::Float32(v) => out.push_str(&float(*v)),
        Data::Float64(v) => out.push_str(&double(*v)),
        Data::String(s) => out.push_str(s),
        Data::Bytes(b) => out.push_str(&base64(b)),
        Data::Timestamp(micros) => out.push_str(&date(micros.div_euclid(1000))),
        Data::Date(days) => out.push_str(&date(i64::from(*days) * MILLIS_PER_DAY)),
        Data::Time(micros) => out.push_str(&date(micros.div_euclid(1000))),
        Data::Decimal(unscaled) => {
            let scale = match kind {
                Some(SchemaKind::Decimal { scale, .. }) => *scale,
                _ => 0,
            };
            out.push_str(&big_decimal(unscaled, scale));
        }
        Data::Array(items) => {
            let item = match kind {
                Some(SchemaKind::Array(item)) => Some(&**item),
                _ => None,
            };
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write(out, item, v);
            }
            out.push(']');
        }
        Data::Map(entries) => {
            let (key, value) = match kind {
                Some(SchemaKind::Map { key, value }) => (Some(&**key), Some(&**value)),
                _ => (None, None),
            };
            out.push('{');
            for (i, (k, v)) in hash_map_order(entries).into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write(out, key, k);
                out.push('=');
                write(out, value, v);
            }
            out.push('}');
        }
        Data::Struct(values) => {
            // Connect's Struct.toString: set fields only, separated by a bare comma.
            let fields = schema.map_or(&[][..], Schema::fields);
            out.push_str("Struct{");
            let mut first = true;
            for (i, v) in values.iter().enumerate() {
                if matches!(v, Data::Null) {
                    continue;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                let field = fields.get(i);
                match field {
                    Some(f) => out.push_str(&f.name),
                    None => push_display(out, &i),
                }
                out.push('=');
                write(out, field.map(|f| &f.schema), v);
            }
            out.push('}');
        }
    }
}

fn push_display(out: &mut String, v: &dyn std::fmt::Display) {
    let _ = write!(out, "{v}");
}

const MILLIS_PER_DAY: i64 = 86_400_000;

/// `java.util.Date.toString` in UTC: `Thu Sep 02 00:00:00 UTC 2021`. Before 15 October
/// 1582 the date is Julian, as Java's calendar has it, and years BC print without their era.
pub(crate) fn date(epoch_millis: i64) -> String {
    const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = epoch_millis.div_euclid(MILLIS_PER_DAY);
    let secs = epoch_millis.rem_euclid(MILLIS_PER_DAY) / 1000;
    let (year, month, day) = civil(days);
    // The year of its era: 1 BC is "1", without the era.
    let year = if year <= 0 { 1 - year } else { year };
    // 1970-01-01 was a Thursday.
    let weekday = WEEKDAYS[(days + 4).rem_euclid(7) as usize];
    format!(
        "{weekday} {} {day:02} {:02}:{:02}:{:02} UTC {year}",
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Year, month (1–12) and day of a day number since 1970-01-01: Gregorian from 1582-10-15,
/// Julian before (Howard Hinnant's and the Julian day number algorithms).
fn civil(days: i64) -> (i64, i64, i64) {
    const GREGORIAN_CUTOVER: i64 = -141_427;
    if days < GREGORIAN_CUTOVER {
        let c = days + 2_440_588 + 32_082;
        let d = (4 * c + 3).div_euclid(1461);
        let e = c - (1461 * d).div_euclid(4);
        let m = (5 * e + 2).div_euclid(153);
        let day = e - (153 * m + 2).div_euclid(5) + 1;
        let month = m + 3 - 12 * (m / 10);
        return (d - 4800 + m / 10, month, day);
    }
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Standard base64 with padding.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Java's `hashCode()` of a map key, where ferry can compute it.
fn hash_code(key: &Data) -> Option<i32> {
    let fold = |v: i64| (v ^ ((v as u64) >> 32) as i64) as i32;
    Some(match key {
        Data::Null => 0,
        Data::Boolean(b) => {
            if *b {
                1231
            } else {
                1237
            }
        }
        Data::Int8(v) => i32::from(*v),
        Data::Int16(v) => i32::from(*v),
        Data::Int32(v) => *v,
        Data::Int64(v) => fold(*v),
        // floatToIntBits / doubleToLongBits: every NaN is the canonical one.
        Data::Float32(v) => (if v.is_nan() { f32::NAN } else { *v }).to_bits() as i32,
        Data::Float64(v) => fold((if v.is_nan() { f64::NAN } else { *v }).to_bits() as i64),
        // String.hashCode over UTF-16 code units.
        Data::String(s) => s
            .encode_utf16()
            .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c))),
        _ => return None,
    })
}

/// The entries of a map in the order a Java `HashMap` filled in `entries`' order iterates
/// them: by bucket (the spread hash modulo the table size the map grew to), then by
/// insertion. A repeated key keeps its first place and takes the last value, as `put` does.
fn hash_map_order(entries: &[(Data, Data)]) -> Vec<(&Data, &Data)> {
    let Some(hashes) = entries
        .iter()
        .map(|(k, _)| hash_code(k).map(|h| (h ^ ((h as u32) >> 16) as i32) as u32))
        .collect::<Option<Vec<u32>>>()
    else {
        return entries.iter().map(|(k, v)| (k, v)).collect();
    };
    // (hash, key, value) per distinct key, in insertion order.
    let mut distinct: Vec<(u32, &Data, &Data)> = Vec::with_capacity(entries.len());
    // Hash → places in `distinct`, so that finding a repeated key is not quadratic.
    let mut by_hash: HashMap<u32, Vec<usize>> = HashMap::with_capacity(entries.len());
    for ((k, v), h) in entries.iter().zip(hashes) {
        let places = by_hash.entry(h).or_default();
        match places.iter().find(|&&i| distinct[i].1 == k) {
            Some(&i) => distinct[i].2 = v,
            None => {
                places.push(distinct.len());
                distinct.push((h, k, v));
            }
        }
    }
    let capacity = table_size(distinct.iter().map(|(h, ..)| *h));
    let mut order: Vec<usize> = (0..distinct.len()).collect();
    order.sort_by_key(|&i| distinct[i].0 as usize & (capacity - 1));
    order
        .into_iter()
        .map(|i| (distinct[i].1, distinct[i].2))
        .collect()
}

/// The table size a `HashMap` reaches when these hashes are put into it one by one: 16 at
/// first, doubled when it holds more than ¾ of its size, and doubled too, while under 64,
/// when a bucket reaches 9 entries (where Java would otherwise make the bucket a tree).
/// Beyond 64, such a bucket iterates in tree order, which ferry does not reproduce.
fn table_size(hashes: impl Iterator<Item = u32>) -> usize {
    const TREEIFY: usize = 9;
    let mut size = 16usize;
    let mut held: Vec<u32> = Vec::new();
    let mut per_bucket = vec![0usize; size];
    let regrow = |size: usize, held: &[u32]| {
        let mut counts = vec![0usize; size];
        for h in held {
            counts[*h as usize & (size - 1)] += 1;
        }
        counts
    };
    for h in hashes {
        held.push(h);
        let bucket = h as usize & (size - 1);
        per_bucket[bucket] += 1;
        if per_bucket[bucket] >= TREEIFY && size < 64 {
            size *= 2;
            per_bucket = regrow(size, &held);
        }
        if held.len() > size / 4 * 3 {
            size *= 2;
            per_bucket = regrow(size, &held);
        }
    }
    size
}

#[cfg(test)]
mod tests {
    //! Expected texts were printed by OpenJDK 25 (`jshell`, default time zone UTC).

    use bytes::Bytes;
    use ferry_connector_api::data::Field;

    use super::*;

    fn s(t: &str) -> Data {
        Data::String(t.into())
    }

    #[test]
    fn dates_print_as_java_util_date_in_utc() {
        assert_eq!(date(1_630_540_800_123), "Thu Sep 02 00:00:00 UTC 2021");
        assert_eq!(date(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(date(-1), "Wed Dec 31 23:59:59 UTC 1969");
        assert_eq!(date(951_782_400_000), "Tue Feb 29 00:00:00 UTC 2000");
        // Julian before the Gregorian reform, as Java's calendar; 1029 BC shows as 1029.
        assert_eq!(
            date(-MILLIS_PER_DAY * 365 * 3000),
            "Sun Jan 08 00:00:00 UTC 1029"
        );
        assert_eq!(date(-62_135_596_800_000), "Mon Jan 03 00:00:00 UTC 1");
        assert_eq!(date(-62_167_219_200_000), "Sat Jan 03 00:00:00 UTC 1");
        assert_eq!(date(-12_219_292_800_000), "Fri Oct 15 00:00:00 UTC 1582");
        assert_eq!(date(-12_219_292_800_001), "Thu Oct 04 23:59:59 UTC 1582");
    }

    #[test]
    fn hash_maps_iterate_in_javas_order() {
        let map = |keys: &[&str]| {
            Data::Map(
                keys.iter()
                    .enumerate()
                    .map(|(i, k)| (s(k), Data::Int64(i as i64)))
                    .collect(),
            )
        };
        assert_eq!(
            text(None, &map(&["cps_message_body", "source"])),
            "{cps_message_body=0, source=1}"
        );
        assert_eq!(
            text(None, &map(&["big", "id", "mag", "n", "none", "ok", "tags"])),
            "{big=0, mag=2, id=1, none=4, ok=5, n=3, tags=6}"
        );
        assert_eq!(text(None, &map(&["name", "id"])), "{name=0, id=1}");
        // Forty keys: the table grows to 64.
        let keys: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let want = "{k31=31, k30=30, k11=11, k33=33, k10=10, k32=32, k13=13, k35=35, k12=12, k34=34, k15=15, k37=37, k14=14, k36=36, k17=17, k39=39, k16=16, k38=38, k19=19, k18=18, k0=0, k1=1, k2=2, k3=3, k20=20, k4=4, k5=5, k22=22, k6=6, k21=21, k7=7, k24=24, k8=8, k23=23, k9=9, k26=26, k25=25, k28=28, k27=27, k29=29}";
        assert_eq!(text(None, &map(&keys)), want);
        // Integer keys hash to themselves; a repeated key keeps its place.
        let ints = Data::Map(vec![
            (Data::Int32(17), s("a")),
            (Data::Int32(1), s("b")),
            (Data::Int32(17), s("c")),
        ]);
        assert_eq!(text(None, &ints), "{17=c, 1=b}");
    }

    #[test]
    fn a_bucket_of_nine_grows_a_small_table() {
        // Keys sharing bucket 0 of 16 and 32: Java grows the table instead of making a
        // tree, once per key that finds eight before it (checked with reflection on a
        // HashMap<Integer, _>, whose hashes are the integers).
        assert_eq!(table_size((0..9u32).map(|i| i << 7)), 32);
        assert_eq!(table_size((0..10u32).map(|i| i << 7)), 64);
        assert_eq!(table_size((0..9u32).map(|i| i << 4)), 32);
        assert_eq!(table_size(0..12u32), 16);
        assert_eq!(table_size(0..13u32), 32);
    }

    #[test]
    fn structs_lists_and_nulls_print_as_connect_does() {
        let inner = Schema::new(SchemaKind::Struct(vec![
            Field {
                name: "ra".into(),
                schema: Schema::new(SchemaKind::Float64),
                doc: None,
            },
            Field {
                name: "note".into(),
                schema: Schema::new(SchemaKind::String).optional(),
                doc: None,
            },
            Field {
                name: "fid".into(),
                schema: Schema::new(SchemaKind::Int32),
                doc: None,
            },
        ]));
        let list = Schema::new(SchemaKind::Array(Box::new(inner)));
        let data = Data::Array(vec![
            Data::Struct(vec![Data::Float64(1.5), Data::Null, Data::Int32(2)]),
            Data::Struct(vec![Data::Float64(3.0), s("x"), Data::Int32(1)]),
        ]);
        assert_eq!(
            text(Some(&list), &data),
            "[Struct{ra=1.5,fid=2}, Struct{ra=3.0,note=x,fid=1}]"
        );
        assert_eq!(
            text(None, &Data::Array(vec![Data::Null, Data::Boolean(true)])),
            "[null, true]"
        );
        assert_eq!(
            text(None, &Data::Bytes(Bytes::from_static(b"\x00\xffab"))),
            "AP9hYg=="
        );
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
        assert_eq!(base64(b""), "");
    }
}
