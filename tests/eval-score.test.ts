/**
 * Teacher-forced completion figures. Token accuracy is checked against the PyTorch reference's greedy
 * continuation: each of its tokens is the argmax given the ones before, so teacher forcing on it must
 * score every one of them right, and a changed last token exactly one wrong.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Batch } from '../src/engine/batch';
import { disposeModel } from '../src/engine/model';
import { scoreCompletions, scoreTokens } from '../src/engine/score';
import { tf } from '../src/engine/tf';
import { loadFixture, reference, switchBackend } from './helpers/shared';
import { disposeAfterEach } from './helpers/cleanup';

const own = disposeAfterEach();

const greedy = () =>
  reference<{ ids: number[]; new: number[] }>('stories260K', 'greedy-once-upon-a-time.json');

function batchOf(rows: { ids: number[]; completionFrom: number }[]): Batch {
  const seqLength = Math.max(...rows.map((r) => r.ids.length));
  const ids = new Int32Array(rows.length * seqLength);
  const targetMask = new Float32Array(ids.length);
  const attentionMask = new Float32Array(ids.length);
  rows.forEach((r, b) => {
    ids.set(r.ids, b * seqLength);
    for (let t = 0; t < r.ids.length; t++) {
      attentionMask[b * seqLength + t] = 1;
      targetMask[b * seqLength + t] = t >= r.completionFrom ? 1 : 0;
    }
  });
  return { ids, targetMask, attentionMask, batchSize: rows.length, seqLength };
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`completion scores on ${backend}`, () => {
    beforeAll(async () => {
      await switchBackend(backend);
    });

    it('rank every token of the reference greedy continuation first, and a changed last token not', async () => {
      const { model } = own(loadFixture('stories260K'));
      const ref = greedy();
      const from = ref.ids.length - ref.new.length;
      const before = tf.memory().numTensors;
      const [right] = await scoreCompletions(model, batchOf([{ ids: ref.ids, completionFrom: from }]));
      expect(right).toMatchObject({ tokens: ref.new.length, correct: ref.new.length });
      const changed = [...ref.ids.slice(0, -1), (ref.ids[ref.ids.length - 1] + 1) % model.args.vocabSize];
      const [wrong] = await scoreCompletions(model, batchOf([{ ids: changed, completionFrom: from }]));
      expect(wrong).toMatchObject({ tokens: ref.new.length, correct: ref.new.length - 1 });
      expect(tf.memory().numTensors).toBe(before);
      disposeModel(model);
    });

    it('sum the log-likelihood scoreTokens gives the completion, row by row in a padded batch', async () => {
      const { model, tokenizer } = own(loadFixture('stories260K'));
      const a = tokenizer.encode('Who is Tom?\nTom is my best friend.');
      const b = tokenizer.encode('Lily has a red ball.');
      const scores = await scoreCompletions(
        model,
        batchOf([
          { ids: a, completionFrom: 6 },
          { ids: b, completionFrom: 3 },
        ]),
      );
      for (const [i, [ids, from]] of (
        [
          [a, 6],
          [b, 3],
        ] as const
      ).entries()) {
        const full = await scoreTokens(model, ids);
        // logprobs[t - 1] is the log-probability of token t.
        const expected = -full.logprobs.slice(from - 1).reduce((x, y) => x + y, 0);
        expect(scores[i].tokens).toBe(ids.length - from);
        expect(Math.abs(scores[i].nll - expected) / expected).toBeLessThan(1e-4);
      }
      disposeModel(model);
    });
  });
}
