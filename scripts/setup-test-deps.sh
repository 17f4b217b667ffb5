#!/usr/bin/env bash
# Install what the test suite needs on a fresh machine; quick no-op when already there.
#   - Debian's openssh-server and openssh-client (a real sshd on 127.0.0.1, the ssh client)
#   - Debian's nginx (the blue-green router is tested against a real nginx on 127.0.0.1)
#   - Debian's prometheus and prometheus-alertmanager (the SLO and alert sources are tested
#     against the real servers, Prometheus fed offline)
#   - Debian's logrotate (the weekly maintenance rotates real logs) and openssl (a TLS listener
#     with a test certificate for the certificate check)
#   - Debian's lynis (the access review is compared with its AUTH-92xx and SSH-7408 tests)
#   - Debian's chromium (the monthly review's HTML is opened in a real headless browser)
#   - a virtualenv (.venv-test) with moto's S3-compatible server and boto3, and maturin,
#     pytest and mypy for the Python extension
set -euo pipefail
cd "$(dirname "$0")/.."

if ! [ -x /usr/sbin/sshd ] || ! command -v ssh >/dev/null || ! command -v ssh-keygen >/dev/null ||
    ! [ -x /usr/sbin/nginx ] || ! [ -x /usr/sbin/logrotate ] || ! command -v openssl >/dev/null ||
    ! [ -x /usr/bin/prometheus ] || ! [ -x /usr/bin/promtool ] || ! [ -x /usr/bin/prometheus-alertmanager ] ||
    ! command -v lynis >/dev/null || ! command -v unshare >/dev/null || ! command -v ss >/dev/null ||
    ! command -v ps >/dev/null || ! command -v stress-ng >/dev/null || ! command -v tc >/dev/null ||
    ! command -v chromium >/dev/null; then
    echo "== installing openssh-server, nginx, logrotate, openssl, prometheus, alertmanager, lynis, stress-ng and chromium (apt)"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    # nginx's package may try to start the system nginx: the tests run their own, so keep
    # the package scripts from starting services.
    made_policy=""
    if ! [ -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod +x /usr/sbin/policy-rc.d
        made_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq openssh-server openssh-client nginx-light logrotate openssl prometheus prometheus-alertmanager lynis util-linux iproute2 procps stress-ng chromium >/dev/null
    [ -z "$made_policy" ] || $SUDO rm -f /usr/sbin/policy-rc.d
fi

VENV=.venv-test
if ! [ -x "$VENV/bin/moto_server" ] || ! cmp -s scripts/requirements-test.txt "$VENV/.requirements"; then
    echo "== installing moto, boto3, maturin, pytest and mypy into $VENV (pip)"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r scripts/requirements-test.txt
    cp scripts/requirements-test.txt "$VENV/.requirements"
fi
