#!/usr/bin/env bash
# Start the real servers the tests use, on free loopback ports, with throwaway keys:
#   - moto (S3-compatible) server
#   - Debian's sshd, listening on three ports (three "hosts"), with stand-ins on their PATH for
#     what CI must not really run: systemctl (no systemd as PID 1; scripts/standins/systemctl
#     manages real processes through pid files, units in $AGENTLAB_SYSTEMD_UNITS) and apt-get
#     (never really upgrade the CI machine; scripts/standins/apt-get reports from a fixture)
#   - Debian's Prometheus, with 30 days of backfilled request counters, and Alertmanager
#   - Debian's nginx, proxying to two backends (blue, green) through a rewritable upstream file
# Usage: source scripts/test-servers.sh; start_test_servers; ...; stop_test_servers
# Exports AGENTLAB_TEST_S3_ENDPOINT, AGENTLAB_TEST_SSH_DIR, AGENTLAB_TEST_SSH_PORTS,
# AGENTLAB_TEST_SSH_USER, AGENTLAB_TEST_NGINX_{DIR,PORT,BLUE_PORT,GREEN_PORT} and fake AWS
# credentials (the tests' S3 uses the standard chain).

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start_test_servers() {
    local root
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    AGENTLAB_TEST_DIR="$(mktemp -d /tmp/agentlab-test.XXXXXX)"
    export AGENTLAB_TEST_DIR
    local D="$AGENTLAB_TEST_DIR"

    # --- S3: moto server
    local s3port
    s3port="$(free_port)"
    "$root/.venv-test/bin/moto_server" -H 127.0.0.1 -p "$s3port" >"$D/moto.log" 2>&1 &
    echo $! >"$D/moto.pid"
    export AGENTLAB_TEST_S3_ENDPOINT="http://127.0.0.1:$s3port"
    export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
    export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

    # --- SSH: sshd on two ports with throwaway keys
    local sd="$D/ssh"
    mkdir -p "$sd/home"
    ssh-keygen -q -t ed25519 -N '' -f "$sd/host_ed25519"
    ssh-keygen -q -t ed25519 -N '' -f "$sd/client_ed25519"
    cp "$sd/client_ed25519.pub" "$sd/authorized_keys"
    chmod 600 "$sd/authorized_keys" "$sd"/*_ed25519
    local p1 p2 p3
    p1="$(free_port)"
    p2="$(free_port)"
    p3="$(free_port)"
    mkdir -p "$sd/bin" "$sd/units"
    ln -sf "$root/scripts/standins/systemctl" "$sd/bin/systemctl"
    ln -sf "$root/scripts/standins/apt-get" "$sd/bin/apt-get"
    : >"$sd/known_hosts"
    for p in "$p1" "$p2" "$p3"; do
        echo "[127.0.0.1]:$p $(cut -d' ' -f1,2 "$sd/host_ed25519.pub")" >>"$sd/known_hosts"
    done
    cat >"$sd/sshd_config" <<CFG
Port $p1
Port $p2
Port $p3
ListenAddress 127.0.0.1
HostKey $sd/host_ed25519
PidFile $sd/sshd.pid
AuthorizedKeysFile $sd/authorized_keys
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
MaxSessions 64
MaxStartups 64:30:128
SetEnv HOME=$sd/home PATH=$sd/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin AGENTLAB_SYSTEMD_UNITS=$sd/units
CFG
    install -d -m 0755 /run/sshd 2>/dev/null || true
    /usr/sbin/sshd -t -f "$sd/sshd_config"
    /usr/sbin/sshd -f "$sd/sshd_config" -D -e >"$sd/sshd.log" 2>&1 &
    echo $! >"$sd/sshd.bgpid"
    export AGENTLAB_TEST_SSH_DIR="$sd" AGENTLAB_TEST_SSH_PORTS="$p1 $p2 $p3" AGENTLAB_TEST_SSH_USER="$(id -un)"

    # --- nginx: a reverse proxy in front of two backends the tests start (blue and green),
    #     through an upstream file the blue-green router rewrites
    local nd="$D/nginx" np bp gp hp
    mkdir -p "$nd/logs" "$nd/tmp"
    np="$(free_port)"
    hp="$(free_port)"
    bp="$(free_port)"
    gp="$(free_port)"
    cat >"$nd/upstream.conf" <<UP
# managed by agentlab-ops: green 0%
upstream agentlab {
    server 127.0.0.1:$bp weight=100;
    server 127.0.0.1:$gp weight=1 down;
}
UP
    cat >"$nd/nginx.conf" <<CFG
worker_processes 1;
pid $nd/nginx.pid;
error_log $nd/logs/error.log;
events { worker_connections 512; }
http {
    access_log off;
    client_body_temp_path $nd/tmp/body;
    proxy_temp_path $nd/tmp/proxy;
    fastcgi_temp_path $nd/tmp/fastcgi;
    uwsgi_temp_path $nd/tmp/uwsgi;
    scgi_temp_path $nd/tmp/scgi;
    include $nd/upstream.conf;
    server {
        listen 127.0.0.1:$np;
        location / { proxy_pass http://agentlab; proxy_next_upstream off; }
    }
    # HTTP/2 with prior knowledge (h2c) for the load generator; each request's protocol and
    # connection serial number logged
    log_format proto '\$server_protocol \$connection';
    server {
        listen 127.0.0.1:$hp http2;
        access_log $nd/logs/h2.log proto;
        location / { return 200 "ok"; }
    }
}
CFG
    /usr/sbin/nginx -e "$nd/logs/error.log" -t -q -c "$nd/nginx.conf" -p "$nd"
    /usr/sbin/nginx -e "$nd/logs/error.log" -c "$nd/nginx.conf" -p "$nd"
    export AGENTLAB_TEST_NGINX_DIR="$nd" AGENTLAB_TEST_NGINX_PORT="$np" AGENTLAB_TEST_NGINX_H2_PORT="$hp"
    export AGENTLAB_TEST_NGINX_BLUE_PORT="$bp" AGENTLAB_TEST_NGINX_GREEN_PORT="$gp"

    # --- Prometheus: 30 days of backfilled counters and Sloth/Pyrra rules (scripts/prometheus-fixture.*), built once
    #     per fixture version and copied, served at a fixed instant the tests query
    local pd="$D/prometheus" pp cache sum
    mkdir -p "$pd"
    sum="$(cat "$root"/scripts/prometheus-fixture.* "$root"/scripts/prometheus-rules/*.yml | sha256sum | cut -c1-16)"
    cache="$root/target/prometheus-fixture-$sum"
    . "$root/scripts/prometheus-fixture.sh"
    build_prometheus_fixture "$cache" "$root" || return 1
    cp -r "$cache/tsdb" "$pd/tsdb"
    cp "$cache/expected.json" "$pd/expected.json"
    pp="$(free_port)"
    /usr/bin/prometheus --storage.tsdb.path="$pd/tsdb" --config.file=/dev/null \
        --web.listen-address="127.0.0.1:$pp" --storage.tsdb.retention.time=3650d >"$pd/prometheus.log" 2>&1 &
    echo $! >"$pd/prometheus.pid"
    export AGENTLAB_TEST_PROM_URL="http://127.0.0.1:$pp" AGENTLAB_TEST_PROM_DIR="$pd"

    # --- Alertmanager (Debian's prometheus-alertmanager), no receivers, no clustering
    local ad="$D/alertmanager" ap
    mkdir -p "$ad"
    printf 'route:\n  receiver: "null"\nreceivers:\n  - name: "null"\n' >"$ad/am.yml"
    ap="$(free_port)"
    /usr/bin/prometheus-alertmanager --config.file="$ad/am.yml" --storage.path="$ad/data" \
        --web.listen-address="127.0.0.1:$ap" --cluster.listen-address= >"$ad/alertmanager.log" 2>&1 &
    echo $! >"$ad/alertmanager.pid"
    export AGENTLAB_TEST_ALERTMANAGER_URL="http://127.0.0.1:$ap"

    # --- wait until they answer (30 s at most)
    local i
    for i in $(seq 1 150); do
        if curl -sf -o /dev/null "$AGENTLAB_TEST_S3_ENDPOINT/moto-api/" &&
            (exec 3<>"/dev/tcp/127.0.0.1/$p1") 2>/dev/null &&
            curl -sf -o /dev/null "$AGENTLAB_TEST_PROM_URL/-/ready" &&
            curl -sf -o /dev/null "$AGENTLAB_TEST_ALERTMANAGER_URL/-/ready"; then
            echo "== test servers: S3 at $AGENTLAB_TEST_S3_ENDPOINT, sshd on 127.0.0.1:$p1, :$p2 and :$p3, nginx on :$np, prometheus at $AGENTLAB_TEST_PROM_URL, alertmanager at $AGENTLAB_TEST_ALERTMANAGER_URL"
            return 0
        fi
        sleep 0.2
    done
    echo "test servers did not start; logs:" >&2
    cat "$D/moto.log" "$sd/sshd.log" "$pd/prometheus.log" "$ad/alertmanager.log" >&2 || true
    return 1
}

stop_test_servers() {
    local D="${AGENTLAB_TEST_DIR:-}"
    [ -n "$D" ] && [ -d "$D" ] || return 0
    local f pid i
    for f in "$D/moto.pid" "$D/ssh/sshd.bgpid" "$D/nginx/nginx.pid" "$D/prometheus/prometheus.pid" "$D/alertmanager/alertmanager.pid"; do
        [ -f "$f" ] || continue
        pid="$(cat "$f")"
        kill "$pid" 2>/dev/null || continue
        for i in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    done
    # sshd's per-connection children, if a test left one.
    pkill -f "sshd.*$D" 2>/dev/null || true
    rm -rf "$D"
}
