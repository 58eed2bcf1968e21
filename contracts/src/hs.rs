//! Harmonized System (HS) commodity codes: shape, length per jurisdiction, reserved ranges and
//! existence in the nomenclature in force.
//!
//! Every customs declaration and commercial invoice line classifies its goods with an HS code.
//! The first six digits are the international subheading maintained by the World Customs
//! Organization; national tariffs extend them to eight or ten digits. A ledger that accepts an
//! invented or mistyped code would let duty be assessed against nothing, so codes are checked
//! here before any tariff lookup: first their shape, then the length the jurisdiction expects,
//! then the ranges no real goods may use, and last whether the six-digit subheading exists in
//! the edition of the nomenclature in force when the block is made.
//!
//! The nomenclature itself reaches the ledger as reference data; [`nomenclature_from_csv`]
//! builds it from the WCO-derived CSV listing (`hscode,level,parent,section`) so that what is
//! published on chain can be reproduced from the source file.
//!
//! Everything here is a pure function of its arguments, so every node reaches the same verdict.

use std::collections::BTreeSet;

use custody_ledger::model::{CountryCode, HsNomenclature};
use custody_ledger::reject::Rejection;

/// Stable rejection codes of this module. They are part of the interface: clients and tests
/// match on them, so renaming one is a breaking change.
pub mod codes {
    use crate::ContractCode;
    use custody_ledger::reject::Code;

    /// The code is empty, or has characters other than digits once dots and spaces are removed.
    pub const FORMAT: Code = ContractCode::HsFormat.code();
    /// The code has a number of digits the jurisdiction (or document) does not accept.
    pub const LENGTH: Code = ContractCode::HsLength.code();
    /// The code lies in chapter 77 (reserved by the WCO for future use) or chapter 99 (left to
    /// national special provisions, and home of the 99 / 9999 / 999999 placeholders), so it
    /// cannot classify goods against the international nomenclature.
    pub const RESERVED: Code = ContractCode::HsReserved.code();
    /// The first six digits are not a subheading of the nomenclature in force.
    pub const UNKNOWN: Code = ContractCode::HsUnknownSubheading.code();
    /// No nomenclature was in force at the block time, so no code can be confirmed.
    pub const NO_NOMENCLATURE: Code = ContractCode::HsNoNomenclature.code();
}

/// Lengths accepted on a commercial invoice line, where the seller states at least the
/// international six digits and may add the importing country's national digits.
pub const INVOICE_LENGTHS: [usize; 3] = [6, 8, 10];

/// Largest nomenclature CSV accepted, in bytes (2 MiB). The HS 2022 listing is about 120 KiB;
/// the bound keeps a hostile or mistaken publication from costing every node unbounded work.
pub const MAX_CSV_BYTES: usize = 2 * 1024 * 1024;

/// Most data rows (header excluded) accepted in a nomenclature CSV. HS 2022 has 6,936; the
/// bound leaves room for future editions while refusing runaway input.
pub const MAX_CSV_ROWS: usize = 20_000;

/// Most characters of a caller-supplied value quoted in a message or error, so that a huge
/// input cannot make a huge rejection.
const QUOTE_LIMIT: usize = 40;

/// Lengths for the EU (Combined Nomenclature 8, TARIC 10) and the US (tariff line 8, HTS
/// statistical suffix 10).
const EIGHT_OR_TEN: &[usize] = &[8, 10];
/// Lengths for jurisdictions whose declaration lines carry a ten-digit code only.
const TEN: &[usize] = &[10];
/// Lengths for jurisdictions whose declaration lines carry an eight-digit code only.
const EIGHT: &[usize] = &[8];
/// The international six-digit subheading, for jurisdictions without a national extension here.
const SIX: &[usize] = &[6];

/// Quotes a caller-supplied value for a message, escaped and cut to [`QUOTE_LIMIT`] characters,
/// so that control characters and very long inputs cannot garble or bloat the message.
fn quote(value: &str) -> String {
    let mut chars = value.chars();
    let head: String = chars.by_ref().take(QUOTE_LIMIT).collect();
    if chars.next().is_some() {
        format!("{head:?}…")
    } else {
        format!("{head:?}")
    }
}

/// Returns the digits of an HS code after removing dots and spaces (`"6109.10 00"` becomes
/// `"61091000"`).
///
/// Codes are printed with dots and spaces for people (`6109.10.00`, `6109 10 00 10`); the
/// ledger compares digits, so both forms must reduce to the same string. Anything else (a
/// dash, a letter O for a zero, a full-width digit) is refused rather than guessed at, with
/// [`codes::FORMAT`]. An empty result is refused too.
pub fn normalize(field: &str, raw: &str) -> Result<String, Rejection> {
    let mut digits = String::with_capacity(raw.len());
    for ch in raw.chars() {
        match ch {
            '.' | ' ' => {}
            '0'..='9' => digits.push(ch),
            other => {
                return Err(Rejection::new(
                    codes::FORMAT,
                    field,
                    format!(
                        "HS code {} contains the character {other:?}; expected digits, \
                         optionally grouped with dots or spaces.",
                        quote(raw)
                    ),
                ));
            }
        }
    }
    if digits.is_empty() {
        return Err(Rejection::new(
            codes::FORMAT,
            field,
            format!(
                "HS code {} has no digits; expected a code such as 6109.10.",
                quote(raw)
            ),
        ));
    }
    Ok(digits)
}

