/**
 * Preference pairs in the data pipeline: TRL's prompt/chosen/rejected (texts and message lists) and OpenAI's
 * preference JSONL detected; each answer rendered after its prompt as the chat template (or the plain format)
 * writes it and encoded as the tokenizer encodes that text; pairs batched chosen-then-rejected with stable
 * ids; bad rows reported with their line. Then the whole way: a pairs file through DPO raises the held-out
 * share of pairs whose chosen answer is the more likely, measured by evaluatePreferences, whose base figures
 * equal the PyTorch reference's log-probabilities.
 */
import fs from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  buildPairTrainingSet,
  chatTemplateFormat,
  checkObjectiveFits,
  DatasetError,
  detectNamedLayout,
  evaluatePreferences,
  parseDataset,
  plainFormat,
  renderDataset,
  renderPairs,
  type Dataset,
  type EncodedPair,
  type PairMapping,
} from '../src/data';
import { setUpTrainer } from '../src/data/trainer-setup';
import { pairsScore } from '../src/data/evaluate-preference';
import { runTraining } from '../src/engine/train';
import { tf } from '../src/engine/tf';
import { dataFile, loadTokenizer } from './fixtures/data/shared';
import { disposeAfterEach } from './helpers/cleanup';
import { referencePairs } from './helpers/pairs';
import { loadFixture, reference, switchBackend } from './helpers/shared';

const own = disposeAfterEach();
const read = (name: string): Dataset => parseDataset(fs.readFileSync(dataFile(name), 'utf8'), name);
const jsonl = (rows: object[]): Dataset =>
  parseDataset(rows.map((r) => JSON.stringify(r)).join('\n'), 'pairs.jsonl');
const PAIRS: PairMapping = { kind: 'pairs', prompt: 'prompt', chosen: 'chosen', rejected: 'rejected' };
const chatTokenizer = loadTokenizer('stories260K-chat');
const plainTokenizer = loadTokenizer('stories260K');

describe('pair layouts are detected', () => {
  it("happy-endings.csv is TRL's preference layout, texts", () => {
    const dataset = read('happy-endings.csv');
    expect(detectNamedLayout(dataset)).toEqual({ name: 'preference', mapping: PAIRS });
    expect(dataset.rows[0].chosen).toBe('He played all day and smiled. He was very happy.');
  });

  it("trl-preference.jsonl is TRL's conversational preference layout: every cell a list of messages", () => {
    const dataset = read('trl-preference.jsonl');
    expect(detectNamedLayout(dataset)).toEqual({ name: 'preference', mapping: PAIRS });
    expect(dataset.rows[0].rejected).toEqual([
      { role: 'assistant', content: 'He lost it and cried. He was very sad.' },
    ]);
  });

  it("openai-preference.jsonl is OpenAI's layout: input.messages, preferred_output, non_preferred_output", () => {
    const dataset = read('openai-preference.jsonl');
    expect(detectNamedLayout(dataset)).toEqual({
      name: 'openai-preference',
      mapping: {
        kind: 'pairs',
        prompt: 'input',
        chosen: 'preferred_output',
        rejected: 'non_preferred_output',
      },
    });
    // OpenAI's file keeps the conversation so far in input.messages (tools and other fields are not read).
    expect(dataset.rows[0].input).toEqual([
      { role: 'system', content: 'You finish short stories.' },
      { role: 'user', content: 'Max took a new hat to school.' },
    ]);
  });
});

describe('each answer is rendered after its prompt as the template writes it', () => {
  it('plain: the prompt, a newline, the answer — the same prompt in both', () => {
    const { pairs } = renderPairs(read('happy-endings.csv'), PAIRS, plainFormat());
    expect(pairs).toHaveLength(20);
    expect(pairs[1].chosen.prompt).toBe('Lily took a big dog to the garden.\n');
    expect(pairs[1].chosen.completion).toBe('She played all day and smiled. She was very happy.');
    expect(pairs[1].rejected.prompt).toBe(pairs[1].chosen.prompt);
    expect(pairs[1].rejected.completion).toBe('She lost it and cried. She was very sad.');
  });

  for (const file of ['happy-endings.csv', 'trl-preference.jsonl', 'openai-preference.jsonl'])
    it(`${file} through the chat template: the tokenizer's own rendering of the conversation with each answer`, () => {
      const dataset = read(file);
      const mapping = detectNamedLayout(dataset)!.mapping as PairMapping;
      const { pairs } = renderPairs(dataset, mapping, chatTemplateFormat(chatTokenizer));
      const row = dataset.rows[0];
      const context = Array.isArray(row[mapping.prompt])
        ? (row[mapping.prompt] as { role: string; content: string }[])
        : [{ role: 'user', content: row[mapping.prompt] as string }];
      for (const answer of ['chosen', 'rejected'] as const) {
        const cell = row[mapping[answer]];
        const content = typeof cell === 'string' ? cell : cell[0].content;
        const whole = chatTokenizer.applyChatTemplate([...context, { role: 'assistant', content }], {
          addGenerationPrompt: false,
        });
        const example = pairs[0][answer];
        expect(example.prompt).toBe(chatTokenizer.applyChatTemplate(context, { addGenerationPrompt: true }));
        expect(whole.startsWith(example.prompt + example.completion)).toBe(true);
        expect(example.completion.startsWith(content)).toBe(true);
      }
    });

  it('as single examples (SFT on a pairs file) the rows are their prompts with the chosen answers', () => {
    const { examples } = renderDataset(read('happy-endings.csv'), PAIRS, plainFormat());
    expect(examples[0].prompt).toBe('Tom took a red ball to the park.\n');
    expect(examples[0].completion).toBe('He played all day and smiled. He was very happy.');
  });
});

