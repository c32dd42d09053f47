//! Kafka Connect's `Values.parseString` and `Values.convertToString`: the text form of a
//! header value that `SimpleHeaderConverter` reads and writes, and `InsertHeader` parses
//! its `value.literal` with.
//!
//! A port of Connect's tokenizer and parser (Kafka 3.8's `Values`), quirks included: a
//! string that is not a number, boolean, date, array or map stays the whole string; an array
//! or map that does not parse is a string; elements of a common numeric type are widened to
//! it (`[1, 2.5]` is two floats); a number is the smallest of int8, int16, int32, int64 that
//! holds it, else a float32, float64 or decimal. Dates and times are read and written in
//! UTC (Connect uses the JVM's zone, UTC on a server).

use bytes::Bytes;
use ferry_connector_api::java_text;

use crate::datefmt::DateFormat;

/// A typed header value: Connect's `SchemaAndValue` as `Values` makes and prints it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum HeaderValue {
    Null,
    Boolean(bool),
    Int8(i8),
    Int16(i16),
    Int32(i32),
    Int64(i64),
    Float32(f32),
    Float64(f64),
    /// A decimal, as Java's `BigDecimal.toString` prints it.
    Decimal(String),
    String(String),
    Bytes(Bytes),
    /// Connect's `Date`: milliseconds since the epoch, a whole number of days.
    Date(i64),
    /// Connect's `Time`: milliseconds since midnight.
    Time(i64),
    /// Connect's `Timestamp`: milliseconds since the epoch.
    Timestamp(i64),
    Array(Vec<HeaderValue>),
    /// Entries in order (Connect's `LinkedHashMap`).
    Map(Vec<(HeaderValue, HeaderValue)>),
    /// A struct's fields in order, with their names.
    Struct(Vec<(String, HeaderValue)>),
}

/// `Values.parseString`.
pub(crate) fn parse_string(s: &str) -> HeaderValue {
    if s.is_empty() {
        return HeaderValue::String(String::new());
    }
    let mut p = Parser::new(s);
    // A top-level value never fails: arrays and maps that do not parse are strings.
    p.parse(false).ok().flatten().unwrap_or(HeaderValue::Null)
}

/// `Values.convertToString`: the text `SimpleHeaderConverter` writes; `None` for null.
pub(crate) fn to_text(v: &HeaderValue) -> Option<String> {
    if *v == HeaderValue::Null {
        return None;
    }
    let mut out = String::new();
    append(&mut out, v, false);
    Some(out)
}

fn append(out: &mut String, v: &HeaderValue, embedded: bool) {
    match v {
        HeaderValue::Null => out.push_str("null"),
        HeaderValue::String(s) if embedded => {
            out.push('"');
            out.push_str(&escape(s));
            out.push('"');
        }
        HeaderValue::String(s) => out.push_str(s),
        HeaderValue::Bytes(b) => {
            use base64::Engine;
            let text = base64::engine::general_purpose::STANDARD.encode(b);
            if embedded {
                out.push('"');
                out.push_str(&text);
                out.push('"');
            } else {
                out.push_str(&text);
            }
        }
        HeaderValue::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                append(out, item, true);
            }
            out.push(']');
        }
        HeaderValue::Map(entries) => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                append(out, k, true);
                out.push(':');
                append(out, v, true);
            }
            out.push('}');
        }
        HeaderValue::Struct(fields) => {
            out.push('{');
            for (i, (name, v)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                append(out, &HeaderValue::String(name.clone()), true);
                out.push(':');
                append(out, v, true);
            }
            out.push('}');
        }
        HeaderValue::Date(ms) | HeaderValue::Time(ms) | HeaderValue::Timestamp(ms) => {
            out.push_str(&date_text(*ms));
        }
        scalar => out.push_str(&scalar_text(scalar)),
    }
}

/// Java's `toString` of a number or boolean.
pub(crate) fn scalar_text(v: &HeaderValue) -> String {
    match v {
        HeaderValue::Boolean(b) => b.to_string(),
        HeaderValue::Int8(n) => n.to_string(),
        HeaderValue::Int16(n) => n.to_string(),
        HeaderValue::Int32(n) => n.to_string(),
        HeaderValue::Int64(n) => n.to_string(),
        HeaderValue::Float32(f) => java_text::float(*f),
        HeaderValue::Float64(f) => java_text::double(*f),
        HeaderValue::Decimal(d) => d.clone(),
        _ => String::new(),
    }
}

