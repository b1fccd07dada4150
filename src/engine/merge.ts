/**
 * Folding a LoRA pair into its base weight, as PEFT's merge_and_unload does: W' = W + scale · B·A, with W
 * [out, in], B [out, r] and A [r, in], all row-major float32. The merged model then needs no adapter.
 */
export function mergeLora(
  weight: Float32Array,
  A: Float32Array,
  B: Float32Array,
  shape: { out: number; in: number; rank: number },
  scale: number,
): Float32Array {
  const { out, in: inFeatures, rank } = shape;
  if (weight.length !== out * inFeatures || A.length !== rank * inFeatures || B.length !== out * rank) {
    throw new RangeError(
      `mergeLora: a [${out}, ${inFeatures}] weight takes A [${rank}, ${inFeatures}] and B [${out}, ${rank}], but got ${weight.length}, ${A.length} and ${B.length} values.`,
    );
  }
  const merged = weight.slice();
  // Row by row: out[o, :] += Σ_k (scale·B[o, k]) · A[k, :], a streaming pass over A per output row.
  for (let o = 0; o < out; o++) {
    const row = o * inFeatures;
    for (let k = 0; k < rank; k++) {
      const b = scale * B[o * rank + k];
      if (b === 0) continue;
      const a = k * inFeatures;
      for (let i = 0; i < inFeatures; i++) merged[row + i] += b * A[a + i];
    }
  }
  return merged;
}
