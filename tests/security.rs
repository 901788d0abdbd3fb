//! Security against a real broker with a SASL_SSL (SCRAM-SHA-512) and an SSL listener, started
//! with `STACK_SECURITY=sasl_ssl deploy/local/stack`: workers authenticate and verify the
//! broker's certificate, and the password never shows in logs (debug level), metrics or
//! `config check`.
#![cfg(feature = "broker-tests")]

mod common;

use std::io::Read as _;
use std::process::Command;
use std::time::Duration;

use common::broker::OwnBroker;
use common::committed::account_exactly_once;
use common::pages::small_pages;
use common::worker::{Worker, WorkerOptions};
use pagesplit::config::{Config, EncodingFormat};
use pagesplit::demo::publish_pages;

/// A password no other text contains.
fn random_password() -> String {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut bytes))
        .expect("random bytes");
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("Scram{hex}")
}

/// A worker configuration whose topics the test creates and fills over the PLAINTEXT listener.
async fn plaintext_setup(
    broker: &OwnBroker,
    name: &str,
    pages: usize,
) -> (Config, Vec<pagesplit::demo::PageToPublish>, pagesplit::demo::Positions) {
    let mut config = common::test_config(name, EncodingFormat::SingleObject);
    config.kafka.bootstrap_servers = broker.bootstrap();
    pagesplit::app::prepare_topics(&config).await.unwrap();
    let sent = small_pages(name, pages);
    let positions = publish_pages(&config.kafka.bootstrap_servers, &config.topics.input, &sent)
        .await
        .unwrap();
    (config, sent, positions)
}

