//! GS1 identifiers: EPC URNs (GS1 Tag Data Standard) to GS1 Digital Link URIs, and Digital Link
//! URIs to the constrained canonical form of CBV 2.0 §8.9 (rules 17 and 18): host
//! `id.gs1.org`, no query string, the primary key and only its most fine-grained qualifier.
//!
//! A URI that is neither an EPC URN of a GS1 key nor a Digital Link URI is left as it is.

/// The GS1 check digit (GS1 General Specifications §7.9.1) of a string of digits.
pub fn check_digit(digits: &str) -> Option<char> {
    let mut sum = 0u32;
    for (i, c) in digits.bytes().rev().enumerate() {
        if !c.is_ascii_digit() {
            return None;
        }
        let weight = if i % 2 == 0 { 3 } else { 1 };
        sum += u32::from(c - b'0') * weight;
    }
    char::from_digit((10 - sum % 10) % 10, 10)
}

/// Whether `key` is all digits, `len` long, with a right check digit.
pub fn is_valid_key(key: &str, len: usize) -> bool {
    key.len() == len
        && key.bytes().all(|b| b.is_ascii_digit())
        && check_digit(&key[..len - 1]) == key.chars().last()
}

/// The URI in the form the event hash compares: an EPC URN converted to Digital Link, a
/// Digital Link URI constrained; anything else unchanged.
pub fn canonical_uri(uri: &str) -> String {
    epc_to_digital_link(uri)
        .or_else(|| constrain_digital_link(uri))
        .unwrap_or_else(|| uri.to_owned())
}

/// Characters GS1 Digital Link (table 7-1) needs percent-encoded that an EPC URN may carry.
fn dl_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '!' | '(' | ')' | '*' | '+' | ',' | ':' => out.push_str(&format!("%{:02X}", c as u32)),
            _ => out.push(c),
        }
    }
    out
}

const DL: &str = "https://id.gs1.org";

/// A key with its check digit appended.
fn with_check(raw: &str) -> Option<String> {
    Some(format!("{raw}{}", check_digit(raw)?))
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// A company prefix and a reference that together are `total` digits.
fn prefix_and_reference<'a>(cp: &'a str, reference: &'a str, total: usize) -> Option<()> {
    let fits = (6..=12).contains(&cp.len()) && cp.len() + reference.len() == total;
    (fits && all_digits(cp) && (reference.is_empty() || all_digits(reference))).then_some(())
}

/// A GTIN-14 from a company prefix and an indicator-and-item reference (TDS §6.3.1).
fn gtin(cp: &str, item: &str) -> Option<String> {
    prefix_and_reference(cp, item, 13)?;
    with_check(&format!("{}{cp}{}", &item[..1], &item[1..]))
}

/// An EPC URN of a GS1 key as a GS1 Digital Link URI (EPC Tag Data Standard 2.0 §6 and §7).
pub fn epc_to_digital_link(uri: &str) -> Option<String> {
    if let Some(rest) = uri.strip_prefix("urn:epc:id:") {
        let (scheme, body) = rest.split_once(':')?;
        return epc_id(scheme, body);
    }
    if let Some(body) = uri.strip_prefix("urn:epc:class:lgtin:") {
        let mut parts = body.splitn(3, '.');
        let (cp, item, lot) = (parts.next()?, parts.next()?, parts.next()?);
        return Some(format!("{DL}/01/{}/10/{}", gtin(cp, item)?, dl_escape(lot)));
    }
    let rest = uri.strip_prefix("urn:epc:idpat:")?;
    let (scheme, body) = rest.split_once(':')?;
    epc_pattern(scheme, body)
}

