#!/usr/bin/env bash
# Static checks of the Prometheus configuration and alerting rules:
#   promtool check config  (prometheus.yml, prometheus.compose.yml)
#   promtool check rules   (rules.yml)
#   promtool test rules    (rules_test.yml: every alert firing and silent)
#
# Uses $PROMTOOL, or promtool from PATH. When promtool is missing and this runs
# as root on Debian/Ubuntu, it installs the distribution's prometheus package
# (which ships promtool) without starting its service.
# Exits non-zero when any check fails.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"

install_promtool() {
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        return 1
    fi
    echo "promtool not found: installing the prometheus package" >&2
    local guard=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        # Keep the package's post-install step from starting a server.
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 0755 /usr/sbin/policy-rc.d
        guard=1
    fi
    local rc=0
    {
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus ||
            { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; }
    } >&2 || rc=$?
    if [[ -n $guard ]]; then
        rm -f /usr/sbin/policy-rc.d
    fi
    return "$rc"
}

PROMTOOL=${PROMTOOL:-promtool}
if ! command -v "$PROMTOOL" >/dev/null 2>&1; then
    if ! install_promtool || ! command -v "$PROMTOOL" >/dev/null 2>&1; then
        echo "error: promtool not found; install Prometheus (Debian: apt-get install prometheus) or set PROMTOOL" >&2
        exit 2
    fi
fi
"$PROMTOOL" --version 2>&1 | head -n 1

passed=0
failed=0
run() {
    echo "--- $*"
    if "$PROMTOOL" "$@"; then
        passed=$((passed + 1))
    else
        echo "FAILED: promtool $*" >&2
        failed=$((failed + 1))
    fi
}

run check config prometheus.yml prometheus.compose.yml
run check rules rules.yml
run test rules rules_test.yml

echo "prometheus: ${passed} passed, ${failed} failed"
[[ $failed -eq 0 ]]
