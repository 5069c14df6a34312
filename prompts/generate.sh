#!/usr/bin/env bash
# Regenerates the prompt WAVs from manifest.txt with espeak-ng and sox.
# Usage: prompts/generate.sh [VOICE]   (default en-us; needs: apt-get install espeak-ng sox)
set -euo pipefail
cd "$(dirname "$0")"
voice=${1:-en-us}
for tool in espeak-ng sox; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y espeak-ng sox" >&2; exit 1; }
done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
grep -v '^#' manifest.txt | grep -v '^$' | while IFS='|' read -r name text; do
  mkdir -p "$(dirname "$name")"
  espeak-ng -v "$voice" -s 150 -w "$tmp/raw.wav" "$text"
  # 16 kHz mono 16-bit, trimmed of leading silence, with 150 ms of tail so prompts don't run together.
  sox "$tmp/raw.wav" -r 16000 -c 1 -b 16 -e signed-integer "$name.wav" silence 1 0.01 0.5% pad 0 0.15
  echo "$name.wav"
done
