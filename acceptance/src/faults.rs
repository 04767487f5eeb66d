//! A fault-injecting HTTP/1.1 proxy on loopback in front of a real [`crate::registry::Registry`]
//! (issue 14, goal 4): connection resets, 502/503, 429 with `Retry-After`, truncated bodies, stalls
//! longer than the client's read timeout and a 401 in the middle of a push, chosen per request by a
//! seeded [`Plan`].
//!
//! The proxy answers one request per client connection (it asks the registry for `Connection: close`
//! and passes the registry's `Connection: close` on), so every request is its own decision point. The
//! `Host` header is forwarded unchanged, so the registry's `Location` headers point back at the proxy.
//!
//! ```no_run
//! use cnb_acceptance::faults::{FaultProxy, Plan};
//! use cnb_acceptance::registry::{Registry, RegistryOptions};
//! let reg = Registry::start(RegistryOptions::plain());
//! let proxy = FaultProxy::start(reg.port());
//! proxy.set_plan(Plan::sporadic(7, 20, 3));
//! println!("push to {}/app:v1", proxy.host());
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// The request is read, then the connection is reset (RST) without an answer.
    Reset,
    /// `502 Bad Gateway` (a proxy in front of the registry failed).
    BadGateway,
    /// `503 Service Unavailable`.
    Unavailable,
    /// `429 Too Many Requests` with `Retry-After: 1`.
    TooManyRequests,
    /// The registry's answer is forwarded up to half of its body (or half of its head when it has no
    /// body), then the connection is reset. GET requests only.
    Truncate,
    /// The request is read and never answered; the connection stays open until the client gives up
    /// (or [`STALL_LIMIT`] passes).
    Stall,
    /// `401 Unauthorized` with a `WWW-Authenticate` challenge, on upload requests only (a token that
    /// expired mid-push).
    Unauthorized,
}

impl Fault {
    /// Every fault, in a fixed order.
    pub const ALL: [Fault; 7] = [
        Fault::Reset,
        Fault::BadGateway,
        Fault::Unavailable,
        Fault::TooManyRequests,
        Fault::Truncate,
        Fault::Stall,
        Fault::Unauthorized,
    ];

    /// Whether this fault can hit `method path` (truncation needs a response worth cutting, 401 an
    /// upload).
    fn applies(self, method: &str, path: &str) -> bool {
        match self {
            Fault::Truncate => method == "GET",
            Fault::Unauthorized => {
                matches!(method, "POST" | "PUT" | "PATCH")
                    && (path.contains("/blobs/uploads/") || path.contains("/manifests/"))
            }
            _ => true,
        }
    }
}

/// How long a stalled connection is held at most.
pub const STALL_LIMIT: Duration = Duration::from_secs(120);

/// Which requests get which fault: request `n` (counted from 0 since the plan was set) is faulted when
/// the seeded generator says so, at most `max_faults` times.
#[derive(Debug, Clone)]
pub struct Plan {
    seed: u64,
    /// Percent of eligible requests faulted.
    rate: u32,
    /// Faults to choose from.
    kinds: Vec<Fault>,
    /// At most this many faults (`u32::MAX`: a storm that never ends).
    max_faults: u32,
    /// Requests before this index are never faulted.
    skip: u32,
}

impl Plan {
    /// No faults: a transparent proxy.
    pub fn clean() -> Plan {
        Plan {
            seed: 0,
            rate: 0,
            kinds: Vec::new(),
            max_faults: 0,
            skip: 0,
        }
    }

    /// `rate` percent of requests get a random fault of any kind, at most `max_faults` in all.
    pub fn sporadic(seed: u64, rate: u32, max_faults: u32) -> Plan {
        Plan {
            seed,
            rate,
            kinds: Fault::ALL.to_vec(),
            max_faults,
            skip: 0,
        }
    }

    /// Every eligible request from the `skip`-th on gets `fault`, forever.
    pub fn storm(fault: Fault, skip: u32) -> Plan {
        Plan {
            seed: 0,
            rate: 100,
            kinds: vec![fault],
            max_faults: u32::MAX,
            skip,
        }
    }

