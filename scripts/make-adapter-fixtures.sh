#!/usr/bin/env bash
# Regenerates tests/fixtures/adapters/*.reference.json: webtune exports deterministic adapters as PEFT
# folders, and the independent PyTorch reference scores text with each of them.
# Needs: apt-get install -y python3-torch libopenblas0-pthread
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${WEBTUNE_SHARED:-../shared}
tmp=$(mktemp -d)
node bin/run-ts.mjs scripts/det-adapters.ts "$shared/models/stories260K" "$tmp"
for dir in "$tmp"/*/; do
  name=$(basename "$dir")
  /usr/bin/python3 "$shared/reference/llama_reference.py" score "$shared/models/stories260K" \
    --ids "$(cat "$tmp/ids.txt")" --adapter "$dir" > "tests/fixtures/adapters/$name.reference.json"
  echo "wrote tests/fixtures/adapters/$name.reference.json"
done
rm -rf "$tmp"
