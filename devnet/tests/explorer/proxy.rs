//! A tamper proxy: real sockets on 127.0.0.1, in front of a node, passing every request
//! through and changing every shipment bundle it relays, as a lying node would.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context as _};
use custody_ledger::bundle::Bundle;
use custody_ledger::event::EncodedEvent;
use custody_ledger::personal::{Disclosure, PersonalField, Salt};
use custody_ledger::time::Timestamp;
use reqwest::Method;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// Deadline of reading a request and of the node's answer.
const RELAY_TIMEOUT: Duration = Duration::from_secs(60);
/// Requests the proxy reads are GETs: their head fits in this.
const REQUEST_HEAD_BYTES_MAX: usize = 64 * 1024;

/// How the proxy changes a bundle.
#[derive(Debug, Clone, Copy)]
pub enum Tampering {
    /// One bit of the last byte of the first event's canonical bytes (inside its signature):
    /// the bytes still decode, but no longer hash to the bundle's `event_id`.
    FlipByte,
    /// The same bit, with the bundle's `event_id` and readable `event` made to match the
    /// changed bytes: only the signature gives it away.
    ForgeSignature,
    /// A middle event left out, hiding a step of the history: the next event's entry names
    /// the missing one as its predecessor.
    OmitMiddle,
    /// The last event left out, as if the history stopped early: the chain holds, but the
    /// checkpoint's shipment map names another head.
    OmitLast,
    /// The first event's block time a millisecond earlier: its entry hash changes, so the next
    /// entry no longer chains to it.
    Retime,
    /// The first event's block height one lower: the same.
    Reheight,
    /// A disclosure of the buyer's name, under a made-up salt, that does not open the
    /// registration's commitment.
    FalseDisclosure,
}

impl Tampering {
    /// A short name, for screenshots.
    pub fn name(self) -> &'static str {
        match self {
            Tampering::FlipByte => "flip-byte",
            Tampering::ForgeSignature => "forge-signature",
            Tampering::OmitMiddle => "omit-middle",
            Tampering::OmitLast => "omit-last",
            Tampering::Retime => "retime",
            Tampering::Reheight => "reheight",
            Tampering::FalseDisclosure => "false-disclosure",
        }
    }

    /// The first check of docs/PROTOCOL.md §14.2 the tampered bundle fails.
    pub fn expected_check(self) -> &'static str {
        match self {
            Tampering::FlipByte => "event.id",
            Tampering::ForgeSignature => "event.signature",
            Tampering::OmitMiddle | Tampering::Retime | Tampering::Reheight => "event.chain",
            Tampering::OmitLast => "bundle.complete",
            Tampering::FalseDisclosure => "disclosure.commitment",
        }
    }

    /// Where that check fails, for a bundle of `events` events before tampering: the
    /// event's position in the tampered bundle (the disclosure's, for a disclosure check), or
    /// `None` for a check of the whole bundle.
    pub fn expected_index(self, events: usize) -> Option<usize> {
        match self {
            Tampering::FlipByte | Tampering::ForgeSignature | Tampering::FalseDisclosure => Some(0),
            // The event after the omitted one moves into its place.
            Tampering::OmitMiddle => Some(middle(events)),
            Tampering::OmitLast => None,
            Tampering::Retime | Tampering::Reheight => Some(1),
        }
    }

    /// The bundle, changed.
    pub fn apply(self, mut bundle: Bundle) -> anyhow::Result<Bundle> {
        let count = bundle.events.len();
        ensure!(
            count >= 3,
            "a bundle of {count} events has no middle to tamper with"
        );
        let first = &mut bundle.events[0];
        match self {
            Tampering::FlipByte | Tampering::ForgeSignature => {
                let last = first.bytes.last_mut().context("an event with no bytes")?;
                *last ^= 0x01;
                if let Tampering::ForgeSignature = self {
                    let decoded =
                        EncodedEvent::decode(&first.bytes).context("the flipped bytes")?;
                    first.event_id = decoded.id();
                    first.event = decoded.into_event();
                }
            }
            Tampering::OmitMiddle => {
                bundle.events.remove(middle(count));
            }
            Tampering::OmitLast => {
                bundle.events.pop();
            }
            Tampering::Retime => {
                first.time = Timestamp(first.time.0.checked_sub(1).context("a time of 0")?);
            }
            Tampering::Reheight => {
                first.height = first.height.checked_sub(1).context("a height of 0")?;
            }
            Tampering::FalseDisclosure => {
                let event_id = first.event_id;
                bundle.disclosures.push(Disclosure::new(
                    event_id,
                    PersonalField::BuyerName,
                    "Not The Buyer",
                    Salt([7; 32]),
                ));
            }
        }
        Ok(bundle)
    }
}

