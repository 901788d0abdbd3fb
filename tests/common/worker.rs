//! The worker binary (`pagesplit run`) as a child process.

use std::io::BufRead as _;
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pagesplit::config::Config;

use super::free_port;

/// The worker binary running as a child process.
pub struct Worker {
    child: Child,
    output: Arc<Mutex<String>>,
    http: SocketAddr,
}

/// How to start a worker.
pub struct WorkerOptions<'a> {
    /// Extra `--set key=value` flags, applied after the topic and group flags.
    pub sets: Vec<(&'a str, String)>,
    /// Extra environment variables.
    pub env: Vec<(&'a str, String)>,
    /// `log.level`.
    pub log_level: &'a str,
    /// Keep stderr in memory (see [`Worker::output`]) instead of passing it through.
    pub capture: bool,
}

impl Default for WorkerOptions<'_> {
    fn default() -> Self {
        Self {
            sets: Vec::new(),
            env: Vec::new(),
            log_level: "warn",
            capture: false,
        }
    }
}

impl Worker {
    /// `pagesplit run` on the broker, group and topics of `config`, registry-less encoding and
    /// HTTP on a free port the test picks (see [`Worker::http_address`]).
    pub fn spawn(config: &Config, options: WorkerOptions<'_>) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pagesplit"));
        command.arg("run");
        let mut sets: Vec<(&str, String)> = vec![
            ("kafka.bootstrap_servers", config.kafka.bootstrap_servers.clone()),
            ("kafka.group_id", config.kafka.group_id.clone()),
            ("topics.input", config.topics.input.clone()),
            ("topics.quotes", config.topics.quotes.clone()),
            ("topics.articles", config.topics.articles.clone()),
            ("topics.dead_letter", config.topics.dead_letter.clone()),
            ("topics.quotes_latest", config.topics.quotes_latest.clone()),
            ("encoding.format", "single-object".to_owned()),
            ("http.listen", format!("127.0.0.1:{}", free_port())),
            ("log.level", options.log_level.to_owned()),
        ];
        sets.extend(options.sets);
        // The last `http.listen` flag wins, as in the worker's own configuration layering.
        let http = sets
            .iter()
            .rev()
            .find(|(key, _)| *key == "http.listen")
            .map(|(_, address)| address.parse().expect("http.listen is an address"))
            .expect("http.listen set");
        for (key, value) in sets {
            command.args(["--set", &format!("{key}={value}")]);
        }
        for (name, value) in options.env {
            command.env(name, value);
        }
        // Workers on one host share its name: static membership only with a name from `sets`.
        command
            .env_remove("PAGESPLIT_CONFIG")
            .env_remove("HOSTNAME")
            .stdout(Stdio::null());
        let output = Arc::new(Mutex::new(String::new()));
        if options.capture {
            // Plain text, to search and print.
            command.env("NO_COLOR", "1").stderr(Stdio::piped());
        } else {
            command.stderr(Stdio::inherit());
        }
        let mut child = command.spawn().expect("worker binary starts");
        if let Some(stderr) = child.stderr.take() {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    let mut output = output.lock().unwrap();
                    output.push_str(&line);
                    output.push('\n');
                }
            });
        }
        Self { child, output, http }
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident set size in KiB, from /proc (None once the process is gone).
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Everything captured from stderr so far.
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Where the worker serves `/metrics`, `/healthz` and `/readyz`: its `http.listen`
    /// setting (bound before the worker consumes anything).
    pub fn http_address(&self) -> SocketAddr {
        self.http
    }

    /// Whether the process has exited.
    pub fn has_exited(&mut self) -> bool {
        self.child.try_wait().expect("worker status").is_some()
    }

    /// SIGKILL.
    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then waits (bounded) for the exit.
    pub fn terminate(&mut self, deadline: Duration) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.wait_exit(deadline).expect("worker exits after SIGTERM")
    }

    /// SIGTERM, then waits at most `deadline` for the exit (`None`: still running; then killed).
    pub fn wait_exit_after_sigterm(&mut self, deadline: Duration) -> Option<ExitStatus> {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.wait_exit(deadline)
    }

    /// Waits until the process exits, at most `deadline`.
    pub fn wait_exit(&mut self, deadline: Duration) -> Option<ExitStatus> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader thread take the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return Some(status);
            }
            if started.elapsed() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if self.running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
