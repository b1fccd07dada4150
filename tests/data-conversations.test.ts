/**
 * Whole conversations: every assistant turn of a chat row is trained, each exactly as the chat template
 * renders the conversation up to it. The reference is the template itself, rendered turn by turn through the
 * tokenizer's own applyChatTemplate and encoded by the tokenizer: for turn k, the tokens of the messages
 * before it with the generation prompt are context and the tokens the messages through it add are trained.
 * Templates: stories260K-chat's own, the ones Qwen2.5 and Qwen3 publish (tests/fixtures/data/*.jinja)
 * on the tiny Qwen models' tokenizers, and Gemma 3's on tiny-random-gemma3's. Qwen3's does not render
 * prefixes (an earlier turn loses its empty thinking block once the conversation goes on), so there only
 * the last turn is trained, and the summary says so.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  chatTemplateFormat,
  detectLayout,
  encodeExample,
  parseDataset,
  plainFormat,
  renderDataset,
  type ChatMessage,
  type Dataset,
  type Mapping,
} from '../src/data';
import { buildEvalItems } from '../src/data/eval-items';
import { buildTrainingSet } from '../src/data/training-set';
import { createTokenizer, type Tokenizer } from '../src/engine/tokenizer';
import { disposeModel } from '../src/engine/model';
import { batchLossSum } from '../src/engine/train';
import { scoreTokens } from '../src/engine/score';
import { tf } from '../src/engine/tf';
import { dataFile, modelDir } from './helpers/paths';
import { loadFixture } from './helpers/shared';

const read = (name: string): Dataset => parseDataset(fs.readFileSync(dataFile(name), 'utf8'), name);

/** A fixture model's tokenizer, with a published chat template put in its tokenizer_config.json. */
function tokenizerWith(model: string, templateFile?: string): Tokenizer {
  const json = (file: string) => JSON.parse(fs.readFileSync(path.join(modelDir(model), file), 'utf8'));
  const config = json('tokenizer_config.json');
  if (templateFile)
    config.chat_template = fs.readFileSync(path.join(__dirname, 'fixtures', 'data', templateFile), 'utf8');
  return createTokenizer({ tokenizerJson: json('tokenizer.json'), tokenizerConfig: config });
}

const TEMPLATES = [
  { label: 'stories260K-chat', tokenizer: tokenizerWith('stories260K-chat') },
  {
    label: 'Qwen2.5 on tiny-random-qwen2',
    tokenizer: tokenizerWith('tiny-random-qwen2', 'qwen2.5-chat-template.jinja'),
  },
  // Gemma 3's template (the fixture's own): the system text opens the first user turn.
  { label: 'Gemma 3 on tiny-random-gemma3', tokenizer: tokenizerWith('tiny-random-gemma3') },
];
const qwen3 = tokenizerWith('tiny-random-qwen3', 'qwen3-chat-template.jinja');

const MAX_LENGTH = 1024;

/** The conversation's messages as the file gives them, with which assistant turns have weight 0. */
function messagesOf(dataset: Dataset, row: number): { messages: ChatMessage[]; untrained: Set<number> } {
  const mapping = detectLayout(dataset.columns, dataset.rows) as Extract<Mapping, { kind: 'chat' }>;
  const source = dataset.rows[row];
  const list = [
    ...(source[mapping.messages ?? 'messages'] as ChatMessage[]),
    ...((mapping.completion ? source[mapping.completion] : []) as ChatMessage[]),
  ];
  const untrained = new Set(list.flatMap((m, i) => ((m as { weight?: number }).weight === 0 ? [i] : [])));
  return { messages: list.map(({ role, content }) => ({ role, content })), untrained };
}

/**
 * The reference: the template rendered turn by turn. Every assistant turn k (weight not 0) is trained on the
 * tokens between the encoding of messages[0..k) with the generation prompt and that of messages[0..k].
 */
