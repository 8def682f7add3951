//! `waiting-room serve --data-dir`: a room killed with `kill -9` and started again on the same
//! directory goes on where it stopped. Every place, token, ended session and audit line is
//! still there, and no join answered `202` is lost, even when the kill lands mid-burst.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ADMIN_KEY: &str = "restart-test-key";

/// A server on a data directory, and the address it listens on.
struct Room {
    child: Child,
    base: String,
    http: reqwest::Client,
}

impl Room {
    fn start(dir: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_waiting-room"))
            .args(["serve", "--listen", "127.0.0.1:0", "--event", "demo"])
            .args([
                "--admin-key",
                ADMIN_KEY,
                "--join-rate",
                "0",
                "--lookup-rate",
                "0",
            ])
            .arg("--data-dir")
            .arg(dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the waiting-room binary starts");
        let stdout = child.stdout.take().expect("stdout");
        let (send, lines) = mpsc::channel();
        // Read to the end, so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = send.send(line);
            }
        });
        let mut seen = Vec::new();
        let base = loop {
            let line = lines
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("no banner; seen:\n{}", seen.join("\n")));
            if let Some(at) = line
                .find("http://")
                .filter(|_| line.contains("visitor page"))
            {
                let address = line[at..].split('/').nth(2).expect("host:port");
                break format!("http://{address}");
            }
            seen.push(line);
        };
        Self {
            child,
            base,
            http: reqwest::Client::new(),
        }
    }

    /// `kill -9`: no drain, no flush, no goodbye.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.try_call(method, path, body, None)
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    async fn try_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        bearer: Option<&str>,
    ) -> Result<(u16, Value), reqwest::Error> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(bearer.unwrap_or(ADMIN_KEY));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// A visitor joins; its request id, or an error when no `202` came back.
    async fn join(&self) -> Result<String, String> {
        let (status, body) = self
            .try_call(
                reqwest::Method::POST,
                "/assign_queue_num",
                Some(json!({ "event_id": "demo" })),
                None,
            )
            .await
            .map_err(|e| e.to_string())?;
        match (status, body["api_request_id"].as_str()) {
            (202, Some(id)) => Ok(id.to_owned()),
            _ => Err(format!("{status} {body}")),
        }
    }

    /// The request's place in line, waiting (up to 30 s) for the consumer to give it one.
    async fn position(&self, request_id: &str) -> u64 {
        let path = format!("/queue_num?event_id=demo&request_id={request_id}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, body) = self.call(reqwest::Method::GET, &path, None).await;
            if status == 200 {
                return body["queue_number"].as_u64().expect("queue_number");
            }
            assert!(
                Instant::now() < deadline,
                "{request_id} has no position: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn positions(&self, request_ids: &[String]) -> BTreeMap<String, u64> {
        let mut positions = BTreeMap::new();
        for id in request_ids {
            positions.insert(id.clone(), self.position(id).await);
        }
        positions
    }

    async fn token(&self, request_id: &str) -> Value {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/generate_token",
                Some(json!({ "event_id": "demo", "request_id": request_id })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// What `/authorize` answers for an access token: status and claims.
    async fn authorize(&self, access_token: &str) -> (u16, Value) {
        self.try_call(
            reqwest::Method::GET,
            "/authorize?event_id=demo",
            None,
            Some(access_token),
        )
        .await
        .expect("authorize")
    }

    async fn audit(&self) -> Value {
        let (status, body) = self
            .call(
                reqwest::Method::GET,
                "/admin/events/demo/audit?limit=1000",
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }
}

impl Drop for Room {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A data directory of the test's own, removed when it ends.
struct DataDir(PathBuf);

impl DataDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("wr-restart-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Self(dir)
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_killed_mid_sale_goes_on_where_it_stopped() {
    let dir = DataDir::new("sale");
    let room = Room::start(&dir.0);

    // Given 300 visitors in line, 100 let in, 50 holding tokens, 10 sessions ended...
    let mut joined = Vec::new();
    for _ in 0..300 {
        joined.push(room.join().await.expect("a join answered 202"));
    }
    let positions = room.positions(&joined).await;
    let places: BTreeSet<u64> = positions.values().copied().collect();
    assert_eq!(places, (1..=300).collect(), "positions 1 to 300, once each");
    let (status, body) = room
        .call(
            reqwest::Method::POST,
            "/increment_serving_counter",
            Some(json!({ "event_id": "demo", "increment_by": 100 })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let by_place: BTreeMap<u64, String> =
        positions.iter().map(|(id, p)| (*p, id.clone())).collect();
    let claimed: Vec<String> = by_place.values().take(50).cloned().collect();
    let mut tokens = HashMap::new();
    for id in &claimed {
        tokens.insert(id.clone(), room.token(id).await);
    }
    let (ended, live) = claimed.split_at(10);
    for id in ended {
        let (status, body) = room
            .call(
                reqwest::Method::POST,
                "/update_session",
                Some(json!({ "event_id": "demo", "request_id": id, "status": 1 })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let mut iat_before = HashMap::new();
    for id in live {
        let (status, claims) = room
            .authorize(tokens[id]["access_token"].as_str().unwrap())
            .await;
        assert_eq!(status, 200, "{claims}");
        iat_before.insert(id.clone(), claims["iat"].clone());
    }
    let audit_before = room.audit().await;
    assert!(
        audit_before
            .to_string()
            .contains("increment_serving_counter"),
        "{audit_before}"
    );

    // ...when the process is killed and started again on the same directory...
    room.kill();
    let room = Room::start(&dir.0);

    // ...then every place answers as before,
    assert_eq!(room.positions(&joined).await, positions);
    // the 40 live tokens come back identical (same iat) and still open the gate,
    for id in live {
        let again = room.token(id).await;
        assert_eq!(again["access_token"], tokens[id]["access_token"], "{id}");
        assert_eq!(again["id_token"], tokens[id]["id_token"], "{id}");
        let (status, claims) = room
            .authorize(again["access_token"].as_str().unwrap())
            .await;
        assert_eq!(status, 200, "{claims}");
        assert_eq!(claims["iat"], iat_before[id]);
    }
    // the 10 ended sessions stay shut out,
    for id in ended {
        let (status, body) = room
            .authorize(tokens[id]["access_token"].as_str().unwrap())
            .await;
        assert_ne!(
            status, 200,
            "an ended session let in after a restart: {body}"
        );
        assert!((400..500).contains(&status), "{status} {body}");
    }
    // the audit trail holds every change made before the kill,
    assert_eq!(room.audit().await, audit_before);
    // and the next visitor joins at 301.
    let next = room.join().await.expect("a join answered 202");
    assert_eq!(room.position(&next).await, 301);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_a_burst_of_joins_loses_none_answered_202() {
    let dir = DataDir::new("burst");
    let accepted = Arc::new(Mutex::new(Vec::new()));
    // Three kills, each mid-burst: joins are in flight and answered ones wait to be placed.
    for round in 1..=3 {
        let room = Arc::new(Room::start(&dir.0));
        let mut clients = Vec::new();
        for _ in 0..64 {
            let (room, accepted) = (room.clone(), accepted.clone());
            clients.push(tokio::spawn(async move {
                // Joins until the server is gone; only those answered 202 are counted.
                while let Ok(id) = room.join().await {
                    accepted.lock().unwrap().push(id);
                }
            }));
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while accepted.lock().unwrap().len() < round * 1_500 {
            assert!(Instant::now() < deadline, "the burst never got under way");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let killed = Command::new("kill")
            .args(["-9", &room.child.id().to_string()])
            .status()
            .expect("kill -9");
        assert!(killed.success());
        for client in clients {
            client.await.expect("client");
        }
    }
    let accepted: Vec<String> = accepted.lock().unwrap().clone();

    let room = Room::start(&dir.0);
    let positions = room.positions(&accepted).await;
    let places: BTreeSet<u64> = positions.values().copied().collect();
    assert_eq!(
        places.len(),
        accepted.len(),
        "every join answered 202 has a position of its own after the restarts"
    );
}
