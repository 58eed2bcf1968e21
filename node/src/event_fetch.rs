//! Events by id, from one member to another, over the event-gossip swarm.
//!
//! A proposer names by id the events it expects every validator to hold (see
//! `consensus::fetch`); a validator that lacks some asks the proposer for them with this
//! request-response protocol. Both messages are the ledger's canonical encoding: a request is
//! the list of ids, a response the events' canonical bytes in the order asked, ending early
//! at the first id the server does not hold. The requester checks every body against its id,
//! so a server can make a fetch fail but not make it return the wrong events.
//!
//! Everything is bounded: a request names at most a block's worth of ids, a response holds at
//! most a block's worth of bytes, reading stops at those limits, and the swarm serves a few
//! requests at a time (see `gossip`).

use std::io;
use std::sync::Arc;

use async_trait::async_trait;
use custody_ledger::block::BLOCK_EVENTS_MAX;
use custody_ledger::codec::{self, BLOCK_SIZE_BYTES_MAX};
use custody_ledger::model::EventId;
use futures::future::BoxFuture;
use futures::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use libp2p::StreamProtocol;

/// Most bytes of a request: a block's worth of ids (32 bytes and a length byte each) and the
/// list's length prefix.
pub const REQUEST_SIZE_BYTES_MAX: usize = BLOCK_EVENTS_MAX * 33 + 16;

/// Most bytes of a response: a block's worth of events.
pub const RESPONSE_SIZE_BYTES_MAX: usize = BLOCK_SIZE_BYTES_MAX;

/// Looks up events by id for a peer's request: the bodies in the order asked, stopping at the
/// first id not held, and at most [`RESPONSE_SIZE_BYTES_MAX`] bytes in all. It runs on a task
/// of its own, so it may wait for the mempool.
pub type EventSource = Arc<dyn Fn(Vec<EventId>) -> BoxFuture<'static, Vec<Vec<u8>>> + Send + Sync>;

/// Why a fetch returned no events.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The peer did not answer, or the connection failed.
    #[error("the peer did not answer: {0}")]
    Failed(String),
    /// Too many fetches are already waiting for answers.
    #[error("too many fetches in flight")]
    Busy,
    /// The gossip swarm has stopped.
    #[error("the gossip swarm has stopped")]
    Stopped,
}

/// The protocol name, scoped to the chain like every other gossip protocol.
pub fn protocol(genesis_hex: &str) -> StreamProtocol {
    StreamProtocol::try_from_owned(format!("/custody/{genesis_hex}/events-by-id/v1"))
        .expect("the name starts with a slash")
}

/// The canonical codec of requests (ids) and responses (event bodies).
#[derive(Debug, Clone, Copy, Default)]
pub struct EventsCodec;

/// Reads a whole message of at most `size_bytes_max` bytes and decodes it.
async fn read_message<T, R>(io: &mut R, size_bytes_max: usize) -> io::Result<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
    R: AsyncRead + Unpin + Send,
{
    let mut bytes = Vec::new();
    // One byte more than allowed, so that an oversize message is told from a full one.
    let limit = u64::try_from(size_bytes_max)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    io.take(limit).read_to_end(&mut bytes).await?;
    codec::decode(&bytes, size_bytes_max)
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))
}

async fn write_message<T, W>(io: &mut W, value: &T) -> io::Result<()>
where
    T: serde::Serialize,
    W: AsyncWrite + Unpin + Send,
{
    io.write_all(&codec::encode(value)).await?;
    io.close().await
}

#[async_trait]
impl libp2p::request_response::Codec for EventsCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<EventId>;
    type Response = Vec<Vec<u8>>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<EventId>>
    where
        T: AsyncRead + Unpin + Send,
    {
        let ids: Vec<EventId> = read_message(io, REQUEST_SIZE_BYTES_MAX).await?;
        if ids.len() > BLOCK_EVENTS_MAX {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "more ids than a block holds",
            ));
        }
        Ok(ids)
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<Vec<u8>>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_message(io, RESPONSE_SIZE_BYTES_MAX).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        ids: Vec<EventId>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_message(io, &ids).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        bodies: Vec<Vec<u8>>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_message(io, &bodies).await
    }
}

/// The bodies a server answers with: those `lookup` finds, in order, up to the first missing
/// one and within [`RESPONSE_SIZE_BYTES_MAX`] (the codec's own envelope aside).
pub fn answer(
    ids: &[EventId],
    mut lookup: impl FnMut(&EventId) -> Option<Vec<u8>>,
) -> Vec<Vec<u8>> {
    let mut bodies = Vec::new();
    let mut size_bytes = 0usize;
    // Bounded by the request's id count.
    for id in ids {
        let Some(body) = lookup(id) else { break };
        // Each body costs its bytes and a length prefix of at most nine.
        size_bytes = size_bytes.saturating_add(body.len() + 9);
        if size_bytes > RESPONSE_SIZE_BYTES_MAX - 16 {
            break;
        }
        bodies.push(body);
    }
    bodies
}

#[cfg(test)]
mod tests {
    use custody_ledger::Digest;
    use libp2p::request_response::Codec as _;

    use super::*;

    fn id(i: u8) -> EventId {
        Digest::sha256(&[i])
    }

    #[test]
    fn an_answer_stops_at_the_first_unknown_id() {
        let ids = [id(1), id(2), id(3)];
        let bodies = answer(&ids, |i| (*i != id(2)).then(|| i.0.to_vec()));
        assert_eq!(bodies, vec![id(1).0.to_vec()]);
    }

    #[test]
    fn requests_and_responses_round_trip_and_oversize_ones_are_refused() {
        futures::executor::block_on(async {
            let protocol = protocol("00");
            let ids = vec![id(1), id(2)];
            let mut wire = Vec::new();
            EventsCodec
                .write_request(&protocol, &mut wire, ids.clone())
                .await
                .expect("writes");
            let read = EventsCodec
                .read_request(&protocol, &mut wire.as_slice())
                .await
                .expect("reads");
            assert_eq!(read, ids);

            let too_many = vec![id(0); BLOCK_EVENTS_MAX + 1];
            let mut wire = Vec::new();
            EventsCodec
                .write_request(&protocol, &mut wire, too_many)
                .await
                .expect("writes");
            assert!(EventsCodec
                .read_request(&protocol, &mut wire.as_slice())
                .await
                .is_err());

            let garbage = vec![0xFF; 64];
            assert!(EventsCodec
                .read_response(&protocol, &mut garbage.as_slice())
                .await
                .is_err());
        });
    }
}