function referenceEncoding(tokenizer: Tokenizer, messages: ChatMessage[], trained: number[]) {
  const render = (end: number, generationPrompt: boolean) =>
    tokenizer.applyChatTemplate(messages.slice(0, end), { addGenerationPrompt: generationPrompt });
  const last = trained[trained.length - 1];
  const ids = tokenizer.encode(render(last + 1, false));
  const mask = ids.map(() => 0);
  for (const k of trained) {
    const before = tokenizer.encode(render(k, true));
    const through = tokenizer.encode(render(k + 1, false));
    // Each rendering is a prefix of the whole, in text and in tokens.
    expect(ids.slice(0, before.length)).toEqual(before);
    expect(ids.slice(0, through.length)).toEqual(through);
    mask.fill(1, before.length, through.length);
  }
  // webtune ends a sequence with EOS when the last turn's tokens hold none (encode.ts), as TRL does for text.
  const lastTurn = ids.slice(tokenizer.encode(render(last, true)).length);
  if (!lastTurn.includes(tokenizer.eosTokenId!)) {
    ids.push(tokenizer.eosTokenId!);
    mask.push(1);
  }
  return { ids, mask };
}

describe('every assistant turn is trained, as the chat template renders it turn by turn', () => {
  for (const { label, tokenizer } of TEMPLATES) {
    const format = chatTemplateFormat(tokenizer);
    for (const file of ['sharegpt.jsonl', 'openai-chat.jsonl', 'trl-conversational.jsonl']) {
      it(`${file} through ${label}`, () => {
        const dataset = read(file);
        const mapping = detectLayout(dataset.columns, dataset.rows)!;
        const { examples } = renderDataset(dataset, mapping, format);
        for (const example of examples) {
          const { messages, untrained } = messagesOf(dataset, example.row);
          // Trained turns: assistant messages not of weight 0 (in TRL's layout, only the completion's).
          const firstTarget =
            mapping.kind === 'chat' && mapping.completion
              ? (dataset.rows[example.row][mapping.messages!] as ChatMessage[]).length
              : 0;
          const trained = messages.flatMap((m, i) =>
            m.role === 'assistant' && i >= firstTarget && !untrained.has(i) ? [i] : [],
          );
          const reference = referenceEncoding(tokenizer, messages, trained);
          const encoded = encodeExample(example, tokenizer, { maxLength: MAX_LENGTH, addEos: true });
          expect(encoded.ids, `line ${example.line}`).toEqual(reference.ids);
          expect(encoded.completionMask, `line ${example.line}`).toEqual(reference.mask);
          expect(example.trainedTurns).toEqual(trained);
          expect(example.lastTurnOnly).toBeUndefined();
        }
      });
    }
  }

  it('the trained turns of a three-turn ShareGPT row are its three answers, each with its end of turn', () => {
    const { tokenizer } = TEMPLATES[0];
    const dataset = read('sharegpt.jsonl');
    const { examples } = renderDataset(
      dataset,
      detectLayout(dataset.columns)!,
      chatTemplateFormat(tokenizer),
    );
    const example = examples.find((e) => e.row === 2)!;
    expect(example.segments.filter((s) => s.trained).map((s) => s.text)).toEqual([
      'Only hard biscuits.</s>\n',
      'Dip them in the stew first.</s>\n',
      'Eat well, sailor.</s>\n',
    ]);
    // The whole text is the template's rendering of the whole conversation.
    expect(example.segments.map((s) => s.text).join('')).toBe(
      tokenizer.applyChatTemplate(messagesOf(dataset, 2).messages, { addGenerationPrompt: false }),
    );
  });

  it('a turn of weight 0 stays context, and a conversation whose turns all have weight 0 is skipped', () => {
    const dataset = read('openai-chat.jsonl');
    const rendered = renderDataset(dataset, { kind: 'chat' }, plainFormat());
    const second = rendered.examples.find((e) => e.row === 1)!;
    expect(second.segments).toEqual([
      {
        text: 'System: You are a terse librarian.\nUser: Can I borrow this?\nAssistant: Sure, I think you can probably take it home for a while.\nUser: For how long?\nAssistant: ',
        trained: false,
      },
      { text: 'Three weeks.', trained: true },
    ]);
    expect(rendered.examples.map((e) => e.row)).not.toContain(3);
    expect(rendered.skipped).toEqual([
      {
        row: 3,
        line: 4,
        kind: 'empty',
        reason:
          'Line 4: every assistant turn has "weight": 0, so there is nothing to learn from this conversation.',
      },
    ]);
  });
});

