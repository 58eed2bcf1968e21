//! A shipment's history and state as text for people: one line per event, then the state.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use custody_contracts::identifiers::check_currency;
use custody_ledger::model::{
    CurrencyCode, CustomsRegime, EventId, EventKind, MembershipChange, ReferenceData, SensorReading,
};
use custody_ledger::state::ShipmentState;
use custody_ledger::view::{EventEntry, MemberView};
use custody_ledger::PublicKey;

/// Member ids by signing key, current and retired keys alike, so that old signatures resolve.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    by_key: BTreeMap<PublicKey, String>,
}

impl Directory {
    /// The directory of a member list.
    pub fn new(members: &[MemberView]) -> Directory {
        let mut by_key = BTreeMap::new();
        for member in members {
            for key in std::iter::once(&member.key).chain(&member.retired_keys) {
                by_key.insert(*key, member.id.to_string());
            }
        }
        Directory { by_key }
    }

    /// The member id of a key, or the key's first hex digits when no member has it.
    pub fn name(&self, key: &PublicKey) -> String {
        self.by_key
            .get(key)
            .cloned()
            .unwrap_or_else(|| format!("key {}…", &key.to_hex()[..16]))
    }
}

/// An amount in minor units as a decimal in its currency (`5360 EUR` is `53.60 EUR`). Currencies
/// without an ISO 4217 minor unit are shown in minor units.
pub fn money(amount_minor: u64, currency: CurrencyCode) -> String {
    match check_currency("", currency) {
        Ok(0) => format!("{amount_minor} {currency}"),
        Ok(exponent) if exponent <= 9 => {
            let scale = 10u64.pow(exponent);
            let width = exponent as usize;
            format!(
                "{}.{:0width$} {currency}",
                amount_minor / scale,
                amount_minor % scale
            )
        }
        _ => format!("{amount_minor} minor units of {currency}"),
    }
}

fn short(id: &EventId) -> String {
    id.to_hex()[..12].to_owned()
}

/// The place an event names, if any (a handoff's place is where custody moves).
pub fn place(kind: &EventKind) -> Option<&str> {
    match kind {
        EventKind::HandoffProposed(e) => Some(&e.place),
        EventKind::Delivered(e) => Some(&e.place),
        EventKind::TrackingScanRecorded(e) => Some(&e.read_point),
        _ => None,
    }
}

/// A value in thousandths of a unit as a decimal, without trailing zeros (`4500` is `4.5`,
/// `-250` is `-0.25`).
pub fn milli(value_milli: i64) -> String {
    let sign = if value_milli < 0 { "-" } else { "" };
    let magnitude = value_milli.unsigned_abs();
    let (units, thousandths) = (magnitude / 1_000, magnitude % 1_000);
    if thousandths == 0 {
        return format!("{sign}{units}");
    }
    let fraction = format!("{thousandths:03}");
    format!("{sign}{units}.{}", fraction.trim_end_matches('0'))
}

/// A sensor reading as text: `Temperature 4.5 CEL (2..8)`.
fn reading(r: &SensorReading) -> String {
    let mut text = format!("{} {} {}", r.kind, milli(r.value_milli), r.unit);
    match (r.min_milli, r.max_milli) {
        (None, None) => {}
        (min, max) => {
            let bound = |b: Option<i64>| b.map(milli).unwrap_or_default();
            let _ = write!(text, " ({}..{})", bound(min), bound(max));
        }
    }
    text
}

