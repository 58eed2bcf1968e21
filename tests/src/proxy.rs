//! A TCP proxy on one directed link between two nodes, which a test can cut, delay or make
//! one-way: the network faults of the rig are made on real sockets.
//!
//! Every node dials its peers through the rig: node `i`'s configuration names, for peer `j`,
//! the address of the proxy of the link `i → j`, which forwards to wherever `j` listens now
//! (a restarted node listens on a new port; the proxy follows it). Bytes that `i` writes flow
//! *forward*; what `j` answers on the same connection flows *back*. The noise handshake runs
//! end to end through the proxy, so peers still authenticate each other.
//!
//! A link is `Open`, `Cut` (every connection is shut down and new ones are closed at once),
//! or drops one direction's bytes while the connection stays up (a one-way partition: what
//! is written is lost, as on a link that loses everything one way). A delay holds every chunk
//! before it is forwarded.

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Bytes read at once by a pump.
const CHUNK_BYTES: usize = 16 * 1024;

/// How long a proxy waits to reach its target before giving up on a connection.
const CONNECT_TIMEOUT_MS: u64 = 2_000;

/// Most connections a proxy keeps at once; libp2p opens one or two per peer, so more means a
/// dialer gone wrong, and refusing them bounds the rig's threads.
const CONNECTIONS_MAX: usize = 16;

/// What a link does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkMode {
    /// No connection: existing ones are shut down, new ones closed at once.
    pub cut: bool,
    /// Bytes from the dialer to the target are dropped.
    pub drop_forward: bool,
    /// Bytes from the target back to the dialer are dropped.
    pub drop_back: bool,
    /// Held before each chunk is forwarded, both ways.
    pub delay_ms: u64,
}

impl LinkMode {
    /// Whether the link passes everything at once.
    pub fn is_open(&self) -> bool {
        *self == LinkMode::default()
    }
}

/// The state shared by a proxy's threads.
#[derive(Debug, Default)]
struct Shared {
    mode: Mutex<LinkMode>,
    target: Mutex<Option<SocketAddr>>,
    /// Both ends of every live connection, by number, to shut them down on a cut.
    connections: Mutex<Vec<(u64, TcpStream, TcpStream)>>,
    next_connection: AtomicU64,
    closed: AtomicBool,
}

/// A lock that a panicked pump cannot poison for the others: the data is plain values.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn shut_all(&self) {
        for (_, a, b) in lock(&self.connections).drain(..) {
            let _ = a.shutdown(Shutdown::Both);
            let _ = b.shutdown(Shutdown::Both);
        }
    }
}

/// One directed link's proxy: a listener held for the whole test (so its port cannot be
/// taken by anyone else) and the threads that pump its connections.
#[derive(Debug)]
pub struct Proxy {
    listen: SocketAddr,
    shared: Arc<Shared>,
}

