/**
 * Two deterministic adapters on stories260K (det_lora weights, so B is non-zero and the adapter
 * changes the output): all seven targets at r=4, and q/v at r=8 with rsLoRA. The adapter test and
 * scripts/det-adapters.ts (which feeds the PyTorch reference) both build them from here.
 */
import type { LoraSettings } from '../../src/engine/lora';

export const DET_ADAPTERS: { name: string; settings: LoraSettings }[] = [
  {
    name: 'stories260K-all-r4',
    settings: {
      rank: 4,
      alpha: 8,
      dropout: 0,
      targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
      useRslora: false,
    },
  },
  {
    name: 'stories260K-qv-r8-rslora',
    settings: { rank: 8, alpha: 16, dropout: 0, targets: ['q_proj', 'v_proj'], useRslora: true },
  },
];

/** The text both sides score (its ids come from our tokenizer, which matches SentencePiece's). */
export const ADAPTER_TEXT =
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the park.';