    /// Only these kinds (keeps `rate`, `max_faults`).
    pub fn kinds(mut self, kinds: &[Fault]) -> Plan {
        self.kinds = kinds.to_vec();
        self
    }
}

/// One request the proxy saw and what it did with it.
#[derive(Debug, Clone)]
pub struct Event {
    /// `METHOD /path`.
    pub request: String,
    /// The fault injected, if any.
    pub fault: Option<Fault>,
}

struct State {
    plan: Plan,
    rng: u64,
    requests: u32,
    faults: u32,
    events: Vec<Event>,
}

impl State {
    fn decide(&mut self, method: &str, path: &str) -> Option<Fault> {
        let n = self.requests;
        self.requests += 1;
        let plan = &self.plan;
        if plan.kinds.is_empty() || n < plan.skip || self.faults >= plan.max_faults {
            return None;
        }
        let roll = splitmix(&mut self.rng);
        if (roll % 100) as u32 >= plan.rate {
            return None;
        }
        let eligible: Vec<Fault> = plan
            .kinds
            .iter()
            .copied()
            .filter(|f| f.applies(method, path))
            .collect();
        if eligible.is_empty() {
            return None;
        }
        let pick = eligible[((roll >> 32) as usize) % eligible.len()];
        self.faults += 1;
        Some(pick)
    }
}

/// The seeded generator (SplitMix64).
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A running proxy; stopped on drop.
pub struct FaultProxy {
    port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    /// Listens on `127.0.0.1:0` and forwards to `127.0.0.1:upstream_port`, with [`Plan::clean`].
    pub fn start(upstream_port: u16) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fault proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let state = Arc::new(Mutex::new(State {
            plan: Plan::clean(),
            rng: 0,
            requests: 0,
            faults: 0,
            events: Vec::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (state2, stop2) = (state.clone(), stop.clone());
        let upstream = SocketAddr::from(([127, 0, 0, 1], upstream_port));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let (state, stop) = (state2.clone(), stop2.clone());
                std::thread::spawn(move || serve(stream, upstream, &state, &stop));
            }
        });
        FaultProxy { port, state, stop }
    }

    /// `127.0.0.1:PORT` of the proxy (what phases are pointed at).
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Replaces the plan and clears the request count and the event log.
    pub fn set_plan(&self, plan: Plan) {
        let mut s = self.state.lock().expect("proxy state");
        s.rng = plan.seed;
        s.plan = plan;
        s.requests = 0;
        s.faults = 0;
        s.events.clear();
    }

    /// What happened since the plan was set.
    pub fn events(&self) -> Vec<Event> {
        self.state.lock().expect("proxy state").events.clone()
    }

    /// The faults injected since the plan was set.
    pub fn injected(&self) -> Vec<Fault> {
        self.events().iter().filter_map(|e| e.fault).collect()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// One request as read from the client: its head (request line and headers, `\r\n\r\n` included) and
/// its body bytes exactly as sent (chunked framing kept).
struct Request {
    method: String,
    path: String,
    head: Vec<String>,
    body: Vec<u8>,
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut head = vec![line.trim_end().to_string()];
    let (mut length, mut chunked) = (0usize, false);
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end().to_string();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            let k = k.trim().to_ascii_lowercase();
            if k == "content-length" {
                length = v.trim().parse().ok()?;
            } else if k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked") {
                chunked = true;
            } else if k == "connection" || k == "keep-alive" {
                continue;
            }
        }
        head.push(h);
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line).ok()?;
            body.extend_from_slice(size_line.as_bytes());
            let size = usize::from_str_radix(size_line.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0u8; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            body.extend_from_slice(&chunk);
            if size == 0 {
                break;
            }
        }
    } else {
        body.resize(length, 0);
        reader.read_exact(&mut body).ok()?;
    }
    head.push("Connection: close".to_string());
    Some(Request {
        method,
        path,
        head,
        body,
    })
}

