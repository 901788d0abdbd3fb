//! The container image built from `deploy/Dockerfile` (by `deploy/image/build-local`), run with
//! podman on the host network against the local broker and registry, the way the Kubernetes
//! Deployment and the compose file run it: as the image's user, with a read-only root file
//! system, every capability dropped, the ConfigMap's configuration file mounted read-only.
//!
//! Needs podman and runc and the image (`PAGESPLIT_TEST_IMAGE`, default
//! `localhost/pagesplit:latest`), podman-compose for the compose test; `make test` builds the
//! image, installs podman-compose into .local/venv-compose and runs these with
//! `--features container-tests`.
#![cfg(feature = "container-tests")]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use apache_avro::types::Value;
use chrono::{TimeZone, Utc};
use pagesplit::config::{Config, EncodingFormat};
use pagesplit::demo::{decode_event, publish_pages, PageToPublish, Positions};
use pagesplit::encode::Schemas;
use pagesplit::model::{ContentType, RawPage};
use pagesplit::parse::{parse_page, ParseOptions};

/// The user the image runs as (`USER` in the Dockerfile, `runAsUser` in the Deployment).
const IMAGE_UID: &str = "10001";

/// The image under test.
fn image() -> String {
    std::env::var("PAGESPLIT_TEST_IMAGE").unwrap_or_else(|_| "localhost/pagesplit:latest".to_owned())
}

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// podman with runc and the repository's containers.conf (unless one is set already).
fn podman_command(program: &str) -> Command {
    let mut command = Command::new(program);
    if std::env::var_os("CONTAINERS_CONF").is_none() {
        command.env("CONTAINERS_CONF", repo_path("deploy/image/containers.conf"));
    }
    command
}

fn podman(args: &[&str]) -> Output {
    let mut command = podman_command("podman");
    command.args(["--runtime", "runc"]).args(args);
    command
        .output()
        .unwrap_or_else(|error| panic!("podman {args:?} did not start (is podman installed?): {error}"))
}

