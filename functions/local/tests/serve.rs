//! `waiting-room serve` as an operator runs it: what it prints at start, and what its log holds
//! when an operator's text carries line breaks.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

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