fn epc_id(scheme: &str, body: &str) -> Option<String> {
    let parts: Vec<&str> = body.splitn(3, '.').collect();
    let part = |i: usize| parts.get(i).copied();
    match scheme {
        "sgtin" => Some(format!(
            "{DL}/01/{}/21/{}",
            gtin(part(0)?, part(1)?)?,
            dl_escape(nonempty(part(2)?)?)
        )),
        "sscc" => {
            let (cp, serial) = (part(0)?, part(1)?);
            prefix_and_reference(cp, serial, 17)?;
            let raw = format!("{}{cp}{}", &serial[..1], &serial[1..]);
            Some(format!("{DL}/00/{}", with_check(&raw)?))
        }
        "sgln" => {
            let gln = key12(part(0)?, part(1)?)?;
            match nonempty(part(2)?)? {
                "0" => Some(format!("{DL}/414/{gln}")),
                ext => Some(format!("{DL}/414/{gln}/254/{}", dl_escape(ext))),
            }
        }
        "pgln" if parts.len() == 2 => Some(format!("{DL}/417/{}", key12(part(0)?, part(1)?)?)),
        "grai" => {
            let (cp, asset) = (part(0)?, part(1)?);
            prefix_and_reference(cp, asset, 12)?;
            let key = with_check(&format!("0{cp}{asset}"))?;
            Some(format!("{DL}/8003/{key}{}", dl_escape(part(2)?)))
        }
        "gdti" => Some(format!(
            "{DL}/253/{}{}",
            key12(part(0)?, part(1)?)?,
            dl_escape(part(2)?)
        )),
        "sgcn" => Some(format!(
            "{DL}/255/{}{}",
            key12(part(0)?, part(1)?)?,
            digits_only(part(2)?)?
        )),
        "giai" | "ginc" => {
            let (cp, reference) = body.split_once('.')?;
            prefix_and_reference(cp, "", cp.len())?;
            let ai = if scheme == "giai" { "8004" } else { "401" };
            Some(format!("{DL}/{ai}/{cp}{}", dl_escape(nonempty(reference)?)))
        }
        "gsrn" | "gsrnp" if parts.len() == 2 => {
            let (cp, reference) = (part(0)?, part(1)?);
            prefix_and_reference(cp, reference, 17)?;
            let ai = if scheme == "gsrn" { "8018" } else { "8017" };
            Some(format!(
                "{DL}/{ai}/{}",
                with_check(&format!("{cp}{reference}"))?
            ))
        }
        "gsin" if parts.len() == 2 => {
            let (cp, reference) = (part(0)?, part(1)?);
            prefix_and_reference(cp, reference, 16)?;
            Some(format!(
                "{DL}/402/{}",
                with_check(&format!("{cp}{reference}"))?
            ))
        }
        "cpi" => {
            let (head, serial) = body.rsplit_once('.')?;
            let (cp, reference) = head.split_once('.')?;
            prefix_and_reference(cp, "", cp.len())?;
            Some(format!(
                "{DL}/8010/{cp}{}/8011/{}",
                dl_escape(nonempty(reference)?),
                digits_only(serial)?
            ))
        }
        "upui" => Some(format!(
            "{DL}/01/{}/235/{}",
            gtin(part(0)?, part(1)?)?,
            dl_escape(nonempty(part(2)?)?)
        )),
        "itip" => itip(body),
        _ => None,
    }
}

/// `cp.item.piece.total.serial` → `/8006/{gtin}{piece}{total}/21/{serial}`.
fn itip(body: &str) -> Option<String> {
    let parts: Vec<&str> = body.splitn(5, '.').collect();
    let [cp, item, piece, total, serial] = parts.as_slice() else {
        return None;
    };
    if piece.len() != 2 || total.len() != 2 || !all_digits(piece) || !all_digits(total) {
        return None;
    }
    Some(format!(
        "{DL}/8006/{}{piece}{total}/21/{}",
        gtin(cp, item)?,
        dl_escape(nonempty(serial)?)
    ))
}

fn epc_pattern(scheme: &str, body: &str) -> Option<String> {
    let parts: Vec<&str> = body.split('.').collect();
    let [cp, reference, "*"] = parts.as_slice() else {
        return None;
    };
    match scheme {
        "sgtin" => Some(format!("{DL}/01/{}", gtin(cp, reference)?)),
        "grai" => {
            prefix_and_reference(cp, reference, 12)?;
            Some(format!(
                "{DL}/8003/{}",
                with_check(&format!("0{cp}{reference}"))?
            ))
        }
        "gdti" => Some(format!("{DL}/253/{}", key12(cp, reference)?)),
        "sgcn" => Some(format!("{DL}/255/{}", key12(cp, reference)?)),
        _ => None,
    }
}