describe('pairs are encoded and batched', () => {
  const options = { format: plainFormat(), maxLength: 64, valSplit: 0.25, batchSize: 2, seed: 7 };

  it('each row is the tokenizer encoding of prompt + answer + EOS, the answer (and EOS) its targets', () => {
    const set = buildPairTrainingSet(read('happy-endings.csv'), PAIRS, plainTokenizer, options);
    for (const { pair, chosen, rejected } of [...set.train, ...set.validation])
      for (const [example, encoded] of [
        [pair.chosen, chosen],
        [pair.rejected, rejected],
      ] as const) {
        const whole = plainTokenizer.encode(example.prompt + example.completion);
        const prompt = plainTokenizer.encode(example.prompt);
        expect(encoded.ids).toEqual([...whole, plainTokenizer.eosTokenId]);
        // SentencePiece may merge across the boundary; the first differing token is the answer's first.
        let start = 0;
        while (whole[start] === prompt[start]) start++;
        expect(encoded.completionMask).toEqual(encoded.ids.map((_, i) => (i >= start ? 1 : 0)));
      }
    expect(set.stats.pairs).toBe(20);
    expect(set.stats.examples).toBe(40);
  });

  it('a batch is P chosen rows then the same P pairs rejected, ids stable across epochs, validation apart', () => {
    const set = buildPairTrainingSet(read('happy-endings.csv'), PAIRS, plainTokenizer, options);
    expect(set.validation).toHaveLength(5);
    const held = new Set(set.validation.map((p) => p.id));
    const byId = new Map([...set.train, ...set.validation].map((p) => [p.id, p]));
    for (const epoch of [0, 1]) {
      const seen: number[] = [];
      for (const batch of set.data.epochBatches(epoch)) {
        const P = batch.pairIds.length;
        expect(batch.batchSize).toBe(2 * P);
        batch.pairIds.forEach((id, p) => {
          seen.push(id);
          const { chosen, rejected } = byId.get(id)!;
          const rowIds = (r: number, n: number) =>
            Array.from(batch.ids.subarray(r * batch.seqLength, r * batch.seqLength + n));
          expect(rowIds(p, chosen.ids.length)).toEqual(chosen.ids);
          expect(rowIds(P + p, rejected.ids.length)).toEqual(rejected.ids);
        });
      }
      expect(seen.sort((a, b) => a - b)).toEqual(set.train.map((p) => p.id).sort((a, b) => a - b));
      expect(seen.some((id) => held.has(id))).toBe(false);
    }
  });
});

