//! Identifier checks: parcel, product and location codes, air waybills, places, countries,
//! currencies and customs registration numbers.
//!
//! The ledger's data model checks identifiers only for *shape* (lengths and character
//! sets), so that no event can carry unbounded data. Whether a code actually exists, or
//! whether its check digit is right, is decided here. A typo in an SSCC or an air waybill
//! number would otherwise detach the custody record from the physical parcel for good, and
//! a made-up country or currency would make every later duty calculation meaningless; the
//! cheapest place to stop both is at the moment the event is submitted.
//!
//! Every check is a pure, deterministic function: the same input gives the same answer on
//! every node, with no clock, locale or network involved. Reference data comes from the
//! `celes` (ISO 3166-1) and `iso_currency` (ISO 4217) crates, pinned by the lock file, so
//! all nodes agree on which codes exist.
//!
//! Checkers take the dotted path of the field they look at and put it, unchanged, into the
//! [`Rejection`] they return, so a client can point at the exact field at fault.

use custody_ledger::model::{CountryCode, CurrencyCode};
use custody_ledger::reject::Rejection;

/// The stable rejection codes of this module.
///
/// Codes are part of the interface: clients and tests match on them. Renaming one is a
/// breaking change.
pub mod codes {
    use crate::ContractCode;
    use custody_ledger::reject::Code;

    /// An SSCC is not 18 digits, or its GS1 check digit is wrong.
    pub const SSCC: Code = ContractCode::IdSscc.code();
    /// A GTIN is not 8, 12, 13 or 14 digits, or its GS1 check digit is wrong.
    pub const GTIN: Code = ContractCode::IdGtin.code();
    /// A GLN is not 13 digits, or its GS1 check digit is wrong.
    pub const GLN: Code = ContractCode::IdGln.code();
    /// An air waybill number is not 11 digits (optionally `PPP-SSSSSSSC`), or its mod-7
    /// check digit is wrong.
    pub const AWB: Code = ContractCode::IdAwb.code();
    /// A UN/LOCODE is malformed or names a country that does not exist.
    pub const LOCODE: Code = ContractCode::IdLocode.code();
    /// A country code is not an assigned ISO 3166-1 alpha-2 code or a sample jurisdiction.
    pub const COUNTRY: Code = ContractCode::IdCountry.code();
    /// A currency code is not in ISO 4217, or has no defined minor unit.
    pub const CURRENCY: Code = ContractCode::IdCurrency.code();
    /// An EORI number has neither the EU form nor the UK (GB/XI) form.
    pub const EORI: Code = ContractCode::IdEori.code();
    /// An IOSS number is not `IM` followed by 10 digits.
    pub const IOSS: Code = ContractCode::IdIoss.code();
    /// A UK VAT registration number is not `GB` (or `XI`) and 9 or 12 digits passing HMRC's
    /// modulus 97 or 9755 check, nor a government department (`GBGD` 000–499) or health
    /// authority (`GBHA` 500–999) number (rules version 2 on).
    pub const UK_VAT: Code = ContractCode::IdUkVat.code();
    /// An Australian Business Number is not 11 digits passing the ABR's modulus 89 check
    /// (rules version 2 on).
    pub const ABN: Code = ContractCode::IdAbn.code();
    /// An ATO reference number (simplified GST registration) is not 12 digits (rules version
    /// 2 on).
    pub const ARN: Code = ContractCode::IdArn.code();
}

/// The 27 member states of the European Union as ISO 3166-1 alpha-2 codes, sorted, as of
/// 2026 (unchanged since the United Kingdom left on 31 January 2020).
///
/// Greece is `GR` here, as in ISO 3166-1 and in EORI numbers, not `EL` as in EU VAT numbers.
/// The list is kept by hand because membership is a political fact, not part of ISO 3166;
/// it decides which prefixes an EU EORI number may have.
pub const EU_MEMBERS: [&str; 27] = [
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT",
    "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
];

/// Whether `country` is one of the [`EU_MEMBERS`].
///
/// EU membership decides the form of an EORI number and, in the rule modules, whether a
/// shipment crosses the EU customs border at all.
pub fn is_eu_member(country: CountryCode) -> bool {
    EU_MEMBERS.binary_search(&country.as_str()).is_ok()
}

/// Jurisdictions that exist only for the fictional sample tariffs: `QX` and `QY`.
///
/// Both lie in the ISO 3166-1 user-assigned range (`QM`–`QZ`), which ISO guarantees will
/// never name a real country, so sample data can never be mistaken for a real tariff. They
/// are accepted wherever a country is expected; no other user-assigned code is.
pub const SAMPLE_JURISDICTIONS: [&str; 2] = ["QX", "QY"];

/// At most this many characters of a bad value are quoted in a message, so that a long
/// value cannot make a rejection long.
const SHOWN_CHARS_MAX: usize = 40;

/// A value quoted for a message: Debug-escaped (so control characters stay visible) and cut
/// to [`SHOWN_CHARS_MAX`] characters.
fn shown(value: &str) -> String {
    if value.chars().count() <= SHOWN_CHARS_MAX {
        format!("{value:?}")
    } else {
        let head: String = value.chars().take(SHOWN_CHARS_MAX).collect();
        format!("{head:?}…")
    }
}

/// The first character of `value` that is not an ASCII digit, with its 1-based position.
fn first_non_digit(value: &str) -> Option<(usize, char)> {
    value
        .chars()
        .enumerate()
        .find(|(_, c)| !c.is_ascii_digit())
        .map(|(index, c)| (index + 1, c))
}

/// The digit values of a string already known to be ASCII digits.
fn digit_values(value: &str) -> Vec<u8> {
    value.bytes().map(|b| b.wrapping_sub(b'0')).collect()
}

/// The GS1 check digit of `digits_without_check`, the digit values (0 to 9, not ASCII
/// characters) of a GTIN, SSCC or other GS1 key without its last digit.
///
/// GS1 weights the digits 3, 1, 3, 1… starting from the rightmost one, and the check digit
/// is what brings the weighted sum up to a multiple of 10. Every single-digit error and
/// most swaps of neighbouring digits change the sum, which is why a wrong digit is caught
/// before it reaches the ledger.
///
/// The function is total: an empty slice gives 0, and a value above 9 counts as its
/// remainder modulo 10 (callers pass validated digits; this only keeps the function free of
/// panics and overflow).
pub fn gs1_check_digit(digits_without_check: &[u8]) -> u8 {
    let mut sum: u8 = 0;
    for (index_from_right, &digit) in digits_without_check.iter().rev().enumerate() {
        let weight: u8 = if index_from_right % 2 == 0 { 3 } else { 1 };
        // sum < 10 and (digit % 10) * weight <= 27, so this never exceeds 36.
        sum = (sum + (digit % 10) * weight) % 10;
    }
    (10 - sum) % 10
}

