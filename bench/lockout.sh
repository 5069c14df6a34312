#!/usr/bin/env bash
# The lockout's cost per login, in memory and in Redis (benches/lockout.rs), against a
# redis-server started here on a free port and stopped after.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v redis-server >/dev/null || { echo "apt-get install -y redis-server" >&2; exit 1; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
dir=$(mktemp -d)
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" >/dev/null &
pid=$!
trap 'kill $pid; rm -rf "$dir"' EXIT
until redis-cli -p "$port" PING >/dev/null 2>&1; do sleep 0.1; done
IVR_BENCH_REDIS="redis://127.0.0.1:$port/0" cargo bench --bench lockout
