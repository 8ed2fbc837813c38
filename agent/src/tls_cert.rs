//! Days until a DER certificate's `notAfter`, for the certificate-expiry
//! value every HTTPS check records.
//!
//! A full X.509 parser would add a dependency tree to the static agent for
//! one field, so this walks the DER structure just far enough:
//! `Certificate → tbsCertificate → [version] serial sigAlg issuer validity`.
//! Every length is checked against the remaining input; malformed input
//! returns `None`, never panics.

use std::time::{SystemTime, UNIX_EPOCH};

/// Days (fractional) from now until the certificate expires; negative when
/// it already has. `None` when the DER cannot be read.
pub fn days_left(der: &[u8]) -> Option<f64> {
    let not_after = not_after_unix(der)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    Some((not_after as f64 - now) / 86_400.0)
}

/// `notAfter` of a DER certificate as unix seconds.
pub fn not_after_unix(der: &[u8]) -> Option<i64> {
    let (tag, cert, _) = tlv(der)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, tbs, _) = tlv(cert)?;
    if tag != 0x30 {
        return None;
    }
    let mut rest = tbs;
    // optional [0] EXPLICIT version
    let (tag, _, after) = tlv(rest)?;
    if tag == 0xa0 {
        rest = after;
    }
    // serialNumber, signature, issuer
    for _ in 0..3 {
        let (_, _, after) = tlv(rest)?;
        rest = after;
    }
    let (tag, validity, _) = tlv(rest)?;
    if tag != 0x30 {
        return None;
    }
    let (_, _, after_not_before) = tlv(validity)?;
    let (tag, not_after, _) = tlv(after_not_before)?;
    parse_time(tag, not_after)
}

/// Splits one DER TLV off `input`: (tag, contents, rest).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

fn parse_time(tag: u8, s: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(s).ok()?;
    let digits = s.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 if digits.len() == 12 => {
            let yy: i64 = digits.get(0..2)?.parse().ok()?;
            (
                if yy >= 50 { 1900 + yy } else { 2000 + yy },
                digits.get(2..)?,
            )
        }
        0x18 if digits.len() == 14 => (digits.get(0..4)?.parse().ok()?, digits.get(4..)?),
        _ => return None,
    };
    let field = |i: usize| -> Option<i64> { rest.get(i..i + 2)?.parse().ok() };
    let (month, day, hour, min, sec) = (field(0)?, field(2)?, field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrap(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        if content.len() < 0x80 {
            v.push(content.len() as u8);
        } else {
            v.push(0x82);
            v.extend_from_slice(&(content.len() as u16).to_be_bytes());
        }
        v.extend_from_slice(content);
        v
    }

    fn fake_cert(not_after: &[u8], tag: u8) -> Vec<u8> {
        let version = wrap(0xa0, &wrap(0x02, &[2]));
        let serial = wrap(0x02, &[1, 2, 3]);
        let alg = wrap(0x30, &wrap(0x06, &[1, 2]));
        let issuer = wrap(0x30, &[]);
        let validity = wrap(
            0x30,
            &[wrap(0x17, b"200101000000Z"), wrap(tag, not_after)].concat(),
        );
        let tbs = wrap(0x30, &[version, serial, alg, issuer, validity].concat());
        wrap(0x30, &tbs)
    }

    #[test]
    fn reads_utc_and_generalized_time() {
        let utc = fake_cert(b"300101000000Z", 0x17);
        assert_eq!(not_after_unix(&utc), Some(1_893_456_000));
        let gen = fake_cert(b"20300101000000Z", 0x18);
        assert_eq!(not_after_unix(&gen), Some(1_893_456_000));
    }

    #[test]
    fn malformed_input_is_none_not_a_panic() {
        let good = fake_cert(b"300101000000Z", 0x17);
        for cut in 0..good.len() {
            let _ = not_after_unix(&good[..cut]);
        }
        assert_eq!(not_after_unix(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(not_after_unix(&fake_cert(b"301301000000Z", 0x17)), None);
    }

    #[test]
    fn civil_days_match_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }
}
