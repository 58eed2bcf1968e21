//! Trade documents: the registration's parcels, invoice and packing list; places and
//! transport documents on handoffs and deliveries.

use std::collections::{BTreeMap, BTreeSet};

use custody_ledger::model::*;
use custody_ledger::reject::{Code, Rejection};

use crate::{hs, identifiers, Ctx};

/// Stable codes of this module.
pub mod codes {
    use crate::ContractCode;
    use custody_ledger::reject::Code;

    /// Two invoice lines share a line number, or a line number is zero.
    pub const INVOICE_DUPLICATE_LINE: Code = ContractCode::InvoiceDuplicateLine.code();
    /// An invoice line has a quantity of zero.
    pub const INVOICE_QUANTITY_ZERO: Code = ContractCode::InvoiceQuantityZero.code();
    /// Σ quantity × unit value differs from the invoice total.
    pub const INVOICE_TOTAL_MISMATCH: Code = ContractCode::InvoiceTotalMismatch.code();
    /// Two parcels share an SSCC.
    pub const PARCEL_DUPLICATE: Code = ContractCode::ParcelDuplicateSscc.code();
    /// A packing line names a parcel that is not in the shipment.
    pub const PACKING_UNKNOWN_PARCEL: Code = ContractCode::PackingUnknownParcel.code();
    /// A packing line names an invoice line that does not exist.
    pub const PACKING_UNKNOWN_LINE: Code = ContractCode::PackingUnknownLine.code();
    /// The packed quantity of an invoice line differs from the invoiced quantity.
    pub const PACKING_QUANTITY_MISMATCH: Code = ContractCode::PackingQuantityMismatch.code();
    /// A parcel has nothing packed in it.
    pub const PACKING_EMPTY_PARCEL: Code = ContractCode::PackingEmptyParcel.code();
    /// A text is not one of the eleven Incoterms 2020 rules.
    pub const INCOTERM_UNKNOWN: Code = ContractCode::IncotermUnknown.code();
    /// An invoice line of goods bound for the EU is described only by generic words that the
    /// EU's entry summary (ICS2) refuses, or by no words at all (rules version 2 on).
    pub const INVOICE_GENERIC_DESCRIPTION: Code = ContractCode::InvoiceGenericDescription.code();
}

/// Goods descriptions the EU's Import Control System 2 refuses on an entry summary
/// declaration when they stand alone: the general terms of Commission Delegated Regulation
/// (EU) 2015/2446, Annex B, data element 18 05 000 000 ("consolidated", "general cargo",
/// "parts", "freight of all kinds"), and terms from the European Commission's ICS2 list of
/// unacceptable goods descriptions ("stop words"). The Commission's list is longer and
/// changes; these are the terms this rules version refuses, in lower case and singular
/// (a plural in `s`, or `ies` for `y`, is refused too). Sorted, for binary search.
pub const GENERIC_DESCRIPTIONS: &[&str] = &[
    "accessory",
    "adapter",
    "agricultural product",
    "aid consignment",
    "all kind of cargo",
    "all kind of good",
    "apparel",
    "appliance",
    "article",
    "as ordered",
    "as per attached invoice",
    "attached manifest",
    "auto part",
    "bazaar good",
    "birthday gift",
    "cargo",
    "clothes",
    "clothing",
    "collected item",
    "commodity",
    "component",
    "consol",
    "consolidated",
    "consolidated cargo",
    "consolidated good",
    "consolidation",
    "courier good",
    "courier material",
    "decoration",
    "decorative item",
    "document",
    "electronic",
    "electronic equipment",
    "electronic good",
    "electronic item",
    "equipment",
    "exhibition good",
    "footwear",
    "freight all kind",
    "freight of all kind",
    "garment",
    "general cargo",
    "gift",
    "good",
    "item",
    "machinery",
    "merchandise",
    "part",
    "sample",
    "see invoice",
    "shoe",
    "spare part",
    "stuff",
    "textile",
    "tool",
    "various good",
    "vegetable",
];

/// The generic term a goods description consists of, if it is nothing more: its words, in
/// lower case with punctuation dropped, split at "and", "&", commas, slashes, pluses and
/// semicolons, are each one of [`GENERIC_DESCRIPTIONS`] (or its plural). A description
/// with no letters at all is generic too (the Commission's guidance refuses descriptions of
/// only numbers or symbols); `Some("")` stands for it.
pub fn generic_description(description: &str) -> Option<String> {
    if !description.chars().any(char::is_alphabetic) {
        return Some(String::new());
    }
    let lowered: String = description
        .chars()
        .map(|c| match c {
            '&' | ',' | '/' | '+' | ';' => '|',
            c if c.is_alphanumeric() => c.to_ascii_lowercase(),
            _ => ' ',
        })
        .collect();
    let mut segments: Vec<String> = Vec::new();
    for part in lowered.split('|') {
        let words: Vec<&str> = part.split_whitespace().collect();
        for chunk in words.split(|w| *w == "and") {
            if !chunk.is_empty() {
                segments.push(chunk.join(" "));
            }
        }
    }
    let known = |term: &str| GENERIC_DESCRIPTIONS.binary_search(&term).is_ok();
    let listed = |term: &str| {
        known(term)
            || term.strip_suffix('s').is_some_and(known)
            || term
                .strip_suffix("ies")
                .is_some_and(|stem| known(&format!("{stem}y")))
    };
    (!segments.is_empty() && segments.iter().all(|s| listed(s))).then(|| segments.join(", "))
}

