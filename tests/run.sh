#!/usr/bin/env bash
# The one test command (README, .ci/run): installs the real peers the tests drive when they are
# missing, then checks formatting and lints and runs every test, without and with Opus.
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

cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
cargo clippy --all-targets --features opus -- -D warnings
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test 2>&1 | tee "$log"
cargo test --features opus 2>&1 | tee -a "$log"
# One closing line for both runs (pipefail above already failed the script on any red test).
awk '/^test result:/ { p += $4; f += $6 } END { printf "all runs: %d passed, %d failed\n", p, f }' "$log"
