//! Java's `SimpleDateFormat` patterns (`yyyyMMdd`, `yyyy-MM-dd'T'HH:mm:ss.SSSZ`), which
//! Connect's TimestampRouter and TimestampConverter take, for instants in UTC (the zone
//! both use). Only the pattern letters that make sense for a UTC instant are translated;
//! any other letter is refused when the configuration is read.

use jiff::Timestamp;
use jiff::civil::DateTime;
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
}
