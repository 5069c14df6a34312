#!/usr/bin/env bash
# The one test command (README, .ci/run): installs the real peers the tests drive when they are
# missing, then checks formatting and lints (with and without Opus), runs every test, then the
# unit tests and the Opus tests again with Opus, and fails if any peer a test started is alive.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=()
command -v sipp >/dev/null || packages+=(sip-tester)
command -v baresip >/dev/null || packages+=(baresip)
command -v linphonec >/dev/null || packages+=(linphone-cli)
command -v pkg-config >/dev/null || packages+=(pkg-config)
command -v sox >/dev/null || packages+=(sox)
command -v svwar >/dev/null || packages+=(sipvicious)
command -v espeak-ng >/dev/null || packages+=(espeak-ng)
command -v tcpdump >/dev/null || packages+=(tcpdump)
command -v kamailio >/dev/null || packages+=(kamailio)
dpkg -s kamailio-tls-modules >/dev/null 2>&1 || packages+=(kamailio-tls-modules)
command -v dnsmasq >/dev/null || packages+=(dnsmasq-base)
command -v redis-server >/dev/null || packages+=(redis-server)
command -v dot >/dev/null || packages+=(graphviz)
command -v prometheus >/dev/null || packages+=(prometheus)
dpkg -s libopus-dev >/dev/null 2>&1 || packages+=(libopus-dev)
if [ ${#packages[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing: ${packages[*]}; run as root or: sudo apt-get install -y ${packages[*]}" >&2
    exit 1
  fi
  echo "installing ${packages[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

# Twilio's own helper library, for the TwiML application the tests run (sip-config/examples/apps/).
python3 -c "import twilio" 2>/dev/null || python3 -m pip install -q twilio

# A full run writes about 6 GB under the target directory. A linker that runs out of disk dies
# with SIGBUS, which reads like a toolchain bug, so make room first and say so.
target_dir=${CARGO_TARGET_DIR:-target}
mkdir -p "$target_dir"
free_mb() { df -Pm "$target_dir" | awk 'NR == 2 { print $4 }'; }
if [ "$(free_mb)" -lt 10240 ]; then
  echo "only $(free_mb) MB free for $target_dir: cargo clean first"
  cargo clean
  echo "$(free_mb) MB free after cargo clean"
fi

# Every long-lived peer the tests start carries PEER_OF_IVR_TESTS=1 (tests/support/process.rs)
# and dies with its test. Any found here outlived its test.
peers_left() {
  local environ pid
  for environ in /proc/[0-9]*/environ; do
    if { tr '\0' '\n' <"$environ"; } 2>/dev/null | grep -qx 'PEER_OF_IVR_TESTS=1'; then
      pid=${environ#/proc/}
      pid=${pid%/environ}
      echo "$pid $({ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null)"
    fi
  done
}
stale=$(peers_left)
if [ -n "$stale" ]; then
  echo "killing test peers an earlier run left behind:"
  echo "$stale"
  echo "$stale" | awk '{ print $1 }' | xargs -r kill -9 2>/dev/null || true
fi

cargo fmt --all -- --check
# No file over 500 lines, no import circle, no layer reaching up (CONTRIBUTING.md).
python3 tests/shape/check.py
cargo clippy --all-targets -- -D warnings
cargo clippy --all-targets --features opus -- -D warnings

# The integration tests (one binary, tests/it) mostly wait on real peers and real time: more
# threads than cores keeps both cores busy.
export RUST_TEST_THREADS=${RUST_TEST_THREADS:-6}
log=$(mktemp)
check_peers() {
  local left
  left=$(peers_left)
  rm -f "$log"
  if [ -n "$left" ]; then
    echo "FAILED: these test peers outlived their tests:"
    echo "$left"
    echo "$left" | awk '{ print $1 }' | xargs -r kill -9 2>/dev/null || true
    exit 1
  fi
}
trap check_peers EXIT
cargo test 2>&1 | tee "$log"
# With Opus: the unit tests, and the integration tests of what the feature changes.
cargo test --features opus --lib 2>&1 | tee -a "$log"
cargo test --features opus --test it -- opus:: 2>&1 | tee -a "$log"
# One closing line for every run (pipefail above already failed the script on any red test).
awk '/^test result:/ { p += $4; f += $6 } END { printf "all runs: %d passed, %d failed\n", p, f }' "$log"
