#!/usr/bin/env bash
# Regenerates tests/fixtures/adapters/*.reference.json: webtune exports deterministic adapters as PEFT
# folders, and the project's PyTorch reference (reference/webtune_reference.py) scores text with each.
# Needs: apt-get install -y python3-torch libopenblas0-pthread
set -euo pipefail
cd "$(dirname "$0")/.."
model=fixtures/models/stories260K
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
node bin/run-ts.mjs scripts/det-adapters.ts "$model" "$tmp"
for dir in "$tmp"/*/; do
  name=$(basename "$dir")
  /usr/bin/python3 reference/webtune_reference.py score "$model" \
    --ids "$(cat "$tmp/ids.txt")" --adapter "$dir" > "tests/fixtures/adapters/$name.reference.json"
  echo "wrote tests/fixtures/adapters/$name.reference.json"
done
