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

/// `config check` with a configuration file holding `toml`, plus flags and environment.
fn config_check_file(toml: &str, sets: &[(&str, String)], env: &[(&str, String)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pagesplit.toml");
    std::fs::write(&path, toml).unwrap();
    let mut env = env.to_vec();
    env.push(("PAGESPLIT_CONFIG", path.display().to_string()));
    config_check(sets, &env)
}

#[test]
fn config_check_shows_the_registry_url_without_its_password() {
    let password = random_password();
    let url = format!("http://user:{password}@registry.example:8081/apis/ccompat/v7");
    // Credentials over http:// are refused, and the refusal does not show them either.
    let (code, refused) = config_check(&[("registry.url", url.clone())], &[]);
    assert_eq!(code, Some(2), "{refused}");
    assert!(
        refused.contains("registry.url") && refused.contains("registry.allow_insecure_credentials"),
        "{refused}"
    );
    // Allowed: shown redacted, with a warning.
    let (code, allowed) = config_check(
        &[
            ("registry.url", url.clone()),
            ("registry.allow_insecure_credentials", "true".to_owned()),
        ],
        &[],
    );
    assert_eq!(code, Some(0), "{allowed}");
    assert!(
        allowed.contains("url = \"http://user:***@registry.example:8081/apis/ccompat/v7\""),
        "{allowed}"
    );
    assert!(
        allowed.contains("# WARNING: registry.allow_insecure_credentials"),
        "{allowed}"
    );
    let (code, https) = config_check(&[("registry.url", url.replace("http://", "https://"))], &[]);
    assert_eq!(code, Some(0), "{https}");
    assert!(
        https.contains("url = \"https://user:***@registry.example:8081/apis/ccompat/v7\""),
        "{https}"
    );
    for (what, text) in [("refused", &refused), ("allowed", &allowed), ("https", &https)] {
        assert!(!text.contains(&password), "{what} shows the password:\n{text}");
    }
}

#[test]
fn config_check_refuses_raw_options_that_weaken_security() {
    let secure = "[kafka]\nsecurity_protocol = \"SASL_SSL\"\nsasl_username = \"u\"\nsasl_password = \"p\"\n";
    for (option, typed) in [
        ("\"security.protocol\" = \"PLAINTEXT\"", "use kafka.security_protocol"),
        (
            "\"enable.ssl.certificate.verification\" = \"false\"",
            "kafka.ssl_ca_location",
        ),
        (
            "\"ssl.endpoint.identification.algorithm\" = \"none\"",
            "always verified",
        ),
        ("\"sasl.mechanisms\" = \"PLAIN\"", "use kafka.sasl_mechanism"),
    ] {
        let (code, output) = config_check_file(&format!("{secure}[kafka.options]\n{option}\n"), &[], &[]);
        assert_eq!(code, Some(2), "{option}: {output}");
        assert!(
            output.contains("invalid value for `kafka.options`") && output.contains(typed),
            "{option}: {output}"
        );
    }
}

#[test]
fn config_check_refuses_credentials_without_tls_unless_allowed() {
    let password = random_password();
    let sets = vec![
        ("kafka.security_protocol", "SASL_PLAINTEXT".to_owned()),
        ("kafka.sasl_mechanism", "PLAIN".to_owned()),
        ("kafka.sasl_username", "pagesplit".to_owned()),
    ];
    let env = [("PAGESPLIT_KAFKA__SASL_PASSWORD", password.clone())];
    let (code, refused) = config_check(&sets, &env);
    assert_eq!(code, Some(2), "{refused}");
    assert!(
        refused.contains("kafka.security_protocol") && refused.contains("kafka.allow_insecure_credentials"),
        "{refused}"
    );
    let mut allowed_sets = sets.clone();
    allowed_sets.push(("kafka.allow_insecure_credentials", "true".to_owned()));
    let (code, allowed) = config_check(&allowed_sets, &env);
    assert_eq!(code, Some(0), "{allowed}");
    assert!(
        allowed.starts_with("# WARNING: kafka.allow_insecure_credentials"),
        "{allowed}"
    );
    assert!(!refused.contains(&password) && !allowed.contains(&password));
}

#[test]
fn config_errors_do_not_show_values() {
    let password = random_password();
    let (code, misspelt) = config_check(&[], &[("PAGESPLIT_KAFKA__SASL_PASWORD", password.clone())]);
    assert_eq!(code, Some(2), "{misspelt}");
    assert!(misspelt.contains("`kafka.sasl_pasword`"), "{misspelt}");
    let (code, unknown) = config_check_file(&format!("[kafka.options]\n\"client.idd\" = \"{password}\"\n"), &[], &[]);
    assert_eq!(code, Some(2), "{unknown}");
    assert!(
        unknown.contains("`client.idd` is not a librdkafka configuration property"),
        "{unknown}"
    );
    let (code, syntax) = config_check_file(&format!("[registry]\npassword = \"{password}\n"), &[], &[]);
    assert_eq!(code, Some(2), "{syntax}");
    assert!(syntax.contains("line 2"), "{syntax}");
    let (code, wrong_type) = config_check_file(&format!("[registry]\npassword = [\"{password}\"]\n"), &[], &[]);
    assert_eq!(code, Some(2), "{wrong_type}");
    assert!(wrong_type.contains("`registry.password`"), "{wrong_type}");
    for (what, text) in [
        ("misspelt variable", misspelt),
        ("unknown property", unknown),
        ("syntax error", syntax),
        ("wrong type", wrong_type),
    ] {
        assert!(!text.contains(&password), "{what} shows the value:\n{text}");
    }
}