impl Proxy {
    /// Binds a loopback listener on a port the system picks and starts accepting.
    pub fn start() -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let listen = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let accepting = shared.clone();
        std::thread::Builder::new()
            .name(format!("proxy-{}", listen.port()))
            .spawn(move || accept_loop(listener, accepting))?;
        Ok(Proxy { listen, shared })
    }

    /// Where the dialer connects.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
    }

    /// Points the proxy at the target's current address (`None` while it is down). Existing
    /// connections go on to the old address until they end.
    pub fn set_target(&self, target: Option<SocketAddr>) {
        *lock(&self.shared.target) = target;
    }

    /// The link's mode now.
    pub fn mode(&self) -> LinkMode {
        *lock(&self.shared.mode)
    }

    /// Sets the link's mode; a cut shuts down every connection at once.
    pub fn set_mode(&self, mode: LinkMode) {
        *lock(&self.shared.mode) = mode;
        if mode.cut {
            self.shared.shut_all();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.shut_all();
        // Wakes the accept loop, which sees `closed` and returns.
        let _ = TcpStream::connect_timeout(&self.listen, Duration::from_millis(500));
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for incoming in listener.incoming() {
        if shared.closed.load(Ordering::SeqCst) {
            return;
        }
        let Ok(dialer) = incoming else { continue };
        let mode = *lock(&shared.mode);
        let target = *lock(&shared.target);
        let (Some(target), false) = (target, mode.cut) else {
            let _ = dialer.shutdown(Shutdown::Both);
            continue;
        };
        if lock(&shared.connections).len() >= CONNECTIONS_MAX {
            let _ = dialer.shutdown(Shutdown::Both);
            continue;
        }
        let Ok(upstream) =
            TcpStream::connect_timeout(&target, Duration::from_millis(CONNECT_TIMEOUT_MS))
        else {
            let _ = dialer.shutdown(Shutdown::Both);
            continue;
        };
        let _ = dialer.set_nodelay(true);
        let _ = upstream.set_nodelay(true);
        if let Err(error) = pump_pair(&shared, dialer, upstream) {
            eprintln!("rig proxy {target}: {error}");
        }
    }
}

/// Starts the two pumps of one connection.
fn pump_pair(shared: &Arc<Shared>, dialer: TcpStream, upstream: TcpStream) -> std::io::Result<()> {
    let id = shared.next_connection.fetch_add(1, Ordering::Relaxed);
    lock(&shared.connections).push((id, dialer.try_clone()?, upstream.try_clone()?));
    let forward = (dialer.try_clone()?, upstream.try_clone()?);
    let back = (upstream, dialer);
    for (direction, (from, to)) in [(Direction::Forward, forward), (Direction::Back, back)] {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("proxy-pump".into())
            .spawn(move || pump(&shared, id, direction, from, to))?;
    }
    Ok(())
}

#[derive(Debug, Clone, Copy)]
enum Direction {
    Forward,
    Back,
}

/// Copies `from` to `to` until either end closes, obeying the link's mode chunk by chunk.
fn pump(shared: &Shared, id: u64, direction: Direction, mut from: TcpStream, mut to: TcpStream) {
    let mut buffer = vec![0u8; CHUNK_BYTES];
    loop {
        let read = match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mode = *lock(&shared.mode);
        if mode.cut {
            break;
        }
        let dropped = match direction {
            Direction::Forward => mode.drop_forward,
            Direction::Back => mode.drop_back,
        };
        if dropped {
            continue;
        }
        if mode.delay_ms > 0 {
            std::thread::sleep(Duration::from_millis(mode.delay_ms));
        }
        if to.write_all(&buffer[..read]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
    // The first pump to end forgets the connection; the list stays as long as the live ones.
    lock(&shared.connections).retain(|(other, _, _)| *other != id);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on loopback, answering every connection.
    fn echo() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut stream = stream;
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = stream.read(&mut buf) {
                        if n == 0 || stream.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    fn round_trip(proxy: &Proxy, text: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut stream = TcpStream::connect(proxy.listen_addr())?;
        stream.set_read_timeout(Some(Duration::from_millis(500)))?;
        stream.write_all(text)?;
        let mut answer = vec![0u8; text.len()];
        stream.read_exact(&mut answer)?;
        Ok(answer)
    }

    #[test]
    fn an_open_link_forwards_both_ways_and_a_cut_one_refuses() {
        let proxy = Proxy::start().expect("proxy");
        proxy.set_target(Some(echo()));
        assert_eq!(round_trip(&proxy, b"hello").expect("open"), b"hello");
        proxy.set_mode(LinkMode {
            cut: true,
            ..LinkMode::default()
        });
        assert!(round_trip(&proxy, b"hello").is_err(), "a cut link answered");
        proxy.set_mode(LinkMode::default());
        assert_eq!(round_trip(&proxy, b"again").expect("healed"), b"again");
    }

    #[test]
    fn a_one_way_link_loses_what_is_sent_the_dropped_way() {
        let proxy = Proxy::start().expect("proxy");
        proxy.set_target(Some(echo()));
        proxy.set_mode(LinkMode {
            drop_back: true,
            ..LinkMode::default()
        });
        assert!(round_trip(&proxy, b"lost").is_err(), "the answer came back");
        proxy.set_mode(LinkMode {
            drop_forward: true,
            ..LinkMode::default()
        });
        assert!(
            round_trip(&proxy, b"lost").is_err(),
            "the request got through"
        );
    }

    #[test]
    fn a_cut_shuts_down_a_live_connection() {
        let proxy = Proxy::start().expect("proxy");
        proxy.set_target(Some(echo()));
        let mut stream = TcpStream::connect(proxy.listen_addr()).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        stream.write_all(b"x").expect("write");
        let mut one = [0u8; 1];
        stream.read_exact(&mut one).expect("echo");
        proxy.set_mode(LinkMode {
            cut: true,
            ..LinkMode::default()
        });
        let _ = stream.write_all(b"y");
        let read = stream.read(&mut one);
        assert!(matches!(read, Ok(0) | Err(_)), "still connected: {read:?}");
    }
}
