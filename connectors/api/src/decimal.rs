//! Text of a Kafka Connect `Decimal` ([`crate::data::Data::Decimal`]): the unscaled value
//! as two's-complement big-endian bytes of any length, the scale from the schema. One copy
//! for the sinks that print decimals (BigQuery's NUMERIC text, the Pub/Sub sink's Java
//! `BigDecimal.toString`).

use std::fmt::Write as _;

/// The sign (true: negative) and decimal digits of a two's-complement big-endian integer
/// of any length; no bytes are 0.
pub fn digits(bytes: &[u8]) -> (bool, String) {
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    let mut magnitude = bytes.to_vec();
    if negative {
        // Negate: invert, then add one.
        for b in &mut magnitude {
            *b = !*b;
        }
        for b in magnitude.iter_mut().rev() {
            let (sum, carry) = b.overflowing_add(1);
            *b = sum;
            if !carry {
                break;
            }
        }
    }
    // Base 10⁹ limbs, least significant first.
    let mut limbs: Vec<u32> = Vec::new();
    for byte in magnitude {
        let mut carry = u64::from(byte);
        for limb in &mut limbs {
            let v = u64::from(*limb) * 256 + carry;
            *limb = (v % 1_000_000_000) as u32;
            carry = v / 1_000_000_000;
        }
        while carry > 0 {
            limbs.push((carry % 1_000_000_000) as u32);
            carry /= 1_000_000_000;
        }
    }
    let mut digits = String::new();
    match limbs.split_last() {
        None => digits.push('0'),
        Some((top, rest)) => {
            let _ = write!(digits, "{top}");
            for limb in rest.iter().rev() {
                let _ = write!(digits, "{limb:09}");
            }
        }
    }
    (negative && digits != "0", digits)
}

/// The plain text of `unscaled` × 10^-`scale`: sign, digits, and a point before the last
/// `scale` digits (`-123.45`, `0.005`, `0.000`), never an exponent.
pub fn plain(unscaled: &[u8], scale: u32) -> String {
    let (negative, digits) = digits(unscaled);
    let sign = if negative { "-" } else { "" };
    let scale = scale as usize;
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int}.{frac}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_of_twos_complement_integers_of_any_length() {
        let be = |v: i64| v.to_be_bytes().to_vec();
        assert_eq!(digits(&be(-12345)), (true, "12345".into()));
        assert_eq!(digits(&be(0)), (false, "0".into()));
        assert_eq!(digits(&[]), (false, "0".into()));
        assert_eq!(digits(&[0xff]), (true, "1".into()));
        assert_eq!(digits(&[0x80]), (true, "128".into()));
        assert_eq!(digits(&[0x00, 0x80]), (false, "128".into()));
        assert_eq!(digits(&be(i64::MIN)), (true, "9223372036854775808".into()));
        // 2^72 + 1, beyond any machine integer, and 10⁹ limb edges.
        let big = [0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0x01];
        assert_eq!(digits(&big), (false, "4722366482869645213697".into()));
        assert_eq!(digits(&be(1_000_000_000)), (false, "1000000000".into()));
        assert_eq!(digits(&be(-1_000_000_001)), (true, "1000000001".into()));
    }

    #[test]
    fn plain_text_puts_the_point_before_the_scale() {
        assert_eq!(plain(&[0x30, 0x39], 2), "123.45");
        assert_eq!(plain(&[0xcf, 0xc7], 2), "-123.45");
        assert_eq!(plain(&[0x05], 3), "0.005");
        assert_eq!(plain(&[0xfb], 3), "-0.005");
        assert_eq!(plain(&[0x00], 3), "0.000");
        assert_eq!(plain(&[0xff], 0), "-1");
        assert_eq!(
            plain(&[0x01; 17], 30),
            "341616807.575530379006368233343265341697"
        );
    }
}
