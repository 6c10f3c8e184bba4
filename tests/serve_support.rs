//! What the `augur serve` tests share: the built binary started on a free loopback port, and a
//! std-only HTTP/1.1 client for it (the server closes the connection after each response).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use augur::testing::Scratch;
use serde_json::Value;

/// The demo's workflow, and its NAB series with the devices they drive.
pub const WORKFLOW: &str = "montage-chameleon-2mass-01d-001";
pub const SERIES: [(&str, &str); 4] = [
    ("ec2_cpu_utilization_24ae8d.csv", "edge-a"),
    ("ec2_cpu_utilization_53ea38.csv", "edge-b"),
    ("ec2_cpu_utilization_5f5533.csv", "cloud-c"),
    ("rds_cpu_utilization_cc0c53.csv", "cloud-d"),
];

pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// An empty folder of its own for one test (`prefix` keeps test crates apart), removed when
/// the test passes.
pub fn scratch(prefix: &str, name: &str) -> Scratch {
    Scratch::new(&format!("{prefix}-{name}"))
}

/// A running `augur serve`, killed (SIGKILL: no drain, no final checkpoint) if a test ends
/// before stopping it.
pub struct Server {
    child: Child,
    pub addr: String,
}

impl Server {
    /// `augur serve --listen 127.0.0.1:0 ARGS...`, once it says where it listens.
    pub fn start(args: &[&str]) -> Server {
        Server::start_with_env(args, &[])
    }

    /// [`Server::start`] with these environment variables set.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_augur"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().copied())
            .env_remove("AUGUR_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn augur serve");
        let stdout = child.stdout.take().expect("stdout");
        // A service that never starts listening fails the test rather than hanging it.
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let Ok(line) = receiver.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            panic!("augur serve did not start listening");
        };
        let addr = line
            .trim()
            .strip_prefix("augur serve: listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Server { child, addr }
    }

    /// The process id, to signal it.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// One request; the status and the body as JSON (`Null` when it is not JSON).
    pub fn call(&self, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
        let (status, bytes) = http(&self.addr, method, path, &[], body);
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value)
    }

    /// One request that must answer 200; its body as JSON.
    pub fn ok(&self, method: &str, path: &str, body: &[u8]) -> Value {
        let (status, value) = self.call(method, path, body);
        assert_eq!(status, 200, "{method} {path}: {value}");
        value
    }

    /// Waits for the process to exit; its exit status.
    pub fn wait(mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "augur serve did not exit in time"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request; the status and the body.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(300)))
        .expect("timeout");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("write head");
    // The server may refuse before reading the body (413): keep going to read its answer.
    let _ = stream.write_all(body);
    read_response(&mut stream)
}

/// Reads a whole response (to the close); its status and body.
pub fn read_response(stream: &mut TcpStream) -> (u16, Vec<u8>) {
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    (status, raw[split + 4..].to_vec())
}