fn serve(client: TcpStream, upstream: SocketAddr, state: &Mutex<State>, stop: &AtomicBool) {
    let Ok(read_half) = client.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let Some(req) = read_request(&mut reader) else {
        return;
    };
    let fault = {
        let Ok(mut s) = state.lock() else { return };
        let fault = s.decide(&req.method, &req.path);
        s.events.push(Event {
            request: format!("{} {}", req.method, req.path),
            fault,
        });
        fault
    };
    let mut client = client;
    match fault {
        None => {
            if let Some(resp) = forward(&req, upstream) {
                let _ = client.write_all(&resp);
            }
            let _ = client.shutdown(Shutdown::Write);
        }
        Some(Fault::Reset) => reset(client),
        Some(Fault::BadGateway) => answer(&mut client, 502, &[], "<html>502 Bad Gateway</html>"),
        Some(Fault::Unavailable) => answer(&mut client, 503, &[], "service unavailable"),
        Some(Fault::TooManyRequests) => answer(
            &mut client,
            429,
            &["Retry-After: 1", "Content-Type: application/json"],
            r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"injected rate limit"}]}"#,
        ),
        Some(Fault::Unauthorized) => answer(
            &mut client,
            401,
            &[
                "WWW-Authenticate: Basic realm=\"fault-proxy\"",
                "Content-Type: application/json",
            ],
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"injected: token expired"}]}"#,
        ),
        Some(Fault::Truncate) => {
            if let Some(resp) = forward(&req, upstream) {
                let cut = match find_body(&resp) {
                    Some(start) if resp.len() > start + 1 => start + (resp.len() - start) / 2,
                    _ => resp.len() / 2,
                };
                let _ = client.write_all(&resp[..cut]);
                let _ = client.flush();
            }
            reset(client);
        }
        Some(Fault::Stall) => {
            let _ = client.set_read_timeout(Some(Duration::from_millis(100)));
            let started = Instant::now();
            let mut buf = [0u8; 512];
            while started.elapsed() < STALL_LIMIT && !stop.load(Ordering::SeqCst) {
                match reader.read(&mut buf) {
                    Ok(0) => break, // the client gave up
                    Ok(_) => {}
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => break,
                }
            }
        }
    }
}

/// Sends the request to the registry and returns its whole answer (it closes after one).
fn forward(req: &Request, upstream: SocketAddr) -> Option<Vec<u8>> {
    let mut up = TcpStream::connect(upstream).ok()?;
    let mut head = req.head.join("\r\n");
    head.push_str("\r\n\r\n");
    up.write_all(head.as_bytes()).ok()?;
    up.write_all(&req.body).ok()?;
    let mut resp = Vec::new();
    up.read_to_end(&mut resp).ok()?;
    Some(resp)
}

fn find_body(resp: &[u8]) -> Option<usize> {
    resp.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
}

fn answer(client: &mut TcpStream, status: u16, headers: &[&str], body: &str) {
    let mut out = format!(
        "HTTP/1.1 {status} Injected\r\nContent-Length: {}\r\nConnection: close\r\nDocker-Distribution-API-Version: registry/2.0\r\n",
        body.len()
    );
    for h in headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.push_str(body);
    let _ = client.write_all(out.as_bytes());
    let _ = client.shutdown(Shutdown::Write);
}

/// Closes with RST (SO_LINGER 0) instead of FIN.
fn reset(client: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a socket we own, with a correctly sized `linger`.
    unsafe {
        libc::setsockopt(
            client.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            std::ptr::addr_of!(linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(client);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_are_deterministic_and_bounded() {
        let run = || {
            let mut s = State {
                plan: Plan::sporadic(42, 30, 4),
                rng: 42,
                requests: 0,
                faults: 0,
                events: Vec::new(),
            };
            (0..200)
                .map(|_| s.decide("GET", "/v2/a/blobs/sha256:x"))
                .collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        let n = a.iter().flatten().count();
        assert_eq!(n, 4, "{a:?}");
        assert!(
            !a.contains(&Some(Fault::Unauthorized)),
            "401 on uploads only"
        );
    }

    #[test]
    fn storms_skip_then_never_stop() {
        let mut s = State {
            plan: Plan::storm(Fault::Unavailable, 2),
            rng: 0,
            requests: 0,
            faults: 0,
            events: Vec::new(),
        };
        let got: Vec<_> = (0..6).map(|_| s.decide("HEAD", "/v2/x")).collect();
        assert_eq!(got[..2], [None, None]);
        assert!(got[2..].iter().all(|f| *f == Some(Fault::Unavailable)));
    }
}
