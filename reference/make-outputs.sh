#!/usr/bin/env bash
# Regenerates reference/outputs/: what webtune's own PyTorch reference (webtune_reference.py) computes for
# the fixture models, which the engine tests compare against. Each file holds the ids (and for lora-grad
# the rank, alpha and targets) it was made from. See README.md.
# Needs: apt-get install -y python3-torch libopenblas0-pthread
set -euo pipefail
cd "$(dirname "$0")/.."
ref() { /usr/bin/python3 reference/webtune_reference.py "$@"; }
models=fixtures/models
out=reference/outputs
mkdir -p "$out/stories260K" "$out/tiny-random-qwen2" "$out/tiny-random-qwen3" "$out/tiny-random-gemma3"

# "Once upon a time, there was a little girl named Lily. She loved to play outside in the park." as
# SentencePiece tokenises it, BOS first (fixtures/sentencepiece/stories260K/tokenize.json).
lily=1,403,407,261,378,432,383,286,261,376,298,315,421,395,317,426,338,401,396,267,337,410,408,419,292,411,322,265,282,295,433,426
# Its first 12 ids, for the architecture fixtures (their tokenizer is stories260K's).
short=1,403,407,261,378,432,383,286,261,376,298,315
all=q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj

ref score "$models/stories260K" --ids "$lily" > "$out/stories260K/score-lily.json"
ref generate "$models/stories260K" --ids 1,403,407,261,378 --steps 100 > "$out/stories260K/greedy-once-upon-a-time.json"
ref lora-grad "$models/stories260K" --ids "$lily" --rank 4 --alpha 8 --targets q_proj,v_proj \
  --out "$out/stories260K/lora-grad-qv-r4.json"
ref lora-grad "$models/stories260K" --ids "$lily" --rank 8 --alpha 16 --targets "$all" \
  --out "$out/stories260K/lora-grad-all-r8.json"
for model in tiny-random-qwen2 tiny-random-qwen3; do
  ref score "$models/$model" --ids "$short" > "$out/$model/score.json"
  ref lora-grad "$models/$model" --ids "$short" --rank 4 --alpha 8 --targets "$all" \
    --out "$out/$model/lora-grad-all-r4.json"
done
# Gemma 3 (its tokenizer puts stories260K's ids 3 and up at 6 and up, and <bos> at 2): the Lily sentence's
# ids, 33 tokens against a sliding window of 4, and its first 5 as a prompt for greedy decoding.
gemma=$(echo "$lily" | tr ',' '\n' | awk 'NR == 1 { printf "2"; next } { printf ",%d", $1 + 3 }')
gemma_prompt=$(echo "$gemma" | cut -d, -f1-5)
g="$models/tiny-random-gemma3"
ref score "$g" --ids "$gemma" > "$out/tiny-random-gemma3/score.json"
ref generate "$g" --ids "$gemma_prompt" --steps 40 > "$out/tiny-random-gemma3/greedy.json"
ref lora-grad "$g" --ids "$gemma" --rank 4 --alpha 8 --targets "$all" \
  --out "$out/tiny-random-gemma3/lora-grad-all-r4.json"
# The training objectives (objectives_reference.py) on the pairs and completions of reference/inputs/.
objective() { /usr/bin/python3 reference/objectives_reference.py "$@"; }
objective "$models/stories260K" --objective sft --data reference/inputs/completions.json --rank 4 --alpha 8 \
  --targets q_proj,v_proj --out "$out/stories260K/objective-sft.json"
for name in dpo orpo; do
  objective "$models/stories260K" --objective "$name" --data reference/inputs/pairs.json --rank 4 --alpha 8 \
    --targets q_proj,v_proj --out "$out/stories260K/objective-$name.json"
  for model in tiny-random-qwen2 tiny-random-qwen3; do
    objective "$models/$model" --objective "$name" --data reference/inputs/pairs.json --rank 4 \
      --alpha 8 --targets "$all" --out "$out/$model/objective-$name.json"
  done
done
echo "wrote $(find "$out" -name '*.json' | wc -l) files under $out/"