/// `Values.escape`: backslashes doubled, quotes escaped.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// `Values.dateFormatFor`: a time of day below one day, a date on a whole day, else a
/// timestamp; UTC.
pub(crate) fn date_text(millis: i64) -> String {
    let pattern = if millis < MILLIS_PER_DAY {
        TIME_PATTERN
    } else if millis % MILLIS_PER_DAY == 0 {
        DATE_PATTERN
    } else {
        TIMESTAMP_PATTERN
    };
    DateFormat::parse(pattern)
        .and_then(|f| f.format(millis))
        .unwrap_or_else(|_| millis.to_string())
}

const MILLIS_PER_DAY: i64 = 86_400_000;
const DATE_PATTERN: &str = "yyyy-MM-dd";
const TIME_PATTERN: &str = "HH:mm:ss.SSS'Z'";
const TIMESTAMP_PATTERN: &str = "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'";

/// A value that does not parse where it is embedded (Connect's `DataException`): the
/// enclosing array or map is read as a string.
#[derive(Debug)]
struct Unparsable;

type Parsed = Result<Option<HeaderValue>, Unparsable>;

const DELIMITERS: [char; 7] = [':', ',', '{', '}', '[', ']', '"'];

/// Connect's `Values.Parser` (the tokenizer) and `ValueParser`, over chars.
struct Parser {
    chars: Vec<char>,
    pos: usize,
    next_token: Option<String>,
    previous: Option<String>,
}

/// Java's `String.trim`: every char up to U+0020 at either end.
fn java_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

fn is_blank(s: &str) -> bool {
    java_trim(s).is_empty()
}

impl Parser {
    fn new(s: &str) -> Self {
        Self {
            chars: s.chars().collect(),
            pos: 0,
            next_token: None,
            previous: None,
        }
    }

    fn original(&self) -> String {
        self.chars.iter().collect()
    }

    fn mark(&self) -> usize {
        self.pos - self.next_token.as_ref().map_or(0, |t| t.chars().count())
    }

    fn rewind_to(&mut self, position: usize) {
        self.pos = position;
        self.next_token = None;
        self.previous = None;
    }

    fn can_consume_next_token(&self) -> bool {
        self.pos < self.chars.len()
    }

    fn has_next(&self) -> bool {
        self.next_token.is_some() || self.can_consume_next_token()
    }

    fn next(&mut self) -> String {
        let token = match self.next_token.take() {
            Some(t) => t,
            None => self.consume_next_token(),
        };
        self.previous = Some(token.clone());
        token
    }

    /// The text of the next `n` tokens, or `None` (and nothing consumed) if fewer remain.
    fn next_n(&mut self, n: usize) -> Option<String> {
        let start = self.mark();
        for _ in 0..n {
            if !self.has_next() {
                self.rewind_to(start);
                return None;
            }
            self.next();
        }
        Some(self.chars[start..self.pos].iter().collect())
    }

