//! Java's `SimpleDateFormat` patterns (`yyyyMMdd`, `yyyy-MM-dd'T'HH:mm:ss.SSSZ`), which
//! Connect's TimestampRouter and TimestampConverter take, for instants in UTC (the zone
//! both use). Only the pattern letters that make sense for a UTC instant are translated;
//! any other letter is refused when the configuration is read.

use jiff::Timestamp;
use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(String),
    /// A pattern letter and how many times it was repeated.
    Field(char, usize),
}

#[derive(Debug, Clone)]
pub(crate) struct DateFormat {
    tokens: Vec<Token>,
}

const LETTERS: &str = "yMdHkKhmsSEauDZXz";
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

impl DateFormat {
    pub(crate) fn parse(pattern: &str) -> Result<DateFormat, String> {
        let mut tokens: Vec<Token> = Vec::new();
        let mut chars = pattern.chars().peekable();
        let mut literal = String::new();
        while let Some(c) = chars.next() {
            if c == '\'' {
                if chars.peek() == Some(&'\'') {
                    chars.next();
                    literal.push('\'');
                    continue;
                }
                let mut closed = false;
                while let Some(q) = chars.next() {
                    if q == '\'' {
                        if chars.peek() == Some(&'\'') {
                            chars.next();
                            literal.push('\'');
                        } else {
                            closed = true;
                            break;
                        }
                    } else {
                        literal.push(q);
                    }
                }
                if !closed {
                    return Err(format!(
                        "`{}` has an unterminated quote; close it with '",
                        ferry_connector_api::text::shown(pattern)
                    ));
                }
            } else if c.is_ascii_alphabetic() {
                if !LETTERS.contains(c) {
                    return Err(format!(
                        "the date format `{}` uses the pattern letter `{c}`, which ferry does not support; use letters from {LETTERS} or quote literal text with '",
                        ferry_connector_api::text::shown(pattern)
                    ));
                }
                let mut n = 1;
                while chars.peek() == Some(&c) {
                    chars.next();
                    n += 1;
                }
                if !literal.is_empty() {
                    tokens.push(Token::Literal(std::mem::take(&mut literal)));
                }
                tokens.push(Token::Field(c, n));
            } else {
                literal.push(c);
            }
        }
        if !literal.is_empty() {
            tokens.push(Token::Literal(literal));
        }
        Ok(DateFormat { tokens })
    }

    /// The span (ms) within which every instant is written the same, aligned on the epoch:
    /// a day for a format without time-of-day letters (UTC days start at multiples of
    /// 86 400 000 ms), an hour, a minute, a second or a millisecond otherwise.
    pub(crate) fn granularity_ms(&self) -> i64 {
        let letters = self.tokens.iter().filter_map(|t| match t {
            Token::Field(c, _) => Some(*c),
            Token::Literal(_) => None,
        });
        letters
            .map(|c| match c {
                'S' => 1,
                's' => 1_000,
                'm' => 60_000,
                'H' | 'k' | 'K' | 'h' | 'a' => 3_600_000,
                _ => 86_400_000,
            })
            .min()
            .unwrap_or(86_400_000)
    }

    /// The instant `millis` since the epoch, written in UTC.
    pub(crate) fn format(&self, millis: i64) -> Result<String, String> {
        let ts = Timestamp::from_millisecond(millis)
            .map_err(|_| format!("the timestamp {millis} is out of the supported range"))?;
        let dt: DateTime = ts.to_zoned(TimeZone::UTC).datetime();
        let mut out = String::new();
        for t in &self.tokens {
            match t {
                Token::Literal(s) => out.push_str(s),
                Token::Field(c, n) => field(&mut out, &dt, *c, *n),
            }
        }
        Ok(out)
    }

