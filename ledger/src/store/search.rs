//! Secondary indexes that find shipments other than by their id: by a term someone holds on
//! paper (a parcel's SSCC, a transport document number, the invoice number) and by the fields
//! a list is filtered on (seller, custodian, destination, status).
//!
//! Every entry is a key in the `index` tree, written in the same batch as the block that
//! gives rise to it, so the indexes never disagree with the committed state:
//!
//! `F` ‖ index tag ‖ value length (u32 BE) ‖ value ‖ shipment id → empty
//!
//! The length prefix makes the key unambiguous whatever bytes the value holds (a transport
//! document number is free text), and the shipment id comes last, so a scan of one value's
//! prefix yields shipment ids in id order: a list filtered by one index is read page by page
//! in the same order as the unfiltered list.
//!
//! Terms are only ever added: a shipment stays findable by every SSCC, document and invoice
//! number it was ever given. Custodian and status move: the entry of the old value is removed
//! when a block changes it. A store written before these indexes existed has no entries for
//! its earlier blocks; the indexes fill as blocks are appended.

use super::{Store, StoreError, Tree, WriteBatch};
use crate::model::{EventKind, ShipmentId};
use crate::state::ShipmentState;

const INDEX_TAG: u8 = b'F';

/// What a shipment index is keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ShipmentIndex {
    /// A parcel's SSCC, from the registration.
    Sscc,
    /// A transport document number (air waybill, bill of lading, …), from a handoff proposal.
    TransportDocument,
    /// The commercial invoice number, from the registration.
    InvoiceNumber,
    /// The seller's member id.
    Seller,
    /// The current custodian's member id.
    Custodian,
    /// The destination country code.
    Destination,
    /// The current status, as the API spells it.
    Status,
}

impl ShipmentIndex {
    /// The indexes a search term is looked up in.
    pub const TERMS: [ShipmentIndex; 3] = [
        ShipmentIndex::Sscc,
        ShipmentIndex::TransportDocument,
        ShipmentIndex::InvoiceNumber,
    ];

    fn tag(self) -> u8 {
        match self {
            ShipmentIndex::Sscc => b'p',
            ShipmentIndex::TransportDocument => b't',
            ShipmentIndex::InvoiceNumber => b'i',
            ShipmentIndex::Seller => b's',
            ShipmentIndex::Custodian => b'c',
            ShipmentIndex::Destination => b'd',
            ShipmentIndex::Status => b'x',
        }
    }
}

/// The key prefix of every entry for `value` in `index`.
fn prefix(index: ShipmentIndex, value: &str) -> Vec<u8> {
    // A value over 4 GiB cannot be in an event (events are at most 1 MiB).
    let length = u32::try_from(value.len()).unwrap_or(u32::MAX);
    let mut key = Vec::with_capacity(value.len() + 6);
    key.push(INDEX_TAG);
    key.push(index.tag());
    key.extend_from_slice(&length.to_be_bytes());
    key.extend_from_slice(value.as_bytes());
    key
}

fn entry(index: ShipmentIndex, value: &str, id: &ShipmentId) -> Vec<u8> {
    let mut key = prefix(index, value);
    key.extend_from_slice(id.0.as_bytes());
    key
}

/// Adds the search terms an event carries.
pub(super) fn index_event(batch: &mut WriteBatch, kind: &EventKind) {
    let mut add = |index, value: &str, id: &ShipmentId| {
        batch.put(Tree::Index, entry(index, value, id), Vec::new());
    };
    match kind {
        EventKind::ShipmentRegistered(r) => {
            for parcel in &r.parcels {
                add(ShipmentIndex::Sscc, &parcel.sscc, &r.shipment_id);
            }
            add(
                ShipmentIndex::InvoiceNumber,
                &r.invoice.number,
                &r.shipment_id,
            );
        }
        EventKind::HandoffProposed(p) => {
            if let Some(document) = &p.transport_document {
                add(
                    ShipmentIndex::TransportDocument,
                    &document.number,
                    &p.shipment_id,
                );
            }
        }
        _ => {}
    }
}

/// The filter fields of a shipment record, by index.
fn fields(state: &ShipmentState) -> [(ShipmentIndex, &str); 4] {
    [
        (ShipmentIndex::Seller, state.seller.as_str()),
        (ShipmentIndex::Custodian, state.custodian.as_str()),
        (ShipmentIndex::Destination, state.destination.as_str()),
        (ShipmentIndex::Status, state.status.as_str()),
    ]
}