/// Code lengths a jurisdiction accepts on a declaration line.
///
/// A declaration is lodged under the importing country's tariff, which extends the six HS
/// digits: EU member states take 8 (Combined Nomenclature) or 10 (TARIC); the US 8 (tariff
/// line) or 10 (HTS statistical); GB 10 (UK Global Tariff commodity code); AU 8; CA 10; CN 10.
/// Any other jurisdiction gets 6, the international HS, since no national extension is known
/// here and the six digits are what every tariff shares.
pub fn declaration_lengths(jurisdiction: CountryCode) -> &'static [usize] {
    let code = jurisdiction.as_str();
    // EU member states share the Combined Nomenclature and TARIC.
    if crate::identifiers::is_eu_member(jurisdiction) {
        return EIGHT_OR_TEN;
    }
    match code {
        "US" => EIGHT_OR_TEN,
        "GB" | "CA" | "CN" => TEN,
        "AU" => EIGHT,
        _ => SIX,
    }
}

/// Whether normalized digits fall in a reserved range: chapter 77 (kept by the WCO for future
/// use) or chapter 99 (national special provisions and the 99 / 9999 / 999999 placeholders
/// people type when they do not know the code). Neither classifies goods in the HS.
fn is_reserved(digits: &str) -> bool {
    digits.starts_with("77") || digits.starts_with("99")
}

/// Formats accepted lengths as "6", "8 or 10", "6, 8 or 10" for messages.
fn describe_lengths(lengths: &[usize]) -> String {
    match lengths.split_last() {
        None => "no code at all".to_owned(),
        Some((last, [])) => format!("{last} digits"),
        Some((last, rest)) => {
            let head: Vec<String> = rest.iter().map(ToString::to_string).collect();
            format!("{} or {last} digits", head.join(", "))
        }
    }
}

/// Whether the nomenclature contains a six-digit subheading.
///
/// Uses binary search, relying on the invariant of [`HsNomenclature`] that subheadings are
/// sorted ascending without duplicates; [`nomenclature_from_csv`] guarantees it.
pub fn contains(nomenclature: &HsNomenclature, six_digits: &str) -> bool {
    nomenclature
        .subheadings
        .binary_search_by(|s| s.as_str().cmp(six_digits))
        .is_ok()
}

/// Whether some subheading starts with `prefix`, for codes shorter than six digits (a chapter
/// or heading), which exist exactly when at least one of their subheadings does.
fn has_prefix(nomenclature: &HsNomenclature, prefix: &str) -> bool {
    let subheadings = &nomenclature.subheadings;
    let at = subheadings.partition_point(|s| s.as_str() < prefix);
    subheadings.get(at).is_some_and(|s| s.starts_with(prefix))
}

/// Full check of one HS code; returns its normalized digits.
///
/// In order, so that the most basic fault is the one reported:
/// 1. [`normalize`] (else [`codes::FORMAT`]);
/// 2. the number of digits is one of `lengths` (else [`codes::LENGTH`]); callers pass
///    [`declaration_lengths`] or [`INVOICE_LENGTHS`];
/// 3. the code is not in chapter 77 or 99 (else [`codes::RESERVED`]);
/// 4. a nomenclature is in force (else [`codes::NO_NOMENCLATURE`]) and contains the first six
///    digits (else [`codes::UNKNOWN`]). National digits beyond the sixth are not checked
///    here: they belong to the national tariff, not to the HS. Should `lengths` admit a code
///    shorter than six digits, it must be the start of some subheading.
///
/// Every rejection carries `field` unchanged.
pub fn check(
    field: &str,
    raw: &str,
    lengths: &[usize],
    nomenclature: Option<&HsNomenclature>,
) -> Result<String, Rejection> {
    let digits = normalize(field, raw)?;
    if !lengths.contains(&digits.len()) {
        return Err(Rejection::new(
            codes::LENGTH,
            field,
            format!(
                "HS code {} has {} digits; expected {}.",
                quote(&digits),
                digits.len(),
                describe_lengths(lengths)
            ),
        ));
    }
    if is_reserved(&digits) {
        return Err(Rejection::new(
            codes::RESERVED,
            field,
            format!(
                "HS code {} is in chapter {}, which is reserved and classifies no goods; \
                 expected a code from chapters 01 to 97 other than 77.",
                quote(&digits),
                digits.get(..2).unwrap_or(&digits)
            ),
        ));
    }
    let Some(nomenclature) = nomenclature else {
        return Err(Rejection::new(
            codes::NO_NOMENCLATURE,
            field,
            format!(
                "HS code {} cannot be confirmed because no HS nomenclature is in force at the \
                 block time; expected one to be published first.",
                quote(&digits)
            ),
        ));
    };
    let known = match digits.get(..6) {
        Some(six) => contains(nomenclature, six),
        None => has_prefix(nomenclature, &digits),
    };
    if !known {
        let six = digits.get(..6).unwrap_or(&digits);
        return Err(Rejection::new(
            codes::UNKNOWN,
            field,
            format!(
                "HS code {} starts with {six}, which is not a subheading of the {} \
                 nomenclature; expected a code whose first six digits exist in it.",
                quote(&digits),
                quote(&nomenclature.edition)
            ),
        ));
    }
    Ok(digits)
}