/// Checks a GS1 key: one of `lengths` digits, the last being the GS1 check digit.
/// Returns the reason for a message on failure.
fn gs1_problem(what: &str, value: &str, lengths: &[usize], expected: &str) -> Option<String> {
    let length = value.chars().count();
    if !lengths.contains(&length) {
        return Some(format!(
            "{what} {} has {length} characters; expected {expected}.",
            shown(value)
        ));
    }
    if let Some((position, c)) = first_non_digit(value) {
        return Some(format!(
            "{what} {} has {c:?} at position {position}; expected {expected}.",
            shown(value)
        ));
    }
    let digits = digit_values(value);
    let (body, check) = digits.split_at(digits.len() - 1);
    let computed = gs1_check_digit(body);
    if check.first() != Some(&computed) {
        let given = check.first().copied().unwrap_or_default();
        return Some(format!(
            "{what} {} ends in check digit {given}, but its other digits give {computed}; \
             the number is mistyped or misread.",
            shown(value)
        ));
    }
    None
}

/// Checks a GS1 Serial Shipping Container Code: exactly 18 digits, the last being the GS1
/// check digit (see [`gs1_check_digit`]).
///
/// The SSCC is the label on the physical parcel and the key that ties it to its custody
/// record, so a mistyped one must not get onto the ledger. The `(00)` application
/// identifier of a barcode's human-readable line is not part of the SSCC and is refused.
pub fn check_sscc(field: &str, value: &str) -> Result<(), Rejection> {
    match gs1_problem(
        "SSCC",
        value,
        &[18],
        "18 digits ending in a GS1 check digit",
    ) {
        Some(message) => Err(Rejection::new(codes::SSCC, field, message)),
        None => Ok(()),
    }
}

/// Checks a GS1 Global Trade Item Number: GTIN-8, GTIN-12 (UPC-A), GTIN-13 (EAN-13) or
/// GTIN-14, the last digit being the GS1 check digit (see [`gs1_check_digit`]).
///
/// The GTIN identifies the product on an invoice line; a wrong one silently links the line
/// to another product. Shorter forms are accepted as written, not padded to 14 digits,
/// because the check digit is the same either way.
pub fn check_gtin(field: &str, value: &str) -> Result<(), Rejection> {
    match gs1_problem(
        "GTIN",
        value,
        &[8, 12, 13, 14],
        "8, 12, 13 or 14 digits ending in a GS1 check digit",
    ) {
        Some(message) => Err(Rejection::new(codes::GTIN, field, message)),
        None => Ok(()),
    }
}

/// Checks a GS1 Global Location Number: exactly 13 digits, the last being the GS1 check
/// digit (see [`gs1_check_digit`]), computed as for a GTIN-13.
///
/// A GLN names a physical location (a hub, a dock, a warehouse) where a tracking scan was
/// read; a mistyped one points the record at another site.
pub fn check_gln(field: &str, value: &str) -> Result<(), Rejection> {
    match gs1_problem("GLN", value, &[13], "13 digits ending in a GS1 check digit") {
        Some(message) => Err(Rejection::new(codes::GLN, field, message)),
        None => Ok(()),
    }
}

/// What an air waybill number should look like, for messages.
const AWB_EXPECTED: &str = "11 digits, written either without a separator (02012345675) or \
                            with one hyphen after the 3-digit airline prefix (020-12345675)";

/// Checks an IATA air waybill number: a 3-digit airline prefix and an 8-digit serial
/// number, written `02012345675` or `020-12345675`. The last digit of the serial number is
/// its check digit: the first 7 digits of the serial number modulo 7.
///
/// The air waybill is how the airline, the handlers and customs find the consignment; the
/// mod-7 check catches most typing errors. The airline prefix is not in the check and is
/// not looked up, because the IATA prefix list is not freely available reference data.
pub fn check_awb(field: &str, value: &str) -> Result<(), Rejection> {
    let reject = |message: String| Err(Rejection::new(codes::AWB, field, message));
    let bytes = value.as_bytes();
    let digits: Vec<u8> = match bytes.len() {
        11 => bytes.to_vec(),
        12 if bytes.get(3) == Some(&b'-') => bytes
            .iter()
            .take(3)
            .chain(bytes.iter().skip(4))
            .copied()
            .collect(),
        _ => {
            return reject(format!(
                "Air waybill number {} has {} characters; expected {AWB_EXPECTED}.",
                shown(value),
                value.chars().count()
            ))
        }
    };
    if !digits.iter().all(u8::is_ascii_digit) {
        return reject(format!(
            "Air waybill number {} contains characters other than digits where digits belong; \
             expected {AWB_EXPECTED}.",
            shown(value)
        ));
    }
    let values: Vec<u8> = digits.iter().map(|d| d - b'0').collect();
    let serial = values
        .iter()
        .skip(3)
        .take(7)
        .fold(0u32, |acc, &d| acc * 10 + u32::from(d));
    let computed = serial % 7;
    let given = values.last().copied().map(u32::from).unwrap_or_default();
    if given != computed {
        return reject(format!(
            "Air waybill number {} ends in check digit {given}, but its serial number \
             {serial:07} modulo 7 is {computed}; the number is mistyped or misread.",
            shown(value)
        ));
    }
    Ok(())
}

/// Whether `code` (two ASCII capitals) lies in the ISO 3166-1 user-assigned range: `AA`,
/// `QM`–`QZ`, `XA`–`XZ` and `ZZ`. ISO never assigns these to countries.
fn is_user_assigned(code: &str) -> bool {
    match code.as_bytes() {
        [b'A', b'A'] | [b'Z', b'Z'] => true,
        [b'Q', second] => (b'M'..=b'Z').contains(second),
        [b'X', second] => second.is_ascii_uppercase(),
        _ => false,
    }
}

/// Why `code` (two ASCII capitals) is not an acceptable country, as the end of a sentence
/// about it ("… is not an assigned …"), or `None` if it is acceptable.
///
/// The assigned codes come from `celes`, not from a table kept here. `celes` also knows
/// `XK` (Kosovo), which is a user-assigned code rather than an ISO assignment; codes in the
/// user-assigned range are therefore refused even when `celes` knows them, except for the
/// sample jurisdictions.
fn country_problem(code: &str) -> Option<String> {
    if SAMPLE_JURISDICTIONS.contains(&code) {
        return None;
    }
    if is_user_assigned(code) {
        let note = if code == "XI" {
            " (XI is valid only as the Northern Ireland prefix of an EORI number)"
        } else {
            ""
        };
        return Some(format!(
            "is in the ISO 3166-1 user-assigned range and names no country{note}; \
             expected an assigned ISO 3166-1 alpha-2 code such as DE or US, or one of the \
             sample jurisdictions QX and QY."
        ));
    }
    match celes::Country::from_alpha2(code) {
        Ok(country) if country.alpha2 == code => None,
        _ => Some(
            "is not an assigned ISO 3166-1 alpha-2 country code; expected an assigned code \
             such as DE or US, or one of the sample jurisdictions QX and QY."
                .to_owned(),
        ),
    }
}

/// Checks that `country` is an assigned ISO 3166-1 alpha-2 code, or one of the
/// [`SAMPLE_JURISDICTIONS`].
///
/// Countries of origin and destination select tariffs and customs rules; a code that names
/// no country would select nothing. The exceptionally reserved codes (such as `UK` and
/// `EL`) and the user-assigned ones (such as `XI` and `XK`) are refused because they are
/// not country codes in ISO 3166-1, even though some of them appear in trade documents.
pub fn check_country(field: &str, country: CountryCode) -> Result<(), Rejection> {
    match country_problem(country.as_str()) {
        Some(reason) => Err(Rejection::new(
            codes::COUNTRY,
            field,
            format!("Country {} {reason}", country.as_str()),
        )),
        None => Ok(()),
    }
}