describe('without a chat template: "User: …\\nAssistant: …" turns, every answer trained', () => {
  it('renders ShareGPT turns as plain lines; earlier answers end with their newline, the last with EOS', () => {
    const tokenizer = TEMPLATES[0].tokenizer;
    const dataset = read('sharegpt.jsonl');
    const example = renderDataset(dataset, detectLayout(dataset.columns)!, plainFormat()).examples[0];
    const text =
      "System: You are Captain Reed, a ship's cook.\nUser: What is for dinner?\nAssistant: Fish stew, as always.\n" +
      'User: Again?\nAssistant: The sea gives us fish, so we eat fish.';
    expect(example.segments.map((s) => s.text).join('')).toBe(text);
    const encoded = encodeExample(example, tokenizer, { maxLength: MAX_LENGTH, addEos: true });
    // The reference: the tokenizer's encoding of the text. A piece starts at the first token where the
    // encoding of the text before it stops agreeing with the whole's (SentencePiece writes a space or newline
    // at the end of a text differently from one inside it, so the shorter encoding is not always a prefix).
    const ids = [...tokenizer.encode(text), tokenizer.eosTokenId!];
    expect(encoded.ids).toEqual(ids);
    const startAfter = (end: string) => {
      const before = tokenizer.encode(text.slice(0, text.indexOf(end) + end.length));
      let n = 0;
      while (n < before.length && before[n] === ids[n]) n++;
      return n;
    };
    const firstStart = startAfter('User: What is for dinner?\nAssistant: ');
    const firstEnd = startAfter('Fish stew, as always.\n');
    const secondStart = startAfter('User: Again?\nAssistant: ');
    const expected = ids.map((_, i) => ((i >= firstStart && i < firstEnd) || i >= secondStart ? 1 : 0));
    // The trained tokens spell the answers.
    const spelled = (from: number, to: number) => tokenizer.decode(ids.slice(from, to)).trim();
    expect(spelled(firstStart, firstEnd)).toBe('Fish stew, as always.');
    expect(spelled(secondStart, ids.length)).toBe('The sea gives us fish, so we eat fish.');
    expect(encoded.completionMask).toEqual(expected);
  });
});

describe("a template that does not render prefixes (Qwen3's)", () => {
  const format = chatTemplateFormat(qwen3);

  it('rewrites an earlier turn once the conversation goes on, so only the last turn is trained', () => {
    const dataset = read('sharegpt.jsonl');
    const { messages } = messagesOf(dataset, 0);
    const through = qwen3.applyChatTemplate(messages.slice(0, 3), { addGenerationPrompt: false });
    const whole = qwen3.applyChatTemplate(messages, { addGenerationPrompt: false });
    expect(through).toContain('<think>\n\n</think>\n\nFish stew');
    expect(whole.startsWith(through)).toBe(false);

    const rendered = renderDataset(dataset, detectLayout(dataset.columns)!, format);
    const first = rendered.examples[0];
    expect(first.lastTurnOnly).toBe(true);
    // As a single-turn row: the conversation before the last answer with the generation prompt, then it.
    const prompt = qwen3.applyChatTemplate(messages.slice(0, 4), { addGenerationPrompt: true });
    expect(first.segments).toEqual([
      { text: prompt, trained: false },
      { text: 'The sea gives us fish, so we eat fish.<|im_end|>\n', trained: true },
    ]);
    // Rows of one answer lose nothing; the two conversations of several turns are counted.
    expect(rendered.lastTurnOnly).toBe(2);
    expect(rendered.examples.filter((e) => e.lastTurnOnly).map((e) => e.row)).toEqual([0, 2]);
  });

  it('the summary says how many conversations train their last turn only', () => {
    const dataset = read('sharegpt.jsonl');
    const set = buildTrainingSet(dataset, qwen3, {
      mapping: detectLayout(dataset.columns)!,
      format,
      maxLength: MAX_LENGTH,
      valSplit: 0,
      batchSize: 2,
      seed: 1,
    });
    expect(set.stats.lastTurnOnlyRows).toBe(2);
    expect(set.stats.trainedTurns).toBe(4);
  });
});

