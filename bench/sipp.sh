#!/usr/bin/env bash
# The independent measurement of issue 16, reproduced: SIPp callers (PCMU, 15 s holds, every
# RTP packet echoed back by -rtp_echo, no keys) against the release binary on loopback, and the
# IVR's CPU from /proc over WINDOW seconds (default 10) with every call of a level up.
# Usage: bench/sipp.sh   Environment: LEVELS (default "500 1000 2000"), PROFILE=1 (perf record
# the IVR over the same window into bench/results/perf-sipp-N.data and print its top symbols),
# IVR (another build of the binary, to compare two), WINDOW (seconds measured, default 10),
# CANARY (the wire bench's binary, built: target/release/deps/wire-*), PROBE=1 (one caller of
# bench/loadgen.rs beside SIPp's times every RTP arrival from the IVR: the pacing columns).
# The probe's pacing comes with how late an idle real-time thread of the pacer's shape woke over
# the same window (the box's own jitter: a hypervisor's pauses reach every call alike).
# Every figure comes with the canary of the same run (benches/wire.rs's visit) and the IVR's
# CPU per call per 20 ms frame as a multiple of it: absolute speed moves between days, the
# ratio much less (it still moves: compare builds A B A B in one session).
# SIPp echoes on one media socket (-mp) for every call: the IVR's streams all send to it.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v sipp >/dev/null || { echo "missing sipp: apt-get install -y sip-tester" >&2; exit 1; }
ivr=${IVR:-./target/release/ivr}
[ -n "${IVR:-}" ] || cargo build --release --quiet
[ "${PROBE:-0}" = 1 ] && cargo build --release --quiet --example loadgen
window=${WINDOW:-10}
out=bench/results
mkdir -p "$out"
cp sip-config/users.example.toml "$out/users.toml"
ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# The canary: one stream visit (read until EAGAIN, send one frame) over 500 loopback sockets,
# measured in this run, so the IVR's CPU per call-frame reads as a multiple of its own floor.
# CANARY: the wire bench's binary, already built (else `cargo bench` builds it first). It prints
# two canaries: `visit_ns` (read until EAGAIN, send one frame: the floor the issue names) and
# `peer_visit_ns` (the same in the pacer's shape, 4 ms phases, to a peer thread that echoes as
# SIPp does, its wake-ups included: the floor of this very load).
# The wire bench (CANARY, else built here) with its mode in the environment: VISIT_ONLY=1 for
# the canaries, WAKE_ONLY=<s> for the box's own jitter (an idle thread of the pacer's shape).
wire() {
  if [ -n "${CANARY:-}" ]; then env "$@" "$CANARY"; else env "$@" cargo bench --quiet --bench wire 2>/dev/null; fi
}
canaries() { wire VISIT_ONLY=1; }
wake_canary() { wire WAKE_ONLY="$1"; }
measured=$(canaries)
visit_ns=$(echo "$measured" | sed -n 's/^visit_ns=//p')
peer_ns=$(echo "$measured" | sed -n 's/^peer_visit_ns=//p')
wake_p99=$(echo "$measured" | sed -n 's/^wake_late_p99_us=//p')
wake_max=$(echo "$measured" | sed -n 's/^wake_late_max_us=//p')
echo "canaries (this run, before the load): a stream visit $visit_ns ns; in the pacer's shape to an echoing peer $peer_ns ns; an idle pacer-shaped thread wakes late by $wake_p99 µs at p99 (max $wake_max)"
echo
echo "| calls | IVR cores ($window s steady) | calls per core | ns of CPU per call-frame | visits per call-frame | peer visits per call-frame | syscalls per call per frame | context switches per second | probe pacing ms p50 / p99 / max | idle thread wakes late ms p99 / max (same window) |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for n in ${LEVELS:-500 1000 2000}; do
  rate=$(( n / 15 ))
  IVR_ADMISSION__INVITES_PER_SECOND=10000 IVR_ADMISSION__BURST=10000 IVR_ADMISSION__PENDING_PER_SOURCE=10000 \
  IVR_DIRECTORY__USERS="$out/users.toml" IVR_SIP__LISTEN=127.0.0.1:5070 IVR_RTP__PORTS=20000-29999 \
    "$ivr" 2>"$out/ivr-sipp-$n.log" &
  pid=$!
  sleep 2
  sipp 127.0.0.1:5070 -sf bench/sipp_echo.xml -i 127.0.0.1 -p 5090 -mi 127.0.0.1 -mp 40000 -rtp_echo \
    -r "$rate" -l "$n" -m $(( n * (2 + window / 15) )) -nostdin -bg -trace_err >/dev/null 2>&1 || true  # -bg exits 99
  # Ramp (15 s) and 3 s more, then the window with every call up (calls keep coming at the same rate).
  sleep 18
  if [ "${PROBE:-0}" = 1 ]; then
    # One caller of our own beside SIPp's, timing every RTP arrival (kernel stamps): pacing.
    ./target/release/examples/loadgen --target 127.0.0.1:5070 --concurrent 1 --rate 1 --hold-s "$window" \
      --sample 1 --json "$out/probe-$n.json" >/dev/null 2>&1 &
    probe=$!
    wake_canary "$window" >"$out/wake-$n.txt" 2>/dev/null &
    wake=$!
  fi
  # The IVR's CPU over the window, with nothing else watching it (perf's tracepoints cost the
  # traced process; they count afterwards, over 5 s).
  before=$(cpu_ticks "$pid")
  if [ "${PROFILE:-0}" = 1 ]; then
    perf record -F 999 -g -p "$pid" -o "$out/perf-sipp-$n.data" -- sleep "$window" 2>/dev/null >/dev/null &
  fi
  sleep "$window"
  after=$(cpu_ticks "$pid")
  wait_for=5
  counted=$(perf stat -e raw_syscalls:sys_enter,context-switches -x, -p "$pid" -- sleep "$wait_for" 2>&1)
  count=$(echo "$counted" | awk -F, '/sys_enter/ {print $1}')
  switches=$(echo "$counted" | awk -F, '/context-switches/ {printf "%d", $1 / w}' w="$wait_for")
  cores=$(awk -v a="$after" -v b="$before" -v t="$ticks" -v w="$window" 'BEGIN {printf "%.3f", (a - b) / t / w}')
  per_core=$(awk -v c="$cores" -v n="$n" 'BEGIN {printf "%d", n / c}')
  per_frame=$(awk -v c="$count" -v n="$n" -v w="$wait_for" 'BEGIN {printf "%.2f", c / w / n / 50}')
  frame_ns=$(awk -v c="$cores" -v n="$n" 'BEGIN {printf "%d", c * 1e9 / (n * 50)}')
  visits=$(awk -v f="$frame_ns" -v v="$visit_ns" 'BEGIN {printf "%.2f", f / v}')
  peer_visits=$(awk -v f="$frame_ns" -v v="$peer_ns" 'BEGIN {printf "%.2f", f / v}')
  pacing=""
  box=""
  if [ "${PROBE:-0}" = 1 ]; then
    wait "$probe" || true
    wait "$wake" || true
    box=$(awk -F= '/^wake_late_p99_us/ {p = $2 / 1000} /^wake_late_max_us/ {m = $2 / 1000} END {printf "%.2f / %.2f", p, m}' "$out/wake-$n.txt")
    pacing=$(python3 -c "import json, sys; p = json.load(open(sys.argv[1]))['pacing_deviation_ms']; print(p['p50'], '/', p['p99'], '/', p['max'])" "$out/probe-$n.json" 2>/dev/null || echo "no probe")
  fi
  echo "| $n | $cores | $per_core | $frame_ns | $visits | $peer_visits | $per_frame | $switches | $pacing | $box |"
  pkill -x sipp || true
  sleep 1
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  if [ "${PROFILE:-0}" = 1 ]; then
    wait
    perf report -i "$out/perf-sipp-$n.data" --no-children --percent-limit 1.5 --stdio 2>/dev/null \
      | grep -E '^ +[0-9.]+%' | head -25
  fi
done
echo
echo "canaries after the load: $(canaries | tr '\n' ' ')(before: visit_ns=$visit_ns peer_visit_ns=$peer_ns)"
