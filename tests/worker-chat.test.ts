/**
 * The worker's chat and adapter library, run in Node on the real engine (wasm) and IndexedDB
 * (fake-indexeddb): train on animal-sounds.jsonl, then the fine-tuned pane answers training prompts with the
 * data's answers while the base pane answers as a freshly loaded model without any adapter does; the saved
 * zip, imported again after the library is emptied, answers the same; adapters for other models are refused.
 */
import 'fake-indexeddb/auto';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate } from '../src/engine/generate';
import { attachLora, peftInit } from '../src/engine/lora';
import { disposeModel } from '../src/engine/model';
import { tf } from '../src/engine/tf';
import { strToU8, zipSync } from 'fflate';
import { writeAdapterZip } from '../src/formats/peft';
import { readAdapterInfo } from '../src/formats/adapter-info';
import { readAdapterZip } from '../src/formats/peft';
import { deleteAdapter, getAdapter, listAdapters } from '../src/store/adapters';
import { AdapterSlot } from '../src/worker/adapter-slot';
import { ChatSession } from '../src/worker/chat';
import { importAdapter, useSavedAdapter } from '../src/worker/library';
import type { GenerationSettings, TrainRequest } from '../src/worker/protocol';
import { DatasetSession } from '../src/worker/dataset-session';
import { ModelLease } from '../src/worker/lease';
import { TrainingSession } from '../src/worker/training';
import { bf16Safetensors } from './helpers/bf16';
import { dataFile, loadFixture, switchBackend } from './helpers/shared';

const FILE = 'animal-sounds.jsonl';
const bytes = new Uint8Array(fs.readFileSync(dataFile(FILE)));
/** The file itself is the reference: what each prompt should be answered with. */
const rows = fs
  .readFileSync(dataFile(FILE), 'utf8')
  .trim()
  .split('\n')
  .map((line) => JSON.parse(line) as { prompt: string; completion: string });
const answerOf = new Map(rows.map((r) => [r.prompt, r.completion]));

const GREEDY: GenerationSettings = { temperature: 0, topP: 1, maxNewTokens: 24, stopStrings: [], seed: 0 };
const TRAIN: TrainRequest = {
  source: { modelUrl: null, datasetId: 'animal-sounds' },
  backend: 'auto',
  rank: 8,
  alpha: 16,
  dropout: 0,
  targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
  learningRate: 1e-2,
  epochs: 30,
  batchSize: 4,
  gradAccum: 1,
  warmupSteps: 2,
  seed: 0,
  recompute: 'auto',
  // The chat must give the trained answers: the last weights, which memorised them, not those of the best
  // validation loss.
  keep: 'last',
};

