// Training on WebGPU (Dawn + SwiftShader) follows the cpu backend step for step.
import { describe, expect, it } from 'vitest';
import { attachLora, detachLora, peftInit } from '../src/engine/lora';
import { disposeModel } from '../src/engine/model';
import { tf } from '../src/engine/tf';
import { Trainer } from '../src/engine/train';
import { bestFriends, weightsOf } from './helpers/best-friends';
import { loadFixture, relativeError, switchBackend } from './helpers/shared';
import { disposeAfterEach } from './helpers/cleanup';

const own = disposeAfterEach();

async function trainSteps(backend: 'cpu' | 'webgpu', steps: number) {
  await switchBackend(backend);
  const { model, tokenizer } = own(loadFixture('stories260K'));
  const set = bestFriends(tokenizer);
  const adapter = own.adapter(
    model,
    attachLora(
      model,
      {
        rank: 4,
        alpha: 8,
        dropout: 0,
        targets: ['q_proj', 'v_proj', 'o_proj', 'down_proj'],
        useRslora: false,
      },
      peftInit(5),
    ),
  );
  const before = tf.memory().numTensors;
  const trainer = own.add(
    new Trainer(model, adapter, set.data, {
      learningRate: 5e-3,
      epochs: 1,
      gradAccum: 2,
      warmupSteps: 1,
      maxGradNorm: 1,
      weightDecay: 0.01,
      seed: 2,
    }),
  );
  const losses: number[] = [];
  const gradNorms: number[] = [];
  for (let i = 0; i < steps; i++) {
    const m = await trainer.trainStep();
    losses.push(m.loss);
    gradNorms.push(m.gradNorm);
  }
  trainer.dispose();
  const leaked = tf.memory().numTensors - before;
  const weights = await weightsOf(adapter);
  detachLora(model, adapter);
  disposeModel(model);
  return { losses, gradNorms, weights, leaked };
}

describe('training on webgpu', () => {
  it('gives the losses, gradient norms and weights of the cpu backend, without leaking tensors', async () => {
    // Two optimizer steps of two micro-batches each: accumulation, and Adam's moments carried over a step.
    const gpu = await trainSteps('webgpu', 2);
    const cpu = await trainSteps('cpu', 2);
    expect(gpu.leaked).toBe(0);
    gpu.losses.forEach((loss, i) => expect(loss).toBeCloseTo(cpu.losses[i], 3));
    gpu.gradNorms.forEach((norm, i) =>
      expect(Math.abs(norm - cpu.gradNorms[i]) / cpu.gradNorms[i]).toBeLessThan(1e-3),
    );
    expect(relativeError(gpu.weights, cpu.weights)).toBeLessThan(1e-3);
  });
});
