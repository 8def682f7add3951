//! `waiting-room serve` as an operator runs it: what it prints at start, what its log holds
//! when an operator's text carries line breaks, and how it stands up to slow clients, a full
//! connection table and a stop in the middle of a burst of joins.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

/// A running server and the lines it has written (banner and log share stdout).
struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Server {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_waiting-room"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "info")
            .env_remove("WR_ADMIN_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the waiting-room binary starts");
        let stdout = child.stdout.take().expect("stdout");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            // Split on '\n' only: a '\r' left in a line is what a terminal would show as a
            // line of its own, and the checks below look for it.
            for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
                if send
                    .send(String::from_utf8_lossy(&line).into_owned())
                    .is_err()
                {
                    break;
                }
            }
        });
        let mut server = Self {
            child,
            lines,
            seen: Vec::new(),
        };
        server.wait_for("admin key");
        server
    }

    /// Reads lines until one contains `text`; returns it.
    fn wait_for(&mut self, text: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("no line with {text:?} in:\n{}", self.seen.join("\n")));
            self.seen.push(line.clone());
            if line.contains(text) {
                return line;
            }
        }
    }

    fn address(&self) -> String {
        let line = self
            .seen
            .iter()
            .find(|l| l.contains("visitor page"))
            .expect("the banner names the visitor page");
        let start = line.find("http://").expect("an address") + "http://".len();
        line[start..]
            .split('/')
            .next()
            .expect("host:port")
            .to_owned()
    }

    /// One HTTP/1.1 request; returns the status line.
    fn send(&self, method: &str, path: &str, key: &str, body: &str) -> String {
        let mut stream = TcpStream::connect(self.address()).expect("connect");
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("write");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read");
        answer.lines().next().unwrap_or_default().to_owned()
    }
}

