/**
 * The worker's dataset session in Node: a file is parsed and previewed before any model is loaded, its
 * tokens are counted when a model arrives (again for another model), settings change without the file
 * being sent again, and a run trains on what it built.
 */
import 'fake-indexeddb/auto';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoadedModel } from '../src/engine/load';
import { disposeModel } from '../src/engine/model';
import { getRun, latestRun } from '../src/store/runs';
import { AdapterSlot } from '../src/worker/adapter-slot';
import { ChatSession } from '../src/worker/chat';
import { DatasetSession } from '../src/worker/dataset-session';
import type { DatasetSettings, TrainRequest } from '../src/worker/protocol';
import { ModelLease } from '../src/worker/lease';
import { TrainingSession } from '../src/worker/training';
import { dataFile, loadFixture, switchBackend } from './helpers/shared';

const FILE = 'best-friends.csv';
const fileBytes = () => new Uint8Array(fs.readFileSync(dataFile(FILE)));
const SETTINGS: DatasetSettings = {
  mapping: null,
  useChatTemplate: true,
  maxLength: 64,
  valSplit: 0.1,
  seed: 0,
};
const TRAIN: TrainRequest = {
  source: { modelUrl: null, datasetId: 'best-friends' },
  backend: 'auto',
  rank: 4,
  alpha: 8,
  dropout: 0,
  targets: ['q_proj', 'v_proj'],
  learningRate: 1e-2,
  epochs: 1,
  batchSize: 8,
  gradAccum: 1,
  warmupSteps: 0,
  seed: 0,
  recompute: 'on',
};