/// Moves the filter entries of a shipment from its stored record (`before`, absent for a new
/// shipment) to its new one.
pub(super) fn index_shipment(
    batch: &mut WriteBatch,
    before: Option<&ShipmentState>,
    after: &ShipmentState,
) {
    let old = before.map(fields);
    for (i, (index, value)) in fields(after).into_iter().enumerate() {
        let previous = old.as_ref().map(|fields| fields[i].1);
        if previous == Some(value) {
            continue;
        }
        if let Some(previous) = previous {
            batch.delete(Tree::Index, entry(index, previous, &after.shipment_id));
        }
        batch.put(
            Tree::Index,
            entry(index, value, &after.shipment_id),
            Vec::new(),
        );
    }
}

/// Up to `limit` ids of shipments with `value` in `index`, in id order, after `after`.
pub(super) fn shipments_by<S: Store + ?Sized>(
    store: &S,
    index: ShipmentIndex,
    value: &str,
    after: Option<&ShipmentId>,
    limit: usize,
) -> Result<Vec<ShipmentId>, StoreError> {
    let prefix = prefix(index, value);
    let start = after.map(|id| entry(index, value, id));
    store
        .scan(Tree::Index, &prefix, start.as_deref(), limit)?
        .into_iter()
        .map(|(key, _)| {
            let id =
                std::str::from_utf8(&key[prefix.len()..]).map_err(|_| StoreError::Corrupt {
                    record: "shipment index key".into(),
                    message: "the shipment id is not UTF-8".into(),
                })?;
            Ok(ShipmentId::new(id))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use crate::testkit::TestNet;

    #[test]
    fn a_value_that_is_a_prefix_of_another_finds_only_its_own_shipments() {
        let net = TestNet::new();
        let store = MemoryStore::new(net.genesis_hash());
        let mut batch = WriteBatch::default();
        for (value, id) in [("AB", "S-1"), ("ABC", "S-2"), ("AB", "S-3"), ("A", "S-4")] {
            batch.put(
                Tree::Index,
                entry(
                    ShipmentIndex::TransportDocument,
                    value,
                    &ShipmentId::new(id),
                ),
                Vec::new(),
            );
        }
        store.commit(batch).expect("commit");
        let find = |value: &str, after: Option<&str>| {
            shipments_by(
                &store,
                ShipmentIndex::TransportDocument,
                value,
                after.map(ShipmentId::new).as_ref(),
                10,
            )
            .expect("scan")
        };
        assert_eq!(
            find("AB", None),
            [ShipmentId::new("S-1"), ShipmentId::new("S-3")]
        );
        assert_eq!(find("AB", Some("S-1")), [ShipmentId::new("S-3")]);
        assert_eq!(find("ABC", None), [ShipmentId::new("S-2")]);
        assert!(find("B", None).is_empty());
        // The same value in another index is another key.
        assert!(shipments_by(&store, ShipmentIndex::Sscc, "AB", None, 10)
            .expect("scan")
            .is_empty());
    }

    #[test]
    fn a_block_indexes_its_terms_and_moves_custodian_and_status() {
        let net = TestNet::new();
        let store = MemoryStore::new(net.genesis_hash());
        let lifecycle = net.lifecycle("S-1");
        let time = crate::testkit::GENESIS_TIME;
        // Registration, then both handoffs: seller to carrier-swift to carrier-lastmile.
        net.commit(&store, lifecycle[..1].to_vec(), time)
            .expect("commit");
        let find = |index, value: &str| {
            shipments_by(&store, index, value, None, 10)
                .expect("scan")
                .into_iter()
                .map(|id| id.0)
                .collect::<Vec<_>>()
        };
        assert_eq!(find(ShipmentIndex::Custodian, "seller-acme"), ["S-1"]);
        assert_eq!(find(ShipmentIndex::Status, "registered"), ["S-1"]);
        net.commit(&store, lifecycle[1..5].to_vec(), time)
            .expect("commit");
        for (index, value, found) in [
            (ShipmentIndex::Sscc, "106141411234567897", true),
            (ShipmentIndex::TransportDocument, "02012345675", true),
            (ShipmentIndex::InvoiceNumber, "INV-S-1", true),
            (ShipmentIndex::Seller, "seller-acme", true),
            (ShipmentIndex::Destination, "FR", true),
            (ShipmentIndex::Custodian, "carrier-lastmile", true),
            (ShipmentIndex::Custodian, "seller-acme", false),
            (ShipmentIndex::Custodian, "carrier-swift", false),
            (ShipmentIndex::Status, "in_transit", true),
            (ShipmentIndex::Status, "registered", false),
        ] {
            let expected: &[&str] = if found { &["S-1"] } else { &[] };
            assert_eq!(find(index, value), expected, "{index:?} {value}");
        }
    }
}