/// Why a nomenclature CSV was refused. Line numbers count from 1, the header being line 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsvError {
    /// The input is over [`MAX_CSV_BYTES`]; `line` is the line in which the limit is crossed.
    #[error("line {line}: the file is over the limit of {limit} bytes")]
    TooLarge {
        /// Line where the byte limit is crossed.
        line: usize,
        /// The limit, [`MAX_CSV_BYTES`].
        limit: usize,
    },
    /// The input has more than [`MAX_CSV_ROWS`] data rows; `line` is the first one too many.
    #[error("line {line}: more than {limit} data rows")]
    TooManyRows {
        /// First row beyond the limit.
        line: usize,
        /// The limit, [`MAX_CSV_ROWS`].
        limit: usize,
    },
    /// The first line is not `hscode,level,parent,section`.
    #[error("line {line}: expected the header hscode,level,parent,section, found {found}")]
    MissingHeader {
        /// Always 1.
        line: usize,
        /// What the line holds, quoted and shortened.
        found: String,
    },
    /// A double-quoted field is not closed, or a closing quote is followed by other text.
    #[error("line {line}: badly quoted field")]
    BadQuoting {
        /// The line.
        line: usize,
    },
    /// A row does not have exactly four columns.
    #[error("line {line}: expected 4 columns, found {found}")]
    ColumnCount {
        /// The line.
        line: usize,
        /// Columns found.
        found: usize,
    },
    /// The level is not 2, 4 or 6.
    #[error("line {line}: level {level} is not 2 (chapter), 4 (heading) or 6 (subheading)")]
    BadLevel {
        /// The line.
        line: usize,
        /// The level as written, quoted and shortened.
        level: String,
    },
    /// The code is not made of exactly `level` digits.
    #[error("line {line}: code {code} is not {level} digits")]
    BadCode {
        /// The line.
        line: usize,
        /// The code as written, quoted and shortened.
        code: String,
        /// The row's level.
        level: usize,
    },
    /// The code is in chapter 77 or 99, which classify no goods.
    #[error("line {line}: code {code} is in a reserved chapter (77 or 99)")]
    Reserved {
        /// The line.
        line: usize,
        /// The code.
        code: String,
    },
    /// The parent column does not match the code: `TOTAL` for a chapter, otherwise the code
    /// without its last two digits.
    #[error("line {line}: code {code} has parent {parent}, expected {expected}")]
    BadParent {
        /// The line.
        line: usize,
        /// The code.
        code: String,
        /// The parent as written, quoted and shortened.
        parent: String,
        /// The parent the code implies.
        expected: String,
    },
    /// The parent of a heading or subheading is not itself a row of the file.
    #[error("line {line}: code {code} has parent {parent}, which is not in the file")]
    MissingParent {
        /// The line.
        line: usize,
        /// The code.
        code: String,
        /// The missing parent.
        parent: String,
    },
    /// The file has no subheading rows, so the nomenclature would reject every code.
    #[error("line {line}: the file ends without any level-6 row")]
    NoSubheadings {
        /// The last line of the file.
        line: usize,
    },
}

/// How many distinct codes of each level a nomenclature CSV holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvCounts {
    /// Level-2 rows (chapters).
    pub chapters: usize,
    /// Level-4 rows (headings).
    pub headings: usize,
    /// Level-6 rows (subheadings).
    pub subheadings: usize,
}

/// Splits one CSV line into fields, allowing simple double-quoted fields (with `""` for a
/// quote inside). Fields cannot span lines. Stops collecting after five fields, since more
/// than four is an error anyway, but keeps counting them for the message.
fn split_fields(line_no: usize, line: &str) -> Result<(Vec<String>, usize), CsvError> {
    let mut fields = Vec::with_capacity(4);
    let mut count = 0usize;
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(CsvError::BadQuoting { line: line_no }),
                    Some('"') => {
                        if chars.peek() == Some(&'"') {
                            chars.next();
                            field.push('"');
                        } else {
                            break;
                        }
                    }
                    Some(c) => field.push(c),
                }
            }
            match chars.peek() {
                None | Some(',') => {}
                Some(_) => return Err(CsvError::BadQuoting { line: line_no }),
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                field.push(c);
                chars.next();
            }
        }
        count = count.saturating_add(1);
        if fields.len() < 5 {
            fields.push(field);
        }
        match chars.next() {
            Some(',') => {}
            _ => return Ok((fields, count)),
        }
    }
}