/// A 13-digit key (GLN, GDTI and SGCN bases) from a company prefix and a reference of 12
/// digits together, with its check digit.
fn key12(cp: &str, reference: &str) -> Option<String> {
    prefix_and_reference(cp, reference, 12)?;
    with_check(&format!("{cp}{reference}"))
}

fn nonempty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

fn digits_only(s: &str) -> Option<&str> {
    all_digits(s).then_some(s)
}

/// Primary keys of Digital Link and the qualifiers kept, most fine-grained first (CBV 2.0
/// §8.9 rule 18: `01 / 01 21 / 01 10 / 01 235 / 414 254 / 8006 21 / 8006 10 / 8010 8011`).
const PRIMARY_KEYS: &[(&str, &[&str])] = &[
    ("00", &[]),
    ("01", &["21", "10", "235"]),
    ("253", &[]),
    ("255", &[]),
    ("401", &[]),
    ("402", &[]),
    ("414", &["254"]),
    ("417", &[]),
    ("8003", &[]),
    ("8004", &[]),
    ("8006", &["21", "10"]),
    ("8010", &["8011"]),
    ("8017", &[]),
    ("8018", &[]),
];

/// Qualifier AIs a Digital Link path may carry after a primary key (GS1 Digital Link 1.2).
const QUALIFIERS: &[&str] = &["22", "10", "21", "235", "254", "7040", "8011", "8019"];

/// An http(s) URI whose path ends in a GS1 key, in constrained canonical form; `None` if it is
/// no Digital Link URI.
pub fn constrain_digital_link(uri: &str) -> Option<String> {
    let rest = uri
        .strip_prefix("https://")
        .or_else(|| uri.strip_prefix("http://"))?;
    let rest = rest.split(['?', '#']).next()?;
    let path = &rest[rest.find('/')?..];
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    (0..segments.len()).find_map(|start| key_path(&segments[start..]))
}

/// The short names Digital Link 1.2 allows in place of AIs in a path (`gtin` for `01`).
const AI_ALIASES: &[(&str, &str)] = &[
    ("sscc", "00"),
    ("gtin", "01"),
    ("gdti", "253"),
    ("gcn", "255"),
    ("ginc", "401"),
    ("gsin", "402"),
    ("gln", "414"),
    ("party", "417"),
    ("grai", "8003"),
    ("giai", "8004"),
    ("itip", "8006"),
    ("cpid", "8010"),
    ("gsrnp", "8017"),
    ("gsrn", "8018"),
    ("cpv", "22"),
    ("lot", "10"),
    ("ser", "21"),
    ("tpx", "235"),
    ("glnx", "254"),
    ("cpsn", "8011"),
    ("srin", "8019"),
];

/// An AI written as digits or as its Digital Link short name.
fn ai_of(segment: &str) -> &str {
    AI_ALIASES
        .iter()
        .find(|(alias, _)| *alias == segment)
        .map_or(segment, |(_, ai)| ai)
}

/// `[primary AI, value, (qualifier AI, value)*]` as the constrained Digital Link URI.
fn key_path(segments: &[&str]) -> Option<String> {
    let (&ai, rest) = segments.split_first()?;
    let ai = ai_of(ai);
    let (_, kept) = PRIMARY_KEYS.iter().find(|(key, _)| *key == ai)?;
    let (&value, rest) = rest.split_first()?;
    let value = primary_value(ai, value)?;
    if rest.len() % 2 != 0 {
        return None;
    }
    let pairs: Vec<(&str, &str)> = rest.chunks(2).map(|p| (ai_of(p[0]), p[1])).collect();
    if pairs
        .iter()
        .any(|(q, v)| !QUALIFIERS.contains(q) || v.is_empty())
    {
        return None;
    }
    let mut out = format!("{DL}/{ai}/{value}");
    if let Some((q, v)) = kept.iter().find_map(|q| pairs.iter().find(|(p, _)| p == q)) {
        out.push_str(&format!("/{q}/{v}"));
    }
    Some(out)
}

