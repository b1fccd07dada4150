/** Seeded order, train/validation split, padded batches and dataset statistics. */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  createRng,
  datasetStats,
  detectLayout,
  encodeExamples,
  epochOrder,
  makeBatches,
  padTokenId,
  parseDataset,
  plainFormat,
  renderDataset,
  restoreRng,
  splitTrainValidation,
  targetCount,
  type EncodedExample,
} from '../src/data';
import { countTargets, countTokens, shiftForNextToken } from '../src/engine/batch';
import { dataFile, loadTokenizer } from './fixtures/data/shared';

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('seeded randomness', () => {
  it('repeats for a seed and resumes from a saved state', () => {
    const draws = (rng: { next(): number }, n: number) => range(n).map(() => rng.next());
    expect(draws(createRng(7), 5)).toEqual(draws(createRng(7), 5));
    expect(draws(createRng(7), 5)).not.toEqual(draws(createRng(8), 5));
    const rng = createRng(7);
    draws(rng, 3);
    const saved = rng.state();
    const expected = draws(rng, 5);
    expect(draws(restoreRng(saved), 5)).toEqual(expected);
    expect(draws(restoreRng(JSON.parse(JSON.stringify(saved)) as number), 5)).toEqual(expected);
    for (const x of draws(createRng(123), 1000)) expect(x >= 0 && x < 1).toBe(true);
  });

  it('gives each epoch a permutation that depends only on (n, epoch, seed)', () => {
    const order = epochOrder(36, 0, 1);
    expect([...order].sort((a, b) => a - b)).toEqual(range(36));
    expect(order).not.toEqual(range(36));
    expect(epochOrder(36, 0, 1)).toEqual(order);
    expect(epochOrder(36, 1, 1)).not.toEqual(order);
    expect(epochOrder(36, 0, 2)).not.toEqual(order);
    expect(epochOrder(0, 0, 1)).toEqual([]);
  });
});

describe('train/validation split', () => {
  const rows = range(36).map((i) => `row ${i}`);

  it('takes round(n·fraction) rows, disjoint from training, the same for a seed', () => {
    const { train, validation } = splitTrainValidation(rows, 0.1, 3);
    expect(validation).toHaveLength(4);
    expect(train).toHaveLength(32);
    expect([...train, ...validation].sort()).toEqual([...rows].sort());
    expect(splitTrainValidation(rows, 0.1, 3)).toEqual({ train, validation });
    expect(splitTrainValidation(rows, 0.1, 4).validation).not.toEqual(validation);
    // Original order is kept within each set.
    expect(train).toEqual(rows.filter((r) => train.includes(r)));
  });

  it('keeps at least one row on each side when it can, and none for fraction 0', () => {
    expect(splitTrainValidation(rows, 0, 3).validation).toEqual([]);
    expect(splitTrainValidation(rows, 0, 3).train).toEqual(rows);
    expect(splitTrainValidation(['a', 'b'], 0.01, 3).validation).toHaveLength(1);
    expect(splitTrainValidation(['a'], 0.5, 3)).toEqual({ train: ['a'], validation: [] });
    expect(splitTrainValidation(range(10), 0.99, 3).train).toHaveLength(1);
    expect(() => splitTrainValidation(rows, 1, 3)).toThrow(RangeError);
  });
});

