#!/usr/bin/env bash
# Reproduces the table in BENCHMARKS.md: whole conversations (dial, welcome, account and PIN as
# RFC 4733, greeting, 1 for the balance, a stay in the menu, 9, the IVR's BYE) against the
# release binary on loopback, at each level of concurrent calls. Usage: bench/run.sh
# Environment: LEVELS (default "100 500 1000 2000"), RATE calls/s (default 50: one PIN-check
# thread does about 80 Argon2id logins a second here, and the ramp should not queue them),
# LOADGEN_THREADS (default 2: one generator thread cannot keep up with 2000 callers' audio),
# MODE (default `rtp`; `srtp`: signalling over one TLS connection, media SRTP by SDES, with
# encryption mandatory on the IVR; `remote`: the login run by a JSON application, bench/app.rs), ECHO=1 (callers send back every packet they hear, as SIPp's
# `-rtp_echo` does, instead of a paced silent frame), SYSCALLS=1 (also count the IVR's system
# calls over 5 s of the steady state with `perf stat`, per call and 20 ms frame), SIPP=1 (then
# run bench/sipp.sh at the same LEVELS: SIPp's own callers, the independent view of issue 16).
# IVR: another build of the binary (to compare two, A B A B); CANARY: the wire bench's binary.
# Every level also prints how late an idle real-time thread of the pacer's shape woke over its
# run (the box's own jitter, beside the pacing) and the IVR's CPU per call per 20 ms frame as a multiple of the canaries
# measured in the same run (benches/wire.rs, VISIT_ONLY=1): absolute speed moves between days.
set -euo pipefail
cd "$(dirname "$0")/.."
ivr=${IVR:-./target/release/ivr}
[ -n "${IVR:-}" ] || cargo build --release --quiet
cargo build --release --quiet --example loadgen
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
echo "canaries (this run): a stream visit $visit_ns ns; in the pacer's shape to an echoing peer $peer_ns ns; an idle pacer-shaped thread wakes late by $wake_p99 µs at p99 (max $wake_max)" >&2
[ "${MODE:-rtp}" = remote ] && cargo build --release --quiet --example bench_app
out=bench/results
mkdir -p "$out"
# A copy of the users: logins upgrade legacy PIN hashes in the file and a PIN key is made beside it.
cp sip-config/users.example.toml "$out/users.toml"
mode=${MODE:-rtp}
ivr_env=()
loadgen_args=(--target 127.0.0.1:5070)
if [ "${ECHO:-0}" = 1 ]; then
  loadgen_args+=(--echo --caller-audio false)
fi
if [ "$mode" = remote ]; then
  # The shipped conversation with its login handed to a JSON application (bench/app.rs), which
  # returns the caller to the flow's greeting once the IVR has verified the PIN it never sees.
  sed -e 's/^start = "account"/start = "app"/' sip-config/flow.toml > "$out/remote_flow.toml"
  printf '\n[steps.app]\nremote = "bank"\n' >> "$out/remote_flow.toml"
  ./target/release/examples/bench_app 127.0.0.1:5090 &
  app_pid=$!
  trap 'kill $app_pid 2>/dev/null' EXIT
  ivr_env=(IVR_FLOW__FILE="$out/remote_flow.toml" IVR_ENDPOINTS__BANK__URL=http://127.0.0.1:5090/app
    IVR_ENDPOINTS__BANK__SECRET=bench-application-secret)
fi
if [ "$mode" = srtp ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$out/key.pem" -out "$out/cert.pem" -days 2 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -addext basicConstraints=critical,CA:FALSE 2>/dev/null
  ivr_env=(IVR_SIP__TLS_LISTEN=127.0.0.1:5071 IVR_TLS__CERT_FILE="$out/cert.pem"
    IVR_TLS__KEY_FILE="$out/key.pem" IVR_RTP__ENCRYPTION=mandatory)
  loadgen_args=(--target 127.0.0.1:5071 --tls-ca "$out/cert.pem" --srtp)
fi
echo "| calls | attempted/completed/failed | setup ms p50 / p99 | digit→response ms p50 / p99 | key→prompt stop ms p50 / p99 | pacing deviation ms p50 / p99 / max | same at wake-up ms p99 | seq gaps | IVR cores (steady) | calls per core | IVR RSS MiB (steady) | KiB per call | loadgen cores |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
# The IVR's RTP ports sit below Linux's ephemeral range (32768-60999), where the generator's are.
for n in ${LEVELS:-100 500 1000 2000}; do
  rate=${RATE:-50}
  hold=$(( n / rate + 20 ))
  # One generator address stands for every caller: lift the per-source budgets.
  IVR_ADMISSION__INVITES_PER_SECOND=10000 IVR_ADMISSION__BURST=10000 IVR_ADMISSION__PENDING_PER_SOURCE=10000 \
  env "${ivr_env[@]}" IVR_DIRECTORY__USERS="$out/users.toml" IVR_SIP__LISTEN=127.0.0.1:5070 IVR_RTP__PORTS=20000-29999 "$ivr" 2>"$out/ivr-$mode-$n.log" &
  pid=$!
  sleep 2
  # Warm-up: the first logins create the PIN-check buffer and malloc arenas once.
  ./target/release/examples/loadgen "${loadgen_args[@]}" --concurrent 20 --rate 20 --hold-s 1 --ivr-pid "$pid" >/dev/null
  if [ "${SYSCALLS:-0}" = 1 ]; then
    (
      sleep $(( n / rate + 8 ))
      count=$(perf stat -e raw_syscalls:sys_enter -x, -p "$pid" -- sleep 5 2>&1 | awk -F, '/sys_enter/ {print $1}')
      echo "syscalls: $count in 5 s at $n calls: $(awk -v c="$count" -v n="$n" 'BEGIN {printf "%.2f", c / 5 / n / 50}') per call per frame" >&2
    ) &
  fi
  wake_canary $(( n / rate + hold )) >"$out/wake-$mode-$n.txt" 2>/dev/null &
  wake=$!
  ./target/release/examples/loadgen "${loadgen_args[@]}" --concurrent "$n" --rate "$rate" --hold-s "$hold" \
    --ivr-pid "$pid" --json "$out/$mode-$n.json" --markdown --threads "${LOADGEN_THREADS:-2}"
  wait "$wake" || true
  echo "an idle real-time thread of the pacer's shape woke late over the run by $(awk -F= '/^wake_late_p99_us/ {p = $2 / 1000} /^wake_late_max_us/ {m = $2 / 1000} END {printf "%.2f ms at p99 (max %.2f)", p, m}' "$out/wake-$mode-$n.txt"): the box's own part of the pacing" >&2
  # The IVR's whole CPU time for the run (warm-up, every call's login, menu and end): utime +
  # stime in clock ticks, on stderr beside the table.
  echo "ivr cpu s total at $n calls ($mode): $(awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' /proc/$pid/stat)" >&2
  python3 -c "
import json, sys
cores = json.load(open(sys.argv[1]))['ivr']['cores_in_window'] or 0
ns = cores * 1e9 / (int(sys.argv[2]) * 50)
print(f'ivr cpu per call-frame at {sys.argv[2]} calls: {ns:.0f} ns = {ns / float(sys.argv[3]):.2f} visits = {ns / float(sys.argv[4]):.2f} peer visits')
" "$out/$mode-$n.json" "$n" "$visit_ns" "$peer_ns" >&2 || true
  kill "$pid"
  wait "$pid" 2>/dev/null || true
done
if [ "${SIPP:-0}" = 1 ]; then
  LEVELS="${LEVELS:-500 1000 2000}" bash bench/sipp.sh
fi