/// Whether `b` may appear in the location part of a UN/LOCODE: `A`–`Z` or `2`–`9`. The
/// digits 0 and 1 are excluded by UN/ECE so they cannot be confused with O and I.
fn is_locode_location_char(b: u8) -> bool {
    b.is_ascii_uppercase() || (b'2'..=b'9').contains(&b)
}

/// What a UN/LOCODE should look like, for messages.
const LOCODE_EXPECTED: &str = "a two-letter country code followed by three characters from \
                               A-Z and 2-9, optionally separated by one space (DEHAM or DE HAM)";

/// Parses a UN/LOCODE into its country, or says why it is not one.
fn parse_locode(value: &str) -> Result<CountryCode, String> {
    if !value.is_ascii() {
        return Err(format!(
            "UN/LOCODE {} contains a character outside ASCII; expected {LOCODE_EXPECTED}.",
            shown(value)
        ));
    }
    let (country, location) = match value.as_bytes() {
        [c1, c2, l1, l2, l3] | [c1, c2, b' ', l1, l2, l3] => ([*c1, *c2], [*l1, *l2, *l3]),
        [_, _, separator, _, _, _] => {
            return Err(format!(
                "UN/LOCODE {} has {:?} after the country code, where only a single space may \
                 stand; expected {LOCODE_EXPECTED}.",
                shown(value),
                char::from(*separator)
            ))
        }
        _ => {
            return Err(format!(
                "UN/LOCODE {} has {} characters; expected {LOCODE_EXPECTED}.",
                shown(value),
                value.len()
            ))
        }
    };
    let country_code = std::str::from_utf8(&country)
        .ok()
        .and_then(CountryCode::parse)
        .ok_or_else(|| {
            format!(
                "UN/LOCODE {} does not start with two capital letters; expected \
                 {LOCODE_EXPECTED}.",
                shown(value)
            )
        })?;
    if let Some(bad) = location.iter().find(|&&b| !is_locode_location_char(b)) {
        return Err(format!(
            "UN/LOCODE {} has {:?} in its location part, where only A-Z and 2-9 may stand \
             (0 and 1 are left out so they cannot be mistaken for O and I); expected \
             {LOCODE_EXPECTED}.",
            shown(value),
            char::from(*bad)
        ));
    }
    if let Some(reason) = country_problem(country_code.as_str()) {
        return Err(format!(
            "UN/LOCODE {} has the country part {}, which {reason}",
            shown(value),
            country_code.as_str()
        ));
    }
    Ok(country_code)
}

/// Checks a UN/LOCODE such as `DEHAM` or `DE HAM`: an assigned ISO 3166-1 country code (or
/// a sample jurisdiction), then three characters from `A`–`Z` and `2`–`9`.
///
/// Handoffs and customs events say *where* they happened by UN/LOCODE. The location part
/// is checked for form only: the UN/LOCODE code list is large and changes twice a year, and
/// checking membership would make old events invalid as codes are withdrawn. The country
/// part is checked, because a place in a country that does not exist cannot be right.
pub fn check_locode(field: &str, value: &str) -> Result<(), Rejection> {
    parse_locode(value)
        .map(|_| ())
        .map_err(|message| Rejection::new(codes::LOCODE, field, message))
}

/// The country of a UN/LOCODE, or `None` if [`check_locode`] would refuse it.
///
/// Rule modules use it to tell whether a place lies in the shipment's origin or destination
/// country, or inside the EU.
pub fn locode_country(value: &str) -> Option<CountryCode> {
    parse_locode(value).ok()
}

/// Checks that `currency` is an ISO 4217 currency with a defined minor unit, and returns
/// that minor unit: the number of decimal places (2 for EUR, 0 for JPY, 3 for BHD).
///
/// Every amount on the ledger is an integer number of minor units, so a currency is only
/// usable if ISO 4217 says how many minor units make a major one. Codes such as `XAU`
/// (gold) or `XXX` (no currency) have no minor unit and are refused.
pub fn check_currency(field: &str, currency: CurrencyCode) -> Result<u32, Rejection> {
    let code = currency.as_str();
    let Some(found) = iso_currency::Currency::from_code(code) else {
        return Err(Rejection::new(
            codes::CURRENCY,
            field,
            format!(
                "Currency {code} is not an ISO 4217 currency code; expected a code such as EUR, \
                 USD or JPY."
            ),
        ));
    };
    match found.exponent() {
        Some(exponent) => Ok(u32::from(exponent)),
        None => Err(Rejection::new(
            codes::CURRENCY,
            field,
            format!(
                "Currency {code}, {}, has no minor unit in ISO 4217, so amounts cannot be \
                 stated in it as whole minor units; expected a currency with a defined number \
                 of decimal places, such as EUR, USD or JPY.",
                found.name()
            ),
        )),
    }
}

/// What an EORI number should look like, for messages.
const EORI_FORMS: &str = "an EU member-state prefix followed by 1 to 15 capital letters or \
                          digits (DE123456789012345), or GB or XI followed by exactly 12 digits \
                          (GB123456789012)";

/// Checks an Economic Operators Registration and Identification (EORI) number.
///
/// Two forms are accepted:
/// * EU: the ISO code of a member state (see [`EU_MEMBERS`]) followed by 1 to 15 capital
///   letters or digits, as the EU customs code allows;
/// * UK: `GB` (Great Britain) or `XI` (Northern Ireland) followed by exactly 12 digits.
///
/// Customs declarations are refused without a valid EORI of the declarant, so catching a
/// malformed one early saves a round trip through customs. Whether the number is actually
/// registered can only be asked of the EU or UK service, which a deterministic rule cannot
/// do.
pub fn check_eori(field: &str, value: &str) -> Result<(), Rejection> {
    let reject = |message: String| Err(Rejection::new(codes::EORI, field, message));
    let bytes = value.as_bytes();
    let prefix = match bytes {
        [a, b, ..] if a.is_ascii_uppercase() && b.is_ascii_uppercase() => {
            // Both bytes are ASCII, so 2 is a character boundary.
            value.split_at(2)
        }
        _ => {
            return reject(format!(
                "EORI number {} does not start with a two-letter country prefix in capitals; \
                 expected {EORI_FORMS}.",
                shown(value)
            ))
        }
    };
    let (country, rest) = prefix;
    if country == "GB" || country == "XI" {
        let region = if country == "GB" {
            "Great Britain"
        } else {
            "Northern Ireland"
        };
        if rest.len() != 12 || !rest.bytes().all(|b| b.is_ascii_digit()) {
            return reject(format!(
                "EORI number {} has the {region} prefix {country}; expected {country} followed \
                 by exactly 12 digits.",
                shown(value)
            ));
        }
        return Ok(());
    }
    if CountryCode::parse(country).is_some_and(is_eu_member) {
        let well_formed = (1..=15).contains(&rest.len())
            && rest
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if !well_formed {
            return reject(format!(
                "EORI number {} has the EU member-state prefix {country}; expected {country} \
                 followed by 1 to 15 capital letters or digits.",
                shown(value)
            ));
        }
        return Ok(());
    }
    reject(format!(
        "EORI number {} has the prefix {country}, which is neither an EU member state nor GB \
         or XI; expected {EORI_FORMS}.",
        shown(value)
    ))
}

