/**
 * The worker's draftQuestions request with the real engine (stories260K-chat on wasm, whose answers are
 * children's stories, not questions: what is tested is the flow). Each chunk is one greedy generation from
 * exactly the prompt the tokenizer's own chat template renders for the instruction and that chunk (the same
 * model loaded apart and run by the test gives the same text); progress comes per token and per chunk;
 * Cancel stops between tokens or chunks; training holding the model refuses it in words, and it refuses the
 * chat; the adapter is off while it drafts and on again after; no tensor is left; and the dataset the page
 * saves from the pairs trains like any dropped file.
 */
import 'fake-indexeddb/auto';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunkDocument, DRAFT_DEFAULTS, pairsToJsonl, type DraftEvent } from '../src/data/drafting';
import { generate } from '../src/engine/generate';
import { endTokenIds } from '../src/engine/load';
import { disposeModel } from '../src/engine/model';
import { tf } from '../src/engine/tf';
import type { DatasetSettings, TrainRequest } from '../src/worker/protocol';
import { HostDriver } from './helpers/host';
import { dataFile, loadFixture, switchBackend } from './helpers/shared';

const TEXT = fs.readFileSync(dataFile('lamp-manual.md'), 'utf8');
const REQUEST = { text: TEXT, instruction: DRAFT_DEFAULTS.instruction, chunkChars: 600, maxNewTokens: 12 };
const CHUNKS = chunkDocument(TEXT, REQUEST.chunkChars);
const SETTINGS: DatasetSettings = {
  mapping: null,
  useChatTemplate: true,
  maxLength: 48,
  valSplit: 0,
  seed: 0,
};
const TRAIN: TrainRequest = {
  source: { modelUrl: null, datasetId: 'drafted' },
  backend: 'wasm',
  rank: 2,
  alpha: 4,
  dropout: 0,
  targets: ['q_proj', 'v_proj'],
  // Enough to change what the model writes (the drafting must not use the adapter).
  learningRate: 5e-2,
  epochs: 2,
  batchSize: 2,
  gradAccum: 1,
  warmupSteps: 0,
  seed: 0,
  recompute: 'off',
};
const PAIRS = [
  { question: 'How do you switch the lamp on?', answer: 'Touch the ring on the base once.' },
  { question: 'How long does the battery last at full brightness?', answer: 'About eight hours.' },
  { question: 'What colour is the charging light when the battery is full?', answer: 'Green.' },
  { question: 'How long is the guarantee?', answer: 'Two years.' },
];