/// Runs podman and returns its standard output; panics with its standard error on failure.
fn podman_ok(args: &[&str]) -> String {
    let output = podman(args);
    assert!(
        output.status.success(),
        "podman {args:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A container removed (with its logs) when the test ends, passed or not.
struct Container {
    name: String,
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = podman(&["rm", "--force", "--time", "0", &self.name]);
    }
}

impl Container {
    fn inspect(&self, format: &str) -> String {
        podman_ok(&["inspect", "--format", format, &self.name])
            .trim()
            .to_owned()
    }

    fn exec(&self, command: &[&str]) -> Output {
        let (options, command): (Vec<&str>, Vec<&str>) = match command {
            ["--user", user, rest @ ..] => (vec!["--user", user], rest.to_vec()),
            _ => (vec![], command.to_vec()),
        };
        let mut args = vec!["exec"];
        args.extend(options);
        args.push(self.name.as_str());
        args.extend(command);
        podman(&args)
    }

    /// Standard output and error of the container so far.
    fn logs(&self) -> String {
        let output = podman(&["logs", &self.name]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    }

    /// Waits until the image's HEALTHCHECK command passes.
    async fn wait_healthy(&self, deadline: Duration) {
        let started = std::time::Instant::now();
        loop {
            let output = podman(&["healthcheck", "run", &self.name]);
            if output.status.success() {
                return;
            }
            assert!(
                self.inspect("{{.State.Running}}") == "true",
                "container {} exited: {}",
                self.name,
                self.logs()
            );
            assert!(
                started.elapsed() < deadline,
                "HEALTHCHECK of {} did not pass within {deadline:?}: {}{}\nlogs:\n{}",
                self.name,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr),
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// A TCP port nothing listens on right now, for the worker's HTTP endpoint (host network).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

fn yaml_file(relative: &str) -> serde_yaml_ng::Value {
    let path = repo_path(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn yaml_scalar(value: &serde_yaml_ng::Value) -> String {
    match value {
        serde_yaml_ng::Value::String(text) => text.clone(),
        serde_yaml_ng::Value::Number(number) => number.to_string(),
        serde_yaml_ng::Value::Bool(flag) => flag.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

/// The configuration file the Kubernetes ConfigMap mounts at /etc/pagesplit/pagesplit.toml.
fn configmap_toml() -> String {
    let configmap = yaml_file("deploy/k8s/configmap.yaml");
    configmap["data"]["pagesplit.toml"]
        .as_str()
        .expect("deploy/k8s/configmap.yaml has data.\"pagesplit.toml\"")
        .to_owned()
}

/// The environment the compose file gives the pagesplit service (map or `KEY=value` list).
fn compose_environment() -> Vec<(String, String)> {
    let compose = yaml_file("deploy/docker-compose.yml");
    match &compose["services"]["pagesplit"]["environment"] {
        serde_yaml_ng::Value::Mapping(map) => map.iter().map(|(k, v)| (yaml_scalar(k), yaml_scalar(v))).collect(),
        serde_yaml_ng::Value::Sequence(items) => items
            .iter()
            .map(|item| {
                let item = yaml_scalar(item);
                let (key, value) = item.split_once('=').unwrap_or((&item, ""));
                (key.to_owned(), value.to_owned())
            })
            .collect(),
        other => panic!("services.pagesplit.environment of the compose file: {other:?}"),
    }
}

/// Environment variables that point a worker at a test configuration's unique topics and group,
/// the test registry, and a free HTTP port; everything else comes from the configuration under
/// test.
fn test_overrides(config: &Config, http_port: u16) -> Vec<(String, String)> {
    [
        ("KAFKA__BOOTSTRAP_SERVERS", config.kafka.bootstrap_servers.clone()),
        ("KAFKA__GROUP_ID", config.kafka.group_id.clone()),
        ("TOPICS__INPUT", config.topics.input.clone()),
        ("TOPICS__QUOTES", config.topics.quotes.clone()),
        ("TOPICS__ARTICLES", config.topics.articles.clone()),
        ("TOPICS__DEAD_LETTER", config.topics.dead_letter.clone()),
        ("TOPICS__QUOTES_LATEST", config.topics.quotes_latest.clone()),
        ("TOPICS__CREATE", "true".to_owned()),
        ("TOPICS__PARTITIONS", config.topics.partitions.to_string()),
        ("REGISTRY__URL", config.registry.url.clone()),
        ("HTTP__LISTEN", format!("127.0.0.1:{http_port}")),
    ]
    .into_iter()
    .map(|(key, value)| (format!("PAGESPLIT_{key}"), value))
    .collect()
}

/// The example pages (`examples/pages`), as `pagesplit demo` publishes them.
fn example_pages() -> Vec<PageToPublish> {
    let directory = repo_path("examples/pages");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&directory)
        .unwrap_or_else(|error| panic!("{}: {error}", directory.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "example pages in {}: {files:?}", directory.display());
    let fetched_at = Utc.with_ymd_and_hms(2024, 12, 8, 10, 15, 0).unwrap();
    files
        .iter()
        .map(|file| PageToPublish {
            url: format!("https://pages.example/{}", file.file_name().unwrap().to_string_lossy()),
            fetched_at,
            content_type: "text/plain".to_owned(),
            body: std::fs::read_to_string(file).unwrap_or_else(|error| panic!("{}: {error}", file.display())),
        })
        .collect()
}

/// Event ids the library's own parser gives the pages: (quote ids, article ids).
fn expected_event_ids(pages: &[PageToPublish]) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut quotes, mut articles) = (BTreeSet::new(), BTreeSet::new());
    for page in pages {
        let raw = RawPage {
            url: page.url.clone(),
            fetched_at: page.fetched_at,
            content_type: ContentType::Text,
            charset: None,
            body: page.body.clone().into_bytes(),
        };
        let parsed = parse_page(&raw, &ParseOptions::default()).unwrap_or_else(|error| panic!("{}: {error}", page.url));
        quotes.extend(parsed.quotes.iter().map(|quote| quote.event_id.to_string()));
        articles.insert(parsed.article.event_id.to_string());
    }
    (quotes, articles)
}

/// The `event_id` of every record of `topic`, decoded with the bundled schema.
fn event_ids_in(bootstrap: &str, topic: &str, schema: &apache_avro::Schema) -> Vec<String> {
    common::read_all(bootstrap, topic)
        .iter()
        .map(|record| {
            let event = decode_event(&record.value, schema).unwrap_or_else(|error| panic!("{topic}: {error:#}"));
            match common::field(&event, "event_id") {
                Value::Uuid(id) => id.to_string(),
                other => common::text(other),
            }
        })
        .collect()
}

/// Publishes the example pages to the worker's input topic, waits for the group to commit them
/// and checks that the output topics hold exactly the events the library's parser gives them.
async fn split_example_pages_end_to_end(config: &Config) {
    let pages = example_pages();
    let (expected_quotes, expected_articles) = expected_event_ids(&pages);
    assert!(expected_quotes.len() >= 34 && expected_articles.len() == pages.len());
    let positions: Positions = publish_pages(&config.kafka.bootstrap_servers, &config.topics.input, &pages)
        .await
        .expect("example pages published");
    common::wait_for_commit(config, &positions, Duration::from_secs(90)).await;

    let schemas = Schemas::bundled();
    let bootstrap = config.kafka.bootstrap_servers.clone();
    let quotes = event_ids_in(&bootstrap, &config.topics.quotes, &schemas.quote);
    let articles = event_ids_in(&bootstrap, &config.topics.articles, &schemas.article);
    assert_eq!(quotes.len(), expected_quotes.len(), "one record per quote");
    assert_eq!(quotes.into_iter().collect::<BTreeSet<_>>(), expected_quotes);
    assert_eq!(articles.len(), pages.len(), "one article per page");
    assert_eq!(articles.into_iter().collect::<BTreeSet<_>>(), expected_articles);
    // The latest-quote topic: a quote of every symbol, and one only when it changed (pages of
    // two strips may share a symbol at the same value).
    let latest = common::read_all(&bootstrap, config.topics.quotes_latest().expect("latest-quote topic"));
    let latest_ids: BTreeSet<String> = event_ids_in(&bootstrap, config.topics.quotes_latest().unwrap(), &schemas.quote)
        .into_iter()
        .collect();
    assert!(
        latest_ids.is_subset(&expected_quotes),
        "latest quotes are quotes of the pages"
    );
    let symbols: BTreeSet<Option<String>> = common::read_all(&bootstrap, &config.topics.quotes)
        .into_iter()
        .map(|record| record.key)
        .collect();
    let latest_symbols: BTreeSet<Option<String>> = latest.into_iter().map(|record| record.key).collect();
    assert_eq!(latest_symbols, symbols, "every symbol on the latest-quote topic");
    let dead_letters = pagesplit::demo::end_offsets(&bootstrap, &config.topics.dead_letter).expect("dead-letter ends");
    assert!(
        dead_letters.values().all(|end| *end == 0),
        "no example page is dead-lettered: {dead_letters:?}"
    );
}

/// The message of every line the worker logged, each line checked to be JSON.
fn json_log_messages(logs: &str) -> Vec<String> {
    logs.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let event: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|error| panic!("log line is not JSON ({error}): {line}"));
            event["message"]
                .as_str()
                .or(event["fields"]["message"].as_str())
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

/// A value of a `Name:\tvalue` line of /proc/<pid>/status.
fn status_field<'a>(status: &'a str, name: &str) -> &'a str {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {name} in /proc/1/status:\n{status}"))
        .trim()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_runs_the_configmap_config_locked_down_splits_pages_and_drains_on_sigterm() {
    let image = image();
    let config = common::test_config("container", EncodingFormat::Confluent);
    let work = tempfile::tempdir().expect("temporary directory");
    let config_file = work.path().join("pagesplit.toml");
    std::fs::write(&config_file, configmap_toml()).expect("write the ConfigMap's pagesplit.toml");
    // The worker reads its configuration as the image's user.
    std::fs::set_permissions(work.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&config_file, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();

    // The image's own contract: user, HEALTHCHECK, stop signal.
    let user = podman_ok(&["image", "inspect", "--format", "{{.Config.User}}", &image]);
    assert_eq!(user.trim(), format!("{IMAGE_UID}:{IMAGE_UID}"));
    let health = podman_ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Healthcheck.Test}}",
        &image,
    ]);
    assert_eq!(health.trim(), r#"["CMD","pagesplit","healthcheck"]"#);

    // As the Deployment runs it: no --user (the image's), read-only root, no capabilities, no
    // privilege escalation, the configuration mounted read-only, a writable /tmp.
    let name = common::unique("pagesplit-container").replace('.', "-");
    let mount = format!("{}:/etc/pagesplit/pagesplit.toml:ro", config_file.display());
    let mut args: Vec<String> = [
        "run",
        "--detach",
        "--name",
        &name,
        "--network",
        "host",
        "--read-only",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--tmpfs",
        "/tmp",
        "--volume",
        &mount,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for (key, value) in test_overrides(&config, free_port()) {
        args.extend(["--env".to_owned(), format!("{key}={value}")]);
    }
    args.extend([
        image.clone(),
        "run".into(),
        "--config".into(),
        "/etc/pagesplit/pagesplit.toml".into(),
    ]);
    podman_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let container = Container { name };

    container.wait_healthy(Duration::from_secs(60)).await;

    // Runs as 10001 with no capability at all, cannot gain any, cannot write its root.
    let status = container.exec(&["cat", "/proc/1/status"]);
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let status = String::from_utf8_lossy(&status.stdout).into_owned();
    assert_eq!(status_field(&status, "Name"), "pagesplit");
    assert_eq!(
        status_field(&status, "Uid").split_whitespace().collect::<Vec<_>>(),
        [IMAGE_UID; 4]
    );
    assert_eq!(
        status_field(&status, "Gid").split_whitespace().collect::<Vec<_>>(),
        [IMAGE_UID; 4]
    );
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(u64::from_str_radix(status_field(&status, set), 16), Ok(0), "{set}");
    }
    assert_eq!(status_field(&status, "NoNewPrivs"), "1");
    assert_eq!(container.inspect("{{.HostConfig.ReadonlyRootfs}}"), "true");
    assert_eq!(container.inspect("{{.HostConfig.CapAdd}}"), "[]");
    // As root inside (owner of /usr/local/bin), so only the read-only mount can refuse it.
    let write = container.exec(&["--user", "0:0", "touch", "/usr/local/bin/written"]);
    assert!(!write.status.success(), "the root file system is writable");
    assert!(
        String::from_utf8_lossy(&write.stderr).contains("Read-only file system"),
        "{}",
        String::from_utf8_lossy(&write.stderr)
    );

    split_example_pages_end_to_end(&config).await;

    // The HEALTHCHECK command fails when nothing answers on the address it checks.
    let unhealthy = container.exec(&[
        "pagesplit",
        "healthcheck",
        "--set",
        &format!("http.listen=127.0.0.1:{}", free_port()),
    ]);
    assert!(!unhealthy.status.success(), "healthcheck passed with nothing listening");
    // Exits non-zero when the image's HEALTHCHECK command fails.
    podman_ok(&["healthcheck", "run", &container.name]);

    // SIGTERM (the image's STOPSIGNAL) stops it cleanly before podman's SIGKILL, which comes
    // after the drain timeout of the ConfigMap's configuration.
    let drain = Config::load(Some(&config_file), std::iter::empty(), &[])
        .expect("the ConfigMap's configuration loads")
        .pipeline
        .drain_timeout_ms;
    assert_eq!(container.inspect("{{.Config.StopSignal}}"), "15");
    let stop_after = (drain / 1000).max(1).to_string();
    podman_ok(&["stop", "--time", &stop_after, &container.name]);
    assert_eq!(container.inspect("{{.State.Running}}"), "false");
    let logs = container.logs();
    assert_eq!(
        container.inspect("{{.State.ExitCode}}"),
        "0",
        "exit code after SIGTERM; logs:\n{logs}"
    );
    let messages = json_log_messages(&logs);
    for expected in [
        "signal received; shutting down",
        "shutdown requested; draining",
        "worker stopped",
    ] {
        assert!(
            messages.iter().any(|message| message == expected),
            "no {expected:?} in the logs:\n{logs}"
        );
    }
    common::delete_topics(&config).await;
}

/// `pagesplit config check` inside the image accepts the configuration as the Kubernetes
/// manifests (ConfigMap file + image environment) and the compose file (environment) give it.
#[test]
fn image_config_check_accepts_the_configmap_and_compose_configurations() {
    let image = image();
    let work = tempfile::tempdir().expect("temporary directory");
    let config_file = work.path().join("pagesplit.toml");
    std::fs::write(&config_file, configmap_toml()).expect("write the ConfigMap's pagesplit.toml");
    std::fs::set_permissions(work.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&config_file, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let mount = format!("{}:/etc/pagesplit/pagesplit.toml:ro", config_file.display());
    let from_configmap = podman_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--read-only",
        "--cap-drop",
        "ALL",
        "--volume",
        &mount,
        &image,
        "config",
        "check",
        "--config",
        "/etc/pagesplit/pagesplit.toml",
    ]);
    let effective: toml::Table = toml::from_str(&from_configmap).expect("config check prints TOML");
    let file: toml::Table = toml::from_str(&configmap_toml()).expect("the ConfigMap's file is TOML");
    assert_eq!(
        effective["kafka"]["bootstrap_servers"],
        file["kafka"]["bootstrap_servers"]
    );
    assert_eq!(effective["registry"]["url"], file["registry"]["url"]);
    assert_eq!(effective["topics"]["create"], file["topics"]["create"]);
    // The image's environment wins over the file.
    assert_eq!(effective["http"]["listen"].as_str(), Some("0.0.0.0:9808"));
    assert_eq!(effective["log"]["format"].as_str(), Some("json"));

    let environment = compose_environment();
    assert!(
        !environment.is_empty(),
        "the compose file gives pagesplit an environment"
    );
    let mut args: Vec<String> = ["run", "--rm", "--network", "none", "--read-only"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for (key, value) in &environment {
        args.extend(["--env".to_owned(), format!("{key}={value}")]);
    }
    args.extend([image, "config".into(), "check".into()]);
    let from_compose = podman_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let effective: toml::Table = toml::from_str(&from_compose).expect("config check prints TOML");
    let bootstrap = environment
        .iter()
        .find(|(key, _)| key == "PAGESPLIT_KAFKA__BOOTSTRAP_SERVERS")
        .map(|(_, value)| value.as_str());
    assert_eq!(effective["kafka"]["bootstrap_servers"].as_str(), bootstrap);
}

/// podman-compose (`PAGESPLIT_TEST_PODMAN_COMPOSE`, else the one on PATH) with the compose file
/// and an override, in a project of its own, taken down when the test ends.
struct ComposeProject {
    name: String,
    files: Vec<PathBuf>,
}

impl ComposeProject {
    fn run(&self, args: &[&str]) -> Output {
        let program = std::env::var("PAGESPLIT_TEST_PODMAN_COMPOSE").unwrap_or_else(|_| "podman-compose".to_owned());
        let mut command = podman_command(&program);
        command.arg("--project-name").arg(&self.name);
        for file in &self.files {
            command.arg("--file").arg(file);
        }
        command.args(args);
        command
            .output()
            .unwrap_or_else(|error| panic!("{program} {args:?} did not start: {error}"))
    }

    fn run_ok(&self, args: &[&str]) {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "podman-compose {args:?} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for ComposeProject {
    fn drop(&mut self) {
        let _ = self.run(&["down", "--timeout", "0"]);
    }
}

/// The compose file's pagesplit service, with an override that only puts it on the host network
/// (where the local broker and registry are) and points it at unique topics: it runs the image,
/// passes the compose healthcheck, splits the example pages and stops with exit code 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_pagesplit_service_splits_pages_against_the_local_stack() {
    let config = common::test_config("compose", EncodingFormat::Confluent);
    let work = tempfile::tempdir().expect("temporary directory");
    let mut environment = serde_yaml_ng::Mapping::new();
    for (key, value) in test_overrides(&config, free_port()) {
        environment.insert(key.into(), value.into());
    }
    let mut service = serde_yaml_ng::Mapping::new();
    service.insert("image".into(), image().into());
    service.insert("network_mode".into(), "host".into());
    service.insert("environment".into(), environment.into());
    let mut services = serde_yaml_ng::Mapping::new();
    services.insert("pagesplit".into(), service.into());
    let mut document = serde_yaml_ng::Mapping::new();
    document.insert("services".into(), services.into());
    let override_file = work.path().join("compose.local-stack.yml");
    std::fs::write(&override_file, serde_yaml_ng::to_string(&document).unwrap()).expect("write the override");

    let project = ComposeProject {
        name: common::unique("pagesplit-compose").replace('.', "-"),
        files: vec![repo_path("deploy/docker-compose.yml"), override_file],
    };
    project.run_ok(&["up", "--detach", "--no-build", "--no-deps", "pagesplit"]);
    let container = Container {
        name: format!("{}_pagesplit_1", project.name),
    };
    assert_eq!(container.inspect("{{.ImageName}}"), image());
    assert_eq!(
        container.inspect("{{.Config.User}}"),
        format!("{IMAGE_UID}:{IMAGE_UID}")
    );
    container.wait_healthy(Duration::from_secs(60)).await;

    split_example_pages_end_to_end(&config).await;

    project.run_ok(&["stop", "--timeout", "10", "pagesplit"]);
    let logs = container.logs();
    assert_eq!(container.inspect("{{.State.ExitCode}}"), "0", "logs:\n{logs}");
    assert!(
        json_log_messages(&logs)
            .iter()
            .any(|message| message == "worker stopped"),
        "{logs}"
    );
    common::delete_topics(&config).await;
}