/// Checks an EU Import One-Stop Shop (IOSS) identification number: `IM` followed by 10
/// digits.
///
/// A low-value consignment declared under IOSS has its import VAT collected by the seller;
/// customs releases it without VAT only if the number is present and well formed, so a
/// malformed one would leave the parcel stuck at the border.
pub fn check_ioss(field: &str, value: &str) -> Result<(), Rejection> {
    let expected = "IM followed by 10 digits (IM1234567890)";
    let Some(rest) = value.strip_prefix("IM") else {
        return Err(Rejection::new(
            codes::IOSS,
            field,
            format!(
                "IOSS number {} does not start with IM; expected {expected}.",
                shown(value)
            ),
        ));
    };
    if rest.len() != 10 || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Rejection::new(
            codes::IOSS,
            field,
            format!(
                "IOSS number {} does not have 10 digits after IM; expected {expected}.",
                shown(value)
            ),
        ));
    }
    Ok(())
}

/// `value` without the spaces people group digits with (`GB 980 7806 84`, `51 824 753 556`).
fn without_spaces(value: &str) -> String {
    value.chars().filter(|c| *c != ' ').collect()
}

/// What a UK VAT registration number should look like, for messages.
const UK_VAT_FORMS: &str = "GB followed by 9 digits (GB980780684), or by 12 for a branch of a \
                            VAT group (GB980780684001), or GBGD and 000-499 for a government \
                            department, or GBHA and 500-999 for a health authority; XI in place \
                            of GB for Northern Ireland";

/// The weighted sum HMRC's check puts on the first seven digits of a UK VAT number:
/// 8, 7, 6, 5, 4, 3 and 2 times the digits, left to right.
fn uk_vat_weighted_sum(first_seven: &[u8]) -> u32 {
    first_seven
        .iter()
        .zip([8u32, 7, 6, 5, 4, 3, 2])
        .map(|(d, w)| u32::from(*d) * w)
        .sum()
}

/// Checks a UK VAT registration number.
///
/// Accepted forms: `GB` (Great Britain) or `XI` (Northern Ireland) followed by 9 digits, or 12
/// for a branch of a VAT group (the last three digits number the branch and are not checked);
/// spaces between digit groups are ignored. The ninth and eighth digits are HMRC's check
/// number: with `s` the weighted sum 8·d1 + 7·d2 + … + 2·d7, the number is valid when
/// `s + check` is a multiple of 97 (the original modulus 97 series) or `s + check + 55` is
/// (the "9755" series issued since November 2009). Seven zeros are never issued. Government
/// departments (`GBGD` then 000 to 499) and health authorities (`GBHA` then 500 to 999) have
/// no check number.
///
/// The check catches typing errors only: whether the number is registered is for HMRC's
/// online service to say, which a deterministic rule cannot ask.
pub fn check_uk_vat(field: &str, value: &str) -> Result<(), Rejection> {
    let reject = |message: String| Err(Rejection::new(codes::UK_VAT, field, message));
    let compact = without_spaces(value);
    let (prefix, rest) = match compact.get(..2) {
        Some(p @ ("GB" | "XI")) => (p, &compact[2..]),
        _ => {
            return reject(format!(
                "UK VAT number {} does not start with GB or XI; expected {UK_VAT_FORMS}.",
                shown(value)
            ))
        }
    };
    for (letters, range, what) in [
        ("GD", 0..=499u32, "government department"),
        ("HA", 500..=999u32, "health authority"),
    ] {
        if let Some(number) = rest.strip_prefix(letters) {
            let parsed = (number.len() == 3 && number.bytes().all(|b| b.is_ascii_digit()))
                .then(|| number.parse::<u32>().ok())
                .flatten();
            return match parsed {
                Some(n) if prefix == "GB" && range.contains(&n) => Ok(()),
                _ => reject(format!(
                    "UK VAT number {} is not a {what} number: expected GB{letters} followed by \
                     three digits from {:03} to {:03}.",
                    shown(value),
                    range.start(),
                    range.end()
                )),
            };
        }
    }
    if !(rest.len() == 9 || rest.len() == 12) || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return reject(format!(
            "UK VAT number {} does not have 9 or 12 digits after {prefix}; expected \
             {UK_VAT_FORMS}.",
            shown(value)
        ));
    }
    let digits = digit_values(&rest[..9]);
    if digits[..7].iter().all(|d| *d == 0) {
        return reject(format!(
            "UK VAT number {} has seven zeros before its check number; HMRC issues no such \
             number.",
            shown(value)
        ));
    }
    let sum = uk_vat_weighted_sum(&digits[..7]);
    let check = u32::from(digits[7]) * 10 + u32::from(digits[8]);
    if (sum + check).is_multiple_of(97) || (sum + check + 55).is_multiple_of(97) {
        return Ok(());
    }
    let modulus_97 = (97 - sum % 97) % 97;
    let modulus_9755 = (97 - (sum + 55) % 97) % 97;
    reject(format!(
        "UK VAT number {} ends in check number {check:02}, but its first seven digits give \
         {modulus_97:02} (modulus 97) or {modulus_9755:02} (modulus 9755); the number is \
         mistyped.",
        shown(value)
    ))
}

/// The weights of the Australian Business Register's ABN check, left to right.
const ABN_WEIGHTS: [u32; 11] = [10, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19];

/// Checks an Australian Business Number: 11 digits (spaces between groups ignored, as in
/// `51 824 753 556`) whose first two are check digits. The Australian Business Register's
/// rule: subtract 1 from the first digit, weight the eleven digits 10, 1, 3, 5, 7, 9, 11, 13,
/// 15, 17 and 19, and the sum must be a multiple of 89. The check digits run from 10 to 99, so
/// an ABN never starts with 0.
pub fn check_abn(field: &str, value: &str) -> Result<(), Rejection> {
    let reject = |message: String| Err(Rejection::new(codes::ABN, field, message));
    let compact = without_spaces(value);
    if compact.len() != 11 || !compact.bytes().all(|b| b.is_ascii_digit()) {
        return reject(format!(
            "ABN {} is not 11 digits; expected 11 digits, optionally grouped as 51 824 753 556.",
            shown(value)
        ));
    }
    let digits = digit_values(&compact);
    if digits[0] == 0 {
        return reject(format!(
            "ABN {} starts with 0, but its check digits run from 10 to 99.",
            shown(value)
        ));
    }
    let sum: u32 = digits
        .iter()
        .enumerate()
        .map(|(i, d)| u32::from(if i == 0 { d - 1 } else { *d }))
        .zip(ABN_WEIGHTS)
        .map(|(d, w)| d * w)
        .sum();
    if !sum.is_multiple_of(89) {
        return reject(format!(
            "ABN {} fails the modulus 89 check: its weighted sum {sum} leaves {} when divided \
             by 89; the number is mistyped.",
            shown(value),
            sum % 89
        ));
    }
    Ok(())
}

