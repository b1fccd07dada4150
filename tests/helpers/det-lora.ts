/**
 * The deterministic LoRA init of reference/webtune_reference.py `det_lora`, rebuilt here so the
 * engine's gradients can be compared with the reference's:
 *   A[i][j] = 0.05·sin(0.37·(i·in + j) + layer + targetIndex)   [r, in]
 *   B[o][k] = 0.05·cos(0.23·(o·r + k) + layer − targetIndex)     [out, r]
 */
import type { LoraInit } from '../../src/engine/lora';

export const detLora: LoraInit = (layer, _target, targetIndex, { in: inFeatures, out, rank }) => {
  const A = new Float32Array(rank * inFeatures);
  for (let n = 0; n < A.length; n++) A[n] = 0.05 * Math.sin(0.37 * n + layer + targetIndex);
  const B = new Float32Array(out * rank);
  for (let n = 0; n < B.length; n++) B[n] = 0.05 * Math.cos(0.23 * n + layer - targetIndex);
  return { A, B };
};