/// The event [`Tampering::OmitMiddle`] leaves out: neither the first nor the last.
fn middle(events: usize) -> usize {
    events / 2
}

/// An HTTP proxy on 127.0.0.1 in front of a node that passes every request through and
/// tampers with shipment bundles.
pub struct TamperProxy {
    /// Its base URL.
    pub url: String,
    /// Bundles it changed.
    pub tampered: Arc<AtomicUsize>,
}

impl TamperProxy {
    pub async fn start(upstream: &str, tampering: Tampering) -> anyhow::Result<TamperProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let tampered = Arc::new(AtomicUsize::new(0));
        let http = reqwest::Client::builder()
            .timeout(RELAY_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let (upstream, count) = (upstream.to_owned(), tampered.clone());
        // The task ends with the test's runtime.
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (http, upstream, count) = (http.clone(), upstream.clone(), count.clone());
                tokio::spawn(async move {
                    let _ = relay(socket, &http, &upstream, tampering, &count).await;
                });
            }
        });
        Ok(TamperProxy { url, tampered })
    }
}

/// Serves one request (the proxy answers `Connection: close`, so one per connection).
async fn relay(
    mut socket: TcpStream,
    http: &reqwest::Client,
    upstream: &str,
    tampering: Tampering,
    tampered: &AtomicUsize,
) -> anyhow::Result<()> {
    let head = read_head(&mut socket).await?;
    let mut words = head.lines().next().unwrap_or_default().split_whitespace();
    let (method, target) = (
        words.next().unwrap_or_default(),
        words.next().unwrap_or("/"),
    );
    let method = match method {
        "GET" => Method::GET,
        "HEAD" => Method::HEAD,
        // The explorer only reads.
        _ => {
            let refusal = "HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\
                           connection: close\r\n\r\n";
            return Ok(socket.write_all(refusal.as_bytes()).await?);
        }
    };
    let response = http
        .request(method, format!("{upstream}{target}"))
        .send()
        .await?;
    let status = response.status();
    let headers = response.headers().clone();
    let mut body = response.bytes().await?.to_vec();
    let path = target.split('?').next().unwrap_or_default();
    if status.is_success() && path.starts_with("/v1/shipments/") && path.ends_with("/bundle") {
        let bundle: Bundle = serde_json::from_slice(&body)?;
        body = serde_json::to_vec(&tampering.apply(bundle)?)?;
        tampered.fetch_add(1, Ordering::SeqCst);
    }
    let mut answer = format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    for (name, value) in &headers {
        let skip = [
            "content-length",
            "transfer-encoding",
            "connection",
            "keep-alive",
        ];
        if !skip.contains(&name.as_str()) {
            answer.push_str(&format!(
                "{name}: {}\r\n",
                value.to_str().unwrap_or_default()
            ));
        }
    }
    answer.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    socket.write_all(answer.as_bytes()).await?;
    socket.write_all(&body).await?;
    Ok(socket.shutdown().await?)
}

/// The request line and headers, up to the blank line.
async fn read_head(socket: &mut TcpStream) -> anyhow::Result<String> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        ensure!(head.len() < REQUEST_HEAD_BYTES_MAX, "request head too long");
        let read = tokio::time::timeout(RELAY_TIMEOUT, socket.read(&mut chunk)).await??;
        ensure!(read > 0, "the connection closed before a request");
        head.extend_from_slice(&chunk[..read]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}