    fn consume_next_token(&mut self) -> String {
        let mut escaped = false;
        let start = self.pos;
        while self.pos < self.chars.len() {
            let c = self.chars[self.pos];
            if c == '\\' {
                escaped = !escaped;
            } else if DELIMITERS.contains(&c) {
                if !escaped {
                    if start < self.pos {
                        return self.chars[start..self.pos].iter().collect();
                    }
                    self.pos += 1;
                    return c.to_string();
                }
                escaped = false;
            } else {
                escaped = false;
            }
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    fn can_consume(&mut self, expected: &str) -> bool {
        if self.is_next(expected) {
            self.next_token = None;
            return true;
        }
        false
    }

    fn is_next(&mut self, expected: &str) -> bool {
        if self.next_token.is_none() {
            if !self.has_next() {
                return false;
            }
            self.next_token = Some(self.consume_next_token());
        }
        while self.next_token.as_deref().is_some_and(is_blank) && self.can_consume_next_token() {
            self.next_token = Some(self.consume_next_token());
        }
        self.next_token
            .as_deref()
            .is_some_and(|t| java_trim(t) == expected)
    }

    fn can_parse_single_token_literal(&mut self, embedded: bool, literal: &str) -> bool {
        let start = self.mark();
        if self.can_consume(literal) && (embedded || !self.has_next()) {
            return true;
        }
        self.rewind_to(start);
        false
    }

    fn parse(&mut self, embedded: bool) -> Parsed {
        if !self.has_next() {
            return Ok(None);
        }
        if embedded && self.can_consume("\"") {
            return Ok(Some(self.parse_quoted_string()));
        }
        if self.can_parse_single_token_literal(embedded, "null") {
            return Ok(None);
        }
        if self.can_parse_single_token_literal(embedded, "true") {
            return Ok(Some(HeaderValue::Boolean(true)));
        }
        if self.can_parse_single_token_literal(embedded, "false") {
            return Ok(Some(HeaderValue::Boolean(false)));
        }
        let start = self.mark();
        let structured = if self.can_consume("[") {
            Some(self.parse_array())
        } else if self.can_consume("{") {
            Some(self.parse_map())
        } else {
            None
        };
        match structured {
            Some(Ok(v)) => return Ok(Some(v)),
            Some(Err(Unparsable)) => self.rewind_to(start),
            None => {}
        }
        let token = self.next();
        if is_blank(&token) {
            return Ok(Some(HeaderValue::String(token)));
        }
        self.parse_next_token(embedded, java_trim(&token)).map(Some)
    }

    fn parse_next_token(&mut self, embedded: bool, token: &str) -> Result<HeaderValue, Unparsable> {
        let first = token.chars().next().unwrap_or(' ');
        let digit = first.is_ascii_digit();
        if digit && let Some(t) = self.parse_multiple_tokens_as_temporal(token) {
            return Ok(t);
        }
        if (digit || first == '+' || first == '-')
            && let Some(n) = parse_as_number(token)
        {
            return Ok(n);
        }
        if embedded {
            return Err(Unparsable);
        }
        Ok(HeaderValue::String(self.original()))
    }

    fn parse_quoted_string(&mut self) -> HeaderValue {
        let mut content = String::new();
        while self.has_next() {
            if self.can_consume("\"") {
                break;
            }
            content.push_str(&self.next());
        }
        parse_as_temporal(&content).unwrap_or(HeaderValue::String(content))
    }

    fn parse_array(&mut self) -> Result<HeaderValue, Unparsable> {
        let mut items = Vec::new();
        let mut common = Merger::default();
        while self.has_next() {
            if self.can_consume("]") {
                if let Some(ty) = common.common {
                    items = items
                        .into_iter()
                        .map(|v| align(ty, v))
                        .collect::<Result<_, _>>()?;
                }
                return Ok(HeaderValue::Array(items));
            }
            if self.can_consume(",") {
                return Err(Unparsable);
            }
            let element = self.parse(true)?;
            common.merge(element.as_ref());
            items.push(element.unwrap_or(HeaderValue::Null));
            let position = self.mark();
            if self.can_consume("]") {
                self.rewind_to(position);
            } else if !self.can_consume(",") {
                return Err(Unparsable);
            }
        }
        Err(Unparsable)
    }

    fn parse_map(&mut self) -> Result<HeaderValue, Unparsable> {
        let mut entries: Vec<(HeaderValue, HeaderValue)> = Vec::new();
        let (mut keys, mut values) = (Merger::default(), Merger::default());
        while self.has_next() {
            if self.can_consume("}") {
                if let Some(kt) = keys.common {
                    let vt = values.common;
                    entries = entries
                        .into_iter()
                        .map(|(k, v)| {
                            let v = match vt {
                                Some(vt) => align(vt, v)?,
                                None => v,
                            };
                            Ok((align(kt, k)?, v))
                        })
                        .collect::<Result<_, _>>()?;
                }
                return Ok(HeaderValue::Map(entries));
            }
            if self.can_consume(",") {
                return Err(Unparsable);
            }
            let Some(key) = self.parse(true)?.filter(|k| *k != HeaderValue::Null) else {
                return Err(Unparsable);
            };
            if !self.can_consume(":") {
                return Err(Unparsable);
            }
            let value = self.parse(true)?;
            keys.merge(Some(&key));
            values.merge(value.as_ref());
            let value = value.unwrap_or(HeaderValue::Null);
            // A LinkedHashMap: a repeated key keeps its place and takes the new value.
            match entries.iter_mut().find(|(k, _)| *k == key) {
                Some(entry) => entry.1 = value,
                None => entries.push((key, value)),
            }
            self.can_consume(",");
        }
        Err(Unparsable)
    }

    fn parse_multiple_tokens_as_temporal(&mut self, token: &str) -> Option<HeaderValue> {
        // A time or timestamp is five tokens: colons are delimiters.
        let position = self.mark();
        if let Some(rest) = self.next_n(4)
            && let Some(t) = parse_as_temporal(&format!("{token}{rest}"))
        {
            return Some(t);
        }
        self.rewind_to(position);
        parse_as_temporal(token)
    }
}

/// The type a schema merger tracks (Connect's `Schema.Type`, temporal types apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Boolean,
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Decimal,
    String,
    Bytes,
    Date,
    Time,
    Timestamp,
    Array,
    Map,
}

fn type_of(v: &HeaderValue) -> Option<Ty> {
    Some(match v {
        HeaderValue::Null => return None,
        HeaderValue::Boolean(_) => Ty::Boolean,
        HeaderValue::Int8(_) => Ty::Int8,
        HeaderValue::Int16(_) => Ty::Int16,
        HeaderValue::Int32(_) => Ty::Int32,
        HeaderValue::Int64(_) => Ty::Int64,
        HeaderValue::Float32(_) => Ty::Float32,
        HeaderValue::Float64(_) => Ty::Float64,
        HeaderValue::Decimal(_) => Ty::Decimal,
        HeaderValue::String(_) => Ty::String,
        HeaderValue::Bytes(_) => Ty::Bytes,
        HeaderValue::Date(_) => Ty::Date,
        HeaderValue::Time(_) => Ty::Time,
        HeaderValue::Timestamp(_) => Ty::Timestamp,
        HeaderValue::Array(_) => Ty::Array,
        HeaderValue::Map(_) | HeaderValue::Struct(_) => Ty::Map,
    })
}

/// Connect's `SchemaMerger`: the common type of the values seen, if there is one.
#[derive(Debug, Default)]
struct Merger {
    common: Option<Ty>,
    incompatible: bool,
}

impl Merger {
    fn merge(&mut self, v: Option<&HeaderValue>) {
        let Some(ty) = v.and_then(type_of) else {
            return;
        };
        if self.incompatible {
            return;
        }
        self.common = match self.common {
            None => Some(ty),
            Some(previous) => merge_types(previous, ty),
        };
        self.incompatible = self.common.is_none();
    }
}

/// Connect's `mergeSchemas`: numbers widen to the larger type, other types must be equal.
fn merge_types(previous: Ty, new: Ty) -> Option<Ty> {
    fn rank(t: Ty) -> Option<u8> {
        match t {
            Ty::Int8 => Some(0),
            Ty::Int16 => Some(1),
            Ty::Int32 => Some(2),
            Ty::Int64 => Some(3),
            Ty::Float32 => Some(4),
            Ty::Float64 => Some(5),
            _ => None,
        }
    }
    if previous == new {
        return Some(previous);
    }
    let (a, b) = (rank(previous)?, rank(new)?);
    Some(if b > a { new } else { previous })
}

/// Connect's `convertTo` of a parsed element to the common type: a null where a value is
/// required does not parse.
fn align(ty: Ty, v: HeaderValue) -> Result<HeaderValue, Unparsable> {
    let whole = |v: &HeaderValue| -> Option<i64> {
        match v {
            HeaderValue::Int8(n) => Some(i64::from(*n)),
            HeaderValue::Int16(n) => Some(i64::from(*n)),
            HeaderValue::Int32(n) => Some(i64::from(*n)),
            HeaderValue::Int64(n) => Some(*n),
            _ => None,
        }
    };
    if v == HeaderValue::Null {
        return Err(Unparsable);
    }
    // Merged types only widen, so these conversions are exact (or float rounding).
    Ok(match (ty, whole(&v)) {
        (Ty::Int16, Some(n)) => HeaderValue::Int16(n as i16),
        (Ty::Int32, Some(n)) => HeaderValue::Int32(n as i32),
        (Ty::Int64, Some(n)) => HeaderValue::Int64(n),
        (Ty::Float32, Some(n)) => HeaderValue::Float32(n as f32),
        (Ty::Float64, Some(n)) => HeaderValue::Float64(n as f64),
        (Ty::Float64, None) => match v {
            HeaderValue::Float32(f) => HeaderValue::Float64(f64::from(f)),
            other => other,
        },
        _ => v,
    })
}

/// A Java `BigDecimal` literal: its unscaled digits (no sign, no leading zeros) and scale.
struct Decimal {
    negative: bool,
    digits: String,
    scale: i64,
}

fn big_decimal(token: &str) -> Option<Decimal> {
    let (negative, rest) = match token.as_bytes().first()? {
        b'-' => (true, &token[1..]),
        b'+' => (false, &token[1..]),
        _ => (false, token),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => {
            let e = &rest[i + 1..];
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (&rest[..i], e.parse::<i32>().ok()?)
        }
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let all = format!("{int}{frac}");
    let digits = all.trim_start_matches('0');
    Some(Decimal {
        negative,
        digits: if digits.is_empty() { "0" } else { digits }.to_string(),
        scale: frac.len() as i64 - i64::from(exponent),
    })
}

impl Decimal {
    /// The value when it is a whole number that fits a long (`parseAsExactDecimal`).
    fn exact(&self) -> Option<i64> {
        let digits = if self.scale > 0 {
            let keep = self.digits.len().checked_sub(self.scale as usize)?;
            if self.digits[keep..].bytes().any(|b| b != b'0') {
                return None;
            }
            &self.digits[..keep]
        } else {
            &self.digits[..]
        };
        let mut n: i128 = if digits.is_empty() {
            0
        } else {
            digits.parse().ok()?
        };
        if self.scale < 0 {
            for _ in 0..-self.scale {
                n = n.checked_mul(10)?;
                if n > i128::from(i64::MAX) + 1 {
                    return None;
                }
            }
        }
        if self.negative {
            n = -n;
        }
        i64::try_from(n).ok()
    }

    /// A zero written with a fractional part (`0.00`) is whole too.
    fn is_zero(&self) -> bool {
        self.digits == "0"
    }

    /// `BigDecimal.toString`.
    fn java_text(&self) -> String {
        java_text::big_decimal_of(self.negative, &self.digits, self.scale)
    }
}

/// `parseAsNumber`: the smallest integer type that holds a whole number, else a float32, a
/// float64, or a decimal.
fn parse_as_number(token: &str) -> Option<HeaderValue> {
    let d = big_decimal(token)?;
    let exact = if d.is_zero() { Some(0) } else { d.exact() };
    if let Some(n) = exact {
        return Some(if let Ok(n) = i8::try_from(n) {
            HeaderValue::Int8(n)
        } else if let Ok(n) = i16::try_from(n) {
            HeaderValue::Int16(n)
        } else if let Ok(n) = i32::try_from(n) {
            HeaderValue::Int32(n)
        } else {
            HeaderValue::Int64(n)
        });
    }
    let text = format!(
        "{}{}e{}",
        if d.negative { "-" } else { "" },
        d.digits,
        -d.scale
    );
    if d.scale != 0 {
        if let Ok(f) = text.parse::<f32>()
            && f.is_finite()
        {
            return Some(HeaderValue::Float32(f));
        }
        if let Ok(f) = text.parse::<f64>()
            && f.is_finite()
        {
            return Some(HeaderValue::Float64(f));
        }
    }
    Some(HeaderValue::Decimal(d.java_text()))
}

/// `parseAsTemporal`: a time (`HH:mm:ss.SSS'Z'`), timestamp or date (`yyyy-MM-dd`) by the
/// token's length; escaped colons are colons.
fn parse_as_temporal(token: &str) -> Option<HeaderValue> {
    let token = token.replace("\\:", ":");
    match token.chars().count() {
        13 => parse_time(&token).map(HeaderValue::Time),
        24 => {
            let (date, time) = token.split_once('T')?;
            let day = parse_date(date)?;
            let ms = parse_time(time)?;
            Some(HeaderValue::Timestamp(day + ms))
        }
        10 => parse_date(&token).map(HeaderValue::Date),
        _ => None,
    }
}

/// Digit runs separated by the given literals, as `SimpleDateFormat` reads numeric fields.
fn fields<const N: usize>(text: &str, separators: [char; N]) -> Option<Vec<i64>> {
    let mut out = Vec::with_capacity(N + 1);
    let mut rest = text;
    for sep in separators {
        let (field, tail) = rest.split_once(sep)?;
        out.push(number(field)?);
        rest = tail;
    }
    out.push(number(rest)?);
    Some(out)
}

fn number(field: &str) -> Option<i64> {
    if field.is_empty() || !field.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    field.parse().ok()
}

/// `yyyy-MM-dd` in UTC, as milliseconds; out-of-range months and days roll over, as a
/// lenient `SimpleDateFormat`'s do.
fn parse_date(text: &str) -> Option<i64> {
    let f = fields(text, ['-', '-'])?;
    let months = f[0].checked_mul(12)? + f[1] - 1;
    let (year, month) = (months.div_euclid(12), months.rem_euclid(12) + 1);
    let first = jiff::civil::Date::new(i16::try_from(year).ok()?, month as i8, 1).ok()?;
    let epoch = jiff::civil::date(1970, 1, 1);
    let days = i64::from(epoch.until(first).ok()?.get_days()) + f[2] - 1;
    days.checked_mul(MILLIS_PER_DAY)
}

/// `HH:mm:ss.SSS'Z'` as milliseconds since midnight, lenient.
fn parse_time(text: &str) -> Option<i64> {
    let body = text.strip_suffix('Z')?;
    let f = fields(body, [':', ':', '.'])?;
    Some(((f[0] * 60 + f[1]) * 60 + f[2]) * 1000 + f[3])
}

#[cfg(test)]
mod tests {
    use super::HeaderValue as V;
    use super::*;

    fn s(text: &str) -> V {
        V::String(text.into())
    }

    /// Kafka: ValuesTest.shouldParseNullString … shouldParseNullArrayElements and the
    /// strings-with-delimiters cases: what stays a string, what becomes a boolean or null.
    #[test]
    fn strings_booleans_and_nulls_parse_as_connect_parses_them() {
        assert_eq!(parse_string(""), s(""));
        assert_eq!(parse_string("\u{ffff}"), s("\u{ffff}"));
        for text in [
            "{foo: 3}",
            "{3: foo}",
            "[foo]",
            "null=",
            "true}",
            "false]",
            "{6:9 4:20}",
            "[0 1 2]",
            "{null: 3}",
            "[1, 2, 3,,,]",
            "[1, null]",
            "[null, 1]",
            "  ",
            "simple",
            "simple string",
            "simple \n\t\u{8}string",
            "'simple' string",
            "si\\mple",
            "si\\\\mple",
            "si\\\"mple",
            "si\\{mple",
            "si\\:mple",
            "a{b",
            "a:b",
            "\"",
            "{",
            "]",
            "\"simple\" string",
            "a { b c } d",
            " hello ",
        ] {
            assert_eq!(parse_string(text), s(text), "{text:?}");
        }
        let ws = " \t\n ";
        assert_eq!(parse_string(&format!("{ws}true{ws}")), V::Boolean(true));
        assert_eq!(parse_string(&format!("{ws}false{ws}")), V::Boolean(false));
        assert_eq!(parse_string(&format!("{ws}null{ws}")), V::Null);
        assert_eq!(parse_string("null"), V::Null);
        assert_eq!(
            parse_string("[true, false]"),
            V::Array(vec![V::Boolean(true), V::Boolean(false)])
        );
        assert_eq!(
            parse_string("{true: false, false: true}"),
            V::Map(vec![
                (V::Boolean(true), V::Boolean(false)),
                (V::Boolean(false), V::Boolean(true))
            ])
        );
        assert_eq!(parse_string("{}"), V::Map(vec![]));
        assert_eq!(parse_string("[]"), V::Array(vec![]));
        assert_eq!(parse_string("[null]"), V::Array(vec![V::Null]));
        assert_eq!(
            parse_string("{3: null}"),
            V::Map(vec![(V::Int8(3), V::Null)])
        );
        assert_eq!(parse_string("[[]]"), V::Array(vec![V::Array(vec![])]));
        assert_eq!(
            parse_string("{\"a\":[]}"),
            V::Map(vec![(s("a"), V::Array(vec![]))])
        );
    }

    /// Kafka: ValuesTest / SimpleHeaderConverterTest maps and lists of strings and numbers,
    /// with and without whitespace; numeric elements widened to their largest type; mixed
    /// elements kept as parsed.
    #[test]
    fn arrays_and_maps_parse_with_connects_element_types() {
        let strings = V::Map(vec![(s("foo"), s("123")), (s("bar"), s("baz"))]);
        assert_eq!(parse_string("{\"foo\":\"123\",\"bar\":\"baz\"}"), strings);
        assert_eq!(
            parse_string("{ \"foo\" : \"123\", \n\"bar\" : \"baz\" } "),
            strings
        );
        let shorts = V::Map(vec![
            (s("foo"), V::Int16(12345)),
            (s("bar"), V::Int16(0)),
            (s("baz"), V::Int16(-4321)),
        ]);
        assert_eq!(
            parse_string("{\"foo\":12345,\"bar\":0,\"baz\":-4321}"),
            shorts
        );
        assert_eq!(
            parse_string(" { \"foo\" :  12345 , \"bar\" : 0,  \"baz\" : -4321 }  "),
            shorts
        );
        let ints = V::Map(vec![
            (s("foo"), V::Int32(1234567890)),
            (s("bar"), V::Int32(0)),
            (s("baz"), V::Int32(-987654321)),
        ]);
        assert_eq!(
            parse_string(" { \"foo\" :  1234567890 , \"bar\" : 0,  \"baz\" : -987654321 }  "),
            ints
        );
        assert_eq!(
            parse_string("[1, 2, 32768]"),
            V::Array(vec![V::Int32(1), V::Int32(2), V::Int32(32768)])
        );
        assert_eq!(
            parse_string("[1, 2, 3.4028235E38]"),
            V::Array(vec![V::Float32(1.0), V::Float32(2.0), V::Float32(f32::MAX)])
        );
        assert_eq!(
            parse_string("[1, 2, 1.7976931348623157E308]"),
            V::Array(vec![V::Float64(1.0), V::Float64(2.0), V::Float64(f64::MAX)])
        );
        for (text, expected) in [
            (
                "[1, 2, 300, \"four\"]",
                vec![V::Int8(1), V::Int8(2), V::Int16(300), s("four")],
            ),
            (
                "[\"four\", 1, 2, 300]",
                vec![s("four"), V::Int8(1), V::Int8(2), V::Int16(300)],
            ),
        ] {
            assert_eq!(parse_string(text), V::Array(expected), "{text}");
        }
        // Keys of different types: neither keys nor values are widened.
        assert_eq!(
            parse_string("{1:1, 2:1, 300:300, \"four\":1}"),
            V::Map(vec![
                (V::Int8(1), V::Int8(1)),
                (V::Int8(2), V::Int8(1)),
                (V::Int16(300), V::Int16(300)),
                (s("four"), V::Int8(1)),
            ])
        );
        // Common keys, mixed values: keys widened, values kept.
        assert_eq!(
            parse_string("{1:1, 2:1, 300:300, 4:\"four\"}"),
            V::Map(vec![
                (V::Int16(1), V::Int8(1)),
                (V::Int16(2), V::Int8(1)),
                (V::Int16(300), V::Int16(300)),
                (V::Int16(4), s("four")),
            ])
        );
    }

    /// Kafka: ValuesTest.shouldParse{Timestamp,Date,Time}String…, with escaped colons, in
    /// arrays and maps.
    #[test]
    fn dates_times_and_timestamps_parse_in_utc() {
        let ts = 1_566_570_894_346; // 2019-08-23T14:34:54.346Z
        let day = 1_566_518_400_000; // 2019-08-23
        let time = ts - day;
        assert_eq!(parse_string("2019-08-23T14:34:54.346Z"), V::Timestamp(ts));
        assert_eq!(
            parse_string("2019-08-23T14\\:34\\:54.346Z"),
            V::Timestamp(ts)
        );
        assert_eq!(parse_string("2019-08-23"), V::Date(day));
        assert_eq!(parse_string("14:34:54.346Z"), V::Time(time));
        assert_eq!(parse_string("14\\:34\\:54.346Z"), V::Time(time));
        assert_eq!(parse_string("[2019-08-23]"), V::Array(vec![V::Date(day)]));
        assert_eq!(
            parse_string(
                "[2019-08-23T14:34:54.346Z,2019-01-23T15:12:34.567Z,   2019-04-23T19:12:34.567Z]"
            ),
            V::Array(vec![
                V::Timestamp(ts),
                V::Timestamp(1_548_256_354_567),
                V::Timestamp(1_556_046_754_567)
            ])
        );
        for text in ["{\"k1\":\"14:34:54.346Z\"}", "{\"k1\":14:34:54.346Z}"] {
            assert_eq!(
                parse_string(text),
                V::Map(vec![(s("k1"), V::Time(time))]),
                "{text}"
            );
        }
        // Written back as Values writes them.
        assert_eq!(
            to_text(&V::Timestamp(ts)).unwrap(),
            "2019-08-23T14:34:54.346Z"
        );
        assert_eq!(to_text(&V::Date(day)).unwrap(), "2019-08-23");
        assert_eq!(to_text(&V::Time(time)).unwrap(), "14:34:54.346Z");
    }

    /// Numbers: the smallest integer type, floats for fractions, decimals beyond.
    #[test]
    fn numbers_parse_to_connects_types_and_print_as_java() {
        for (text, v, back) in [
            ("42", V::Int8(42), "42"),
            (" 42 ", V::Int8(42), "42"),
            ("007", V::Int8(7), "7"),
            ("-129", V::Int16(-129), "-129"),
            ("1234567890", V::Int32(1234567890), "1234567890"),
            ("12345678901", V::Int64(12345678901), "12345678901"),
            ("1.0", V::Int8(1), "1"),
            ("0.00", V::Int8(0), "0"),
            ("1e3", V::Int16(1000), "1000"),
            ("1.50", V::Float32(1.5), "1.5"),
            ("-0.25", V::Float32(-0.25), "-0.25"),
            ("1e20", V::Float32(1e20), "1.0E20"),
            (
                "12345678901234567890",
                V::Decimal("12345678901234567890".into()),
                "12345678901234567890",
            ),
            ("1e400", V::Decimal("1E+400".into()), "1E+400"),
        ] {
            assert_eq!(parse_string(text), v, "{text}");
            assert_eq!(to_text(&v).unwrap(), back, "{text}");
        }
        // Java 19's digits where they are not Rust's shortest (`5e-324`).
        assert_eq!(scalar_text(&V::Float64(f64::from_bits(1))), "4.9E-324");
        // A number followed by more tokens is the number (Connect's parser stops there).
        assert_eq!(parse_string("1,2"), V::Int8(1));
        assert_eq!(parse_string("42 apples"), s("42 apples"));
        assert_eq!(parse_string("+"), s("+"));
    }

    /// Kafka: SimpleHeaderConverterTest round trips and ValuesTest.shouldEscape…: what
    /// `convertToString` writes parses back to the same value.
    #[test]
    fn values_written_as_text_parse_back_to_themselves() {
        assert_eq!(escape("three\"blind\\\"mice"), "three\\\"blind\\\\\\\"mice");
        for v in [
            s("simple"),
            s("three\"blind\\\"mice"),
            s("string with delimiters: <>?,./\\=+-!@#$%^&*(){}[]|;':"),
            V::Boolean(false),
            V::Int8(1),
            V::Int64(5_000_000_000),
            V::Float32(1.5),
            V::Map(vec![(s("foo"), s("123")), (s("bar"), s("baz"))]),
            V::Map(vec![
                (s("foo"), V::Int16(12345)),
                (s("baz"), V::Int16(-4321)),
            ]),
            V::Array(vec![s("foo"), s("bar")]),
            V::Array(vec![V::Int32(1234567890), V::Int32(-987654321)]),
            V::Map(vec![(s("foo"), s("bar")), (s("baz"), V::Int16(3456))]),
            V::Array(vec![s("foo"), V::Int16(13344)]),
            V::Array(vec![]),
            V::Map(vec![]),
        ] {
            let text = to_text(&v).unwrap();
            assert_eq!(parse_string(&text), v, "{text}");
        }
        assert_eq!(to_text(&V::Null), None);
        // The string `null` written as text reads back as null (SimpleHeaderConverter).
        assert_eq!(parse_string(&to_text(&s("null")).unwrap()), V::Null);
        assert_eq!(
            to_text(&V::Map(vec![(s("a"), V::Array(vec![V::Int8(1), V::Null]))])).unwrap(),
            "{\"a\":[1,null]}"
        );
        assert_eq!(
            to_text(&V::Struct(vec![
                ("f".into(), s("x")),
                ("n".into(), V::Int32(2))
            ]))
            .unwrap(),
            "{\"f\":\"x\",\"n\":2}"
        );
        assert_eq!(
            to_text(&V::Array(vec![V::Bytes(Bytes::from_static(b"Obj"))])).unwrap(),
            "[\"T2Jq\"]"
        );
    }

    /// Kafka: ValuesTest.shouldConsumeMultipleTokens.
    #[test]
    fn the_tokenizer_takes_n_tokens_or_none() {
        let mut p = Parser::new("a:b:c:d:e:f:g:h");
        assert_eq!(p.next_n(5).as_deref(), Some("a:b:c"));
        assert_eq!(p.next(), ":");
        assert_eq!(p.next(), "d");
        assert_eq!(p.next(), ":");
        assert_eq!(p.next_n(8), None);
        assert_eq!(p.next(), "e");
    }
}
