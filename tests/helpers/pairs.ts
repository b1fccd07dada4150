/**
 * Batches from the token ids of reference/inputs/ (pairs.json, completions.json), laid out as the trainer
 * takes them: right-padded rows, the answer's tokens as targets. A PreferenceBatch holds the chosen answers
 * first and the rejected ones after, row p and row P + p the same prompt.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Batch, PreferenceBatch } from '../../src/engine/batch';

export interface PairIds {
  prompt: number[];
  chosen: number[];
  rejected: number[];
}
export interface CompletionIds {
  prompt: number[];
  completion: number[];
}

const INPUTS = path.resolve(__dirname, '..', '..', 'reference', 'inputs');

export function referencePairs(): PairIds[] {
  return JSON.parse(fs.readFileSync(path.join(INPUTS, 'pairs.json'), 'utf8')) as PairIds[];
}

export function referenceCompletions(): CompletionIds[] {
  return JSON.parse(fs.readFileSync(path.join(INPUTS, 'completions.json'), 'utf8')) as CompletionIds[];
}

/** Rows of prompt + answer, right-padded with `pad` to the longest (or `length`). */
export function paddedBatch(rows: { prompt: number[]; answer: number[] }[], pad = 0, length = 0): Batch {
  const seqLength = Math.max(length, ...rows.map((r) => r.prompt.length + r.answer.length));
  const ids = new Int32Array(rows.length * seqLength).fill(pad);
  const targetMask = new Float32Array(rows.length * seqLength);
  const attentionMask = new Float32Array(rows.length * seqLength);
  rows.forEach(({ prompt, answer }, b) => {
    const start = b * seqLength;
    ids.set([...prompt, ...answer], start);
    targetMask.fill(1, start + prompt.length, start + prompt.length + answer.length);
    attentionMask.fill(1, start, start + prompt.length + answer.length);
  });
  return { ids, targetMask, attentionMask, batchSize: rows.length, seqLength };
}

/** The pairs as one preference batch; pair ids from `firstId` on unless given. */
export function pairBatch(pairs: PairIds[], firstId = 0, length = 0): PreferenceBatch {
  const rows = [
    ...pairs.map((p) => ({ prompt: p.prompt, answer: p.chosen })),
    ...pairs.map((p) => ({ prompt: p.prompt, answer: p.rejected })),
  ];
  return {
    ...paddedBatch(rows, 0, length),
    pairIds: Int32Array.from(pairs, (_, i) => firstId + i),
  };
}
