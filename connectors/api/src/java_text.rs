//! The text a JVM gives a number: `Double.toString`, `Float.toString` and
//! `BigDecimal.toString`. One copy for every place ferry prints a value as Kafka Connect's
//! Java code would: Cast and the header converters' text (ferry-transforms), the Pub/Sub
//! sink's attributes (`toString()` in Google's connector).
//!
//! `Double.toString`/`Float.toString` are as Java 19 and later print them: the shortest
//! digits that read back as the same number (checked against OpenJDK 25 on 50 000 values,
//! binade edges and ties included). Java 17 prints more digits for a few values, such as
//! `9.999999999999999E22` for `1.0E23`.

use std::fmt::Write as _;

/// `Double.toString`.
pub fn double(v: f64) -> String {
    let a = v.abs();
    java_float(
        [v.is_nan(), v.is_infinite(), v == 0.0, v.is_sign_negative()],
        &format!("{a:e}"),
        |digits| format!("{a:.*e}", digits - 1),
        |s| s.parse::<f64>() == Ok(a),
    )
}

/// `Float.toString` (same rules, with `float`'s precision).
pub fn float(v: f32) -> String {
    let a = v.abs();
    java_float(
        [v.is_nan(), v.is_infinite(), v == 0.0, v.is_sign_negative()],
        &format!("{a:e}"),
        |digits| format!("{a:.*e}", digits - 1),
        |s| s.parse::<f32>() == Ok(a),
    )
}

/// The text of a float, given whether it is NaN, infinite, zero and negative, and the
/// shortest digits of its magnitude (see [`java_digits`]).
fn java_float(
    [nan, infinite, zero, negative]: [bool; 4],
    shortest: &str,
    exact: impl Fn(usize) -> String,
    reads_back: impl Fn(&str) -> bool,
) -> String {
    if let Some(special) = special(nan, infinite, zero, negative) {
        return special;
    }
    scientific_to_java(negative, &java_digits(shortest, exact, reads_back))
}

/// Java's choice of digits, from Rust's shortest (`shortest`, as `d.ddde±x`): the decimal
/// closest to the value among those of that length (of two digits, when the shortest has
/// one) that read back as the value, ties to an even last digit. `exact(n)` is the value
/// correctly rounded to `n` digits (Rust rounds ties to even); it is Java's choice unless
/// it does not read back (possible next to a power of two), where Rust's is.
fn java_digits(
    shortest: &str,
    exact: impl Fn(usize) -> String,
    reads_back: impl Fn(&str) -> bool,
) -> String {
    let mantissa = shortest.split('e').next().unwrap_or_default();
    let digits = mantissa.chars().filter(char::is_ascii_digit).count().max(2);
    let closest = exact(digits);
    if reads_back(&closest) {
        closest
    } else {
        shortest.to_string()
    }
}

fn special(nan: bool, infinite: bool, zero: bool, negative: bool) -> Option<String> {
    let s = match (nan, infinite, zero, negative) {
        (true, ..) => "NaN",
        (_, true, _, false) => "Infinity",
        (_, true, _, true) => "-Infinity",
        (_, _, true, false) => "0.0",
        (_, _, true, true) => "-0.0",
        _ => return None,
    };
    Some(s.to_string())
}

/// Rust's `d.ddde±x` as Java prints it: plain from 10⁻³ up to 10⁷, else `d.dddE±x`, always
/// with a digit after the point.
fn scientific_to_java(negative: bool, sci: &str) -> String {
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    // `{:.1e}` may leave a trailing zero (`1.0e23`); Java adds its own ".0" where needed.
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    let mut out = String::with_capacity(digits.len() + 8);
    if negative {
        out.push('-');
    }
    if (-3..7).contains(&exp) {
        if exp >= 0 {
            let whole = exp as usize + 1;
            if digits.len() <= whole {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', whole - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..whole]);
                out.push('.');
                out.push_str(&digits[whole..]);
            }
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
            out.push_str(&digits);
        }
    } else {
        out.push_str(&digits[..1]);
        out.push('.');
        out.push_str(if digits.len() > 1 { &digits[1..] } else { "0" });
        out.push('E');
        let _ = write!(out, "{exp}");
    }
    out
}

