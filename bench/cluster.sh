#!/usr/bin/env bash
# Calls through Kamailio's dispatcher (sip-config/kamailio/kamailio.cfg, as shipped but for
# ports and paths) to two IVR nodes that share their lockout in Redis: how much CPU Kamailio
# spends per call, and whether every call was answered. SIPp places CALLS calls at RATE per
# second, each answered, held 2 s, hung up (tests/sipp/call_hangup_proxied.xml).
# Run: bash bench/cluster.sh   (CALLS=1000 RATE=50 by default; needs kamailio, redis-server, sipp)
set -euo pipefail
cd "$(dirname "$0")/.."
CALLS=${CALLS:-1000}
RATE=${RATE:-50}
for tool in kamailio redis-server sipp; do
  command -v $tool >/dev/null || { echo "missing $tool: apt-get install -y kamailio redis-server sip-tester" >&2; exit 1; }
done
cargo build --release --quiet
work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; sleep 0.5; rm -rf "$work"; }
trap cleanup EXIT

redis-server --port 16379 --bind 127.0.0.1 --save '' --appendonly no --dir "$work" >/dev/null &
pids+=($!)
for node in 1 2; do
  cp sip-config/users.example.toml "$work/users-$node.toml"
  IVR_DIRECTORY__USERS="$work/users-$node.toml" IVR_SIP__LISTEN=127.0.0.1:1507$node IVR_RTP__PORTS=2${node}000-2${node}999 \
  IVR_LOCKOUT__REDIS_URL=redis://127.0.0.1:16379/0 IVR_LOCKOUT__KEY="bench key shared by the nodes" \
  IVR_ADMISSION__INVITES_PER_SECOND=10000 IVR_ADMISSION__BURST=10000 IVR_ADMISSION__PENDING_PER_SOURCE=10000 \
    ./target/release/ivr 2>"$work/ivr-$node.log" &
  pids+=($!)
done
modules=$(dirname "$(ls /usr/lib/*/kamailio/modules/tm.so | head -1)")
printf '1 sip:127.0.0.1:15071 0 0\n1 sip:127.0.0.1:15072 0 0\n' > "$work/dispatcher.list"
mkdir -p "$work/run"
sed -e 's|udp:0.0.0.0:5060|udp:127.0.0.1:15060|' -e '/^listen=tcp:/d' \
    -e "s|/usr/lib/x86_64-linux-gnu/kamailio/modules/|$modules/|" \
    -e "s|/run/kamailio|$work/run|" -e "s|/etc/kamailio/dispatcher.list|$work/dispatcher.list|" \
    sip-config/kamailio/kamailio.cfg > "$work/kamailio.cfg"
kamailio -f "$work/kamailio.cfg" -DD -E -m 256 -M 8 -Y "$work/run" >/dev/null 2>"$work/kamailio.log" &
kpid=$!
pids+=($kpid)
sleep 4   # the nodes start and the first probes take them in

# CPU seconds (user + system) of Kamailio's processes (the main one and its children).
kamailio_cpu() {
  local ticks=0
  for p in $kpid $(pgrep -P $kpid); do
    set -- $(cut -d' ' -f14,15 /proc/$p/stat)
    ticks=$((ticks + $1 + $2))
  done
  echo "scale=3; $ticks / $(getconf CLK_TCK)" | bc
}

before=$(kamailio_cpu)
start=$(date +%s.%N)
sipp 127.0.0.1:15060 -sf tests/sipp/call_hangup_proxied.xml -i 127.0.0.1 -p 15090 -mp 19000 \
  -m "$CALLS" -r "$RATE" -l 2000 -nostdin -timeout 300s -trace_stat -stf "$work/stat.csv" \
  >/dev/null 2>&1 && sipp_ok=yes || sipp_ok=no
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
after=$(kamailio_cpu)
# SIPp's statistics: SuccessfulCall(C) and FailedCall(C).
succeeded=$(tail -1 "$work/stat.csv" | awk -F';' '{print $16}')
failed=$(tail -1 "$work/stat.csv" | awk -F';' '{print $18}')
answered=$(( $(grep -c 'call offered' "$work/ivr-1.log") + $(grep -c 'call offered' "$work/ivr-2.log") ))
cpu=$(echo "$after - $before" | bc)
echo "calls $CALLS at $RATE/s through Kamailio to 2 nodes: SIPp succeeded ${succeeded:-?}, failed ${failed:-?} (all ok: $sipp_ok); offered to nodes: $answered (node 1: $(grep -c 'call offered' "$work/ivr-1.log"), node 2: $(grep -c 'call offered' "$work/ivr-2.log"))"
echo "Kamailio CPU: $cpu s over $elapsed s = $(echo "scale=1; $cpu * 1000000 / $CALLS" | bc) µs per call (INVITE, 100, 200, ACK, BYE, 200 and the probes); $(echo "scale=0; $CALLS / $cpu" | bc 2>/dev/null || echo '?') calls per Kamailio CPU-second"