describe('drafting questions in the worker', () => {
  const reference = loadFixture('stories260K-chat');
  /** What the chat template itself renders for a chunk, generated greedily by the same model loaded apart. */
  const expectedOutputs: string[] = [];
  let tensorsBefore = 0;

  beforeAll(async () => {
    await switchBackend('wasm');
    const { tokenizer } = reference;
    expect(tokenizer.chatTemplate).not.toBeNull();
    for (const chunk of CHUNKS) {
      const content = `${REQUEST.instruction}\n\nText:\n${chunk.text}`;
      const prompt = tokenizer.applyChatTemplate([{ role: 'user', content }], { addGenerationPrompt: true });
      const result = await generate(reference.model, tokenizer.encode(prompt), {
        maxNewTokens: REQUEST.maxNewTokens,
        eosTokenIds: endTokenIds(reference),
        // The template ends a turn with "</s>\n".
        stopStrings: ['</s>'],
        decode: (ids) => tokenizer.decode(ids),
      });
      expectedOutputs.push(result.text);
    }
    // Different chunks, different texts: comparing them says which prompt each generation had.
    expect(new Set(expectedOutputs).size).toBe(CHUNKS.length);
    disposeModel(reference.model);
    tensorsBefore = tf.memory().numTensors;
  });

  afterAll(() => {
    expect(tf.memory().numTensors).toBe(tensorsBefore);
  });

  async function driver(model = 'stories260K-chat'): Promise<HostDriver> {
    const d = new HostDriver();
    await d.send('init', { backend: 'wasm' });
    await d.loadFixture(model);
    return d;
  }

  it('generates once per chunk from the chat template’s own prompt, reporting as it goes', async () => {
    expect(CHUNKS.length).toBeGreaterThan(2);
    const d = await driver();
    try {
      const events: DraftEvent[] = [];
      const result = await d.send('draftQuestions', REQUEST, (e) => events.push(e as DraftEvent));
      expect(events[0]).toEqual({ kind: 'start', chunks: CHUNKS.length });
      const done = events.filter((e) => e.kind === 'chunk');
      expect(done.map((e) => [e.chunk, e.line, e.output])).toEqual(
        CHUNKS.map((c, i) => [c.index, c.line, expectedOutputs[i]]),
      );
      // Tokens are reported one by one for the chunk in hand, never past the limit.
      for (const chunk of CHUNKS) {
        const counts = events.flatMap((e) =>
          e.kind === 'writing' && e.chunk === chunk.index ? [e.tokens] : [],
        );
        expect(counts).toEqual(counts.map((_, i) => i + 1));
        expect(counts.length).toBeLessThanOrEqual(REQUEST.maxNewTokens);
      }
      expect(result).toEqual({
        pairs: done.flatMap((e) => e.pairs),
        chunks: CHUNKS.length,
        chunksDone: CHUNKS.length,
        cancelled: false,
      });
      expect(d.state()).toEqual({ holder: null, phase: 'idle', consistent: null });
    } finally {
      d.dispose();
    }
  });

  it('stops between chunks, or between tokens, keeping the chunks finished before', async () => {
    const d = await driver();
    try {
      const chunkEvents: DraftEvent[] = [];
      const afterFirstChunk = await d.send('draftQuestions', REQUEST, (e) => {
        if ((e as DraftEvent).kind !== 'chunk') return;
        chunkEvents.push(e as DraftEvent);
        void d.send('cancelDrafting', {});
      });
      expect(chunkEvents).toHaveLength(1);
      expect(afterFirstChunk).toMatchObject({ chunks: CHUNKS.length, chunksDone: 1, cancelled: true });

      let writing = 0;
      let chunks = 0;
      const midChunk = await d.send('draftQuestions', REQUEST, (e) => {
        const event = e as DraftEvent;
        if (event.kind === 'chunk') chunks++;
        if (event.kind === 'writing' && ++writing === 3) void d.send('cancelDrafting', {});
      });
      expect(midChunk).toEqual({ pairs: [], chunks: CHUNKS.length, chunksDone: 0, cancelled: true });
      expect(chunks).toBe(0);
      // The cancel is seen before the next token is written.
      expect(writing).toBeLessThanOrEqual(4);
      expect(await d.send('cancelDrafting', {})).toBe(false);
      expect(d.state()).toEqual({ holder: null, phase: 'idle', consistent: null });
    } finally {
      d.dispose();
    }
  });

  it('is refused while training holds the model, and holds it against the chat', async () => {
    const d = await driver();
    try {
      await d.openDataset('drafted.jsonl', SETTINGS, new TextEncoder().encode(pairsToJsonl(PAIRS)));
      const run = d.send('train', TRAIN);
      await expect(d.send('draftQuestions', REQUEST)).rejects.toThrow(
        'Training is running. Pause it or wait for it to finish, then draft questions.',
      );
      await run;

      const draft = d.send('draftQuestions', REQUEST);
      await expect(
        d.send('chat', {
          pane: 'base',
          turns: [{ role: 'user', content: 'Hello' }],
          settings: { temperature: 0, topP: 1, maxNewTokens: 4, stopStrings: [], seed: 0 },
          shots: 0,
        }),
      ).rejects.toThrow('The model is drafting questions. Wait for it or press Cancel, then chat.');
      await d.send('cancelDrafting', {});
      await draft;
      // The adapter training left on the model changes what it writes for the first chunk's prompt...
      const ask = (pane: 'base' | 'tuned') =>
        d.send('chat', {
          pane,
          turns: [{ role: 'user', content: `${REQUEST.instruction}\n\nText:\n${CHUNKS[0].text}` }],
          settings: {
            temperature: 0,
            topP: 1,
            maxNewTokens: REQUEST.maxNewTokens,
            stopStrings: ['</s>'],
            seed: 0,
          },
          shots: 0,
        });
      expect((await ask('base')).text).toBe(expectedOutputs[0]);
      expect((await ask('tuned')).text).not.toBe(expectedOutputs[0]);
      // ...but it is off while drafting: the model as published writes.
      const events: DraftEvent[] = [];
      await d.send('draftQuestions', REQUEST, (e) => events.push(e as DraftEvent));
      expect(events.flatMap((e) => (e.kind === 'chunk' ? [e.output] : []))).toEqual(expectedOutputs);
      expect(d.state()).toEqual({ holder: null, phase: 'idle', consistent: null });
    } finally {
      d.dispose();
    }
  });

  it('says what to do for a model without a chat template, a document without text, or a chunk too long', async () => {
    const plain = await driver('stories260K');
    try {
      await expect(plain.send('draftQuestions', REQUEST)).rejects.toThrow(
        /needs an instruct model, one with a chat template/,
      );
    } finally {
      plain.dispose();
    }
    const d = await driver();
    try {
      await expect(d.send('draftQuestions', { ...REQUEST, text: '\n\n  \n' })).rejects.toThrow(
        'The document has no text to draft questions from.',
      );
      // stories260K reads 512 tokens; its tokenizer writes about one token for every 2–3 characters here.
      const long = `${'The ring on the base is a touch sensor that you hold to dim the light. '.repeat(40)}`;
      await expect(d.send('draftQuestions', { ...REQUEST, text: long, chunkChars: 3000 })).rejects.toThrow(
        /^Chunk 1 \(from line 1\) and the instruction are \d+ tokens, .* Lower the chunk size/,
      );
      expect(d.state()).toEqual({ holder: null, phase: 'idle', consistent: null });
    } finally {
      d.dispose();
    }
  });

  it('saves pairs as a dataset that opens and trains like a dropped file', async () => {
    const d = await driver();
    try {
      const prepared = await d.openDataset(
        'lamp-manual-questions.jsonl',
        SETTINGS,
        new TextEncoder().encode(pairsToJsonl(PAIRS)),
      );
      expect(prepared).toMatchObject({
        format: 'jsonl',
        rows: PAIRS.length,
        columns: ['prompt', 'completion'],
      });
      expect(prepared.mapping).toEqual({
        kind: 'template',
        promptTemplate: '{prompt}',
        completionTemplate: '{completion}',
      });
      const result = await d.send('train', TRAIN);
      expect(result).toMatchObject({ steps: 4, stopped: false, paused: false });
      expect(Number.isFinite(result.trainLoss)).toBe(true);
      expect(result.adapterId).toEqual(expect.any(String));
    } finally {
      d.dispose();
    }
  });
});
