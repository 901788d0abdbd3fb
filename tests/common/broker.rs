//! Brokers of their own, started with `deploy/local/stack` on free ports, for tests that stop or
//! secure the broker.

use std::process::{Command, ExitStatus, Stdio};

use super::free_port;

/// A broker of its own, started with `deploy/local/stack` on free ports; stopped (and its data
/// deleted) when dropped.
pub struct OwnBroker {
    /// PLAINTEXT listener.
    pub port: u16,
    /// SASL_SSL and SSL listeners, when started with `start_secure`.
    pub secure_ports: Option<(u16, u16)>,
    scram_password: Option<String>,
    dir: tempfile::TempDir,
}

impl OwnBroker {
    /// Runs the stack script for this broker.
    pub fn stack(&self, args: &[&str], keep_data: bool) -> ExitStatus {
        let mut command = Command::new(format!("{}/deploy/local/stack", env!("CARGO_MANIFEST_DIR")));
        command
            .args(args)
            .env("KAFKA_PORT", self.port.to_string())
            .env("KAFKA_CONTROLLER_PORT", (self.port + 1).to_string())
            .env("STACK_SERVICES", "kafka")
            .env("PAGESPLIT_STACK_DIR", self.dir.path())
            .env("STACK_KEEP_DATA", if keep_data { "1" } else { "0" })
            .stdout(if args == ["logs"] {
                Stdio::inherit()
            } else {
                Stdio::null()
            });
        if let Some((sasl_ssl, ssl)) = self.secure_ports {
            command
                .env("STACK_SECURITY", "sasl_ssl")
                .env("KAFKA_SASL_SSL_PORT", sasl_ssl.to_string())
                .env("KAFKA_SSL_PORT", ssl.to_string())
                .env("STACK_SCRAM_USER", "pagesplit")
                .env("STACK_SCRAM_PASSWORD", self.scram_password.clone().unwrap_or_default());
        }
        command.status().expect("deploy/local/stack runs")
    }

    fn new(secure: Option<String>) -> Self {
        // Two adjacent free ports for the broker and its controller.
        let port = (0..50)
            .map(|_| free_port())
            .find(|port| *port < 65000 && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok())
            .expect("free ports");
        let secure_ports = secure.is_some().then(|| {
            let sasl_ssl = free_port();
            let ssl = (0..50)
                .map(|_| free_port())
                .find(|p| *p != sasl_ssl && *p != port && *p != port + 1)
                .expect("free port");
            (sasl_ssl, ssl)
        });
        let broker = OwnBroker {
            port,
            secure_ports,
            scram_password: secure,
            dir: tempfile::tempdir().unwrap(),
        };
        if !broker.stack(&["up"], false).success() {
            broker.stack(&["logs"], false);
            panic!("own broker did not start");
        }
        broker
    }

    /// A PLAINTEXT broker.
    pub fn start() -> Self {
        Self::new(None)
    }

    /// A broker that also has a SASL_SSL listener (SCRAM-SHA-512 user `pagesplit` with
    /// `scram_password`) and an SSL listener.
    pub fn start_secure(scram_password: &str) -> Self {
        Self::new(Some(scram_password.to_owned()))
    }

    /// The PLAINTEXT bootstrap address.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The CA certificate that signed the broker's certificate (secure brokers).
    pub fn ca_path(&self) -> std::path::PathBuf {
        self.dir.path().join("kafka/security/ca.pem")
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        self.stack(&["down"], false);
    }
}