/// One validated row, kept for the hierarchy pass.
struct Row {
    line: usize,
    code: String,
    parent: Option<String>,
}

/// What a parse yields: the distinct codes of each level, sorted.
struct Parsed {
    chapters: BTreeSet<String>,
    headings: BTreeSet<String>,
    subheadings: BTreeSet<String>,
}

/// Parses and validates the CSV. Shape errors (size, header, columns, level, code, reserved,
/// parent column) are reported at the first line at fault while reading; hierarchy errors
/// (a parent absent from the file) after the whole file is read, since a parent may follow
/// its children, again at the first line at fault.
fn parse(csv: &str) -> Result<Parsed, CsvError> {
    if csv.len() > MAX_CSV_BYTES {
        let before = csv.as_bytes().get(..MAX_CSV_BYTES).unwrap_or_default();
        let newlines = before.iter().filter(|&&b| b == b'\n').count();
        return Err(CsvError::TooLarge {
            line: newlines.saturating_add(1),
            limit: MAX_CSV_BYTES,
        });
    }
    let text = csv.strip_prefix('\u{feff}').unwrap_or(csv);
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));

    let header = lines.next().unwrap_or_default();
    let (header_fields, header_count) = split_fields(1, header).map_err(|_| missing(header))?;
    if header_count != 4 || header_fields != ["hscode", "level", "parent", "section"] {
        return Err(missing(header));
    }

    let mut parsed = Parsed {
        chapters: BTreeSet::new(),
        headings: BTreeSet::new(),
        subheadings: BTreeSet::new(),
    };
    let mut rows: Vec<Row> = Vec::new();
    let mut last_line = 1usize;
    for (index, line) in lines.enumerate() {
        let line_no = index.saturating_add(2);
        if line.trim().is_empty() {
            continue;
        }
        last_line = line_no;
        if rows.len() >= MAX_CSV_ROWS {
            return Err(CsvError::TooManyRows {
                line: line_no,
                limit: MAX_CSV_ROWS,
            });
        }
        let (fields, count) = split_fields(line_no, line)?;
        let [code, level, parent, _section] = fields.as_slice() else {
            return Err(CsvError::ColumnCount {
                line: line_no,
                found: count,
            });
        };
        let level = match level.as_str() {
            "2" => 2usize,
            "4" => 4,
            "6" => 6,
            _ => {
                return Err(CsvError::BadLevel {
                    line: line_no,
                    level: quote(level),
                })
            }
        };
        if code.len() != level || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CsvError::BadCode {
                line: line_no,
                code: quote(code),
                level,
            });
        }
        if is_reserved(code) {
            return Err(CsvError::Reserved {
                line: line_no,
                code: code.clone(),
            });
        }
        // The code is ASCII digits of length `level` >= 2, so this slice is in bounds.
        let expected = if level == 2 {
            "TOTAL"
        } else {
            code.get(..level.saturating_sub(2)).unwrap_or_default()
        };
        if parent != expected {
            return Err(CsvError::BadParent {
                line: line_no,
                code: code.clone(),
                parent: quote(parent),
                expected: expected.to_owned(),
            });
        }
        let set = match level {
            2 => &mut parsed.chapters,
            4 => &mut parsed.headings,
            _ => &mut parsed.subheadings,
        };
        set.insert(code.clone());
        rows.push(Row {
            line: line_no,
            code: code.clone(),
            parent: (level > 2).then(|| parent.clone()),
        });
    }

    for row in &rows {
        let Some(parent) = &row.parent else { continue };
        let present = if parent.len() == 2 {
            parsed.chapters.contains(parent)
        } else {
            parsed.headings.contains(parent)
        };
        if !present {
            return Err(CsvError::MissingParent {
                line: row.line,
                code: row.code.clone(),
                parent: parent.clone(),
            });
        }
    }
    if parsed.subheadings.is_empty() {
        return Err(CsvError::NoSubheadings { line: last_line });
    }
    Ok(parsed)
}

/// The error for a first line that is not the expected header.
fn missing(found: &str) -> CsvError {
    CsvError::MissingHeader {
        line: 1,
        found: quote(found),
    }
}

/// Parses the HS nomenclature CSV into an [`HsNomenclature`] of its level-6 codes, sorted
/// ascending and deduplicated, under the given edition name.
///
/// The CSV has the header `hscode,level,parent,section`; level 2 is a chapter (parent
/// `TOTAL`), 4 a heading (parent its chapter), 6 a subheading (parent its heading). Fields
/// may be double-quoted; lines may end in CRLF; a UTF-8 byte-order mark and blank lines are
/// ignored. Every row must have four columns, a level in {2, 4, 6}, a code of exactly that
/// many digits outside chapters 77 and 99, and the parent its code implies, which must itself
/// be a row of the file. The `section` column is not used. Input over [`MAX_CSV_BYTES`] or
/// with more than [`MAX_CSV_ROWS`] data rows is refused, so that loading is bounded. Errors
/// name the line at fault.
pub fn nomenclature_from_csv(edition: &str, csv: &str) -> Result<HsNomenclature, CsvError> {
    let parsed = parse(csv)?;
    Ok(HsNomenclature {
        edition: edition.to_owned(),
        // A BTreeSet iterates in ascending order without duplicates: the struct's invariant.
        subheadings: parsed.subheadings.into_iter().collect(),
    })
}