describe('bad pairs are reported with their line', () => {
  const rows = [
    { prompt: 'Tom had a ball.', chosen: 'He was happy.', rejected: 'He was sad.' },
    { prompt: 'Sue had a cat.', chosen: 'She was happy.', rejected: 'She was happy.' },
    { prompt: 'Ben had a hat.', chosen: '  ', rejected: 'He was sad.' },
    { prompt: 'Max had a kite.', chosen: 'He was happy.' },
    { prompt: 'Tom had a ball.', chosen: 'He was happy.', rejected: 'He was sad.' },
    {
      prompt: [{ role: 'user', content: 'Mia had a toy.' }],
      chosen: [{ role: 'user', content: 'She was happy.' }],
      rejected: [{ role: 'assistant', content: 'She was sad.' }],
    },
  ];

  it('same answers, an empty answer, a missing answer, a repeat, an answer that is not the assistant', () => {
    const { pairs, skipped } = renderPairs(jsonl(rows), PAIRS, plainFormat());
    expect(pairs.map((p) => p.line)).toEqual([1]);
    expect(skipped.map((s) => [s.line, s.kind])).toEqual([
      [2, 'invalid'],
      [3, 'empty'],
      [4, 'empty'],
      [5, 'duplicate'],
      [6, 'invalid'],
    ]);
    expect(skipped[0].reason).toMatch(/^Line 2: the chosen and the rejected answer are the same/);
    expect(skipped[1].reason).toMatch(/^Line 3: the chosen answer \('chosen'\) is empty/);
    expect(skipped[2].reason).toMatch(/^Line 4: the row has no 'rejected' \(the rejected answer\)/);
    expect(skipped[4].reason).toMatch(
      /^Line 6: the chosen answer \('chosen'\) has no message with "role": "assistant"/,
    );
  });

  it('a file without a column the pairs need is refused, naming it and the columns it has', () => {
    const dataset = jsonl([{ prompt: 'a', chosen: 'b', worse: 'c' }]);
    expect(() => renderPairs(dataset, PAIRS, plainFormat())).toThrow(
      "The rejected is read from the column 'rejected', but the file has: prompt, chosen, worse.",
    );
  });

  it('a prompt that fills the max length leaves the pair out, saying so', () => {
    const long = { prompt: 'Tom went to the park and played. '.repeat(20), chosen: 'Yes.', rejected: 'No.' };
    const set = buildPairTrainingSet(jsonl([rows[0], long]), PAIRS, plainTokenizer, {
      format: plainFormat(),
      maxLength: 32,
      valSplit: 0,
      batchSize: 1,
      seed: 1,
    });
    expect(set.train).toHaveLength(1);
    expect(set.skipped.at(-1)!.reason).toBe(
      'Line 2: the prompt fills the max length (32 tokens), so the chosen answer has no token left. ' +
        'Raise the max length or shorten the prompt.',
    );
  });

  it('DPO and ORPO refuse data that is not pairs; SFT takes either', () => {
    const single = { kind: 'template', promptTemplate: '{q}', completionTemplate: '{a}' } as const;
    expect(() => checkObjectiveFits('dpo', single)).toThrow(DatasetError);
    expect(() => checkObjectiveFits('orpo', single)).toThrow(/ORPO learns from pairs of answers/);
    expect(() => checkObjectiveFits('sft', PAIRS)).not.toThrow();
    expect(() => checkObjectiveFits('dpo', PAIRS)).not.toThrow();
  });
});

describe('preference figures', () => {
  beforeAll(async () => {
    await switchBackend('wasm');
  });

  it("the base model's figures are the PyTorch reference's log-probabilities of the same pairs", async () => {
    const { model } = own(loadFixture('stories260K'));
    const ref = reference<{ reference_logps: { chosen: number[]; rejected: number[] } }>(
      'stories260K',
      'objective-dpo.json',
    );
    const asExample = (prompt: number[], answer: number[]) => ({
      ids: [...prompt, ...answer],
      completionMask: [...prompt.map(() => 0), ...answer.map(() => 1)],
      truncated: false,
    });
    const pairs: EncodedPair[] = referencePairs().map((p, id) => ({
      id,
      chosen: asExample(p.prompt, p.chosen),
      rejected: asExample(p.prompt, p.rejected),
    }));
    const { chosen, rejected } = ref.reference_logps;
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const score = await pairsScore(model, pairs, 0, { batchSize: 2 });
    expect(score.chosen).toBeCloseTo(mean(chosen), 4);
    expect(score.rejected).toBeCloseTo(mean(rejected), 4);
    expect(score.margin).toBeCloseTo(mean(chosen) - mean(rejected), 4);
    expect(score.accuracy).toBe(chosen.filter((c, i) => c > rejected[i]).length / chosen.length);
  });

  it('a DPO run on happy-endings.csv raises the held-out share of chosen answers preferred, leaving no tensor', async () => {
    const { model, args } = own(loadFixture('stories260K'));
    const set = buildPairTrainingSet(read('happy-endings.csv'), PAIRS, plainTokenizer, {
      format: plainFormat(),
      maxLength: 64,
      valSplit: 0.25,
      batchSize: 4,
      seed: 11,
    });
    const settings = {
      rank: 8,
      alpha: 16,
      dropout: 0,
      targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'],
      learningRate: 5e-3,
      epochs: 3,
      batchSize: 4,
      gradAccum: 1,
      warmupSteps: 0,
      seed: 11,
      objective: 'dpo' as const,
    };
    const { trainer, adapter } = setUpTrainer({ model, args, name: 'stories260K' }, set.data, settings);
    own.adapter(model, adapter);
    own.add(trainer);
    const before = tf.memory().numTensors;
    await runTraining(trainer);
    const pad = plainTokenizer.eosTokenId!;
    const figures = await evaluatePreferences(model, set.validation, pad, adapter);
    expect(figures.pairs).toBe(5);
    expect(figures.tuned!.accuracy).toBeGreaterThan(figures.base.accuracy);
    expect(figures.tuned!.accuracy).toBe(1);
    expect(figures.tuned!.margin).toBeGreaterThan(figures.base.margin + 1);
    expect(adapter.enabled).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
  });
});