describe('the dataset session in the worker', () => {
  let plain: LoadedModel;
  let chatModel: LoadedModel;

  beforeAll(async () => {
    await switchBackend('wasm');
    plain = loadFixture('stories260K');
    chatModel = loadFixture('stories260K-chat');
  });
  afterAll(() => {
    disposeModel(plain.model);
    disposeModel(chatModel.model);
  });

  it('parses a file before any model: columns, detected layout, preview, split and quick prompts; no tokens yet', () => {
    const session = new DatasetSession();
    const prepared = session.open({ bytes: fileBytes(), fileName: FILE, settings: SETTINGS });
    expect(prepared.format).toBe('csv');
    expect(prepared.columns).toEqual(['question', 'answer']);
    expect(prepared.mapping).toEqual({
      kind: 'template',
      promptTemplate: '{question}',
      completionTemplate: '{answer}',
    });
    expect(prepared.detected).toBe(true);
    expect(prepared.guess).toBeNull();
    expect(prepared.rows).toBe(36);
    expect(prepared.stats).toBeNull();
    // Rendered as plain text: the question, a newline, the answer highlighted.
    expect(prepared.preview).toHaveLength(5);
    expect(prepared.preview[0].prompt).toMatch(/^Who is \w+\?\n$/);
    expect(prepared.preview[0].completion).toMatch(/^\w+ is my best friend\.$/);
    expect(prepared.preview.every((row) => !row.truncated)).toBe(true);
    expect(prepared.trainExamples + prepared.validationExamples).toBe(36);
    expect(prepared.validationExamples).toBe(4);
    expect(prepared.quickPromptsFrom).toBe('validation');
    expect(prepared.quickPrompts[0].message).toMatch(/^Who is \w+\?$/);
    // The chat's few-shot examples and prompt style need no model either.
    expect(session.shots(3)).toHaveLength(3);
    expect(session.style).toEqual({
      useChatTemplate: false,
      promptTemplate: '{question}',
      conversation: false,
    });
    expect(session.ready).toBe(true);
    expect(() => session.trainingSet(4)).toThrow(/No model is loaded/);
  });

  it('counts tokens when the model arrives, with the same examples and split; another model counts again', () => {
    const session = new DatasetSession();
    const before = session.open({ bytes: fileBytes(), fileName: FILE, settings: SETTINGS });
    session.useModel(plain);
    const counted = session.summary();
    expect(counted.stats).not.toBeNull();
    expect(counted.stats!.examples).toBe(36);
    expect(counted.stats!.tokens).toBeGreaterThan(36 * 5);
    // No chat template in stories260K: what the model sees is what the preview showed before it loaded.
    expect(counted.preview).toEqual(before.preview);
    expect(counted.quickPrompts).toEqual(before.quickPrompts);
    expect(session.trainingSet(4).train).toHaveLength(before.trainExamples);

    // A model with a chat template: prompts go through it, so the preview and the token counts change.
    session.useModel(chatModel);
    const templated = session.summary();
    expect(templated.preview[0].prompt).not.toBe(before.preview[0].prompt);
    expect(templated.preview[0].prompt).toContain(before.preview[0].prompt.trim());
    expect(templated.stats!.tokens).toBeGreaterThan(counted.stats!.tokens);
    expect(session.style?.useChatTemplate).toBe(true);
    expect(session.setup.useChatTemplate).toBe(true);
    // Back to the plain model: counted with its tokenizer again.
    session.useModel(plain);
    expect(session.summary().stats).toEqual(counted.stats);
    expect(session.setup).toEqual({
      ...SETTINGS,
      fileName: FILE,
      mapping: counted.mapping,
      useChatTemplate: false,
    });
  });

  it('a change of settings needs only the settings: the file is never read again', () => {
    const session = new DatasetSession();
    const bytes = fileBytes();
    session.useModel(plain);
    const opened = session.open({ bytes, fileName: FILE, settings: SETTINGS });
    bytes.fill(0); // whatever the page does with its copy, the worker parsed its own
    const short = session.configure({ ...SETTINGS, maxLength: 8 });
    expect(short.stats!.truncatedRows).toBeGreaterThan(0);
    expect(short.stats!.tokens).toBeLessThan(opened.stats!.tokens);
    const templated = session.configure({
      ...SETTINGS,
      mapping: { kind: 'template', promptTemplate: 'Q: {question}', completionTemplate: '{answer}' },
      valSplit: 0,
    });
    expect(templated.preview[0].prompt).toMatch(/^Q: Who is \w+\?\n$/);
    expect(templated.detected).toBe(false);
    expect(templated.validationExamples).toBe(0);
    expect(templated.quickPromptsFrom).toBe('training');
    // A template naming a column the file does not have is explained, and the next settings work again.
    expect(() =>
      session.configure({
        ...SETTINGS,
        mapping: { kind: 'template', promptTemplate: '{questoin}', completionTemplate: '{answer}' },
      }),
    ).toThrow(/no column 'questoin'/);
    expect(session.shots(2)).toEqual([]);
    expect(session.configure(SETTINGS).stats).toEqual(opened.stats);
  });

  it('guesses two columns whose names say nothing, says it guessed, and asks for the columns of any other file', () => {
    const session = new DatasetSession();
    expect(() => session.configure(SETTINGS)).toThrow(/No dataset is open/);
    const csv = new TextEncoder().encode(
      'ticket,team\nMy card was charged twice.,billing\nThe app crashes.,tech\nThe refund never came.,billing\nI cannot log in.,tech\n',
    );
    const guessed = session.open({ bytes: csv, fileName: 'tickets.csv', settings: SETTINGS });
    expect(guessed).toMatchObject({
      columns: ['ticket', 'team'],
      mapping: { kind: 'template', promptTemplate: '{ticket}', completionTemplate: '{team}' },
      detected: false,
      guess: { prompt: 'ticket', completion: 'team', basis: 'labels' },
      rows: 4,
    });
    expect(guessed.preview.map((row) => row.completion).sort()).toEqual([
      'billing',
      'billing',
      'tech',
      'tech',
    ]);
    expect(session.ready).toBe(true);
    // Chosen by the person (here the other way round): neither detected nor guessed.
    const chosen = session.configure({
      ...SETTINGS,
      mapping: { kind: 'template', promptTemplate: '{team}', completionTemplate: '{ticket}' },
    });
    expect(chosen).toMatchObject({ detected: false, guess: null });
    expect(chosen.preview.map((row) => row.completion)).toContain('The app crashes.');

    const three = new TextEncoder().encode('ticket,team,id\nMy card was charged twice.,billing,1\n');
    const unknown = session.open({ bytes: three, fileName: 'three.csv', settings: SETTINGS });
    expect(unknown).toMatchObject({
      columns: ['ticket', 'team', 'id'],
      mapping: null,
      detected: false,
      guess: null,
      preview: [],
      stats: null,
      rows: 1,
    });
    expect(session.ready).toBe(false);
    // A file that does not parse leaves nothing open.
    expect(() =>
      session.open({ bytes: new TextEncoder().encode(''), fileName: 'empty.csv', settings: SETTINGS }),
    ).toThrow(/empty/);
    expect(session.ready).toBe(false);
  });

  it('a run trains on the set built for its batch size, and its checkpoint keeps the settings for a resume', async () => {
    const slot = new AdapterSlot();
    const session = new DatasetSession();
    const training = new TrainingSession(slot, session, new ModelLease());
    const chat = new ChatSession(slot, session);
    session.open({ bytes: fileBytes(), fileName: FILE, settings: SETTINGS });
    session.useModel(plain);
    expect(chat.setup(plain).shotsAvailable).toBe(32);
    const paused = await training.train(plain, TRAIN, (event) => {
      if (event.kind === 'step' && event.metrics.step === 2) training.pause();
    });
    expect(paused.paused).toBe(true);
    // 32 training examples in batches of 8 (not the 4 the statistics were counted with): 4 steps per epoch.
    const saved = await latestRun();
    const runId = saved!.id;
    expect(saved!.step).toBe(2);
    expect(saved!.totalSteps).toBe(4);
    expect((saved!.setup as { prepare: unknown }).prepare).toEqual({
      ...SETTINGS,
      fileName: FILE,
      mapping: { kind: 'template', promptTemplate: '{question}', completionTemplate: '{answer}' },
      useChatTemplate: false,
    });
    const done = await training.resume(plain, () => {});
    expect(done.steps).toBe(4);
    expect(done.adapterId).not.toBeNull();
    expect(await getRun(runId)).toBeUndefined(); // finished: nothing left to resume
    slot.clear(plain.model);
  });
});