    /// Reads a text written in this format back into milliseconds since the epoch (UTC).
    pub(crate) fn parse_text(&self, text: &str) -> Result<i64, String> {
        let bad = || {
            format!(
                "`{}` does not match the date format",
                ferry_connector_api::text::shown(text)
            )
        };
        let (mut year, mut month, mut day) = (1970i64, 1i64, 1i64);
        let (mut hour, mut minute, mut second, mut milli) = (0i64, 0i64, 0i64, 0i64);
        let mut pm: Option<bool> = None;
        let mut rest = text;
        for (i, t) in self.tokens.iter().enumerate() {
            match t {
                Token::Literal(s) => rest = rest.strip_prefix(s.as_str()).ok_or_else(bad)?,
                Token::Field(c, n) => {
                    // Adjacent numeric fields (yyyyMMdd) take exactly their width.
                    let next_is_field = matches!(self.tokens.get(i + 1), Some(Token::Field(..)));
                    match c {
                        'E' => {
                            let name = DAYS
                                .iter()
                                .find_map(|d| {
                                    let d = if *n >= 4 { d } else { &d[..3] };
                                    rest.strip_prefix(d)
                                })
                                .ok_or_else(bad)?;
                            rest = name;
                        }
                        'a' => {
                            if let Some(r) = rest.strip_prefix("AM") {
                                pm = Some(false);
                                rest = r;
                            } else {
                                pm = Some(true);
                                rest = rest.strip_prefix("PM").ok_or_else(bad)?;
                            }
                        }
                        'Z' | 'X' | 'z' => {
                            for zone in ["+0000", "+00:00", "UTC", "GMT", "Z"] {
                                if let Some(r) = rest.strip_prefix(zone) {
                                    rest = r;
                                    break;
                                }
                            }
                        }
                        'M' if *n >= 3 => {
                            let (i, r) = MONTHS
                                .iter()
                                .enumerate()
                                .find_map(|(i, m)| {
                                    let m = if *n >= 4 { m } else { &m[..3] };
                                    rest.strip_prefix(m).map(|r| (i, r))
                                })
                                .ok_or_else(bad)?;
                            month = i as i64 + 1;
                            rest = r;
                        }
                        _ => {
                            let width = if next_is_field { *n } else { usize::MAX };
                            let digits: usize = rest
                                .char_indices()
                                .take_while(|(j, ch)| ch.is_ascii_digit() && *j < width)
                                .count();
                            let (num, r) = rest.split_at(digits);
                            let v: i64 = num.parse().map_err(|_| bad())?;
                            rest = r;
                            match c {
                                'y' if *n == 2 => year = 2000 + v,
                                'y' => year = v,
                                'M' => month = v,
                                'd' => day = v,
                                'H' | 'k' | 'K' | 'h' => hour = v,
                                'm' => minute = v,
                                's' => second = v,
                                'S' => milli = v,
                                _ => {}
                            }
                        }
                    }
                }
            }
        }
        if !rest.is_empty() {
            return Err(bad());
        }
        if let Some(pm) = pm {
            hour = hour % 12 + if pm { 12 } else { 0 };
        }
        let date = Date::new(year as i16, month as i8, day as i8).map_err(|_| bad())?;
        let time = Time::new(
            hour as i8,
            minute as i8,
            second as i8,
            (milli * 1_000_000) as i32,
        )
        .map_err(|_| bad())?;
        let zoned = date
            .to_datetime(time)
            .to_zoned(TimeZone::UTC)
            .map_err(|_| bad())?;
        Ok(zoned.timestamp().as_millisecond())
    }
}

fn pad(out: &mut String, v: i64, width: usize) {
    out.push_str(&format!("{v:0width$}"));
}