/// A log line without its colour codes.
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The value of `field=` in a log line.
fn field(line: &str, name: &str) -> u64 {
    let line = plain(line);
    let start = line
        .find(&format!("{name}="))
        .unwrap_or_else(|| panic!("no {name} in {line:?}"))
        + name.len()
        + 1;
    line[start..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{name} is not a number in {line:?}"))
}

/// Fails with a clear message when this process may not open `needed` files (each end of a
/// local connection is one): `ulimit -n` raises it, as `infra/test.sh` does.
fn assert_open_files_allow(needed: u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("/proc/self/limits");
    let soft: u64 = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse().ok())
        .expect("the open-file limit");
    assert!(
        soft >= needed,
        "this test needs {needed} open files and the limit is {soft}: run `ulimit -n {needed}` first"
    );
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_event_name_with_a_line_break_does_not_start_a_new_log_line() {
    let mut server = Server::start(&["--admin-key", "log-test-key"]);
    let body = r#"{"event_id":"crlf","name":"Sale\r\n2026-01-01T00:00:00Z  INFO forged: admin change actor=root\u001b[2J"}"#;
    let status = server.send("POST", "/admin/events", "log-test-key", body);
    assert!(status.contains(" 201 "), "{status}");
    let line = server.wait_for("crlf");
    // Nothing the name holds reached the log raw: no line starts with the forged text, and
    // the creation's own line holds it escaped.
    let forged: Vec<&String> = server
        .seen
        .iter()
        .filter(|l| l.starts_with("2026-01-01T00:00:00Z  INFO forged"))
        .collect();
    assert!(forged.is_empty(), "a forged log line: {forged:?}");
    assert!(!line.contains('\r'), "{line:?}");
    assert!(!line.contains("\u{1b}[2J"), "{line:?}");
    assert!(
        line.contains(r"Sale\r\n2026-01-01T00:00:00Z  INFO forged"),
        "{line:?}"
    );
    assert!(line.contains(r"\u{1b}[2J"), "{line:?}");
}

#[test]
fn the_admin_key_is_printed_only_when_generated() {
    let given = Server::start(&["--admin-key", "operator-chosen-key"]);
    let banner = given.seen.join("\n");
    assert!(!banner.contains("operator-chosen-key"), "{banner}");
    assert!(banner.contains("admin key      as given"), "{banner}");

    let generated = Server::start(&[]);
    let line = generated
        .seen
        .iter()
        .find(|l| l.contains("admin key"))
        .expect("an admin key line");
    let key = line
        .split_whitespace()
        .nth(2)
        .expect("the key after 'admin key'");
    assert_eq!(key.len(), 32, "{line}");
    assert!(key.bytes().all(|b| b.is_ascii_hexdigit()), "{line}");
    assert!(line.contains("generated"), "{line}");
}

#[test]
fn a_gate_needs_an_upstream_it_can_speak_to() {
    let refused = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_waiting-room"))
            .args(["serve", "--listen", "127.0.0.1:0", "--admin-key", "k"])
            .args(args)
            .env_remove("WR_ADMIN_KEY")
            .output()
            .expect("the waiting-room binary runs");
        assert!(!output.status.success(), "{args:?} started");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let alone = refused(&["--gate-listen", "127.0.0.1:0"]);
    assert!(alone.contains("--upstream"), "{alone}");
    let tls = refused(&[
        "--gate-listen",
        "127.0.0.1:0",
        "--upstream",
        "https://app.example",
    ]);
    assert!(tls.contains("must be an http:// address"), "{tls}");
    let other = refused(&[
        "--gate-listen",
        "127.0.0.1:0",
        "--upstream",
        "http://127.0.0.1:9",
        "--gate-event",
        "nope",
    ]);
    assert!(
        other.contains("cannot point event nope at the gate"),
        "{other}"
    );
}

#[test]
fn the_banner_names_the_gate_and_what_it_guards() {
    let mut server = Server::start(&[
        "--admin-key",
        "k",
        "--gate-listen",
        "127.0.0.1:0",
        "--upstream",
        "http://127.0.0.1:9",
    ]);
    let line = server.wait_for("in front of");
    assert!(line.starts_with("  gate "), "{line}");
    assert!(
        line.contains("(event demo, in front of http://127.0.0.1:9)"),
        "{line}"
    );
}

/// 3,000 connections send half a request head and then nothing: the server closes every one
/// within its header timeout, and a visitor's request made meanwhile is answered at once.
#[test]
fn connections_holding_half_a_request_head_are_closed_at_the_header_timeout() {
    const SLOW: usize = 3_000;
    let header_timeout = Duration::from_secs(2);
    assert_open_files_allow(2 * SLOW as u64 + 200);
    let server = Server::start(&[
        "--admin-key",
        "slow-test-key",
        "--header-timeout",
        "2s",
        "--lookup-rate",
        "0",
    ]);
    let address = server.address();
    let opened = Instant::now();
    let mut slow: Vec<TcpStream> = (0..SLOW)
        .map(|_| {
            let mut stream = TcpStream::connect(&address).expect("connect");
            stream
                .write_all(
                    b"GET /serving_num?event_id=demo HTTP/1.1\r\nHost: localhost\r\nX-Wait: ",
                )
                .expect("write half a head");
            stream
        })
        .collect();
    let all_open = opened.elapsed();

    let asked = Instant::now();
    let status = server.send("GET", "/serving_num?event_id=demo", "", "");
    let answered_in = asked.elapsed();
    assert!(status.contains(" 200 "), "{status}");
    assert!(
        answered_in < Duration::from_secs(1),
        "a normal request took {answered_in:?} beside {SLOW} slow connections"
    );

    // Each slow connection must be closed by the server (end of stream or reset), not by the
    // read timeout here, within the header timeout of its opening plus slack for a busy machine.
    let deadline = opened + all_open + header_timeout + Duration::from_secs(3);
    let mut first_closed = None;
    for (index, stream) in slow.iter_mut().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(10))))
            .expect("read timeout");
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
                Err(e) => panic!(
                    "slow connection {index} still open {:?} after the first was opened: {e}",
                    opened.elapsed()
                ),
            }
        }
        first_closed.get_or_insert_with(|| opened.elapsed());
    }
    let first_closed = first_closed.expect("slow connections");
    eprintln!(
        "{SLOW} slow connections opened in {all_open:?}; a normal request answered in \
         {answered_in:?}; first closed after {first_closed:?}, all after {:?}",
        opened.elapsed()
    );
    assert!(
        first_closed >= header_timeout - Duration::from_millis(500),
        "closed after {first_closed:?}, before the header timeout: not the timeout at work"
    );
}

