/**
 * The FLOP count behind the bench's GFLOP/s, checked against the products the engine really runs:
 * tf.profile lists every BatchMatMul of a training step with its shapes.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Batch } from '../src/engine/batch';
import { decodeTokenFlops, trainingStepFlops } from '../src/engine/flops';
import { attachLora, detachLora, peftInit } from '../src/engine/lora';
import { disposeModel, hiddenStates, lmHead } from '../src/engine/model';
import { KVCache } from '../src/engine/kv-cache';
import { createRng } from '../src/engine/random';
import { tf } from '../src/engine/tf';
import { Trainer } from '../src/engine/train';
import { loadFixture, switchBackend } from './helpers/shared';
import { disposeAfterEach } from './helpers/cleanup';

const own = disposeAfterEach();

type Kernel = Awaited<ReturnType<typeof tf.profile>>['kernels'][number];
const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * 2·(output elements)·K for every matrix product tf.profile saw; K from the left operand, transposed or not.
 */
function measuredFlops(kernels: Kernel[]): number {
  return kernels
    .filter((k) => k.name === 'BatchMatMul')
    .reduce((total, k) => {
      const a = k.inputShapes[0]!;
      const out = k.outputShapes[0];
      const m = out[out.length - 2];
      const inner = size(a) / (size(a.slice(0, -2)) * m);
      return total + 2 * size(out) * inner;
    }, 0);
}

describe('product FLOPs', () => {
  beforeAll(async () => {
    await switchBackend('cpu');
  });

  for (const [recompute, targets] of [
    [false, ['q_proj', 'v_proj', 'down_proj']],
    [true, ['q_proj', 'v_proj', 'down_proj']],
    [true, ['q_proj', 'v_proj']],
  ] as const) {
    it(`of a training step match the products the engine runs (recompute ${recompute ? 'on' : 'off'}, LoRA on ${targets.join(', ')})`, async () => {
      const { model } = own(loadFixture('stories260K'));
      const adapter = own.adapter(
        model,
        attachLora(
          model,
          { rank: 4, alpha: 8, dropout: 0, targets: [...targets], useRslora: false },
          peftInit(0),
        ),
      );
      const rng = createRng(3);
      const [batchSize, seq] = [2, 17];
      const ids = Int32Array.from({ length: batchSize * seq }, () => 3 + Math.floor(rng.next() * 500));
      // Half the positions are prompt: only the others go through the lm_head.
      const targetMask = Float32Array.from(ids, (_, i) => (i % seq >= 9 ? 1 : 0));
      const batch: Batch = {
        ids,
        targetMask,
        attentionMask: new Float32Array(ids.length).fill(1),
        batchSize,
        seqLength: seq,
      };
      const trainer = own.add(
        new Trainer(
          model,
          adapter,
          { epochBatches: () => [batch], validation: [] },
          {
            learningRate: 1e-3,
            epochs: 1,
            gradAccum: 1,
            warmupSteps: 0,
            maxGradNorm: 1,
            weightDecay: 0,
            seed: 0,
            recompute,
          },
        ),
      );
      const info = await tf.profile(async () => {
        await trainer.trainStep();
      });
      trainer.dispose();
      const lossRows = 2 * 8; // positions 8..15 predict tokens 9..16
      const expected = trainingStepFlops(model.args, {
        batch: batchSize,
        steps: seq - 1,
        lossRows,
        rank: 4,
        targets,
        recompute,
      });
      expect(Math.abs(measuredFlops(info.kernels) - expected) / expected).toBeLessThan(0.02);
      detachLora(model, adapter);
      disposeModel(model);
    });
  }

  it('are the same with fused projections, in 3 fewer products per layer', async () => {
    const run = async (fuseProjections: boolean) => {
      const { model } = own(loadFixture('tiny-random-qwen2', { fuseProjections }));
      const info = await tf.profile(() =>
        tf.tidy(() =>
          lmHead(
            model,
            hiddenStates(
              model,
              Int32Array.from({ length: 12 }, (_, i) => 3 + i),
              1,
            ),
          ),
        ),
      );
      disposeModel(model);
      return {
        flops: measuredFlops(info.kernels),
        products: info.kernels.filter((k) => k.name === 'BatchMatMul').length,
        layers: model.args.numLayers,
      };
    };
    const separate = await run(false);
    const fused = await run(true);
    expect(fused.flops).toBe(separate.flops);
    // q, k, v as one product and gate, up as one: 7 projections become 4.
    expect(separate.products - fused.products).toBe(3 * separate.layers);
  });

  it('of decoding one token match the products the engine runs', async () => {
    const { model } = own(loadFixture('stories260K'));
    const cache = new KVCache(model.args.numLayers);
    tf.tidy(() =>
      lmHead(
        model,
        hiddenStates(
          model,
          Int32Array.from({ length: 20 }, (_, i) => 5 + i),
          1,
          { cache },
        ),
      ),
    );
    const info = await tf.profile(() =>
      tf.tidy(() => lmHead(model, hiddenStates(model, Int32Array.from([7]), 1, { cache }))),
    );
    const expected = decodeTokenFlops(model.args, 21);
    expect(Math.abs(measuredFlops(info.kernels) - expected) / expected).toBeLessThan(0.02);
    cache.dispose();
    disposeModel(model);
  });
});