fn field(out: &mut String, dt: &DateTime, c: char, n: usize) {
    match c {
        'y' if n == 2 => pad(out, i64::from(dt.year()).rem_euclid(100), 2),
        'y' => pad(out, i64::from(dt.year()), n),
        'M' if n >= 4 => out.push_str(MONTHS[dt.month() as usize - 1]),
        'M' if n == 3 => out.push_str(&MONTHS[dt.month() as usize - 1][..3]),
        'M' => pad(out, i64::from(dt.month()), n),
        'd' => pad(out, i64::from(dt.day()), n),
        'D' => pad(out, i64::from(dt.day_of_year()), n),
        'H' => pad(out, i64::from(dt.hour()), n),
        'k' => pad(
            out,
            if dt.hour() == 0 {
                24
            } else {
                i64::from(dt.hour())
            },
            n,
        ),
        'K' => pad(out, i64::from(dt.hour() % 12), n),
        'h' => pad(
            out,
            if dt.hour() % 12 == 0 {
                12
            } else {
                i64::from(dt.hour() % 12)
            },
            n,
        ),
        'm' => pad(out, i64::from(dt.minute()), n),
        's' => pad(out, i64::from(dt.second()), n),
        'S' => pad(out, i64::from(dt.millisecond()), n),
        'E' => {
            let name = DAYS[dt.weekday().to_monday_zero_offset() as usize];
            out.push_str(if n >= 4 { name } else { &name[..3] });
        }
        'u' => pad(out, i64::from(dt.weekday().to_monday_one_offset()), n),
        'a' => out.push_str(if dt.hour() < 12 { "AM" } else { "PM" }),
        'Z' => out.push_str("+0000"),
        'X' => out.push('Z'),
        'z' => out.push_str(if n >= 4 {
            "Coordinated Universal Time"
        } else {
            "UTC"
        }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_patterns_format_as_java_does_in_utc() {
        // 2017-01-03T06:30:01.864Z, a Tuesday.
        let t = 1483425001864;
        let f = |p: &str| DateFormat::parse(p).unwrap().format(t).unwrap();
        assert_eq!(f("yyyyMMdd"), "20170103");
        assert_eq!(
            f("yyyy-MM-dd'T'HH:mm:ss.SSSZ"),
            "2017-01-03T06:30:01.864+0000"
        );
        assert_eq!(f("yy/M/d h:mm a"), "17/1/3 6:30 AM");
        assert_eq!(f("EEE, d MMM yyyy"), "Tue, 3 Jan 2017");
        assert_eq!(
            f("EEEE MMMM D 'o''clock' ''"),
            "Tuesday January 3 o'clock '"
        );
        assert_eq!(f("yyyy-MM-dd HH:mm:ss.SSSX"), "2017-01-03 06:30:01.864Z");
    }

    #[test]
    fn texts_parse_back() {
        for p in [
            "yyyyMMdd",
            "yyyy-MM-dd'T'HH:mm:ss.SSSZ",
            "yyyy-MM-dd HH:mm:ss",
            "dd MMM yyyy hh:mm a",
        ] {
            let f = DateFormat::parse(p).unwrap();
            let text = f.format(1483425001000).unwrap();
            let back = f.parse_text(&text).unwrap();
            assert_eq!(f.format(back).unwrap(), text, "{p}");
        }
        let f = DateFormat::parse("yyyy-MM-dd").unwrap();
        assert!(f.parse_text("2017-01-0x").is_err());
    }

    #[test]
    fn unknown_letters_and_open_quotes_are_refused() {
        assert!(
            DateFormat::parse("yyyy-ww")
                .unwrap_err()
                .contains("pattern letter `w`")
        );
        assert!(
            DateFormat::parse("yyyy'T")
                .unwrap_err()
                .contains("unterminated quote")
        );
    }

    #[test]
    fn granularity_is_the_finest_letter() {
        let g = |p: &str| DateFormat::parse(p).unwrap().granularity_ms();
        assert_eq!(g("yyyyMMdd"), 86_400_000);
        assert_eq!(g("yyyy-MM-dd'T'HH"), 3_600_000);
        assert_eq!(g("yyyy-MM-dd HH:mm:ss.SSS"), 1);
        assert_eq!(g("'day'"), 86_400_000);
        // Constant within the span: the last millisecond of a day is still that day.
        let f = DateFormat::parse("yyyyMMdd").unwrap();
        assert_eq!(f.format(86_400_000 * 3 - 1).unwrap(), "19700103");
        assert_eq!(f.format(86_400_000 * 3).unwrap(), "19700104");
        assert_eq!(f.format(-1).unwrap(), "19691231");
    }
}