/// A one-line summary of an event's payload.
pub fn summary(kind: &EventKind) -> String {
    match kind {
        EventKind::ShipmentRegistered(e) => format!(
            "{} → {}, {} {}, invoice {} for {}, {} parcel(s)",
            e.origin,
            e.destination,
            e.incoterm.code(),
            e.incoterm_place,
            e.invoice.number,
            money(e.invoice.total_minor, e.invoice.currency),
            e.parcels.len()
        ),
        EventKind::HandoffProposed(e) => {
            let mut text = format!("hand to {} at {}", e.to, e.place);
            if let Some(doc) = &e.transport_document {
                let _ = write!(text, " ({:?} {})", doc.kind, doc.number);
            }
            text
        }
        EventKind::HandoffAccepted(e) => format!("accepts proposal {}", short(&e.proposal)),
        EventKind::CustomsDeclared(e) => {
            let regime = match &e.regime {
                CustomsRegime::Full => "full".to_owned(),
                CustomsRegime::DeMinimisRelief => "de minimis relief".to_owned(),
                CustomsRegime::TaxCollectedAtSale { registration_id } => {
                    format!("tax collected at sale ({registration_id})")
                }
            };
            format!(
                "declared in {} ({}), regime {regime}, customs value {}, duty {}, tax {}",
                e.jurisdiction,
                e.declaration_ref,
                money(e.customs_value_minor, e.currency),
                money(e.duty_total_minor, e.currency),
                money(e.tax_total_minor, e.currency)
            )
        }
        EventKind::DutyPaid(e) => format!(
            "paid {} against {} ({})",
            money(e.amount.amount_minor, e.amount.currency),
            short(&e.declaration),
            e.payment_reference
        ),
        EventKind::CustomsCleared(e) => {
            let outcome = match e.outcome {
                custody_ledger::model::ClearanceOutcome::Release => "release",
                custody_ledger::model::ClearanceOutcome::Hold => "hold",
                custody_ledger::model::ClearanceOutcome::Inspection => "inspection",
            };
            let mut text = format!("outcome {outcome} ({})", e.authority_reference);
            if !e.reason.is_empty() {
                let _ = write!(text, ": {}", e.reason);
            }
            text
        }
        EventKind::Delivered(e) => format!(
            "delivered at {}, receiver committed ({:?} proof)",
            e.place, e.proof_kind
        ),
        EventKind::ReturnRequested(e) => {
            let units: u64 = e.lines.iter().map(|l| l.quantity).sum();
            format!(
                "return {} of {units} unit(s) on {} line(s): {}",
                e.rma,
                e.lines.len(),
                e.reason
            )
        }
        EventKind::ReturnReceived(e) => {
            let units: u64 = e.lines.iter().map(|l| l.quantity).sum();
            format!("received {units} unit(s) back under {}", e.rma)
        }
        EventKind::DocumentAttested(e) => format!(
            "{} {} (sha256 {})",
            e.document_type,
            e.reference,
            e.document_hash.to_hex()
        ),
        EventKind::ReferenceDataPublished(e) => {
            let what = match &e.data {
                ReferenceData::HsNomenclature(n) => {
                    format!("{} with {} subheadings", n.edition, n.subheadings.len())
                }
                ReferenceData::Tariff(t) => format!("{} tariff lines", t.lines.len()),
                ReferenceData::DeMinimis(d) => format!("{} rules", d.rules.len()),
            };
            format!("{} from {}: {what}", e.table_id, e.effective_from)
        }
        EventKind::TrackingScanRecorded(e) => {
            let mut text = format!("scan: {}, {}", e.biz_step, e.disposition);
            if e.biz_location != e.read_point {
                let _ = write!(text, ", now at {}", e.biz_location);
            }
            if let Some(gln) = &e.read_point_gln {
                let _ = write!(text, ", read at GLN {gln}");
            }
            match e.parcels.len() {
                0 => text.push_str(", whole shipment"),
                n => {
                    let _ = write!(text, ", {n} parcel(s)");
                }
            }
            if !e.sensor_readings.is_empty() {
                let readings: Vec<String> = e.sensor_readings.iter().map(reading).collect();
                let _ = write!(text, "; {}", readings.join(", "));
            }
            if e.exception {
                text.push_str(" [exception]");
            }
            text
        }
        EventKind::MembershipChanged(e) => {
            let change = match &e.change {
                MembershipChange::Admit { member } => format!("admit {}", member.id),
                MembershipChange::RotateKey { member, .. } => format!("rotate the key of {member}"),
                MembershipChange::Revoke { member, .. } => format!("revoke {member}"),
                MembershipChange::ScheduleRules { activation } => format!(
                    "schedule rules version {} from height {}",
                    activation.version, activation.from_height
                ),
            };
            format!("{change} with {} approval(s)", e.approvals.len())
        }
        EventKind::PersonalDataErased(_) => {
            "personal data erased off the ledger (its commitments stay)".into()
        }
    }
}

/// The timeline of a shipment's events, one line each: block time, height, kind, signer,
/// place and summary. An accepted handoff shows the place of the proposal it accepts.
pub fn render_events(events: &[EventEntry], directory: &Directory) -> String {
    let mut proposals: BTreeMap<EventId, String> = BTreeMap::new();
    let mut rows: Vec<[String; 6]> = Vec::with_capacity(events.len());
    for entry in events {
        let kind = &entry.event.event.kind;
        if let EventKind::HandoffProposed(e) = kind {
            proposals.insert(entry.event_id, e.place.clone());
        }
        let place = match kind {
            EventKind::HandoffAccepted(e) => proposals.get(&e.proposal).cloned(),
            other => place(other).map(str::to_owned),
        };
        rows.push([
            entry.recorded_at.to_string(),
            format!("#{}", entry.height),
            kind.name().to_owned(),
            directory.name(&entry.event.signer),
            place.unwrap_or_else(|| "-".into()),
            summary(kind),
        ]);
    }
    let mut widths = [0usize; 5];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row.iter()) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        for (cell, width) in row.iter().zip(widths) {
            let _ = write!(out, "{cell:<width$}  ");
        }
        out.push_str(&row[5]);
        out.push('\n');
    }
    out
}