/// Parses an Incoterm as typed by a person, pointing withdrawn rules to their replacement
/// (DDU → DAP, DAT → DPU).
pub fn parse_incoterm(field: &str, text: &str) -> Result<Incoterm, Rejection> {
    Incoterm::parse(text.trim())
        .map_err(|message| Rejection::new(codes::INCOTERM_UNKNOWN, field, message))
}

fn reject(code: Code, field: String, message: String) -> Rejection {
    Rejection::new(code, field, message)
}

/// A registration's documents: identifiers, the invoice arithmetic, the packing list.
pub fn check_registration(
    ctx: &Ctx<'_>,
    e: &ShipmentRegistered,
    path: &str,
) -> Result<(), Rejection> {
    identifiers::check_country(&format!("{path}.origin"), e.origin)?;
    identifiers::check_country(&format!("{path}.destination"), e.destination)?;
    let mut ssccs = BTreeSet::new();
    for (i, parcel) in e.parcels.iter().enumerate() {
        let field = format!("{path}.parcels[{i}].sscc");
        identifiers::check_sscc(&field, &parcel.sscc)?;
        if !ssccs.insert(parcel.sscc.as_str()) {
            return Err(reject(
                codes::PARCEL_DUPLICATE,
                field,
                format!("SSCC {} appears twice", parcel.sscc),
            ));
        }
    }
    check_invoice(ctx, &e.invoice, e.destination, &format!("{path}.invoice"))?;
    check_packing(e, &ssccs, path)
}

fn check_invoice(
    ctx: &Ctx<'_>,
    inv: &CommercialInvoice,
    destination: CountryCode,
    path: &str,
) -> Result<(), Rejection> {
    let v2 = ctx.rules_version >= 2;
    identifiers::check_currency(&format!("{path}.currency"), inv.currency)?;
    // The buyer's name, address and personal id are commitments (nothing to check); its
    // plain tax ids are business registrations, checked like the seller's.
    for (name, country, tax_ids) in [
        ("seller", inv.seller.country, &inv.seller.tax_ids),
        ("buyer", inv.buyer.country, &inv.buyer.tax_ids),
    ] {
        identifiers::check_country(&format!("{path}.{name}.country"), country)?;
        for (i, id) in tax_ids.iter().enumerate() {
            let field = format!("{path}.{name}.tax_ids[{i}].value");
            if v2 {
                // Version 2 also checks UK VAT numbers, ABNs and ARNs.
                identifiers::check_registration(&field, &id.scheme, &id.value)?;
            } else {
                match id.scheme.as_str() {
                    "EORI" => identifiers::check_eori(&field, &id.value)?,
                    "IOSS" => identifiers::check_ioss(&field, &id.value)?,
                    _ => {}
                }
            }
        }
    }
    // Version 2: goods bound for the EU need descriptions an entry summary (ICS2) accepts.
    if v2 && identifiers::is_eu_member(destination) {
        for (i, line) in inv.lines.iter().enumerate() {
            if let Some(term) = generic_description(&line.description) {
                let why = if term.is_empty() {
                    "has no words, only numbers or symbols".to_owned()
                } else {
                    format!("is only the generic term(s) {term:?}")
                };
                return Err(reject(
                    codes::INVOICE_GENERIC_DESCRIPTION,
                    format!("{path}.lines[{i}].description"),
                    format!(
                        "the description {:?} {why}, which the EU's entry summary declaration (ICS2) refuses for goods bound for {destination}; say what the goods are (\"cotton T-shirts\", not \"clothing\"; \"brake discs for cars\", not \"parts\")",
                        line.description
                    ),
                ));
            }
        }
    }
    let nomenclature = ctx.book.nomenclature(ctx.block.time);
    let mut numbers = BTreeSet::new();
    let mut total: u128 = 0;
    for (i, line) in inv.lines.iter().enumerate() {
        let field = |name: &str| format!("{path}.lines[{i}].{name}");
        if line.line_no == 0 || !numbers.insert(line.line_no) {
            return Err(reject(
                codes::INVOICE_DUPLICATE_LINE,
                field("line_no"),
                format!("line number {} is zero or used twice", line.line_no),
            ));
        }
        if line.quantity == 0 {
            return Err(reject(
                codes::INVOICE_QUANTITY_ZERO,
                field("quantity"),
                "quantity must be at least 1".into(),
            ));
        }
        hs::check(
            &field("hs_code"),
            &line.hs_code,
            &hs::INVOICE_LENGTHS,
            nomenclature,
        )?;
        if let Some(gtin) = &line.gtin {
            identifiers::check_gtin(&field("gtin"), gtin)?;
        }
        identifiers::check_country(&field("origin_country"), line.origin_country)?;
        total += u128::from(line.quantity) * u128::from(line.unit_value_minor);
    }
    if total != u128::from(inv.total_minor) {
        return Err(reject(
            codes::INVOICE_TOTAL_MISMATCH,
            format!("{path}.total_minor"),
            format!(
                "the lines add up to {total} minor units of {}, the invoice says {}",
                inv.currency, inv.total_minor
            ),
        ));
    }
    Ok(())
}