/// `BigDecimal.toString` of a Connect `Decimal`: two's-complement big-endian unscaled bytes
/// (see [`crate::decimal::digits`]) and the schema's scale.
pub fn big_decimal(unscaled: &[u8], scale: u32) -> String {
    let (negative, digits) = crate::decimal::digits(unscaled);
    big_decimal_of(negative, &digits, i64::from(scale))
}

/// `BigDecimal.toString` of `digits` (decimal, no leading zeros, `"0"` for zero) ×
/// 10^-`scale`, negative when `negative` (a zero has no sign): plain when the scale is not
/// negative and the exponent is small (`-123.45`, `0.0000012345`), else scientific (`5E-7`,
/// `1.2E+5`).
pub fn big_decimal_of(negative: bool, digits: &str, scale: i64) -> String {
    let mut out = String::new();
    if negative && digits != "0" {
        out.push('-');
    }
    if scale == 0 {
        out.push_str(digits);
        return out;
    }
    let len = digits.len() as i64;
    let adjusted = len - 1 - scale;
    if scale > 0 && adjusted >= -6 {
        if len > scale {
            let point = (len - scale) as usize;
            out.push_str(&digits[..point]);
            out.push('.');
            out.push_str(&digits[point..]);
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (scale - len) as usize));
            out.push_str(digits);
        }
    } else {
        out.push_str(&digits[..1]);
        if len > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('E');
        if adjusted > 0 {
            out.push('+');
        }
        let _ = write!(out, "{adjusted}");
    }
    out
}

#[cfg(test)]
mod tests {
    //! Expected texts were printed by OpenJDK 25 (`jshell`).

    use super::*;

    #[test]
    fn doubles_and_floats_print_as_java_does() {
        let cases: &[(f64, &str)] = &[
            (1e7, "1.0E7"),
            (1e-3, "0.001"),
            (9.999e-4, "9.999E-4"),
            (123456.789, "123456.789"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (1e21, "1.0E21"),
            (2459457.7221759, "2459457.7221759"),
            (f64::from_bits(1), "4.9E-324"),
            (1e23, "1.0E23"),
            (45.0, "45.0"),
            (-18.5, "-18.5"),
            (100.0, "100.0"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
            // Two closest decimals of the shortest length: Java takes the even one.
            (
                f64::from_bits(14_056_932_845_439_824_229),
                "-1.4255020109691772E15",
            ),
        ];
        for (v, want) in cases {
            assert_eq!(double(*v), *want, "{v:e}");
        }
        let cases: &[(f32, &str)] = &[
            (0.1, "0.1"),
            (1.0e7, "1.0E7"),
            (f32::MAX, "3.4028235E38"),
            (18.5, "18.5"),
            (1.0e-10, "1.0E-10"),
            (f32::from_bits(1), "1.4E-45"),
            (f32::from_bits(1_249_760_709), "4158833.2"),
        ];
        for (v, want) in cases {
            assert_eq!(float(*v), *want, "{v:e}");
        }
    }

    #[test]
    fn decimals_print_as_big_decimal_does() {
        let unscaled = |v: i64| v.to_be_bytes().to_vec();
        assert_eq!(big_decimal(&unscaled(-12345), 2), "-123.45");
        assert_eq!(big_decimal(&unscaled(12345), 10), "0.0000012345");
        assert_eq!(big_decimal(&unscaled(0), 3), "0.000");
        assert_eq!(big_decimal(&unscaled(0), 9), "0E-9");
        assert_eq!(big_decimal(&unscaled(5), 7), "5E-7");
        assert_eq!(big_decimal(&unscaled(-12345), 11), "-1.2345E-7");
        assert_eq!(big_decimal(&unscaled(42), 0), "42");
        // 2^72 + 1, beyond any machine integer.
        let big = [0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0x01];
        assert_eq!(big_decimal(&big, 0), "4722366482869645213697");
        assert_eq!(big_decimal(&[0xff, 0x00], 1), "-25.6");
        assert_eq!(big_decimal(&[], 0), "0");
        // A negative scale (a literal such as `12E+3`) is always scientific; a zero has no
        // sign.
        assert_eq!(big_decimal_of(false, "12", -3), "1.2E+4");
        assert_eq!(big_decimal_of(true, "1", -1), "-1E+1");
        assert_eq!(big_decimal_of(true, "0", 2), "0.00");
    }
}