describe('evaluating a conversation', () => {
  it('answers its last turn after the conversation before it, and scores every trained turn', () => {
    const { tokenizer } = TEMPLATES[0];
    const dataset = read('sharegpt.jsonl');
    const { items } = buildEvalItems(dataset, detectLayout(dataset.columns)!, chatTemplateFormat(tokenizer), {
      split: 'all',
      valSplit: 0,
      seed: 1,
      fewShot: 0,
    });
    const { messages } = messagesOf(dataset, 2);
    const item = items[2];
    expect(item.prompt).toBe(
      tokenizer.applyChatTemplate(messages.slice(0, 6), { addGenerationPrompt: true }),
    );
    expect(item.expected).toBe('Eat well, sailor.');
    const encoded = encodeExample(item, tokenizer, { maxLength: MAX_LENGTH, addEos: true });
    expect(encoded.completionMask).toEqual(referenceEncoding(tokenizer, messages, [2, 4, 6]).mask);
  });
});

describe('a training batch of a multi-turn row', () => {
  it("the engine's loss is the sum over every assistant turn's tokens, as scoring them by hand gives", async () => {
    const { model, tokenizer } = loadFixture('stories260K-chat');
    try {
      const dataset = read('sharegpt.jsonl');
      const set = buildTrainingSet(dataset, tokenizer, {
        mapping: detectLayout(dataset.columns)!,
        format: chatTemplateFormat(tokenizer),
        maxLength: MAX_LENGTH,
        valSplit: 0,
        batchSize: 1,
        seed: 1,
        groupByLength: false,
      });
      // The reference encoding of the three-turn row, turn by turn.
      const reference = referenceEncoding(tokenizer, messagesOf(dataset, 2).messages, [2, 4, 6]);
      const batch = set.data
        .epochBatches(0)
        .find(
          (b) => b.ids.length === reference.ids.length && b.ids.every((id, i) => id === reference.ids[i]),
        )!;
      // The mask the batch carries covers the three answers.
      expect([...batch.targetMask]).toEqual(reference.mask);
      expect(reference.mask.filter((m) => m).length).toBeGreaterThan(
        tokenizer.encode('Eat well, sailor.</s>\n', { addSpecialTokens: false }).length,
      );

      const loss = batchLossSum(model, batch);
      const engine = (await loss.data())[0];
      loss.dispose();
      // What the first pass builds the model keeps (and disposes with it); later passes leave nothing.
      const tensors = tf.memory().numTensors;
      const scored = await scoreTokens(model, reference.ids);
      // logprobs[i - 1] is the log-probability of token i given the tokens before it.
      const byHand = -reference.mask.reduce(
        (sum, m, i) => (m && i > 0 ? sum + scored.logprobs[i - 1] : sum),
        0,
      );
      expect(engine).toBeCloseTo(byHand, 3);
      expect(tf.memory().numTensors).toBe(tensors);
    } finally {
      disposeModel(model);
    }
  });
});
