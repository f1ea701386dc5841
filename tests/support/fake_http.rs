//! A fake HTTP sink on loopback for pushers (InfluxDB, remote write):
//! answers each request with a scripted status, or holds it unanswered,
//! and records what it read.

use super::free_port;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;

/// A TCP port with nothing listening (connections are refused).
pub(crate) fn dead_tcp_port() -> u16 {
    free_port()
}

/// One request as the fake server read it.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    /// The request line and headers, up to and including the blank line.
    pub(crate) head: String,
    pub(crate) body: Vec<u8>,
}

impl Received {
    /// The body as text; fails the test if it is not UTF-8.
    pub(crate) fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("a UTF-8 request body")
    }
}

/// A fake HTTP server: answers each request with the current status, or,
/// with status 0, reads the request and never answers (holding the
/// connection until released). Records the requests it answered 2xx to,
/// and those it answered otherwise.
pub(crate) struct FakeHttp {
    addr: SocketAddr,
    status: Arc<AtomicU16>,
    accepted: Arc<Mutex<Vec<Received>>>,
    refused: Arc<Mutex<Vec<Received>>>,
    /// Connections held without an answer (status 0).
    held: Arc<Mutex<Vec<TcpStream>>>,
    /// Tells the test that a request is being held.
    holding: mpsc::Receiver<()>,
    stop: Arc<AtomicBool>,
}

impl FakeHttp {
    /// Serves on a fresh loopback port, answering `status` (0: hold).
    pub(crate) fn start(status: u16) -> FakeHttp {
        Self::on(TcpListener::bind("127.0.0.1:0").unwrap(), status)
    }

    /// Serves on `listener`, answering `status` (0: hold).
    pub(crate) fn on(listener: TcpListener, status: u16) -> FakeHttp {
        let addr = listener.local_addr().unwrap();
        let (hold_tx, holding) = mpsc::channel();
        let server = FakeHttp {
            addr,
            status: Arc::new(AtomicU16::new(status)),
            accepted: Arc::default(),
            refused: Arc::default(),
            held: Arc::default(),
            holding,
            stop: Arc::default(),
        };
        let (status, accepted, refused, held, stop) = (
            Arc::clone(&server.status),
            Arc::clone(&server.accepted),
            Arc::clone(&server.refused),
            Arc::clone(&server.held),
            Arc::clone(&server.stop),
        );
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let Some(request) = read_request(&mut stream) else {
                    continue;
                };
                match status.load(Ordering::SeqCst) {
                    0 => {
                        held.lock().unwrap().push(stream);
                        let _ = hold_tx.send(());
                    }
                    code => {
                        // Recorded before answering: once the pusher has
                        // its answer, the test sees the request.
                        if (200..300).contains(&code) {
                            accepted.lock().unwrap().push(request);
                        } else {
                            refused.lock().unwrap().push(request);
                        }
                        let _ = write!(
                            stream,
                            "HTTP/1.1 {code} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno"
                        );
                    }
                }
            }
        });
        server
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The status later requests are answered with (0: hold them).
    pub(crate) fn set_status(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    /// Waits (30 s at most) until a request is being held; fails with
    /// `what` if none is.
    pub(crate) fn wait_held(&self, what: &str) {
        self.holding
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{what}: {e}"));
    }

    /// Closes the held connections (the client reads EOF).
    pub(crate) fn release(&self) {
        self.held.lock().unwrap().clear();
    }

    /// The requests answered 2xx, in the order received.
    pub(crate) fn accepted(&self) -> Vec<Received> {
        self.accepted.lock().unwrap().clone()
    }

    /// The requests answered with another status, in the order received.
    pub(crate) fn refused(&self) -> Vec<Received> {
        self.refused.lock().unwrap().clone()
    }
}

impl Drop for FakeHttp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.release();
        let _ = TcpStream::connect(self.addr); // wakes the accept loop
    }
}

/// Reads one HTTP request with a `Content-Length` body.
fn read_request(stream: &mut TcpStream) -> Option<Received> {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let mut data = Vec::new();
    let mut chunk = [0u8; 8192];
    let (end, length) = loop {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&chunk[..n]);
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..i]).to_string();
            let length = head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())?
            })?;
            break (i + 4, length);
        }
    };
    while data.len() < end + length {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&chunk[..n]);
    }
    Some(Received {
        head: String::from_utf8_lossy(&data[..end]).to_string(),
        body: data[end..end + length].to_vec(),
    })
}
