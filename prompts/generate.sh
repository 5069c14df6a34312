#!/usr/bin/env bash
# Regenerates the prompt WAVs from manifest.txt with espeak-ng and sox.
# Usage: prompts/generate.sh [LANG]   (needs: apt-get install espeak-ng sox)
#   no LANG: prompts/manifest.txt in the en-us voice; LANG (es): prompts/LANG/manifest.txt in
#   espeak-ng's voice of that name.
set -euo pipefail
cd "$(dirname "$0")/${1:-.}"
voice=${1:-en-us}
for tool in espeak-ng sox; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y espeak-ng sox" >&2; exit 1; }
done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
grep -v '^#' manifest.txt | grep -v '^$' | while IFS='|' read -r name text voice2 text2; do
  mkdir -p "$(dirname "$name")"
  espeak-ng -v "$voice" -s 150 -w "$tmp/raw.wav" "$text"
  if [ -n "${voice2:-}" ]; then
    espeak-ng -v "$voice2" -s 150 -w "$tmp/second.wav" "$text2"
    sox "$tmp/raw.wav" "$tmp/second.wav" "$tmp/both.wav"
    mv "$tmp/both.wav" "$tmp/raw.wav"
  fi
  # 16 kHz mono 16-bit, trimmed of leading silence, with 150 ms of tail so prompts don't run together.
  sox "$tmp/raw.wav" -r 16000 -c 1 -b 16 -e signed-integer "$name.wav" silence 1 0.01 0.5% pad 0 0.15
  echo "$name.wav"
done
# The ringback callers hear while a bridged transfer rings (North American cadence: 440 + 480 Hz,
# 2 s on, 4 s off); a tone, so it is made once for every language.
if [ -z "${1:-}" ]; then
  sox -n -r 16000 -c 1 -b 16 -e signed-integer ringback.wav synth 2 sine 440 sine mix 480 gain -9 pad 0 4
  echo ringback.wav
fi
