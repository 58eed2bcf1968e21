//! Payments and clearance: who pays, and what release requires beyond payment.
//!
//! The ledger's state machine already keeps the amounts: payments in the declaration's
//! currency, never beyond the assessed duty and tax, and release only when paid in full.

use custody_ledger::model::{ClearanceOutcome, CustomsCleared, DutyPaid, Incoterm};
use custody_ledger::reject::Rejection;
use custody_ledger::state::{MemberRecord, ShipmentState};

use crate::identifiers;

/// Stable codes of this module.
pub mod codes {
    use crate::ContractCode;
    use custody_ledger::reject::Code;

    /// The payer is not the party the Incoterm makes liable for import duty.
    pub const WRONG_PAYER: Code = ContractCode::PaymentWrongPayer.code();
    /// Release in the destination before an arrival there was recorded.
    pub const NO_ARRIVAL: Code = ContractCode::ClearanceNoArrival.code();
}

/// Under DDP the seller pays import duty and tax; under every other rule the buyer's side
/// does (its broker or courier as agent), so the seller may not.
pub fn check_payer(
    shipment: &ShipmentState,
    payer: &MemberRecord,
    e: &DutyPaid,
    path: &str,
) -> Result<(), Rejection> {
    identifiers::check_currency(&format!("{path}.amount.currency"), e.amount.currency)?;
    let is_seller = payer.id == shipment.seller;
    let ddp = shipment.incoterm == Incoterm::DDP;
    if ddp != is_seller {
        return Err(Rejection::new(
            codes::WRONG_PAYER,
            "signer",
            if ddp {
                format!(
                    "under DDP the seller {} pays import duty and tax, not {}",
                    shipment.seller, payer.id
                )
            } else {
                format!(
                    "under {} the buyer's side pays import duty and tax, not the seller {}",
                    shipment.incoterm.code(),
                    shipment.seller
                )
            },
        ));
    }
    Ok(())
}

/// Release in the destination country needs the goods to have arrived there: a handoff at
/// a place in that country.
pub fn check_clearance(
    shipment: &ShipmentState,
    e: &CustomsCleared,
    path: &str,
) -> Result<(), Rejection> {
    let in_destination = shipment
        .declaration
        .as_ref()
        .is_some_and(|d| d.jurisdiction == shipment.destination);
    if e.outcome == ClearanceOutcome::Release && in_destination && !shipment.arrived_in_destination
    {
        return Err(Rejection::new(
            codes::NO_ARRIVAL,
            format!("{path}.outcome"),
            format!(
                "no handoff in {} was recorded for shipment {}; record its arrival before releasing it",
                shipment.destination, shipment.shipment_id
            ),
        ));
    }
    Ok(())
}
