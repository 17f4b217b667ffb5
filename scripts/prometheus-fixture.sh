#!/usr/bin/env bash
# Build the Prometheus test fixture into a directory, once per version of its inputs (the
# generator, this script, the rule files): 30 days of counters backfilled with promtool, then
# Sloth's and Pyrra's recording rules (scripts/prometheus-rules/) evaluated over them by
# promtool against a Prometheus running on the blocks. Rules that read other rules need those
# in the server first, so the rules are backfilled in passes: Sloth's 5-minute ratio over the
# whole 30 days (the history its period rule averages), then every rule over the last 15
# minutes, three times (the deepest chain is 5m ratio → 30d ratio → period burn → budget left).
# Sourced by scripts/test-servers.sh: `build_prometheus_fixture CACHE ROOT`.

_prom_serve() { # TSDB PORT: a Prometheus on the blocks, ready
    /usr/bin/prometheus --storage.tsdb.path="$1" --config.file=/dev/null \
        --web.listen-address="127.0.0.1:$2" --storage.tsdb.retention.time=3650d \
        >>"$1.log" 2>&1 &
    _prom_pid=$!
    local i
    for i in $(seq 1 150); do
        curl -sf -o /dev/null "http://127.0.0.1:$2/-/ready" && return 0
        sleep 0.2
    done
    echo "fixture Prometheus did not start:" >&2
    cat "$1.log" >&2
    return 1
}

_prom_stop() {
    kill "$_prom_pid" 2>/dev/null
    wait "$_prom_pid" 2>/dev/null || true
}

_prom_rules_pass() { # TMP PORT START END FILES...: evaluate rules, move the blocks in
    local tmp="$1" port="$2" start="$3" end="$4"
    shift 4
    rm -rf "$tmp/rules-out" && mkdir -p "$tmp/rules-out"
    _prom_serve "$tmp/tsdb" "$port" || return 1
    promtool tsdb create-blocks-from rules --quiet --url="http://127.0.0.1:$port" \
        --start="$start" --end="$end" --eval-interval=60s --output-dir="$tmp/rules-out" "$@" >>"$tmp/tsdb.log" 2>&1 ||
        { _prom_stop; return 1; }
    _prom_stop
    mv "$tmp/rules-out"/* "$tmp/tsdb/" 2>/dev/null || true
}

build_prometheus_fixture() { # CACHE ROOT
    local cache="$1" root="$2" tmp="$1.tmp" port end
    [ -d "$cache/tsdb" ] && return 0
    rm -rf "$tmp" && mkdir -p "$tmp"
    python3 "$root/scripts/prometheus-fixture.py" "$tmp" || return 1
    promtool tsdb create-blocks-from openmetrics "$tmp/data.om" "$tmp/tsdb" >/dev/null || return 1
    rm -f "$tmp/data.om"
    end="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["end"])' "$tmp/expected.json")"
    port="$(free_port)"
    _prom_rules_pass "$tmp" "$port" "$((end - 30 * 86400))" "$end" "$tmp/history.yml" || return 1
    local rules="$root/scripts/prometheus-rules"
    for _ in 1 2 3; do
        _prom_rules_pass "$tmp" "$port" "$((end - 900))" "$end" "$rules/sloth.yml" "$rules/pyrra.yml" ||
            return 1
    done
    rm -rf "$tmp/rules-out" "$tmp/tsdb.log" "$tmp/tsdb/wal" "$tmp/tsdb/chunks_head" "$tmp/tsdb/lock"
    rm -rf "$cache" && mv "$tmp" "$cache"
}