/// Past `--max-connections` the server says so in its log and leaves new connections waiting;
/// once connections close it serves again.
#[test]
fn the_connection_limit_is_logged_when_reached() {
    let mut server = Server::start(&[
        "--admin-key",
        "cap-test-key",
        "--max-connections",
        "4",
        "--header-timeout",
        "30s",
    ]);
    let address = server.address();
    let idle: Vec<TcpStream> = (0..5)
        .map(|_| TcpStream::connect(&address).expect("connect"))
        .collect();
    let line = server.wait_for("connection limit reached");
    assert_eq!(field(&line, "max_connections"), 4, "{line}");
    drop(idle);
    let status = server.send("GET", "/serving_num?event_id=demo", "", "");
    assert!(status.contains(" 200 "), "{status}");
}

#[test]
fn bad_listener_flags_fail_at_start() {
    let bin = env!("CARGO_BIN_EXE_waiting-room");
    let cases: [(&[&str], &str); 4] = [
        (&["--header-timeout", "0s"], "--header-timeout"),
        (&["--drain-timeout", "ten"], "--drain-timeout"),
        (&["--max-connections", "0"], "--max-connections"),
        (
            &[
                "--tls-cert",
                "/nonexistent/cert.pem",
                "--tls-key",
                "/nonexistent/key.pem",
            ],
            "/nonexistent/cert.pem",
        ),
    ];
    for (args, named) in cases {
        let output = Command::new(bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--admin-key", "k"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("the binary runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} started");
        assert!(stderr.contains(named), "{args:?}: {stderr}");
    }
}

/// SIGTERM in the middle of a burst of joins: the server stops accepting, answers what is in
/// flight, places every join it answered `202` and exits within its drain time.
#[test]
fn sigterm_in_a_burst_of_joins_places_every_accepted_join_and_exits_within_the_drain_time() {
    let drain = Duration::from_secs(5);
    let mut server = Server::start(&[
        "--admin-key",
        "stop-test-key",
        "--join-rate",
        "0",
        "--drain-timeout",
        "5s",
    ]);
    let address = server.address();
    let accepted = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..16)
        .map(|_| {
            let (address, accepted) = (address.clone(), accepted.clone());
            std::thread::spawn(move || {
                let body = r#"{"event_id":"demo"}"#;
                // Until the server refuses connections: it has stopped accepting.
                while let Ok(mut stream) = TcpStream::connect(&address) {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    let sent = write!(
                        stream,
                        "POST /assign_queue_num HTTP/1.1\r\nHost: localhost\r\n\
                         Content-Type: application/json\r\nContent-Length: {}\r\n\
                         Connection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let mut answer = String::new();
                    if sent.is_ok() && stream.read_to_string(&mut answer).is_ok() {
                        if answer.starts_with("HTTP/1.1 202 ") {
                            accepted.fetch_add(1, Ordering::SeqCst);
                        } else if !answer.is_empty() {
                            panic!("a join was refused: {answer}");
                        }
                    }
                }
            })
        })
        .collect();
    while accepted.load(Ordering::SeqCst) < 500 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let before_signal = accepted.load(Ordering::SeqCst);
    let signalled = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let status = loop {
        if let Some(status) = server.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            signalled.elapsed() < drain + Duration::from_secs(2),
            "still running {:?} after SIGTERM",
            signalled.elapsed()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let stopped_in = signalled.elapsed();
    assert!(status.success(), "{status}");
    assert!(stopped_in < drain, "exited {stopped_in:?} after SIGTERM");
    for client in clients {
        client.join().expect("client thread");
    }
    let answered = accepted.load(Ordering::SeqCst);
    let given = server.wait_for("positions given at stop");
    let positions = field(&given, "positions") as usize;
    assert!(
        positions >= before_signal,
        "{before_signal} joins answered 202 before SIGTERM, {positions} positions given"
    );
    assert_eq!(
        positions, answered,
        "every join answered 202 (during the drain too) has a position, and no other"
    );
    eprintln!(
        "SIGTERM after {before_signal} joins answered 202; {answered} answered in all; \
         {positions} positions given; exited {stopped_in:?} after the signal"
    );
    let stopped = server.wait_for("stopped: every buffered join has a position");
    assert_eq!(field(&stopped, "unplaced"), 0, "{stopped}");
}