/// A primary key's value in canonical form (GTINs padded to 14 digits), if it has the key's
/// shape.
fn primary_value(ai: &str, value: &str) -> Option<String> {
    let fixed = |len: usize| is_valid_key(value, len).then(|| value.to_owned());
    match ai {
        "00" => fixed(18),
        "01" => match value.len() {
            8 | 12 | 13 | 14 if is_valid_key(value, value.len()) => Some(format!("{value:0>14}")),
            _ => None,
        },
        "8006" => {
            let gtin = value.get(..14)?;
            (value.len() == 18 && is_valid_key(gtin, 14) && all_digits(value))
                .then(|| value.to_owned())
        }
        "414" | "417" => fixed(13),
        "402" => fixed(17),
        "8017" | "8018" => fixed(18),
        "253" | "255" => {
            let base = value.get(..13)?;
            (is_valid_key(base, 13) && value.len() <= 30).then(|| value.to_owned())
        }
        "8003" => {
            let base = value.get(..14)?;
            (is_valid_key(base, 14) && value.len() <= 30).then(|| value.to_owned())
        }
        _ => (!value.is_empty() && value.len() <= 90).then(|| value.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_digits() {
        assert_eq!(check_digit("10614141123456789"), Some('7'));
        assert!(is_valid_key("106141411234567897", 18));
        assert!(is_valid_key("0614141000005", 13));
        assert!(!is_valid_key("106141411234567890", 18));
    }

    #[test]
    fn epc_urns() {
        let cases = [
            (
                "urn:epc:id:sgtin:0614141.107346.2017",
                "https://id.gs1.org/01/10614141073464/21/2017",
            ),
            (
                "urn:epc:id:sscc:4012345.1112223334",
                "https://id.gs1.org/00/140123451122233341",
            ),
            (
                "urn:epc:id:sscc:0614141.1123456789",
                "https://id.gs1.org/00/106141411234567897",
            ),
            (
                "urn:epc:id:sgln:0614141.07346.1234",
                "https://id.gs1.org/414/0614141073467/254/1234",
            ),
            (
                "urn:epc:id:sgln:4012345.00011.0",
                "https://id.gs1.org/414/4012345000115",
            ),
            (
                "urn:epc:id:pgln:4012345.00000",
                "https://id.gs1.org/417/4012345000009",
            ),
            (
                "urn:epc:id:giai:4000001.111",
                "https://id.gs1.org/8004/4000001111",
            ),
            (
                "urn:epc:id:gdti:4012345.11111.123",
                "https://id.gs1.org/253/4012345111118123",
            ),
            (
                "urn:epc:class:lgtin:4023333.002000.2019-10-07",
                "https://id.gs1.org/01/04023333020008/10/2019-10-07",
            ),
            (
                "urn:epc:idpat:sgtin:4012345.011111.*",
                "https://id.gs1.org/01/04012345111118",
            ),
            (
                "urn:epc:id:sgtin:0614141.107346.A(1)",
                "https://id.gs1.org/01/10614141073464/21/A%281%29",
            ),
        ];
        for (urn, dl) in cases {
            assert_eq!(canonical_uri(urn), dl, "{urn}");
        }
        for other in [
            "urn:epc:id:sscc:0614141.123",
            "urn:epc:id:bic:CSQU3054383",
            "geo:1,2",
        ] {
            assert_eq!(canonical_uri(other), other);
        }
    }

    #[test]
    fn digital_link_constrained() {
        let cases = [
            (
                "https://example.com/01/9520123456788/10/ABC/21/12345?17=201225",
                "https://id.gs1.org/01/09520123456788/21/12345",
            ),
            (
                "https://id.example.org/8004/401234599999",
                "https://id.gs1.org/8004/401234599999",
            ),
            (
                "https://brand.example/shop/00/106141411234567897",
                "https://id.gs1.org/00/106141411234567897",
            ),
            (
                "http://id.gs1.org/01/09520123456788/22/2A/10/L1",
                "https://id.gs1.org/01/09520123456788/10/L1",
            ),
            (
                "https://example.com/gtin/09780345418913/ser/765tz?abc=211121",
                "https://id.gs1.org/01/09780345418913/21/765tz",
            ),
        ];
        for (uri, expected) in cases {
            assert_eq!(canonical_uri(uri), expected, "{uri}");
        }
        for other in [
            "http://transaction.acme.com/po/12345678",
            "https://id.gs1.org/01/09520123456789",
            "urn:custody:locode:DEHAM",
        ] {
            assert_eq!(canonical_uri(other), other);
        }
    }
}
