/** A check every adapter passes before it is stored or attached, wherever it came from. */
import type { AdapterWeights } from './peft';

/**
 * Refuses weights holding NaN or ±Infinity: attached, they would silently turn every answer into noise
 * (and a NaN would spread into everything trained after it).
 */
export function checkFiniteWeights(weights: AdapterWeights): void {
  for (const [path, m] of weights.modules) {
    for (const which of ['A', 'B'] as const) {
      const data = m[which].data;
      for (let i = 0; i < data.length; i++) {
        if (!Number.isFinite(data[i])) {
          throw new Error(
            `The adapter's ${path} lora_${which} holds ${data[i]} (value ${i + 1}): it is damaged, so it cannot be used. Train or export it again.`,
          );
        }
      }
    }
  }
}
