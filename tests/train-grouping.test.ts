/**
 * Length-grouped batches: less padding, the same examples each epoch, and the same learning signal.
 * The reference is the ungrouped batching of the same epoch: the summed loss and summed gradients over
 * an epoch do not depend on which examples share a batch, so grouping must leave both unchanged.
 */
import fs from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  createRng,
  epochOrder,
  groupByLength,
  makeBatches,
  paddingShare,
  parseDataset,
  plainFormat,
} from '../src/data';
import { buildTrainingSet } from '../src/data/training-set';
import type { Batch } from '../src/engine/batch';
import { attachLora, detachLora, peftInit } from '../src/engine/lora';
import { disposeModel, type LlamaModel } from '../src/engine/model';
import { tf } from '../src/engine/tf';
import { batchLossSum } from '../src/engine/train';
import { dataFile, loadFixture, relativeError, switchBackend } from './helpers/shared';
import { disposeAfterEach } from './helpers/cleanup';

const own = disposeAfterEach();

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('groupByLength', () => {
  const lengths = range(300).map((i) => 5 + ((i * 7919) % 97));
  const order = epochOrder(300, 0, 3);

  it('keeps every example once, batches similar lengths, and depends only on its inputs and seed', () => {
    const grouped = groupByLength(order, lengths, 4, createRng(1));
    expect([...grouped].sort((a, b) => a - b)).toEqual(range(300));
    expect(groupByLength(order, lengths, 4, createRng(1))).toEqual(grouped);
    expect(groupByLength(order, lengths, 4, createRng(2))).not.toEqual(grouped);
    // Within a batch the spread of lengths is small next to the spread of the whole set (5..101).
    for (let i = 0; i + 4 <= grouped.length; i += 4) {
      const batch = grouped.slice(i, i + 4).map((j) => lengths[j]);
      expect(Math.max(...batch) - Math.min(...batch)).toBeLessThan(16);
    }
  });

  it('cuts the padding of random batches', () => {
    const examples = lengths.map((n) => ({
      ids: new Array<number>(n).fill(0),
      completionMask: new Array<number>(n).fill(0),
      truncated: false,
    }));
    const plain = paddingShare(makeBatches(examples, 4, order));
    const grouped = paddingShare(makeBatches(examples, 4, groupByLength(order, lengths, 4, createRng(1))));
    expect(plain).toBeGreaterThan(0.25);
    expect(grouped).toBeLessThan(plain / 5);
  });
});

describe('training on length-grouped batches', () => {
  beforeAll(async () => {
    await switchBackend('cpu');
  });

  /** Σ loss and Σ d(loss)/d(LoRA weights) over a list of batches. */
  function epochSums(
    model: LlamaModel,
    params: tf.Variable[],
    batches: Batch[],
  ): { loss: number; grads: Float32Array } {
    let loss = 0;
    const grads = new Float32Array(params.reduce((n, p) => n + p.size, 0));
    for (const batch of batches) {
      const { value, grads: named } = tf.variableGrads(() => batchLossSum(model, batch), params);
      loss += value.dataSync()[0];
      let offset = 0;
      for (const p of params) {
        const g = named[p.name].dataSync();
        for (let i = 0; i < g.length; i++) grads[offset + i] += g[i];
        offset += g.length;
      }
      tf.dispose([value, ...Object.values(named)]);
    }
    return { loss, grads };
  }

  it('gives the summed loss and gradients of the ungrouped epoch, with less padding', () => {
    const { model, tokenizer } = own(loadFixture('stories260K'));
    const dataset = parseDataset(
      fs.readFileSync(dataFile('support-tickets.csv'), 'utf8'),
      'support-tickets.csv',
    );
    const options = {
      mapping: {
        kind: 'template' as const,
        promptTemplate: 'Ticket: {ticket}\nDepartment:',
        completionTemplate: ' {department}',
      },
      format: plainFormat(),
      maxLength: 128,
      valSplit: 0,
      batchSize: 3,
      seed: 5,
    };
    const grouped = buildTrainingSet(dataset, tokenizer, options).data.epochBatches(1);
    const plain = buildTrainingSet(dataset, tokenizer, {
      ...options,
      groupByLength: false,
    }).data.epochBatches(1);
    expect(paddingShare(grouped)).toBeLessThan(paddingShare(plain) * 0.8);

    // B random, so the gradients of A are not zero and differ between examples.
    const rng = createRng(9);
    const adapter = own.adapter(
      model,
      attachLora(
        model,
        { rank: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'v_proj'], useRslora: false },
        (layer, target, index, shape) => ({
          ...peftInit(1)(layer, target, index, shape),
          B: Float32Array.from({ length: shape.out * shape.rank }, () => rng.next() - 0.5),
        }),
      ),
    );
    const before = tf.memory().numTensors;
    const a = epochSums(model, adapter.variables(), grouped);
    const b = epochSums(model, adapter.variables(), plain);
    expect(tf.memory().numTensors).toBe(before);
    expect(Math.abs(a.loss - b.loss) / b.loss).toBeLessThan(1e-5);
    expect(relativeError(a.grads, b.grads)).toBeLessThan(1e-4);
    detachLora(model, adapter);
    disposeModel(model);
  });
});
