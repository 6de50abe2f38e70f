//! An S3 error-injection proxy on loopback, in front of a real Garage.
//!
//! It forwards HTTP to the upstream and, for a seeded share of requests,
//! misbehaves the way networks and overloaded stores do: answers 500 or 503
//! itself (S3-style XML, never reaching the store), resets the connection
//! before forwarding, answers slowly (the store's answer is held back), or
//! cuts a response off half-way through its body and resets.
//!
//! To decide per request rather than per connection, the proxy forwards
//! each request with `Connection: close`: the store closes the connection
//! after answering, and the client opens a new one for its next request.
//! It runs on its own thread with its own tokio runtime, so blocking tests
//! can use it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Shares of requests that get each fault (the rest pass unharmed).
#[derive(Debug, Clone)]
pub struct Faults {
    pub seed: u64,
    pub error_500: f64,
    pub error_503: f64,
    pub reset: f64,
    /// Answered after `slow_for`.
    pub slow: f64,
    pub slow_for: Duration,
    /// The answer's body cut off after `cut_after` bytes, then a reset.
    pub cut: f64,
    pub cut_after: usize,
}

/// What was injected so far.
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicUsize,
    pub errors: AtomicUsize,
    pub resets: AtomicUsize,
    pub slow: AtomicUsize,
    pub cuts: AtomicUsize,
}

impl Stats {
    pub fn get(counter: &AtomicUsize) -> usize {
        counter.load(Ordering::SeqCst)
    }
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    None,
    Status(u16),
    Reset,
    Slow(Duration),
    Cut(usize),
}

pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`, to use as the S3 endpoint.
    pub url: String,
    pub stats: Arc<Stats>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (an `http://host:port` URL).
    pub fn start(upstream: &str, faults: Faults) -> FaultProxy {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("upstream is http://IP:PORT");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stats = Arc::new(Stats::default());
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let thread_stats = stats.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("proxy runtime");
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).unwrap();
                tokio::select! {
                    _ = serve(listener, upstream, faults, thread_stats) => {}
                    _ = stopped => {}
                }
            });
            runtime.shutdown_timeout(Duration::from_secs(1));
        });
        FaultProxy {
            url,
            stats,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve(listener: TcpListener, upstream: SocketAddr, faults: Faults, stats: Arc<Stats>) {
    let rng = Arc::new(Mutex::new(StdRng::seed_from_u64(faults.seed)));
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let fault = {
            let mut rng = rng.lock().unwrap();
            choose(&faults, rng.random::<f64>())
        };
        let stats = stats.clone();
        tokio::spawn(async move {
            let _ = handle(client, upstream, fault, &stats).await;
        });
    }
}

fn choose(f: &Faults, x: f64) -> Fault {
    let table = [
        (f.error_500, Fault::Status(500)),
        (f.error_503, Fault::Status(503)),
        (f.reset, Fault::Reset),
        (f.slow, Fault::Slow(f.slow_for)),
        (f.cut, Fault::Cut(f.cut_after)),
    ];
    let mut edge = 0.0;
    for (share, fault) in table {
        edge += share;
        if x < edge {
            return fault;
        }
    }
    Fault::None
}

async fn handle(
    mut client: TcpStream,
    upstream: SocketAddr,
    fault: Fault,
    stats: &Stats,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let head_end = loop {
        let mut chunk = [0u8; 8192];
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(()); // an idle connection closed by the client
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    stats.requests.fetch_add(1, Ordering::SeqCst);
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let body_start = buf[head_end..].to_vec();
    match fault {
        Fault::Reset => {
            stats.resets.fetch_add(1, Ordering::SeqCst);
            client.set_zero_linger()?;
            drop(client);
            Ok(())
        }
        Fault::Status(code) => {
            stats.errors.fetch_add(1, Ordering::SeqCst);
            // Read what the client sends, so it sees our answer, not a reset.
            let mut left = content_length(&head).saturating_sub(body_start.len());
            let mut sink = [0u8; 65536];
            while left > 0 {
                let read = tokio::time::timeout(Duration::from_secs(5), client.read(&mut sink));
                match read.await {
                    Ok(Ok(n)) if n > 0 => left = left.saturating_sub(n),
                    _ => break,
                }
            }
            let (reason, s3code) = if code == 503 {
                ("Service Unavailable", "SlowDown")
            } else {
                ("Internal Server Error", "InternalError")
            };
            let body = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{s3code}</Code>\
                 <Message>injected by the test proxy</Message></Error>"
            );
            let answer = format!(
                "HTTP/1.1 {code} {reason}\r\nContent-Type: application/xml\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            client.write_all(answer.as_bytes()).await?;
            client.shutdown().await
        }
        Fault::None | Fault::Slow(_) | Fault::Cut(_) => {
            let mut server = TcpStream::connect(upstream).await?;
            server.write_all(close_after(&head).as_bytes()).await?;
            server.write_all(&body_start).await?;
            relay(client, server, fault, stats).await
        }
    }
}

/// Copies the request on and the answer back; `Slow` holds the answer back,
/// `Cut` stops it part-way and resets the client's connection.
async fn relay(
    client: TcpStream,
    mut server: TcpStream,
    fault: Fault,
    stats: &Stats,
) -> std::io::Result<()> {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.split();
    let upload = async {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
        let _ = server_write.shutdown().await;
    };
    let download = async {
        let mut first = [0u8; 65536];
        let n = server_read.read(&mut first).await?;
        if let Fault::Slow(d) = fault {
            stats.slow.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(d).await;
        }
        if let Fault::Cut(after) = fault {
            let text = String::from_utf8_lossy(&first[..n]);
            let head_len = text.find("\r\n\r\n").map(|i| i + 4).unwrap_or(n);
            let body_len = content_length(&text[..head_len]);
            // Only answers with a body worth cutting: whole objects and
            // ranges of them.
            let ok = text.starts_with("HTTP/1.1 200") || text.starts_with("HTTP/1.1 206");
            if ok && body_len > after {
                stats.cuts.fetch_add(1, Ordering::SeqCst);
                let mut sent = 0;
                let mut data = first[..n].to_vec();
                while sent + data.len() < head_len + after {
                    client_write.write_all(&data).await?;
                    sent += data.len();
                    let mut more = [0u8; 65536];
                    let m = server_read.read(&mut more).await?;
                    if m == 0 {
                        break;
                    }
                    data = more[..m].to_vec();
                }
                let keep = (head_len + after).saturating_sub(sent).min(data.len());
                client_write.write_all(&data[..keep]).await?;
                client_write.flush().await?;
                // Closing with linger 0 sends a reset, as a dying peer does.
                client_write.as_ref().set_zero_linger()?;
                return Ok(());
            }
        }
        client_write.write_all(&first[..n]).await?;
        tokio::io::copy(&mut server_read, &mut client_write).await?;
        client_write.shutdown().await
    };
    // The answer decides when the exchange is over.
    tokio::select! {
        r = download => r,
        _ = async { upload.await; std::future::pending::<()>().await } => Ok(()),
    }
}

fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0)
}

/// The request head with `Connection: close` instead of any Connection header.
fn close_after(head: &str) -> String {
    let mut out = String::new();
    for line in head.trim_end_matches("\r\n").split("\r\n") {
        if line
            .split_once(':')
            .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("connection"))
        {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    out
}