/// Counts the distinct chapters, headings and subheadings of a nomenclature CSV, validating it
/// exactly as [`nomenclature_from_csv`] does; lets a publisher confirm a file is complete.
pub fn csv_counts(csv: &str) -> Result<CsvCounts, CsvError> {
    let parsed = parse(csv)?;
    Ok(CsvCounts {
        chapters: parsed.chapters.len(),
        headings: parsed.headings.len(),
        subheadings: parsed.subheadings.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The HS 2022 listing, kept outside the project in `shared/` beside the checkout.
    const HS2022_CSV: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/hs2022/hs2022-codes.csv"
    );

    const FIELD: &str = "event.kind.CustomsDeclared.lines.0.hs_code";

    fn hs2022_text() -> String {
        std::fs::read_to_string(HS2022_CSV).expect("HS 2022 CSV is readable")
    }

    fn hs2022() -> HsNomenclature {
        nomenclature_from_csv("HS2022", &hs2022_text()).expect("HS 2022 CSV parses")
    }

    fn country(code: &str) -> CountryCode {
        CountryCode::parse(code).expect("well-formed country code")
    }

    /// A small nomenclature for length and reserved tests.
    fn small() -> HsNomenclature {
        nomenclature_from_csv(
            "TEST",
            "hscode,level,parent,section\n61,2,TOTAL,XI\n6109,4,61,XI\n610910,6,6109,XI\n\
             610990,6,6109,XI\n",
        )
        .expect("small CSV parses")
    }

    fn reject_code(result: Result<String, Rejection>) -> &'static str {
        let rejection = result.expect_err("expected a rejection");
        assert_eq!(rejection.field, FIELD, "field is passed through");
        assert!(rejection.message.ends_with('.'), "{}", rejection.message);
        rejection.code.as_str()
    }

    // ---- The real HS 2022 file ----

    #[test]
    fn hs2022_counts() {
        let counts = csv_counts(&hs2022_text()).expect("parses");
        assert_eq!(
            counts,
            CsvCounts {
                chapters: 96,
                headings: 1228,
                subheadings: 5612
            }
        );
        let nomenclature = hs2022();
        assert_eq!(nomenclature.edition, "HS2022");
        assert_eq!(nomenclature.subheadings.len(), 5612);
        assert!(nomenclature.subheadings.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn hs2022_every_subheading_is_accepted() {
        let nomenclature = hs2022();
        for six in &nomenclature.subheadings {
            assert_eq!(
                check(FIELD, six, &[6], Some(&nomenclature)).as_deref(),
                Ok(six.as_str())
            );
        }
    }

    #[test]
    fn hs2022_known_and_unknown_subheadings() {
        let nomenclature = hs2022();
        for known in ["610910", "847130", "691200"] {
            assert!(contains(&nomenclature, known), "{known}");
        }
        for unknown in ["610999", "000000", "61091", "6109100"] {
            assert!(!contains(&nomenclature, unknown), "{unknown}");
        }
        let text = hs2022_text();
        assert!(text.lines().any(|l| l.starts_with("610910,6,")));
        assert!(!text.lines().any(|l| l.starts_with("610999,")));
        assert!(!text.lines().any(|l| l.starts_with("000000,")));

        assert_eq!(
            check(FIELD, "6109.10.00", &[8], Some(&nomenclature)).as_deref(),
            Ok("61091000")
        );
        assert_eq!(
            reject_code(check(FIELD, "6109.99.00", &[8], Some(&nomenclature))),
            codes::UNKNOWN
        );
        assert_eq!(
            reject_code(check(FIELD, "000000", &[6], Some(&nomenclature))),
            codes::UNKNOWN
        );
    }

    #[test]
    fn unknown_message_names_value_and_edition() {
        let rejection = check(FIELD, "610999", &[6], Some(&small())).expect_err("unknown");
        assert_eq!(rejection.code, codes::UNKNOWN);
        assert!(rejection.message.contains("610999"));
        assert!(rejection.message.contains("TEST"));
    }

    #[test]
    fn short_codes_match_by_prefix_when_allowed() {
        let nomenclature = small();
        assert_eq!(
            check(FIELD, "6109", &[4], Some(&nomenclature)).as_deref(),
            Ok("6109")
        );
        assert_eq!(
            reject_code(check(FIELD, "6110", &[4], Some(&nomenclature))),
            codes::UNKNOWN
        );
    }

    // ---- normalize ----

    #[test]
    fn normalize_accepts_dots_and_spaces() {
        assert_eq!(normalize(FIELD, "6109.10").as_deref(), Ok("610910"));
        assert_eq!(
            normalize(FIELD, "6109 10 00 10").as_deref(),
            Ok("6109100010")
        );
        assert_eq!(normalize(FIELD, "6109.10 00").as_deref(), Ok("61091000"));
        assert_eq!(normalize(FIELD, "610910").as_deref(), Ok("610910"));
    }

    #[test]
    fn normalize_refuses_other_characters_and_empty() {
        for bad in [
            "6109-10",
            "61O9",
            "",
            " . ",
            "６１０９",
            "6109\t10",
            "6109,10",
        ] {
            assert_eq!(reject_code(normalize(FIELD, bad)), codes::FORMAT, "{bad:?}");
        }
        let rejection = normalize(FIELD, "6109-10").expect_err("dash");
        assert!(rejection.message.contains("6109-10"));
    }

    #[test]
    fn long_values_are_shortened_in_messages() {
        let long = "x".repeat(10_000);
        let rejection = normalize(FIELD, &long).expect_err("letters");
        assert!(rejection.message.len() < 200, "{}", rejection.message);
    }

    // ---- lengths ----

    #[test]
    fn every_eu_member_takes_eight_or_ten_digits() {
        for member in crate::identifiers::EU_MEMBERS {
            assert_eq!(declaration_lengths(country(member)), &[8, 10]);
        }
    }

    #[test]
    fn declaration_lengths_per_jurisdiction() {
        assert_eq!(declaration_lengths(country("US")), &[8, 10]);
        assert_eq!(declaration_lengths(country("GB")), &[10]);
        assert_eq!(declaration_lengths(country("AU")), &[8]);
        assert_eq!(declaration_lengths(country("CA")), &[10]);
        assert_eq!(declaration_lengths(country("CN")), &[10]);
        assert_eq!(declaration_lengths(country("QX")), &[6]);
        assert_eq!(declaration_lengths(country("CH")), &[6]);
    }

    #[test]
    fn length_checks_by_jurisdiction() {
        let n = small();
        let fr = declaration_lengths(country("FR"));
        let gb = declaration_lengths(country("GB"));
        let us = declaration_lengths(country("US"));
        let qx = declaration_lengths(country("QX"));
        let au = declaration_lengths(country("AU"));

        assert_eq!(
            check(FIELD, "6109.10.00", fr, Some(&n)).as_deref(),
            Ok("61091000")
        );
        assert_eq!(
            reject_code(check(FIELD, "6109.10", fr, Some(&n))),
            codes::LENGTH
        );
        assert_eq!(
            check(FIELD, "6109 10 00 10", gb, Some(&n)).as_deref(),
            Ok("6109100010")
        );
        assert_eq!(
            reject_code(check(FIELD, "6109.10.00", gb, Some(&n))),
            codes::LENGTH
        );
        assert_eq!(
            check(FIELD, "6109.10", qx, Some(&n)).as_deref(),
            Ok("610910")
        );
        assert_eq!(
            reject_code(check(FIELD, "6109.10.00", qx, Some(&n))),
            codes::LENGTH
        );
        assert_eq!(
            check(FIELD, "6109.10.0010", us, Some(&n)).as_deref(),
            Ok("6109100010")
        );
        assert_eq!(
            reject_code(check(FIELD, "6109.10", us, Some(&n))),
            codes::LENGTH
        );
        assert_eq!(
            reject_code(check(FIELD, "6109.10.00.10", au, Some(&n))),
            codes::LENGTH
        );
    }

    #[test]
    fn invoice_lengths() {
        let n = small();
        for ok in ["610910", "61091000", "6109100010"] {
            assert_eq!(
                check(FIELD, ok, &INVOICE_LENGTHS, Some(&n)).as_deref(),
                Ok(ok)
            );
        }
        for bad in ["6109", "6109100", "610910001", "61091000100"] {
            assert_eq!(
                reject_code(check(FIELD, bad, &INVOICE_LENGTHS, Some(&n))),
                codes::LENGTH
            );
        }
        let rejection = check(FIELD, "6109", &INVOICE_LENGTHS, Some(&n)).expect_err("short");
        assert!(
            rejection.message.contains("expected 6, 8 or 10 digits"),
            "{}",
            rejection.message
        );
        let rejection = check(FIELD, "6109", &[], Some(&n)).expect_err("nothing allowed");
        assert_eq!(rejection.code, codes::LENGTH);
    }

    // ---- reserved ----

    #[test]
    fn reserved_chapters_are_refused() {
        let n = hs2022();
        for (code, lengths) in [
            ("770000", &[6usize][..]),
            ("7701.10", &[6][..]),
            ("999999", &[6][..]),
            ("9999.00", &[6][..]),
            ("990000", &[6][..]),
            ("9903.88.03", &[8][..]),
            ("9999999999", &[10][..]),
            ("99", &[2][..]),
            ("9999", &[4][..]),
            ("77", &[2][..]),
        ] {
            assert_eq!(
                reject_code(check(FIELD, code, lengths, Some(&n))),
                codes::RESERVED,
                "{code}"
            );
        }
        // Reserved is judged without a nomenclature.
        assert_eq!(
            reject_code(check(FIELD, "999999", &[6], None)),
            codes::RESERVED
        );
        // Neighbours of the reserved chapters are fine.
        for ok in ["760110", "761699", "970610", "970690"] {
            assert!(check(FIELD, ok, &[6], Some(&n)).is_ok(), "{ok}");
        }
    }

    // ---- no nomenclature ----

    #[test]
    fn no_nomenclature() {
        assert_eq!(
            reject_code(check(FIELD, "6109.10", &[6], None)),
            codes::NO_NOMENCLATURE
        );
        // Format and length faults are still reported first.
        assert_eq!(reject_code(check(FIELD, "61O9", &[6], None)), codes::FORMAT);
        assert_eq!(
            reject_code(check(FIELD, "6109.10", &[8], None)),
            codes::LENGTH
        );
        assert!(check(FIELD, "6109.10", &[6], Some(&small())).is_ok());
    }

    // ---- CSV loader ----

    const HEADER: &str = "hscode,level,parent,section\n";

    fn csv_err(body: &str) -> CsvError {
        nomenclature_from_csv("T", body).expect_err("expected a CSV error")
    }

    #[test]
    fn csv_accepts_quotes_crlf_bom_and_duplicates() {
        let text = "\u{feff}\"hscode\",\"level\",parent,section\r\n\"61\",2,\"TOTAL\",XI\r\n\
                    6109,4,61,\"X\"\"I\"\r\n610990,6,6109,XI\r\n610910,6,6109,XI\r\n\
                    610910,6,6109,XI\r\n\r\n";
        let n = nomenclature_from_csv("Q", text).expect("parses");
        assert_eq!(n.edition, "Q");
        assert_eq!(n.subheadings, ["610910", "610990"]);
        assert_eq!(
            csv_counts(text),
            Ok(CsvCounts {
                chapters: 1,
                headings: 1,
                subheadings: 2
            })
        );
        // A parent may follow its children.
        let reordered = format!("{HEADER}610910,6,6109,XI\n6109,4,61,XI\n61,2,TOTAL,XI\n");
        assert!(nomenclature_from_csv("Q", &reordered).is_ok());
    }

    #[test]
    fn csv_missing_header() {
        assert_eq!(
            csv_err("61,2,TOTAL,XI\n6109,4,61,XI\n610910,6,6109,XI\n"),
            CsvError::MissingHeader {
                line: 1,
                found: "\"61,2,TOTAL,XI\"".to_owned()
            }
        );
        assert!(matches!(
            csv_err(""),
            CsvError::MissingHeader { line: 1, .. }
        ));
        assert!(matches!(
            csv_err("hscode,level,parent\n"),
            CsvError::MissingHeader { line: 1, .. }
        ));
        assert!(matches!(
            csv_err("hscode,level,parent,section,extra\n"),
            CsvError::MissingHeader { line: 1, .. }
        ));
    }

    #[test]
    fn csv_bad_level() {
        let text = format!("{HEADER}61,2,TOTAL,XI\n6109,4,61,XI\n610910,8,6109,XI\n");
        assert_eq!(
            csv_err(&text),
            CsvError::BadLevel {
                line: 4,
                level: "\"8\"".to_owned()
            }
        );
        let text = format!("{HEADER}61,two,TOTAL,XI\n");
        assert!(matches!(csv_err(&text), CsvError::BadLevel { line: 2, .. }));
    }

    #[test]
    fn csv_missing_heading() {
        let text =
            format!("{HEADER}61,2,TOTAL,XI\n6109,4,61,XI\n610910,6,6109,XI\n611010,6,6110,XI\n");
        assert_eq!(
            csv_err(&text),
            CsvError::MissingParent {
                line: 5,
                code: "611010".to_owned(),
                parent: "6110".to_owned()
            }
        );
        let text = format!("{HEADER}6109,4,61,XI\n610910,6,6109,XI\n");
        assert!(matches!(
            csv_err(&text),
            CsvError::MissingParent { line: 2, .. }
        ));
    }

    #[test]
    fn csv_wrong_parent_column() {
        let text = format!("{HEADER}61,2,TOTAL,XI\n6109,4,61,XI\n610910,6,6110,XI\n");
        assert_eq!(
            csv_err(&text),
            CsvError::BadParent {
                line: 4,
                code: "610910".to_owned(),
                parent: "\"6110\"".to_owned(),
                expected: "6109".to_owned()
            }
        );
        let text = format!("{HEADER}61,2,60,XI\n");
        assert!(matches!(
            csv_err(&text),
            CsvError::BadParent { line: 2, .. }
        ));
    }

    #[test]
    fn csv_seven_digit_code() {
        let text = format!("{HEADER}61,2,TOTAL,XI\n6109,4,61,XI\n6109100,6,6109,XI\n");
        assert_eq!(
            csv_err(&text),
            CsvError::BadCode {
                line: 4,
                code: "\"6109100\"".to_owned(),
                level: 6
            }
        );
        let text = format!("{HEADER}61,2,TOTAL,XI\n61A9,4,61,XI\n");
        assert!(matches!(csv_err(&text), CsvError::BadCode { line: 3, .. }));
    }

    #[test]
    fn csv_column_count_and_quoting() {
        let text = format!("{HEADER}61,2,TOTAL\n");
        assert_eq!(csv_err(&text), CsvError::ColumnCount { line: 2, found: 3 });
        let text = format!("{HEADER}61,2,TOTAL,XI\n6109,4,61,XI,extra,more\n");
        assert_eq!(csv_err(&text), CsvError::ColumnCount { line: 3, found: 6 });
        let text = format!("{HEADER}61,2,TOTAL,\"XI\n");
        assert_eq!(csv_err(&text), CsvError::BadQuoting { line: 2 });
        let text = format!("{HEADER}61,2,\"TOTAL\"x,XI\n");
        assert_eq!(csv_err(&text), CsvError::BadQuoting { line: 2 });
    }

    #[test]
    fn csv_reserved_codes() {
        for (row, line) in [
            ("77,2,TOTAL,XV", 2),
            ("99,2,TOTAL,XXI", 2),
            ("9999,4,99,XXI", 2),
            ("999999,6,9999,XXI", 2),
        ] {
            let text = format!("{HEADER}{row}\n");
            assert_eq!(
                csv_err(&text),
                CsvError::Reserved {
                    line,
                    code: row.split(',').next().unwrap_or_default().to_owned()
                }
            );
        }
    }

    #[test]
    fn csv_without_subheadings() {
        let text = format!("{HEADER}61,2,TOTAL,XI\n6109,4,61,XI\n\n");
        assert_eq!(csv_err(&text), CsvError::NoSubheadings { line: 3 });
        assert_eq!(csv_err(HEADER), CsvError::NoSubheadings { line: 1 });
    }

    #[test]
    fn csv_over_long_input() {
        // Valid rows until the byte limit is crossed; the error names the line crossing it.
        let row = "610910,6,6109,XI\n";
        let mut text = String::from(HEADER);
        text.push_str("61,2,TOTAL,XI\n6109,4,61,XI\n");
        let mut line = 3usize;
        while text.len() <= MAX_CSV_BYTES {
            text.push_str(row);
            line += 1;
        }
        // `line` is now the last line, the one whose bytes cross the limit.
        assert_eq!(
            csv_err(&text),
            CsvError::TooLarge {
                line,
                limit: MAX_CSV_BYTES
            }
        );
        // Exactly at the limit is fine size-wise (it then fails the row limit instead).
        text.truncate(MAX_CSV_BYTES);
        assert!(!matches!(csv_err(&text), CsvError::TooLarge { .. }));
    }

    #[test]
    fn csv_too_many_rows() {
        let mut text = String::from(HEADER);
        text.push_str("61,2,TOTAL,XI\n6109,4,61,XI\n");
        for _ in 2..MAX_CSV_ROWS {
            text.push_str("610910,6,6109,XI\n");
        }
        assert!(
            nomenclature_from_csv("T", &text).is_ok(),
            "exactly at the limit"
        );
        text.push_str("610990,6,6109,XI\n");
        assert_eq!(
            csv_err(&text),
            CsvError::TooManyRows {
                line: MAX_CSV_ROWS + 2,
                limit: MAX_CSV_ROWS
            }
        );
    }

    #[test]
    fn csv_errors_display_line_numbers() {
        let text = format!("{HEADER}61,2,TOTAL,XI\n6109,4,61,XI\n6109100,6,6109,XI\n");
        assert!(csv_err(&text).to_string().starts_with("line 4:"));
    }

    // ---- properties ----

    proptest! {
        #[test]
        fn never_panics_on_random_strings(raw in any::<String>(), len in 0usize..12) {
            let n = small();
            let _ = normalize(FIELD, &raw);
            let _ = check(FIELD, &raw, &[len], Some(&n));
            let _ = check(FIELD, &raw, &INVOICE_LENGTHS, None);
            let _ = nomenclature_from_csv("P", &raw);
            let _ = csv_counts(&raw);
        }

        #[test]
        fn never_panics_on_csv_like_input(
            rows in proptest::collection::vec("[0-9\"A-Z,\r]{0,20}", 0..20)
        ) {
            let text = format!("{HEADER}{}", rows.join("\n"));
            let _ = nomenclature_from_csv("P", &text);
        }

        #[test]
        fn normalize_keeps_digits_in_order(raw in "[0-9. ]{0,30}") {
            let expected: String = raw.chars().filter(char::is_ascii_digit).collect();
            match normalize(FIELD, &raw) {
                Ok(digits) => prop_assert_eq!(digits, expected),
                Err(rejection) => {
                    prop_assert!(expected.is_empty());
                    prop_assert_eq!(rejection.code, codes::FORMAT);
                    prop_assert_eq!(rejection.field, FIELD);
                }
            }
        }

        #[test]
        fn accepted_codes_have_known_subheadings(raw in "[0-9]{6,10}") {
            let n = small();
            if let Ok(digits) = check(FIELD, &raw, &INVOICE_LENGTHS, Some(&n)) {
                prop_assert!(contains(&n, &digits[..6]));
            }
        }
    }
}
