//! Reassembly of streamed proposals.
//!
//! The engine delivers proposal parts as they arrive, possibly out of order; this module
//! buffers them per (publisher, stream) until the stream is complete. Everything is bounded:
//! the number of open streams, the parts per stream, and the sequence numbers accepted, so a
//! peer cannot make a node hold unbounded data.

use std::collections::BTreeMap;

use arc_malachitebft_app_channel::app::streaming::StreamContent;
use arc_malachitebft_app_channel::app::types::streaming::{StreamId, StreamMessage};
use arc_malachitebft_app_channel::app::types::PeerId;

use super::context::ProposalPart;

/// Most streams buffered at once; the oldest is dropped beyond it.
pub const STREAMS_MAX: usize = 64;
/// Most messages in one stream (a block of 10,000 events in parts of 200, plus margin).
pub const STREAM_MESSAGES_MAX: u64 = 128;

/// A stream's identity: who published it and its id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StreamKey {
    publisher: Vec<u8>,
    stream: Vec<u8>,
}

impl StreamKey {
    /// The key of a stream.
    pub fn new(publisher: PeerId, stream: &StreamId) -> StreamKey {
        StreamKey {
            publisher: publisher.to_bytes(),
            stream: stream.to_bytes().to_vec(),
        }
    }

    /// The height encoded in the first eight bytes of the stream id (see `host::stream_id`).
    fn height(&self) -> u64 {
        self.stream
            .get(..8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(0, u64::from_be_bytes)
    }
}

#[derive(Debug, Default)]
struct Partial {
    parts: BTreeMap<u64, ProposalPart>,
    fin: Option<u64>,
    arrival: u64,
}

/// Open streams.
#[derive(Debug, Default)]
pub struct PartStreams {
    open: BTreeMap<StreamKey, Partial>,
    arrivals: u64,
}

impl PartStreams {
    /// Adds a message; returns the stream's parts in order once every one has arrived.
    pub fn insert(
        &mut self,
        key: StreamKey,
        msg: StreamMessage<ProposalPart>,
    ) -> Option<Vec<ProposalPart>> {
        if msg.sequence >= STREAM_MESSAGES_MAX {
            return None;
        }
        if !self.open.contains_key(&key) && self.open.len() >= STREAMS_MAX {
            // Drop the stream that started longest ago.
            let oldest = self
                .open
                .iter()
                .min_by_key(|(_, p)| p.arrival)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.open.remove(&oldest);
            }
        }
        self.arrivals += 1;
        let arrival = self.arrivals;
        let partial = self.open.entry(key.clone()).or_insert_with(|| Partial {
            arrival,
            ..Partial::default()
        });
        match msg.content {
            StreamContent::Data(part) => {
                partial.parts.insert(msg.sequence, part);
            }
            StreamContent::Fin => partial.fin = Some(msg.sequence),
        }
        let fin = partial.fin?;
        // Complete when every sequence before the Fin is present.
        if partial.parts.len() as u64 != fin
            || partial
                .parts
                .keys()
                .next_back()
                .is_some_and(|last| *last + 1 != fin)
        {
            return None;
        }
        let partial = self.open.remove(&key).expect("the stream is open");
        Some(partial.parts.into_values().collect())
    }

    /// Forgets streams of heights below `height`.
    pub fn forget_below(&mut self, height: u64) {
        self.open.retain(|key, _| key.height() >= height);
    }

    /// Open streams.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Whether none is open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}
