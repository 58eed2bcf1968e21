//! Custody events as GS1 EPCIS 2.0 events, and back (DESIGN.md decision 12).
//!
//! - [`to_epcis`] writes one committed Custody event as an EPCIS 2.0 event (JSON-LD), with CBV
//!   2.0 terms where CBV has them and the Custody vocabulary ([`vocab`]) where it has none
//!   (customs); [`DocumentBuilder`] wraps events in an `EPCISDocument` or an
//!   `EPCISQueryDocument`.
//! - [`from_epcis`] reads an EPCIS event back into a draft Custody event where a mapping is
//!   defined (tracking scans, handoffs, delivery) and refuses anything else, naming the field.
//! - [`event_hash_id`] and [`document_hash_ids`] compute CBV 2.0 §8.9 event hash IDs.
//! - [`Validator`] checks JSON against GS1's EPCIS 2.0 JSON Schema, which the caller passes in.
//!
//! `docs/EPCIS.md` holds the mapping table, the vocabulary and the readings taken of the
//! standard. This crate does no I/O, reads no clock and draws no randomness: every input is
//! an argument. No float decides anything: sensor values are exact decimals
//! ([`decimal`]). Custody's canonical bytes and signatures stay the truth; EPCIS is an
//! interchange form of them.

pub mod capture;
pub mod decimal;
pub mod document;
pub mod gs1;
pub mod hash;
pub mod mapping;
pub mod schema;
pub mod time;
pub mod vocab;

pub use capture::{from_epcis, CaptureError, Draft, Facts};
pub use document::{document_hash_ids, events_of, DocumentBuilder};
pub use hash::{event_hash_id, HashError};
pub use mapping::{
    to_epcis, CommittedEvent, MappingContext, MappingError, ProposalContext, ShipmentContext,
};
pub use schema::{SchemaError, Validator, Violation};