describe('chat and adapter library in the worker', () => {
  const loaded = loadFixture('stories260K');
  const slot = new AdapterSlot();
  const dataset = new DatasetSession();
  const training = new TrainingSession(slot, dataset, new ModelLease());
  const chat = new ChatSession(slot, dataset);
  const ask = (pane: 'base' | 'tuned' | 'fewshot', message: string, settings = GREEDY, shots = 3) =>
    chat.reply(loaded, { pane, turns: [{ role: 'user', content: message }], settings, shots }, () => {});
  let tensorsBefore = 0;
  let adapterId: string;
  let trainingPrompts: string[];

  beforeAll(async () => {
    await switchBackend('wasm');
    tensorsBefore = tf.memory().numTensors;
    dataset.useModel(loaded);
    const prepared = dataset.open({
      bytes,
      fileName: FILE,
      settings: { mapping: null, useChatTemplate: false, maxLength: 64, valSplit: 0.2, seed: 0 },
    });
    // Quick prompts are held-out rows: a prompt of the file and the completion the file gives it.
    expect(prepared.quickPromptsFrom).toBe('validation');
    expect(prepared.quickPrompts).toHaveLength(prepared.validationExamples);
    for (const quick of prepared.quickPrompts) expect(answerOf.get(quick.message)).toBe(quick.answer);
    const held = new Set(prepared.quickPrompts.map((q) => q.message));
    trainingPrompts = rows.map((r) => r.prompt).filter((p) => !held.has(p));

    const result = await training.train(loaded, TRAIN, () => {});
    expect(result.stopped).toBe(false);
    expect(result.adapterId).not.toBeNull();
    adapterId = result.adapterId!;
  }, 120_000);

  afterAll(() => {
    slot.clear(loaded.model);
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    disposeModel(loaded.model);
  });

  it('the fine-tuned pane gives the trained answers; the base pane answers like the model without any adapter', async () => {
    const fresh = loadFixture('stories260K');
    try {
      for (const prompt of trainingPrompts.slice(0, 4)) {
        const tuned = await ask('tuned', prompt);
        // stories260K never saw EOS in pre-training and does not learn to end here; the answer comes first.
        expect(tuned.text.startsWith(answerOf.get(prompt)!), `${prompt} → ${tuned.text}`).toBe(true);
        const base = await ask('base', prompt);
        // The same prompt (message + newline, as trained) through a model that never had an adapter.
        const reference = await generate(fresh.model, fresh.tokenizer.encode(`${prompt}\n`), {
          maxNewTokens: 24,
          decode: (ids) => fresh.tokenizer.decode(ids),
        });
        expect(base.text).toBe(reference.text);
        expect(base.text.startsWith(answerOf.get(prompt)!)).toBe(false);
      }
    } finally {
      disposeModel(fresh.model);
    }
    expect(slot.adapter!.enabled).toBe(true); // switched back on after the base pane
  }, 60_000);

  it('the few-shot pane puts training examples before the message and stops at the blank line after its answer', async () => {
    const reply = await ask('fewshot', trainingPrompts[5]);
    expect(reply.shotsUsed).toBe(3);
    const single = await ask('base', trainingPrompts[5]);
    expect(reply.promptTokens).toBeGreaterThan(single.promptTokens + 20);
    expect(reply.text).not.toContain('\n\n');
    expect(chat.setup(loaded).shotsAvailable).toBe(trainingPrompts.length);
  }, 60_000);

  it('the library keeps the adapter with its prompt format and losses, inside the zip too', async () => {
    const [summary] = await listAdapters();
    expect(summary.id).toBe(adapterId);
    expect(summary.modelName).toBe(loaded.name);
    expect(summary.datasetName).toBe(FILE);
    expect(summary.promptStyle).toEqual({
      useChatTemplate: false,
      promptTemplate: '{prompt}',
      conversation: false,
    });
    expect(summary.trainLoss).toBeLessThan(summary.lossHistory[0].loss / 2);
    const zip = (await getAdapter(adapterId))!.zip;
    const info = readAdapterInfo(readAdapterZip(zip).metadata);
    expect(info?.promptStyle).toEqual(summary.promptStyle);
    expect(info?.lossHistory).toEqual(summary.lossHistory);
  });

  it('an exported zip imported into an empty library answers exactly as before', async () => {
    const prompt = trainingPrompts[1];
    const before = await ask('tuned', prompt);
    const zip = (await getAdapter(adapterId))!.zip;
    slot.clear(loaded.model);
    await deleteAdapter(adapterId);
    expect(await listAdapters()).toEqual([]);
    await expect(ask('tuned', prompt)).rejects.toThrow(/no fine-tuned adapter/);

    const imported = await importAdapter(loaded, zip, 'my-animals.zip');
    expect(imported.name).toBe('my-animals');
    expect(imported.origin).toBe('imported');
    expect(imported.datasetName).toBe(FILE);
    await useSavedAdapter(loaded, slot, imported.id);
    expect(chat.setup(loaded).adapter).toEqual({ id: imported.id, name: 'my-animals' });
    expect((await ask('tuned', prompt)).text).toBe(before.text);
    adapterId = imported.id;
  }, 60_000);

  it('imports a zip as PEFT writes it — BF16 tensors under an adapter name, inside a folder — and chats with it', async () => {
    const prompt = trainingPrompts[2];
    const trained = await ask('tuned', prompt);
    const weights = readAdapterZip((await getAdapter(adapterId))!.zip);
    // PEFT's save_pretrained in bfloat16: keys carry no adapter name in the file but older versions wrote
    // ".default"; the folder is zipped as a whole.
    const tensors = [...weights.modules].flatMap(
      ([module, { A, B }]) =>
        [
          [`base_model.model.${module}.lora_A.default.weight`, A],
          [`base_model.model.${module}.lora_B.default.weight`, B],
        ] as const,
    );
    const config = {
      peft_type: 'LORA',
      r: weights.config.r,
      lora_alpha: weights.config.lora_alpha,
      lora_dropout: 0,
      target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
      bias: 'none',
      task_type: 'CAUSAL_LM',
      base_model_name_or_path: 'stories260K',
    };
    const zip = zipSync({
      'peft-out/adapter_config.json': strToU8(JSON.stringify(config)),
      'peft-out/adapter_model.safetensors': bf16Safetensors(tensors),
    });
    const imported = await importAdapter(loaded, zip, 'peft-out.zip');
    expect(imported.promptStyle).toBeNull(); // PEFT does not say how prompts were formatted
    await useSavedAdapter(loaded, slot, imported.id);
    // bfloat16 keeps 8 bits of mantissa: the greedy answer the data taught survives the rounding.
    expect((await ask('tuned', prompt)).text.startsWith(answerOf.get(prompt)!), trained.text).toBe(true);
    await useSavedAdapter(loaded, slot, adapterId);
    await deleteAdapter(imported.id);
  }, 60_000);

  it('refuses an adapter made for a model of another shape, naming the mismatch', async () => {
    const qwen = loadFixture('tiny-random-qwen2');
    const other = attachLora(
      qwen.model,
      { rank: 4, alpha: 8, dropout: 0, targets: ['q_proj'], useRslora: false },
      peftInit(0),
      'tiny-random-qwen2',
    );
    const zip = writeAdapterZip(await other.toWeights());
    disposeModel(qwen.model);
    other.dispose();
    await expect(importAdapter(loaded, zip, 'qwen.zip')).rejects.toThrow(
      /(different|another) base model.*tiny-random-qwen2/,
    );
    expect((await listAdapters()).map((a) => a.name)).toEqual(['my-animals']);
  });

  it('Stop ends an answer between tokens', async () => {
    const long = { ...GREEDY, temperature: 1, maxNewTokens: 200 };
    let seen = 0;
    const reply = chat.reply(
      loaded,
      { pane: 'base', turns: [{ role: 'user', content: 'Once upon a time' }], settings: long, shots: 0 },
      () => {
        if (++seen === 3) chat.stop();
      },
    );
    const result = await reply;
    expect(result.stopReason).toBe('aborted');
    expect(result.tokens).toBe(3);
    expect(chat.busy).toBe(false);
  });
});