describe('padded batches', () => {
  const a: EncodedExample = { ids: [1, 5, 6], completionMask: [0, 1, 1], truncated: false };
  const b: EncodedExample = { ids: [1, 7], completionMask: [0, 1], truncated: false };
  const c: EncodedExample = { ids: [1, 8, 9, 10], completionMask: [0, 0, 1, 1], truncated: false };

  it('follows the order, pads right to the longest row, and masks padding out', () => {
    const [first, second] = makeBatches([a, b, c], 2, [2, 0, 1], 2);
    expect(first.batchSize).toBe(2);
    expect(first.seqLength).toBe(4);
    expect([...first.ids]).toEqual([1, 8, 9, 10, 1, 5, 6, 2]);
    expect([...first.targetMask]).toEqual([0, 0, 1, 1, 0, 1, 1, 0]);
    expect([...first.attentionMask]).toEqual([1, 1, 1, 1, 1, 1, 1, 0]);
    expect(second).toEqual({
      ids: Int32Array.from([1, 7]),
      targetMask: Float32Array.from([0, 1]),
      attentionMask: Float32Array.from([1, 1]),
      batchSize: 1,
      seqLength: 2,
    });
    expect(makeBatches([a, b, c], 2, [2, 0, 1])[0].ids[7]).toBe(0);
  });

  it("matches the trainer's view of targets and tokens", () => {
    const batches = makeBatches([a, b, c], 3, [0, 1, 2], 2);
    expect(countTargets(batches[0])).toBe(targetCount(a) + targetCount(b) + targetCount(c));
    expect(countTokens(batches[0])).toBe(9);
    // Row b: inputs [1, 7, pad], targets [7, pad, pad] with weight only on predicting 7.
    const shifted = shiftForNextToken(batches[0]);
    expect([...shifted.weights.subarray(3, 6)]).toEqual([1, 0, 0]);
    expect(shifted.targets[3]).toBe(7);
  });
});

describe('best-friends.csv end to end', () => {
  const stories = loadTokenizer('stories260K');
  const friends = parseDataset(fs.readFileSync(dataFile('best-friends.csv'), 'utf8'), 'best-friends.csv');

  it('pads with EOS and resumes mid-epoch with the same batches', () => {
    const rendered = renderDataset(friends, detectLayout(friends.columns)!, plainFormat());
    const encoded = encodeExamples(rendered.examples, stories, { maxLength: 64, addEos: true });
    expect(padTokenId(stories)).toBe(2);
    const batches = makeBatches(encoded, 8, epochOrder(encoded.length, 2, 42), padTokenId(stories));
    expect(batches.map((x) => x.batchSize)).toEqual([8, 8, 8, 8, 4]);
    const again = makeBatches(encoded, 8, epochOrder(encoded.length, 2, 42), padTokenId(stories));
    expect(again[3]).toEqual(batches[3]);
    for (const batch of batches) {
      for (let i = 0; i < batch.ids.length; i++) {
        if (batch.attentionMask[i] === 0) {
          expect(batch.ids[i]).toBe(2);
          expect(batch.targetMask[i]).toBe(0);
        }
      }
    }
  });

  it('counts rows, tokens, truncation and skipped rows', () => {
    const text =
      'question,answer\nWho is Tom?,Tom is my best friend.\nWho is Sam?,\nWho is Tom?,Tom is my best friend.\nWho is Lily?,Lily is my best friend.\n';
    const rendered = renderDataset(
      parseDataset(text, 'x.csv'),
      { kind: 'template', promptTemplate: '{question}', completionTemplate: '{answer}' },
      plainFormat(),
    );
    const encoded = encodeExamples(rendered.examples, stories, { maxLength: 14, addEos: true });
    // "Who is Tom?\n" is 11 tokens and "Tom is my best friend." 10 more plus EOS; both kept rows exceed 14.
    const stats = datasetStats(rendered, encoded);
    expect(stats).toEqual({
      rows: 4,
      examples: 2,
      tokens: 28,
      completionTokens: encoded.reduce((sum, e) => sum + targetCount(e), 0),
      longestExample: 14,
      truncatedRows: 2,
      noTargetRows: 0,
      trainedTurns: 2,
      lastTurnOnlyRows: 0,
      emptyRowsSkipped: 1,
      duplicateRowsSkipped: 1,
      invalidRowsSkipped: 0,
    });
    // What survives the cut after each prompt is completion.
    const promptTokens = (q: string) => stories.encode(`${q}\n`).length;
    expect(stats.completionTokens).toBe(
      14 - promptTokens('Who is Tom?') + (14 - promptTokens('Who is Lily?')),
    );
  });
});