/// Checks an ATO reference number, the identifier of a non-resident business under simplified
/// GST registration: 12 digits (spaces between groups ignored). The ATO publishes no check
/// digit for it, so only the form is checked.
pub fn check_arn(field: &str, value: &str) -> Result<(), Rejection> {
    let compact = without_spaces(value);
    if compact.len() != 12 || !compact.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Rejection::new(
            codes::ARN,
            field,
            format!(
                "ATO reference number {} is not 12 digits; expected the 12-digit ARN of a \
                 simplified GST registration.",
                shown(value)
            ),
        ));
    }
    Ok(())
}

/// Checks a registration number by its scheme, as rules version 2 does on invoices and on
/// claims of tax collected at sale: `EORI`, `IOSS`, `ABN`, `ARN`, and `VAT` numbers of the
/// UK (`GB`/`XI` prefix; other countries' VAT numbers are taken as written). Other schemes
/// are taken as written.
pub fn check_registration(field: &str, scheme: &str, value: &str) -> Result<(), Rejection> {
    match scheme {
        "EORI" => check_eori(field, value),
        "IOSS" => check_ioss(field, value),
        "ABN" => check_abn(field, value),
        "ARN" => check_arn(field, value),
        "VAT" if value.starts_with("GB") || value.starts_with("XI") => check_uk_vat(field, value),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FIELD: &str = "event.kind.ShipmentRegistered.parcels[0].sscc";

    fn country(code: &str) -> CountryCode {
        CountryCode::parse(code).expect("test country code is two capitals")
    }

    fn currency(code: &str) -> CurrencyCode {
        CurrencyCode::parse(code).expect("test currency code is three capitals")
    }

    /// Asserts a rejection with `code` that names `FIELD` and has a sentence message
    /// quoting `needle`; returns the message for further checks.
    fn assert_refused(
        result: Result<impl std::fmt::Debug, Rejection>,
        code: custody_ledger::reject::Code,
        needle: &str,
    ) -> String {
        let rejection = result.expect_err("value should be refused");
        assert_eq!(rejection.code, code, "{rejection}");
        assert_eq!(rejection.field, FIELD, "{rejection}");
        assert!(
            rejection.message.contains(needle),
            "message {:?} should mention {needle:?}",
            rejection.message
        );
        assert!(rejection.message.ends_with('.'), "{:?}", rejection.message);
        assert!(
            rejection
                .message
                .starts_with(|c: char| c.is_ascii_uppercase()),
            "{:?}",
            rejection.message
        );
        rejection.message
    }

    fn digits(text: &str) -> Vec<u8> {
        text.bytes().map(|b| b - b'0').collect()
    }

    // ----- UK VAT, ABN, ARN -----

    #[test]
    fn uk_vat_accepts_both_check_series_and_every_form() {
        // Modulus 97: 9·8 + 8·7 + 0·6 + 7·5 + 8·4 + 0·3 + 6·2 = 207, and 207 + 84 = 291 = 3 × 97.
        assert_eq!(check_uk_vat(FIELD, "GB980780684"), Ok(()));
        assert_eq!(check_uk_vat(FIELD, "GB 980 7806 84"), Ok(()));
        // 8·8 + 3·7 + 1·6 + 4·5 + 9·4 + 5·3 + 8·2 = 178, and 178 + 16 = 194 = 2 × 97.
        assert_eq!(check_uk_vat(FIELD, "GB 831 4958 16"), Ok(()));
        // Modulus 9755: 3·8 + 4·7 + 0·6 + 8·5 + 0·4 + 4·3 + 3·2 = 110, and
        // 110 + 29 + 55 = 194 = 2 × 97 (110 + 29 = 139 is no multiple of 97).
        assert_eq!(check_uk_vat(FIELD, "GB340804329"), Ok(()));
        // A branch of a VAT group: the last three digits are not checked.
        assert_eq!(check_uk_vat(FIELD, "GB980780684001"), Ok(()));
        assert_eq!(check_uk_vat(FIELD, "XI980780684"), Ok(()));
        assert_eq!(check_uk_vat(FIELD, "GBGD001"), Ok(()));
        assert_eq!(check_uk_vat(FIELD, "GBGD499"), Ok(()));
        assert_eq!(check_uk_vat(FIELD, "GBHA500"), Ok(()));
        assert_eq!(check_uk_vat(FIELD, "GBHA999"), Ok(()));
    }

    #[test]
    fn uk_vat_refuses_one_off_check_numbers_and_bad_forms() {
        // 207 + 85 = 292 leaves 1 and 292 + 55 = 347 leaves 56 modulo 97; the message gives
        // both right check numbers: 97 - 207 mod 97 = 97 - 13 = 84, and (97 - 262 mod 97) = 29.
        let message = assert_refused(
            check_uk_vat(FIELD, "GB980780685"),
            codes::UK_VAT,
            "give 84 (modulus 97) or 29 (modulus 9755)",
        );
        assert!(message.contains("check number 85"), "{message}");
        assert_refused(
            check_uk_vat(FIELD, "GB980780683"),
            codes::UK_VAT,
            "check number 83",
        );
        // One off in the 9755 series: 110 + 28 + 55 = 193 and 110 + 30 + 55 = 195.
        assert_refused(
            check_uk_vat(FIELD, "GB340804328"),
            codes::UK_VAT,
            "340804328",
        );
        assert_refused(
            check_uk_vat(FIELD, "GB340804330"),
            codes::UK_VAT,
            "340804330",
        );
        assert_refused(
            check_uk_vat(FIELD, "GB980780685001"),
            codes::UK_VAT,
            "check number 85",
        );
        assert_refused(check_uk_vat(FIELD, "980780684"), codes::UK_VAT, "GB or XI");
        assert_refused(
            check_uk_vat(FIELD, "DE980780684"),
            codes::UK_VAT,
            "GB or XI",
        );
        assert_refused(check_uk_vat(FIELD, "GB98078068"), codes::UK_VAT, "9 or 12");
        assert_refused(
            check_uk_vat(FIELD, "GB9807806840"),
            codes::UK_VAT,
            "9 or 12",
        );
        assert_refused(check_uk_vat(FIELD, "GB98078068A"), codes::UK_VAT, "9 or 12");
        // Seven zeros add up to 0, a multiple of 97, but are never issued.
        assert_refused(
            check_uk_vat(FIELD, "GB000000000"),
            codes::UK_VAT,
            "seven zeros",
        );
        assert_refused(check_uk_vat(FIELD, "GBGD500"), codes::UK_VAT, "000 to 499");
        assert_refused(check_uk_vat(FIELD, "GBHA499"), codes::UK_VAT, "500 to 999");
        assert_refused(check_uk_vat(FIELD, "GBHA5000"), codes::UK_VAT, "500 to 999");
        assert_refused(check_uk_vat(FIELD, "XIGD001"), codes::UK_VAT, "GBGD");
    }

    #[test]
    fn abn_accepts_the_registers_examples() {
        // ABR: 51 824 753 556 → 4·10 + 1·1 + 8·3 + 2·5 + 4·7 + 7·9 + 5·11 + 3·13 + 5·15 + 5·17
        // + 6·19 = 534 = 6 × 89.
        assert_eq!(check_abn(FIELD, "51 824 753 556"), Ok(()));
        assert_eq!(check_abn(FIELD, "51824753556"), Ok(()));
        // 53 004 085 616 → 40 + 3 + 0 + 0 + 28 + 0 + 88 + 65 + 90 + 17 + 114 = 445 = 5 × 89.
        assert_eq!(check_abn(FIELD, "53 004 085 616"), Ok(()));
    }

    #[test]
    fn abn_refuses_one_off_and_malformed_numbers() {
        // The last digit one up adds its weight 19: 553 leaves 19; one down: 515 leaves 70.
        assert_refused(check_abn(FIELD, "51824753557"), codes::ABN, "leaves 19");
        assert_refused(check_abn(FIELD, "51824753555"), codes::ABN, "leaves 70");
        assert_refused(check_abn(FIELD, "01824753556"), codes::ABN, "starts with 0");
        assert_refused(check_abn(FIELD, "5182475355"), codes::ABN, "11 digits");
        assert_refused(check_abn(FIELD, "518247535561"), codes::ABN, "11 digits");
        assert_refused(check_abn(FIELD, "51 824 753 55A"), codes::ABN, "11 digits");
    }

    #[test]
    fn arn_is_twelve_digits() {
        assert_eq!(check_arn(FIELD, "300012345678"), Ok(()));
        assert_eq!(check_arn(FIELD, "3000 1234 5678"), Ok(()));
        assert_refused(check_arn(FIELD, "30001234567"), codes::ARN, "12 digits");
        assert_refused(check_arn(FIELD, "3000123456789"), codes::ARN, "12 digits");
        assert_refused(check_arn(FIELD, "30001234567X"), codes::ARN, "12 digits");
    }

    #[test]
    fn registrations_are_checked_by_scheme() {
        assert_eq!(check_registration(FIELD, "VAT", "GB980780684"), Ok(()));
        assert_eq!(
            check_registration(FIELD, "VAT", "GB980780685").map_err(|r| r.code),
            Err(codes::UK_VAT)
        );
        // Other countries' VAT numbers and other schemes are taken as written.
        assert_eq!(check_registration(FIELD, "VAT", "FR12345678901"), Ok(()));
        assert_eq!(check_registration(FIELD, "EIN", "12-3456789"), Ok(()));
        assert_eq!(
            check_registration(FIELD, "ABN", "51824753557").map_err(|r| r.code),
            Err(codes::ABN)
        );
        assert_eq!(
            check_registration(FIELD, "ARN", "1").map_err(|r| r.code),
            Err(codes::ARN)
        );
        assert_eq!(
            check_registration(FIELD, "IOSS", "IM123").map_err(|r| r.code),
            Err(codes::IOSS)
        );
    }

    // ----- GS1 -----

    #[test]
    fn gs1_check_digit_matches_published_examples() {
        // Worked by hand: 1 0 6 1 4 1 4 1 1 2 3 4 5 6 7 8 9 weighted 3,1,… from the right
        // sums to 143, and 150 - 143 = 7.
        assert_eq!(gs1_check_digit(&digits("10614141123456789")), 7);
        assert_eq!(gs1_check_digit(&digits("37610425002123456")), 9);
        assert_eq!(gs1_check_digit(&digits("400638133393")), 1);
        assert_eq!(gs1_check_digit(&digits("03600029145")), 2);
        assert_eq!(gs1_check_digit(&digits("9638507")), 4);
        assert_eq!(gs1_check_digit(&[]), 0);
        // Values above 9 count modulo 10 rather than panicking.
        assert_eq!(gs1_check_digit(&[255, 255]), gs1_check_digit(&[5, 5]));
    }

    #[test]
    fn sscc_accepts_valid_codes() {
        // Both GS1 example SSCCs are valid by the algorithm.
        assert_eq!(check_sscc(FIELD, "106141411234567897"), Ok(()));
        assert_eq!(check_sscc(FIELD, "376104250021234569"), Ok(()));
        assert_eq!(check_sscc(FIELD, "000000000000000000"), Ok(()));
    }

    #[test]
    fn sscc_refuses_wrong_check_digit() {
        let message = assert_refused(
            check_sscc(FIELD, "106141411234567890"),
            codes::SSCC,
            "106141411234567890",
        );
        assert!(message.contains("check digit 0"), "{message}");
        assert!(message.contains("give 7"), "{message}");
    }

    #[test]
    fn sscc_refuses_wrong_length_and_letters() {
        assert_refused(
            check_sscc(FIELD, "10614141123456789"),
            codes::SSCC,
            "17 characters",
        );
        assert_refused(
            check_sscc(FIELD, "1061414112345678970"),
            codes::SSCC,
            "19 characters",
        );
        assert_refused(check_sscc(FIELD, ""), codes::SSCC, "0 characters");
        assert_refused(
            check_sscc(FIELD, "10614141123456789A"),
            codes::SSCC,
            "'A' at position 18",
        );
        assert_refused(
            check_sscc(FIELD, "(00)10614141123456"),
            codes::SSCC,
            "'(' at position 1",
        );
        assert_refused(
            check_sscc(FIELD, "10614141123456789\u{663}"),
            codes::SSCC,
            "position 18",
        );
    }

    #[test]
    fn gtin_accepts_all_four_lengths() {
        assert_eq!(check_gtin(FIELD, "96385074"), Ok(())); // GTIN-8
        assert_eq!(check_gtin(FIELD, "036000291452"), Ok(())); // GTIN-12 (UPC-A)
        assert_eq!(check_gtin(FIELD, "4006381333931"), Ok(())); // GTIN-13 (EAN-13)
        assert_eq!(check_gtin(FIELD, "10614141000415"), Ok(())); // GTIN-14
    }

    #[test]
    fn gtin_refuses_bad_codes() {
        assert_refused(
            check_gtin(FIELD, "4006381333932"),
            codes::GTIN,
            "check digit 2",
        );
        assert_refused(check_gtin(FIELD, "96385075"), codes::GTIN, "96385075");
        assert_refused(
            check_gtin(FIELD, "40063813339"),
            codes::GTIN,
            "11 characters",
        );
        assert_refused(
            check_gtin(FIELD, "400638133393-"),
            codes::GTIN,
            "'-' at position 13",
        );
        assert_refused(
            check_gtin(FIELD, "106141411234567897"),
            codes::GTIN,
            "18 characters",
        );
    }

    #[test]
    fn gln_accepts_valid_codes() {
        // GS1 company prefix 0614141 (GS1's documentation examples), location 00000: the
        // digits weighted 3,1,… from the right sum to 25, and 30 - 25 = 5.
        assert_eq!(gs1_check_digit(&digits("061414100000")), 5);
        assert_eq!(check_gln(FIELD, "0614141000005"), Ok(()));
        assert_eq!(check_gln(FIELD, "5901234123457"), Ok(()));
        assert_eq!(check_gln(FIELD, "4006381333931"), Ok(()));
    }

    #[test]
    fn gln_refuses_bad_codes() {
        let message = assert_refused(
            check_gln(FIELD, "0614141000006"),
            codes::GLN,
            "check digit 6",
        );
        assert!(message.contains("give 5"), "{message}");
        assert_refused(
            check_gln(FIELD, "061414100000"),
            codes::GLN,
            "12 characters",
        );
        assert_refused(
            check_gln(FIELD, "00614141000005"),
            codes::GLN,
            "14 characters",
        );
        assert_refused(
            check_gln(FIELD, "061414100000X"),
            codes::GLN,
            "'X' at position 13",
        );
    }

    // ----- Air waybills -----

    #[test]
    fn awb_accepts_both_spellings() {
        // Serial 1234567 = 7 × 176366 + 5, so the check digit is 5.
        assert_eq!(1_234_567 % 7, 5);
        assert_eq!(check_awb(FIELD, "020-12345675"), Ok(()));
        assert_eq!(check_awb(FIELD, "02012345675"), Ok(()));
        assert_eq!(check_awb(FIELD, "176-00000000"), Ok(()));
    }

    #[test]
    fn awb_refuses_wrong_check_digit() {
        let message = assert_refused(check_awb(FIELD, "02012345676"), codes::AWB, "02012345676");
        assert!(message.contains("1234567 modulo 7 is 5"), "{message}");
        // A check digit of 7, 8 or 9 can never be right.
        assert_refused(
            check_awb(FIELD, "020-12345677"),
            codes::AWB,
            "check digit 7",
        );
    }

    #[test]
    fn awb_refuses_bad_forms() {
        assert_refused(check_awb(FIELD, "0201234567"), codes::AWB, "10 characters");
        assert_refused(
            check_awb(FIELD, "020 12345675"),
            codes::AWB,
            "12 characters",
        );
        assert_refused(
            check_awb(FIELD, "0201-2345675"),
            codes::AWB,
            "12 characters",
        );
        assert_refused(
            check_awb(FIELD, "020--12345675"),
            codes::AWB,
            "13 characters",
        );
        assert_refused(
            check_awb(FIELD, "02O12345675"),
            codes::AWB,
            "other than digits",
        );
        assert_refused(
            check_awb(FIELD, "020-1234567-"),
            codes::AWB,
            "other than digits",
        );
    }

    // ----- Countries and places -----

    #[test]
    fn eu_members_are_sorted_unique_and_assigned() {
        assert!(EU_MEMBERS.windows(2).all(|pair| pair[0] < pair[1]));
        for member in EU_MEMBERS {
            assert_eq!(check_country(FIELD, country(member)), Ok(()), "{member}");
            assert!(is_eu_member(country(member)));
        }
        for outsider in ["GB", "XI", "CH", "NO", "US", "EL", "QX"] {
            assert!(!is_eu_member(country(outsider)), "{outsider}");
        }
    }

    #[test]
    fn countries_accepted_and_refused() {
        assert_eq!(check_country(FIELD, country("DE")), Ok(()));
        assert_eq!(check_country(FIELD, country("US")), Ok(()));
        assert_eq!(check_country(FIELD, country("GB")), Ok(()));
        assert_eq!(check_country(FIELD, country("QX")), Ok(()));
        assert_eq!(check_country(FIELD, country("QY")), Ok(()));
        assert_refused(check_country(FIELD, country("ZZ")), codes::COUNTRY, "ZZ");
        let message = assert_refused(check_country(FIELD, country("XI")), codes::COUNTRY, "XI");
        assert!(message.contains("EORI"), "{message}");
        assert_refused(
            check_country(FIELD, country("XK")),
            codes::COUNTRY,
            "user-assigned",
        );
        assert_refused(check_country(FIELD, country("QZ")), codes::COUNTRY, "QZ");
        assert_refused(
            check_country(FIELD, country("UK")),
            codes::COUNTRY,
            "UK is not an assigned",
        );
        assert_refused(check_country(FIELD, country("EL")), codes::COUNTRY, "EL");
    }

    #[test]
    fn exactly_the_assigned_codes_and_the_samples_are_countries() {
        let mut accepted = Vec::new();
        for first in b'A'..=b'Z' {
            for second in b'A'..=b'Z' {
                let text = String::from_utf8(vec![first, second]).expect("ASCII");
                if check_country(FIELD, country(&text)).is_ok() {
                    assert!(
                        !is_user_assigned(&text) || SAMPLE_JURISDICTIONS.contains(&text.as_str())
                    );
                    accepted.push(text);
                }
            }
        }
        // ISO 3166-1 assigns 249 alpha-2 codes; plus the two sample jurisdictions.
        assert_eq!(
            accepted.len(),
            249 + SAMPLE_JURISDICTIONS.len(),
            "{accepted:?}"
        );
    }

    #[test]
    fn locodes_accepted() {
        assert_eq!(check_locode(FIELD, "DEHAM"), Ok(()));
        assert_eq!(check_locode(FIELD, "USNYC"), Ok(()));
        assert_eq!(check_locode(FIELD, "GB LON"), Ok(()));
        assert_eq!(check_locode(FIELD, "NLRTM"), Ok(()));
        assert_eq!(check_locode(FIELD, "QXA29"), Ok(()));
        assert_eq!(locode_country("DEHAM"), Some(country("DE")));
        assert_eq!(locode_country("GB LON"), Some(country("GB")));
        assert_eq!(locode_country("QY Z99"), Some(country("QY")));
    }

    #[test]
    fn locodes_refused() {
        assert_refused(check_locode(FIELD, "ZZABC"), codes::LOCODE, "ZZ");
        assert_refused(check_locode(FIELD, "XIBEL"), codes::LOCODE, "XI");
        assert_refused(check_locode(FIELD, "DEH1M"), codes::LOCODE, "'1'");
        assert_refused(check_locode(FIELD, "DEH0M"), codes::LOCODE, "'0'");
        assert_refused(
            check_locode(FIELD, "deham"),
            codes::LOCODE,
            "two capital letters",
        );
        assert_refused(check_locode(FIELD, "DEham"), codes::LOCODE, "'h'");
        assert_refused(check_locode(FIELD, "DEHA"), codes::LOCODE, "4 characters");
        assert_refused(
            check_locode(FIELD, "DE  HAM"),
            codes::LOCODE,
            "7 characters",
        );
        assert_refused(check_locode(FIELD, "DE-HAM"), codes::LOCODE, "'-'");
        assert_refused(check_locode(FIELD, "DEHÄM"), codes::LOCODE, "outside ASCII");
        assert_refused(check_locode(FIELD, "ÄDEH"), codes::LOCODE, "outside ASCII");
        assert_eq!(locode_country("ZZABC"), None);
        assert_eq!(locode_country("DEH1M"), None);
        assert_eq!(locode_country(""), None);
    }

    // ----- Currencies -----

    #[test]
    fn currencies_return_their_minor_units() {
        assert_eq!(check_currency(FIELD, currency("EUR")), Ok(2));
        assert_eq!(check_currency(FIELD, currency("USD")), Ok(2));
        assert_eq!(check_currency(FIELD, currency("JPY")), Ok(0));
        assert_eq!(check_currency(FIELD, currency("BHD")), Ok(3));
        assert_eq!(check_currency(FIELD, currency("CLF")), Ok(4));
    }

    #[test]
    fn currencies_refused() {
        assert_refused(
            check_currency(FIELD, currency("ABC")),
            codes::CURRENCY,
            "ABC is not an ISO 4217",
        );
        assert_refused(
            check_currency(FIELD, currency("XXX")),
            codes::CURRENCY,
            "no minor unit",
        );
        let message = assert_refused(
            check_currency(FIELD, currency("XAU")),
            codes::CURRENCY,
            "XAU",
        );
        assert!(message.contains("no minor unit"), "{message}");
        assert_refused(
            check_currency(FIELD, currency("XDR")),
            codes::CURRENCY,
            "XDR",
        );
    }

    // ----- EORI and IOSS -----

    #[test]
    fn eori_accepted() {
        assert_eq!(check_eori(FIELD, "DE123456789012345"), Ok(()));
        assert_eq!(check_eori(FIELD, "FR1"), Ok(()));
        assert_eq!(check_eori(FIELD, "NL8ABC12345"), Ok(()));
        assert_eq!(check_eori(FIELD, "GR094019245"), Ok(()));
        assert_eq!(check_eori(FIELD, "GB123456789012"), Ok(()));
        assert_eq!(check_eori(FIELD, "XI123456789012"), Ok(()));
    }

    #[test]
    fn eori_refused_with_the_expected_form() {
        let message = assert_refused(check_eori(FIELD, "GB12345"), codes::EORI, "GB12345");
        assert!(message.contains("exactly 12 digits"), "{message}");
        assert_refused(
            check_eori(FIELD, "GB1234567890123"),
            codes::EORI,
            "exactly 12 digits",
        );
        assert_refused(
            check_eori(FIELD, "GB12345678901A"),
            codes::EORI,
            "exactly 12 digits",
        );
        assert_refused(
            check_eori(FIELD, "XI12345678901"),
            codes::EORI,
            "Northern Ireland",
        );
        let message = assert_refused(check_eori(FIELD, "US123"), codes::EORI, "US123");
        assert!(
            message.contains("neither an EU member state nor GB or XI"),
            "{message}"
        );
        assert_refused(check_eori(FIELD, "EL094019245"), codes::EORI, "prefix EL");
        assert_refused(
            check_eori(FIELD, "DE1234567890123456"),
            codes::EORI,
            "1 to 15",
        );
        assert_refused(check_eori(FIELD, "DE"), codes::EORI, "1 to 15");
        assert_refused(
            check_eori(FIELD, "DE12345abc"),
            codes::EORI,
            "capital letters or digits",
        );
        assert_refused(
            check_eori(FIELD, "de123456"),
            codes::EORI,
            "two-letter country prefix",
        );
        assert_refused(
            check_eori(FIELD, "D"),
            codes::EORI,
            "two-letter country prefix",
        );
        assert_refused(
            check_eori(FIELD, ""),
            codes::EORI,
            "two-letter country prefix",
        );
    }

    #[test]
    fn ioss_accepted_and_refused() {
        assert_eq!(check_ioss(FIELD, "IM1234567890"), Ok(()));
        assert_refused(check_ioss(FIELD, "IM123"), codes::IOSS, "IM123");
        assert_refused(check_ioss(FIELD, "IM12345678901"), codes::IOSS, "10 digits");
        assert_refused(check_ioss(FIELD, "IM123456789A"), codes::IOSS, "10 digits");
        assert_refused(
            check_ioss(FIELD, "IX1234567890"),
            codes::IOSS,
            "does not start with IM",
        );
        assert_refused(
            check_ioss(FIELD, "im1234567890"),
            codes::IOSS,
            "does not start with IM",
        );
    }

    // ----- Messages and codes -----

    #[test]
    fn long_values_are_cut_in_messages() {
        let long = "9".repeat(10_000);
        let message = assert_refused(check_sscc(FIELD, &long), codes::SSCC, "10000 characters");
        assert!(message.len() < 300, "{message}");
        assert!(message.contains('…'));
        let message = assert_refused(check_ioss(FIELD, "IM\u{0}"), codes::IOSS, "\\0");
        assert!(!message.contains('\u{0}'));
    }

    #[test]
    fn codes_are_distinct_and_namespaced() {
        let all = [
            codes::SSCC,
            codes::GTIN,
            codes::GLN,
            codes::AWB,
            codes::LOCODE,
            codes::COUNTRY,
            codes::CURRENCY,
            codes::EORI,
            codes::IOSS,
        ];
        for (index, code) in all.iter().enumerate() {
            assert!(code.as_str().starts_with("id."), "{code}");
            assert!(!all[..index].contains(code), "{code} repeated");
        }
    }

    // ----- Properties -----

    fn run_all_checkers(text: &str) {
        let _ = locode_country(text);
        for result in [
            check_sscc(FIELD, text),
            check_gtin(FIELD, text),
            check_gln(FIELD, text),
            check_awb(FIELD, text),
            check_locode(FIELD, text),
            check_eori(FIELD, text),
            check_ioss(FIELD, text),
        ] {
            if let Err(rejection) = result {
                assert_eq!(rejection.field, FIELD);
                assert!(!rejection.message.is_empty());
            }
        }
    }

    proptest! {
        #[test]
        fn arbitrary_strings_never_panic(text in any::<String>()) {
            run_all_checkers(&text);
        }

        #[test]
        fn near_miss_strings_never_panic(text in "[0-9A-Za-z \\-IMGBXÄ]{0,20}") {
            run_all_checkers(&text);
        }

        #[test]
        fn arbitrary_codes_never_panic(a in "[A-Z]{2}", c in "[A-Z]{3}") {
            let _ = check_country(FIELD, country(&a));
            let _ = check_currency(FIELD, currency(&c));
            let _ = is_eu_member(country(&a));
        }

        #[test]
        fn appended_check_digit_makes_a_valid_sscc(body in "[0-9]{17}", other in 0u8..10) {
            let check = gs1_check_digit(&digits(&body));
            prop_assert!(check <= 9);
            prop_assert_eq!(check_sscc(FIELD, &format!("{body}{check}")), Ok(()));
            if other != check {
                let rejection = check_sscc(FIELD, &format!("{body}{other}"))
                    .expect_err("a wrong check digit is refused");
                prop_assert_eq!(rejection.code, codes::SSCC);
                prop_assert_eq!(rejection.field, FIELD);
            }
        }

        #[test]
        fn any_single_digit_error_is_caught(body in "[0-9]{17}", position in 0usize..17, delta in 1u8..10) {
            let check = gs1_check_digit(&digits(&body));
            let mut changed = digits(&body);
            changed[position] = (changed[position] + delta) % 10;
            let text: String = changed.iter().map(|d| char::from(b'0' + d)).collect();
            let changed_sscc = format!("{text}{check}");
            prop_assert!(check_sscc(FIELD, &changed_sscc).is_err());
        }

        #[test]
        fn awb_check_digit_is_serial_mod_7(prefix in 0u32..1000, serial in 0u32..10_000_000) {
            let check = serial % 7;
            prop_assert_eq!(check_awb(FIELD, &format!("{prefix:03}-{serial:07}{check}")), Ok(()));
            prop_assert_eq!(check_awb(FIELD, &format!("{prefix:03}{serial:07}{check}")), Ok(()));
            let wrong = (check + 1) % 7;
            let wrong_awb = format!("{prefix:03}{serial:07}{wrong}");
            prop_assert!(check_awb(FIELD, &wrong_awb).is_err());
        }
    }
}
