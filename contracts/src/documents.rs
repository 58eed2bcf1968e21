//! Trade documents: the registration's parcels, invoice and packing list; places and
//! transport documents on handoffs and deliveries.

use std::collections::{BTreeMap, BTreeSet};

use custody_ledger::model::*;
use custody_ledger::reject::Rejection;

use crate::{hs, identifiers, Ctx};

/// Stable codes of this module.
pub mod codes {
    /// Two invoice lines share a line number, or a line number is zero.
    pub const INVOICE_DUPLICATE_LINE: &str = "invoice.duplicate_line";
    /// An invoice line has a quantity of zero.
    pub const INVOICE_QUANTITY_ZERO: &str = "invoice.quantity_zero";
    /// Σ quantity × unit value differs from the invoice total.
    pub const INVOICE_TOTAL_MISMATCH: &str = "invoice.total_mismatch";
    /// Two parcels share an SSCC.
    pub const PARCEL_DUPLICATE: &str = "parcel.duplicate_sscc";
    /// A packing line names a parcel that is not in the shipment.
    pub const PACKING_UNKNOWN_PARCEL: &str = "packing.unknown_parcel";
    /// A packing line names an invoice line that does not exist.
    pub const PACKING_UNKNOWN_LINE: &str = "packing.unknown_line";
    /// The packed quantity of an invoice line differs from the invoiced quantity.
    pub const PACKING_QUANTITY_MISMATCH: &str = "packing.quantity_mismatch";
    /// A parcel has nothing packed in it.
    pub const PACKING_EMPTY_PARCEL: &str = "packing.empty_parcel";
    /// A text is not one of the eleven Incoterms 2020 rules.
    pub const INCOTERM_UNKNOWN: &str = "incoterm.unknown";
}

/// Parses an Incoterm as typed by a person, pointing withdrawn rules to their replacement
/// (DDU → DAP, DAT → DPU).
pub fn parse_incoterm(field: &str, text: &str) -> Result<Incoterm, Rejection> {
    Incoterm::parse(text.trim())
        .map_err(|message| Rejection::new(codes::INCOTERM_UNKNOWN, field, message))
}

fn reject(code: &'static str, field: String, message: String) -> Rejection {
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
    check_invoice(ctx, &e.invoice, &format!("{path}.invoice"))?;
    check_packing(e, &ssccs, path)
}

fn check_invoice(ctx: &Ctx<'_>, inv: &CommercialInvoice, path: &str) -> Result<(), Rejection> {
    identifiers::check_currency(&format!("{path}.currency"), inv.currency)?;
    for (name, party) in [("seller", &inv.seller), ("buyer", &inv.buyer)] {
        identifiers::check_country(&format!("{path}.{name}.country"), party.country)?;
        for (i, id) in party.tax_ids.iter().enumerate() {
            let field = format!("{path}.{name}.tax_ids[{i}].value");
            match id.scheme.as_str() {
                "EORI" => identifiers::check_eori(&field, &id.value)?,
                "IOSS" => identifiers::check_ioss(&field, &id.value)?,
                _ => {}
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
