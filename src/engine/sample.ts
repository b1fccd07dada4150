/** Picking the next token from logits: greedy, or temperature + top-k + top-p sampling. */
import type { Rng } from './random';

export interface SamplingSettings {
  /** 0 picks the most likely token (greedy). */
  temperature: number;
  /** Keep only the k most likely tokens (0 = no limit). */
  topK: number;
  /** Keep the smallest set of tokens whose probability reaches p (1 = no limit). */
  topP: number;
}

export const GREEDY: SamplingSettings = { temperature: 0, topK: 0, topP: 1 };

export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

export function sampleToken(logits: Float32Array, settings: SamplingSettings, rng: Rng): number {
  if (settings.temperature <= 0) return argmax(logits);
  let candidates = Array.from(logits, (logit, id) => ({ id, logit: logit / settings.temperature }));
  candidates.sort((a, b) => b.logit - a.logit);
  if (settings.topK > 0) candidates = candidates.slice(0, settings.topK);
  const max = candidates[0].logit;
  const weights = candidates.map((c) => Math.exp(c.logit - max));
  const total = weights.reduce((a, b) => a + b, 0);
  let keep = candidates.length;
  if (settings.topP < 1) {
    let mass = 0;
    for (let i = 0; i < candidates.length; i++) {
      mass += weights[i] / total;
      if (mass >= settings.topP) {
        keep = i + 1;
        break;
      }
    }
  }
  const kept = weights.slice(0, keep);
  const keptTotal = kept.reduce((a, b) => a + b, 0);
  let r = rng.next() * keptTotal;
  for (let i = 0; i < keep; i++) {
    r -= kept[i];
    if (r < 0) return candidates[i].id;
  }
  return candidates[keep - 1].id;
}
