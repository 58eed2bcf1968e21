//! A tamper proxy: real sockets on 127.0.0.1, in front of a node, passing every request
//! through and changing one bit of every shipment bundle it relays.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context as _};
use custody_ledger::bundle::Bundle;
use custody_ledger::event::EncodedEvent;
use reqwest::Method;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// Deadline of reading a request and of the node's answer.
const RELAY_TIMEOUT: Duration = Duration::from_secs(60);
/// Requests the proxy reads are GETs: their head fits in this.
const REQUEST_HEAD_BYTES_MAX: usize = 64 * 1024;

/// How the proxy changes the first event of a bundle.
#[derive(Debug, Clone, Copy)]
pub enum Tampering {
    /// One bit of the last byte of the event's canonical bytes (inside its signature): the
    /// bytes still decode, but no longer hash to the bundle's `event_id`.
    FlipByte,
    /// The same bit, with the bundle's `event_id` and readable `event` made to match the
    /// changed bytes, as a lying node would: only the signature gives it away.
    ForgeSignature,
}

impl Tampering {
    /// The first check of docs/PROTOCOL.md §14.2 the tampered bundle fails.
    pub fn expected_check(self) -> &'static str {
        match self {
            Tampering::FlipByte => "event.id",
            Tampering::ForgeSignature => "event.signature",
        }
    }

    /// The bundle with its first event changed.
    pub fn apply(self, mut bundle: Bundle) -> anyhow::Result<Bundle> {
        let first = bundle
            .events
            .first_mut()
            .context("a bundle with no event")?;
        let last = first.bytes.last_mut().context("an event with no bytes")?;
        *last ^= 0x01;
        if let Tampering::ForgeSignature = self {
            let decoded = EncodedEvent::decode(&first.bytes).context("the flipped bytes")?;
            first.event_id = decoded.id;
            first.event = decoded.event;
        }
        Ok(bundle)
    }
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