fn check_packing(
    e: &ShipmentRegistered,
    ssccs: &BTreeSet<&str>,
    path: &str,
) -> Result<(), Rejection> {
    let invoiced: BTreeMap<u32, u64> = e
        .invoice
        .lines
        .iter()
        .map(|l| (l.line_no, l.quantity))
        .collect();
    let mut packed: BTreeMap<u32, u128> = BTreeMap::new();
    let mut used = BTreeSet::new();
    for (i, line) in e.packing_list.lines.iter().enumerate() {
        let field = |name: &str| format!("{path}.packing_list.lines[{i}].{name}");
        if !ssccs.contains(line.sscc.as_str()) {
            return Err(reject(
                codes::PACKING_UNKNOWN_PARCEL,
                field("sscc"),
                format!("parcel {} is not among the shipment's parcels", line.sscc),
            ));
        }
        if !invoiced.contains_key(&line.invoice_line) {
            return Err(reject(
                codes::PACKING_UNKNOWN_LINE,
                field("invoice_line"),
                format!("the invoice has no line {}", line.invoice_line),
            ));
        }
        used.insert(line.sscc.as_str());
        *packed.entry(line.invoice_line).or_default() += u128::from(line.quantity);
    }
    for (line_no, quantity) in &invoiced {
        let got = packed.get(line_no).copied().unwrap_or(0);
        if got != u128::from(*quantity) {
            return Err(reject(
                codes::PACKING_QUANTITY_MISMATCH,
                format!("{path}.packing_list.lines"),
                format!(
                    "invoice line {line_no} has {quantity} units; the packing list packs {got}"
                ),
            ));
        }
    }
    if let Some((i, parcel)) = e
        .parcels
        .iter()
        .enumerate()
        .find(|(_, p)| !used.contains(p.sscc.as_str()))
    {
        return Err(reject(
            codes::PACKING_EMPTY_PARCEL,
            format!("{path}.parcels[{i}].sscc"),
            format!("nothing is packed in parcel {}", parcel.sscc),
        ));
    }
    Ok(())
}

/// A handoff's place and transport document.
pub fn check_handoff(e: &HandoffProposed, path: &str) -> Result<(), Rejection> {
    identifiers::check_locode(&format!("{path}.place"), &e.place)?;
    if let Some(doc) = &e.transport_document {
        if doc.kind == TransportDocumentKind::AirWaybill {
            identifiers::check_awb(&format!("{path}.transport_document.number"), &doc.number)?;
        }
    }
    Ok(())
}

/// A delivery's place.
pub fn check_delivery(e: &Delivered, path: &str) -> Result<(), Rejection> {
    identifiers::check_locode(&format!("{path}.place"), &e.place)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generic_terms_are_sorted_singular_lower_case() {
        assert!(GENERIC_DESCRIPTIONS.windows(2).all(|w| w[0] < w[1]));
        assert!(GENERIC_DESCRIPTIONS
            .iter()
            .all(|t| !t.is_empty() && *t == t.to_lowercase() && t.trim() == *t));
    }

    #[test]
    fn generic_descriptions_are_found_alone_or_combined() {
        let generic = |d: &str| generic_description(d);
        assert_eq!(generic("Gift").as_deref(), Some("gift"));
        assert_eq!(generic("  GIFTS. ").as_deref(), Some("gifts"));
        assert_eq!(generic("parts").as_deref(), Some("parts"));
        assert_eq!(generic("Accessories").as_deref(), Some("accessories"));
        assert_eq!(generic("samples").as_deref(), Some("samples"));
        assert_eq!(generic("General Cargo").as_deref(), Some("general cargo"));
        assert_eq!(
            generic("Freight of all kinds").as_deref(),
            Some("freight of all kinds")
        );
        assert_eq!(generic("commodities").as_deref(), Some("commodities"));
        assert_eq!(
            generic("Parts & accessories").as_deref(),
            Some("parts, accessories")
        );
        assert_eq!(
            generic("gifts and samples").as_deref(),
            Some("gifts, samples")
        );
        // Only numbers or symbols: no words at all.
        assert_eq!(generic("1004").as_deref(), Some(""));
        assert_eq!(generic("--- ???").as_deref(), Some(""));
        assert_eq!(generic("").as_deref(), Some(""));
    }

    #[test]
    fn precise_descriptions_pass() {
        for d in [
            "Cotton T-shirts, men's",
            "Brake discs for passenger cars",
            "Phone case of silicone",
            "Spare parts for bicycles: brake pads",
            "Ceramic coffee mug",
            "Gift box of dark chocolate",
        ] {
            assert_eq!(generic_description(d), None, "{d}");
        }
    }
}
