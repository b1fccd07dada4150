/**
 * LoRA adapters as GGUF (convert_lora_to_gguf.py's layout) on top of a base GGUF in real llama.cpp: the
 * continuation equals webtune's generate() with the adapter attached, for deterministic adapters on all
 * seven targets (Llama's permuted q/k rows, Qwen2's biases, Qwen3's q/k norms), for rsLoRA's scale and
 * for an adapter trained by the engine; the merged export (adapter folded into the weights) agrees too.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readModelFolder } from '../src/node/model-folder';
import { generate } from '../src/engine/generate';
import { loadModel, type LoadedModel } from '../src/engine/load';
import { attachLora, detachLora, peftInit, type LoraAdapter, type LoraSettings } from '../src/engine/lora';
import { disposeModel } from '../src/engine/model';
import { tf } from '../src/engine/tf';
import { runTraining, Trainer } from '../src/engine/train';
import { checkpointTensors } from '../src/formats/checkpoint-tensors';
import { writeLoraGguf, writeModelGguf } from '../src/formats/gguf-model';
import type { AdapterWeights } from '../src/formats/peft';
import { bestFriends } from './helpers/best-friends';
import { DET_ADAPTERS } from './helpers/det-adapters';
import { detLora } from './helpers/det-lora';
import { tempDir, writeFile } from './helpers/gguf-files';
import { getLlama, openGguf, type GgufRun } from './helpers/llama-cpp';
import { maxAbsDiff, modelDir, switchBackend } from './helpers/shared';
import { webtuneLogits } from './helpers/webtune-logits';

const NEW_TOKENS = 24;
const PROMPTS = ['Once upon a time', 'Lily and Tom went to the park. They'];
/**
 * f32 on both sides (f32 KV cache, no flash attention); only the order of additions differs (measured ≤
 * 1e-5).
 */
const LOGIT_TOLERANCE = 1e-4;
const dir = tempDir('webtune-gguf-lora-');
const [ALL_SEVEN, RSLORA] = DET_ADAPTERS.map((a) => a.settings);

beforeAll(async () => {
  await switchBackend('cpu');
  await getLlama();
});

async function exportBase(
  name: string,
  files: ReturnType<typeof readModelFolder>,
  adapter?: AdapterWeights,
): Promise<string> {
  const file = path.join(dir, `${name}${adapter ? '-merged' : ''}.gguf`);
  return writeFile(file, (sink) =>
    writeModelGguf(sink, { name, files, tensors: checkpointTensors(files, adapter) }, { dtype: 'f32' }),
  );
}

async function exportLora(
  label: string,
  files: ReturnType<typeof readModelFolder>,
  adapter: AdapterWeights,
): Promise<string> {
  return writeFile(path.join(dir, `${label}.lora.gguf`), (sink) =>
    writeLoraGguf(sink, { name: label, files, adapter }, { dtype: 'f32' }),
  );
}

/** webtune's greedy continuation of each prompt, with whatever adapter is attached to the model. */
async function webtuneContinuations(loaded: LoadedModel): Promise<number[][]> {
  const out: number[][] = [];
  for (const text of PROMPTS)
    out.push(
      (
        await generate(loaded.model, loaded.tokenizer.encode(text), {
          maxNewTokens: NEW_TOKENS,
          eosTokenIds: [],
        })
      ).tokens,
    );
  return out;
}

async function llamaContinuations(run: GgufRun, loaded: LoadedModel): Promise<number[][]> {
  const out: number[][] = [];
  for (const text of PROMPTS) out.push(await run.greedy(loaded.tokenizer.encode(text), NEW_TOKENS));
  return out;
}

