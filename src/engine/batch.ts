/** A padded batch of token sequences, as the trainer consumes it (row-major [batchSize, seqLength]). */
export interface Batch {
  ids: Int32Array;
  /** 1 where ids[i] is a completion token the model must learn to predict, else 0 (prompt, padding). */
  targetMask: Float32Array;
  /** 1 for real tokens, 0 for padding. */
  attentionMask: Float32Array;
  batchSize: number;
  seqLength: number;
}

/** Inputs, next-token targets and weights for a batch: position t predicts ids[t+1]. */
export function shiftForNextToken(batch: Batch): {
  inputs: Int32Array;
  keyMask: Float32Array[];
  targets: Int32Array;
  weights: Float32Array;
  batchSize: number;
} {
  const { batchSize, seqLength: T } = batch;
  const steps = T - 1;
  const inputs = new Int32Array(batchSize * steps);
  const targets = new Int32Array(batchSize * steps);
  const weights = new Float32Array(batchSize * steps);
  const keyMask: Float32Array[] = [];
  for (let b = 0; b < batchSize; b++) {
    inputs.set(batch.ids.subarray(b * T, b * T + steps), b * steps);
    targets.set(batch.ids.subarray(b * T + 1, (b + 1) * T), b * steps);
    weights.set(batch.targetMask.subarray(b * T + 1, (b + 1) * T), b * steps);
    keyMask.push(batch.attentionMask.slice(b * T, b * T + steps));
  }
  return { inputs, keyMask, targets, weights, batchSize };
}

export function countTargets(batch: Batch): number {
  let n = 0;
  for (let b = 0; b < batch.batchSize; b++) {
    // The first token of a row is never a target: nothing precedes it.
    for (let t = 1; t < batch.seqLength; t++) n += batch.targetMask[b * batch.seqLength + t];
  }
  return n;
}

export function countTokens(batch: Batch): number {
  return batch.attentionMask.reduce((a, b) => a + b, 0);
}

/**
 * Chosen and rejected answers to the same prompts, as one padded batch of 2·P sequences: row p is pair p's
 * chosen answer and row P + p its rejected one, each with its own target mask (its completion's tokens).
 */
export interface PreferenceBatch extends Batch {
  /** Each pair's id in its dataset, the same in every epoch (the key of its stored reference log-probs). */
  pairIds: Int32Array;
}

export function isPreferenceBatch(batch: Batch): batch is PreferenceBatch {
  return 'pairIds' in batch;
}

/** Target tokens of each row of the batch (a row's first token is never one: nothing precedes it). */
export function targetsPerRow(batch: Batch): Float32Array {
  const counts = new Float32Array(batch.batchSize);
  for (let b = 0; b < batch.batchSize; b++)
    for (let t = 1; t < batch.seqLength; t++) counts[b] += batch.targetMask[b * batch.seqLength + t];
  return counts;
}