/// The current state of a shipment, one fact per line.
pub fn render_state(state: &ShipmentState) -> String {
    let mut out = String::new();
    let mut line = |label: &str, value: String| {
        let _ = writeln!(out, "  {label:<16}{value}");
    };
    line("status", state.status.as_str().to_owned());
    line("custodian", state.custodian.to_string());
    line("seller", state.seller.to_string());
    line(
        "route",
        format!(
            "{} → {} ({})",
            state.origin,
            state.destination,
            state.incoterm.code()
        ),
    );
    line(
        "invoice",
        format!(
            "{} for {}",
            state.invoice.number,
            money(state.invoice.total_minor, state.invoice.currency)
        ),
    );
    if let Some(place) = &state.last_place {
        line("last place", place.clone());
    }
    if let Some(p) = &state.pending_handoff {
        line(
            "pending handoff",
            format!(
                "{} → {} at {} ({})",
                p.from,
                p.to,
                p.place,
                short(&p.proposal)
            ),
        );
    }
    match &state.declaration {
        Some(d) => {
            let outcome = match d.outcome {
                Some(outcome) => format!("{outcome:?}").to_lowercase(),
                None => "awaiting decision".into(),
            };
            line(
                "declaration",
                format!(
                    "in {}: due {}, paid {}, {outcome} ({})",
                    d.jurisdiction,
                    money(d.due_minor, d.currency),
                    money(d.paid_minor, d.currency),
                    short(&d.event)
                ),
            );
        }
        None => line("declaration", "none".into()),
    }
    if !state.released_in.is_empty() {
        let countries: Vec<String> = state.released_in.iter().map(|c| c.to_string()).collect();
        line("released in", countries.join(", "));
    }
    for r in &state.returns {
        let units: u64 = r.lines.iter().map(|l| l.quantity).sum();
        line(
            "return",
            format!(
                "{}: {units} unit(s), {}",
                r.rma,
                if r.received { "received" } else { "awaited" }
            ),
        );
    }
    line(
        "registered",
        format!(
            "{} ({})",
            state.registered_at,
            short(&state.registered_event)
        ),
    );
    line(
        "updated",
        format!(
            "{} ({} events, last {})",
            state.updated_at,
            state.event_count,
            short(&state.last_event)
        ),
    );
    out
}

/// The whole `custody shipment show` text: the timeline, then the state.
pub fn render(state: &ShipmentState, events: &[EventEntry], members: &[MemberView]) -> String {
    let directory = Directory::new(members);
    format!(
        "Shipment {}\n\n{}\nNow:\n{}",
        state.shipment_id,
        render_events(events, &directory),
        render_state(state)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn currency(code: &str) -> CurrencyCode {
        CurrencyCode::parse(code).expect("three capitals")
    }

    #[test]
    fn money_uses_the_currency_minor_unit() {
        assert_eq!(money(5_360, currency("EUR")), "53.60 EUR");
        assert_eq!(money(5, currency("EUR")), "0.05 EUR");
        assert_eq!(money(1_200, currency("JPY")), "1200 JPY");
        assert_eq!(money(1_234, currency("BHD")), "1.234 BHD");
        assert_eq!(money(7, currency("XAU")), "7 minor units of XAU");
    }

    #[test]
    fn thousandths_read_as_decimals() {
        assert_eq!(milli(4_500), "4.5");
        assert_eq!(milli(-250), "-0.25");
        assert_eq!(milli(8_000), "8");
        assert_eq!(milli(1), "0.001");
        assert_eq!(milli(0), "0");
        assert_eq!(milli(i64::MIN), "-9223372036854775.808");
    }

    #[test]
    fn a_scan_reads_as_one_line() {
        let scan = custody_ledger::testkit::tracking_scan("S-1", "DEHAM");
        let kind = EventKind::TrackingScanRecorded(scan.clone());
        assert_eq!(place(&kind), Some("DEHAM"));
        assert_eq!(
            summary(&kind),
            "scan: departing, in_transit, read at GLN 0614141000005, 1 parcel(s); \
             Temperature 4.5 CEL (2..8)"
        );
        let mut exception = scan;
        exception.parcels.clear();
        exception.biz_location = "DEHAM2".into();
        exception.sensor_readings[0].min_milli = None;
        exception.exception = true;
        assert_eq!(
            summary(&EventKind::TrackingScanRecorded(exception)),
            "scan: departing, in_transit, now at DEHAM2, read at GLN 0614141000005, whole \
             shipment; Temperature 4.5 CEL (..8) [exception]"
        );
    }
}