describe.each(['stories260K', 'tiny-random-qwen2', 'tiny-random-qwen3'])(
  '%s with a LoRA on all seven targets',
  (name) => {
    const files = readModelFolder(modelDir(name));
    let loaded: LoadedModel;
    let adapter: LoraAdapter;
    let weights: AdapterWeights;
    let adapted: number[][];
    let baseLogits: Float32Array;
    let baseFile: string;
    let before: number;
    beforeAll(async () => {
      before = tf.memory().numTensors;
      loaded = loadModel(files);
      baseLogits = await webtuneLogits(loaded.model, loaded.tokenizer.encode(PROMPTS[1]));
      adapter = attachLora(loaded.model, ALL_SEVEN, detLora, name);
      weights = await adapter.toWeights();
      adapted = await webtuneContinuations(loaded);
      baseFile = await exportBase(name, files);
    });
    afterAll(() => {
      detachLora(loaded.model, adapter);
      disposeModel(loaded.model);
      expect(tf.memory().numTensors).toBe(before);
    });

    it('changes the logits far beyond the tolerance (so the checks below can tell this adapter from none)', async () => {
      const adaptedLogits = await webtuneLogits(loaded.model, loaded.tokenizer.encode(PROMPTS[1]));
      expect(maxAbsDiff(adaptedLogits, baseLogits)).toBeGreaterThan(100 * LOGIT_TOLERANCE);
    });

    /** llama.cpp's continuations and logits are webtune's with the adapter attached. */
    async function expectAdapted(run: Awaited<ReturnType<typeof openGguf>>): Promise<void> {
      try {
        expect(await llamaContinuations(run, loaded)).toEqual(adapted);
        const ids = loaded.tokenizer.encode(PROMPTS[1]);
        const ours = await webtuneLogits(loaded.model, ids);
        expect(maxAbsDiff(await run.logits(ids, ours.length), ours)).toBeLessThan(LOGIT_TOLERANCE);
      } finally {
        await run.dispose();
      }
    }

    it('base GGUF + LoRA GGUF continues like webtune with the adapter attached, with the same logits', async () => {
      const run = await openGguf(baseFile, { lora: await exportLora(`${name}-all7`, files, weights) });
      await expectAdapted(run);
    });

    it('the merged GGUF continues the same', async () => {
      const run = await openGguf(await exportBase(name, files, weights));
      await expectAdapted(run);
    });
  },
);

describe('scales', () => {
  const files = readModelFolder(modelDir('stories260K'));
  let baseFile: string;
  beforeAll(async () => {
    baseFile = await exportBase('stories260K', files);
  });

  it("an rsLoRA adapter's GGUF scale is PEFT's lora_alpha/√r, not lora_alpha/r", async () => {
    expect(RSLORA.useRslora).toBe(true);
    const before = tf.memory().numTensors;
    const loaded = loadModel(files);
    const ids = loaded.tokenizer.encode(PROMPTS[0]);
    try {
      const rsloraAdapter = attachLora(loaded.model, RSLORA, detLora, 'stories260K');
      const weights = await rsloraAdapter.toWeights();
      const rslora = await webtuneLogits(loaded.model, ids);
      const continuations = await webtuneContinuations(loaded);
      detachLora(loaded.model, rsloraAdapter);
      // The same weights scaled as a plain LoRA (alpha/r) give clearly different logits, so the check below
      // can fail.
      const plainAdapter = attachLora(loaded.model, { ...RSLORA, useRslora: false }, detLora, 'stories260K');
      const plain = await webtuneLogits(loaded.model, ids);
      detachLora(loaded.model, plainAdapter);
      expect(maxAbsDiff(plain, rslora)).toBeGreaterThan(100 * LOGIT_TOLERANCE);

      const run = await openGguf(baseFile, { lora: await exportLora('stories260K-rslora', files, weights) });
      try {
        expect(maxAbsDiff(await run.logits(ids, rslora.length), rslora)).toBeLessThan(LOGIT_TOLERANCE);
        expect(await llamaContinuations(run, loaded)).toEqual(continuations);
      } finally {
        await run.dispose();
      }
    } finally {
      disposeModel(loaded.model);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('an adapter trained by the engine answers the same in llama.cpp as in webtune', async () => {
    const before = tf.memory().numTensors;
    const loaded = loadModel(files);
    const settings: LoraSettings = {
      rank: 8,
      alpha: 16,
      dropout: 0,
      targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
      useRslora: false,
    };
    const adapter = attachLora(loaded.model, settings, peftInit(3), 'stories260K');
    const set = bestFriends(loaded.tokenizer);
    const trainer = new Trainer(loaded.model, adapter, set.data, {
      learningRate: 3e-2,
      epochs: 3,
      gradAccum: 1,
      warmupSteps: 0,
      maxGradNorm: 1,
      weightDecay: 0,
      seed: 2,
    });
    try {
      const summary = await runTraining(trainer);
      expect(summary.steps).toBeGreaterThan(0);
      const weights = await adapter.toWeights();
      const prompts = ['Who is Tom?', 'Who is Lily?'];
      const run = await openGguf(baseFile, { lora: await exportLora('stories260K-trained', files, weights) });
      try {
        for (const text of prompts) {
          const ids = loaded.tokenizer.encode(text);
          const ours = await generate(loaded.model, ids, { maxNewTokens: 16, eosTokenIds: [] });
          expect(await run.greedy(ids, 16), text).toEqual(ours.tokens);
        }
      } finally {
        await run.dispose();
      }
    } finally {
      trainer.dispose();
      detachLora(loaded.model, adapter);
      disposeModel(loaded.model);
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