/// `pagesplit config check` with these flags and environment; (exit code, stdout + stderr).
fn config_check(sets: &[(&str, String)], env: &[(&str, String)]) -> (Option<i32>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pagesplit"));
    command.args(["config", "check"]).env_remove("PAGESPLIT_CONFIG");
    for (key, value) in sets {
        command.args(["--set", &format!("{key}={value}")]);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().expect("config check runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_ssl_and_ssl_workers_deliver_and_the_password_never_shows() {
    let password = random_password();
    let broker = OwnBroker::start_secure(&password);
    let (sasl_ssl_port, ssl_port) = broker.secure_ports.expect("secure listeners");
    let ca = broker.ca_path().display().to_string();
    let mut shown: Vec<(&str, String)> = Vec::new();

    // SASL_SSL, the password from the environment, everything logged at debug level (librdkafka's
    // security and broker debug contexts included).
    let (config, sent, positions) = plaintext_setup(&broker, "sasl", 300).await;
    let mut worker = Worker::spawn(
        &config,
        WorkerOptions {
            sets: vec![
                ("kafka.bootstrap_servers", format!("127.0.0.1:{sasl_ssl_port}")),
                ("kafka.security_protocol", "SASL_SSL".to_owned()),
                ("kafka.sasl_mechanism", "SCRAM-SHA-512".to_owned()),
                ("kafka.sasl_username", "pagesplit".to_owned()),
                ("kafka.ssl_ca_location", ca.clone()),
                ("kafka.options.debug", "security,broker,conf".to_owned()),
            ],
            env: vec![("PAGESPLIT_KAFKA__SASL_PASSWORD", password.clone())],
            log_level: "debug",
            capture: true,
        },
    );
    common::wait_for_commit(&config, &positions, Duration::from_secs(90)).await;
    let metrics = reqwest::get(format!("http://{}/metrics", worker.http_address()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "pagesplit_events_produced_total{{topic=\"{}\",type=\"article\"}} 300",
            config.topics.articles
        )),
        "the worker delivered over SASL_SSL:\n{metrics}"
    );
    assert_eq!(worker.terminate(Duration::from_secs(30)).code(), Some(0));
    let output = worker.output();
    assert!(
        output.contains("Broker SSL certificate verified") && output.contains("SASL SCRAM client"),
        "librdkafka's security debug log is part of the output"
    );
    println!(
        "SASL_SSL worker: {} lines of debug output, {} bytes of metrics",
        output.lines().count(),
        metrics.len()
    );
    account_exactly_once(&config, &sent).assert_exactly_once("SASL_SSL", sent.len());
    shown.push(("SASL_SSL worker output", output));
    shown.push(("metrics", metrics));

    // SSL only (no SASL): the broker's certificate is verified against the CA.
    let (config, sent, positions) = plaintext_setup(&broker, "ssl", 50).await;
    let mut worker = Worker::spawn(
        &config,
        WorkerOptions {
            sets: vec![
                ("kafka.bootstrap_servers", format!("127.0.0.1:{ssl_port}")),
                ("kafka.security_protocol", "SSL".to_owned()),
                ("kafka.ssl_ca_location", ca.clone()),
            ],
            log_level: "info",
            capture: true,
            ..WorkerOptions::default()
        },
    );
    common::wait_for_commit(&config, &positions, Duration::from_secs(90)).await;
    assert_eq!(worker.terminate(Duration::from_secs(30)).code(), Some(0));
    account_exactly_once(&config, &sent).assert_exactly_once("SSL", sent.len());

    // A wrong password: startup fails with exit 1, and the wrong password is not shown either.
    let wrong = random_password();
    let mut worker = Worker::spawn(
        &config,
        WorkerOptions {
            sets: vec![
                ("kafka.bootstrap_servers", format!("127.0.0.1:{sasl_ssl_port}")),
                ("kafka.security_protocol", "SASL_SSL".to_owned()),
                ("kafka.sasl_username", "pagesplit".to_owned()),
                ("kafka.ssl_ca_location", ca.clone()),
            ],
            env: vec![("PAGESPLIT_KAFKA__SASL_PASSWORD", wrong.clone())],
            log_level: "debug",
            capture: true,
        },
    );
    let exit = tokio::task::spawn_blocking(move || {
        let exit = worker.wait_exit(Duration::from_secs(60));
        (worker, exit)
    })
    .await
    .unwrap();
    let (worker, exit) = exit;
    let output = worker.output();
    assert_eq!(
        exit.map(|status| status.code()),
        Some(Some(1)),
        "wrong password: exit 1"
    );
    assert!(
        output.contains("error: cannot reach Kafka") && output.contains("SASL authentication error"),
        "wrong password: the startup error names the authentication failure:\n{}",
        output
            .lines()
            .filter(|line| line.contains("rror"))
            .take(10)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(!output.contains(&wrong), "the wrong password is not shown");
    println!(
        "wrong password: exit 1, {}",
        output
            .lines()
            .rev()
            .find(|line| line.starts_with("error:"))
            .unwrap_or("")
    );

    // `config check`: the password from a file, then from the environment.
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("sasl-password");
    std::fs::write(&password_file, format!("{password}\n")).unwrap();
    let secure = |extra: (&'static str, String)| {
        vec![
            ("kafka.security_protocol", "SASL_SSL".to_owned()),
            ("kafka.sasl_username", "pagesplit".to_owned()),
            ("kafka.ssl_ca_location", ca.clone()),
            extra,
        ]
    };
    let (code, from_file) = config_check(
        &secure(("kafka.sasl_password_file", password_file.display().to_string())),
        &[],
    );
    assert_eq!(code, Some(0), "{from_file}");
    assert!(from_file.contains(&format!("sasl_password_file = \"{}\"", password_file.display())));
    let (code, from_env) = config_check(
        &secure(("kafka.sasl_mechanism", "SCRAM-SHA-512".to_owned())),
        &[("PAGESPLIT_KAFKA__SASL_PASSWORD", password.clone())],
    );
    assert_eq!(code, Some(0), "{from_env}");
    assert!(from_env.contains("sasl_password = \"***\""), "{from_env}");
    // Both at once is a configuration error naming the key (and not showing the password).
    let (code, both) = config_check(
        &secure(("kafka.sasl_password_file", password_file.display().to_string())),
        &[("PAGESPLIT_KAFKA__SASL_PASSWORD", password.clone())],
    );
    assert_eq!(code, Some(2), "{both}");
    assert!(both.contains("kafka.sasl_password_file"), "{both}");
    shown.push(("config check, password file", from_file));
    shown.push(("config check, password in the environment", from_env));
    shown.push(("config check, both", both));

    for (what, text) in &shown {
        assert!(!text.contains(&password), "{what} shows the password");
    }
    println!(
        "password absent from: {}",
        shown.iter().map(|(what, _)| *what).collect::<Vec<_>>().join(", ")
    );
    common::delete_topics(&config).await;
}
