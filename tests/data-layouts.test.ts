/**
 * The common layouts, one fixture each: detected and named as the format's own definition says (Alpaca's
 * instruction/input/output/system, ShareGPT's conversations of from/value, OpenAI's messages with weight,
 * TRL's prompt/completion as text and as message lists), rendered as the chat template (or the plain
 * format) writes them, and overridable — with a message saying what a file lacks for a layout it does not
 * fit. Also: the page's worker offers the layouts a file fits, and the CLI's --layout.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DatasetError,
  chatTemplateFormat,
  describeLayout,
  detectLayout,
  detectNamedLayout,
  layoutMapping,
  parseDataset,
  plainFormat,
  renderDataset,
  type Dataset,
} from '../src/data';
import { promptStyleFor, chatPrompt } from '../src/data/chat-prompt';
import { DatasetSession } from '../src/worker/dataset-session';
import { dataFile, loadTokenizer } from './fixtures/data/shared';
import { runCli } from './helpers/cli';
import { modelDir } from './helpers/paths';

const read = (name: string): Dataset => parseDataset(fs.readFileSync(dataFile(name), 'utf8'), name);
const chatTokenizer = loadTokenizer('stories260K-chat');
const chat = chatTemplateFormat(chatTokenizer);
const render = (messages: { role: string; content: string }[], generationPrompt: boolean) =>
  chatTokenizer.applyChatTemplate(messages, { addGenerationPrompt: generationPrompt });

describe('each layout is detected and named', () => {
  const cases: [string, string, string][] = [
    ['alpaca-system.jsonl', 'alpaca', 'Alpaca instructions, 6 rows'],
    ['sharegpt.jsonl', 'sharegpt', 'ShareGPT conversations, 4 rows'],
    ['openai-chat.jsonl', 'openai-chat', 'OpenAI chat messages, 5 rows'],
    ['trl-prompt-completion.jsonl', 'prompt-completion', 'prompt/completion pairs, 4 rows'],
    ['trl-conversational.jsonl', 'conversational', 'conversational prompt/completion, 4 rows'],
    ['best-friends.csv', 'question-answer', 'question/answer pairs, 36 rows'],
  ];
  for (const [file, name, sentence] of cases) {
    it(`${file}: ${name}`, () => {
      const dataset = read(file);
      const detected = detectNamedLayout(dataset)!;
      expect(detected.name).toBe(name);
      expect(describeLayout(detected.name, dataset.rows.length)).toBe(sentence);
      expect(detectLayout(dataset.columns, dataset.rows)).toEqual(detected.mapping);
    });
  }
  it('a text column alone (or beside file) is documents; beside other columns, the completion of no prompt', () => {
    for (const columns of [['text'], ['file', 'Text']])
      expect(detectNamedLayout({ columns })).toEqual({
        name: 'text',
        mapping: { kind: 'text', column: columns.at(-1), overlap: 32 },
      });
    expect(detectNamedLayout({ columns: ['text', 'source'] })).toEqual({
      name: 'text',
      mapping: { kind: 'template', promptTemplate: '', completionTemplate: '{text}' },
    });
  });
});

describe('each layout is rendered as its definition says', () => {
  it('Alpaca: the system text is a system message through a chat template, a line before the prompt without', () => {
    const dataset = read('alpaca-system.jsonl');
    const mapping = detectLayout(dataset.columns, dataset.rows)!;
    const system = 'You are a friendly guide at a small zoo. Answer in one sentence.';
    const [first] = renderDataset(dataset, mapping, chat).examples;
    expect(first.prompt).toBe(
      render(
        [
          { role: 'system', content: system },
          { role: 'user', content: 'Name the animal.\nIt has a long neck and eats leaves from tall trees.' },
        ],
        true,
      ),
    );
    expect(first.completion).toBe('That is a giraffe.' + chat.chat!.endOfTurn);
    const plain = renderDataset(dataset, mapping, plainFormat()).examples;
    expect(plain[0].prompt).toBe(
      `${system}\nName the animal.\nIt has a long neck and eats leaves from tall trees.\n`,
    );
    // A row without input: the instruction alone after the system line.
    expect(plain[2].prompt).toBe(`${system}\nTell a visitor when the zoo opens.\n`);
    // The chat starts with the system text every row shares, so a typed message reads as in training.
    for (const format of [chat, plainFormat()]) {
      const style = promptStyleFor(mapping, format.chat !== null, dataset.rows);
      expect(style.system).toBe(system);
      const example = renderDataset(dataset, mapping, format).examples[0];
      const message = 'Name the animal.\nIt has a long neck and eats leaves from tall trees.';
      expect(chatPrompt([{ role: 'user', content: message }], style, format)).toBe(example.prompt);
    }
  });

  it('ShareGPT: from/value read as role/content (human → user, gpt → assistant), the file unchanged', () => {
    const text = fs.readFileSync(dataFile('sharegpt.jsonl'), 'utf8');
    const dataset = parseDataset(text, 'sharegpt.jsonl');
    expect(dataset.rows[1].conversations).toEqual([
      { role: 'system', content: "You are Captain Reed, a ship's cook." },
      { role: 'user', content: 'Can I help in the kitchen?' },
      { role: 'assistant', content: 'Yes, peel these potatoes.' },
    ]);
    const example = renderDataset(dataset, detectLayout(dataset.columns)!, chat).examples[1];
    expect(example.segments.map((s) => s.text).join('')).toBe(
      render(dataset.rows[1].conversations as never, false),
    );
    expect(fs.readFileSync(dataFile('sharegpt.jsonl'), 'utf8')).toBe(text);
  });

  it('OpenAI chat: weights are read; a weight other than 0 or 1 is refused with the line', () => {
    const dataset = read('openai-chat.jsonl');
    expect(dataset.rows[1].messages).toContainEqual({
      role: 'assistant',
      content: 'Sure, I think you can probably take it home for a while.',
      weight: 0,
    });
    const bad =
      '{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "weight": 0.5}]}';
    expect(() => parseDataset(`${bad}\n`, 'bad.jsonl')).toThrow(
      'Line 1: message 2 in "messages" has "weight": 0.5; a weight is 0 (do not train this turn) or 1 (train it).',
    );
  });

  it("TRL prompt/completion: the texts as they are, joined by the plain format's newline", () => {
    const dataset = read('trl-prompt-completion.jsonl');
    const [first] = renderDataset(
      dataset,
      detectLayout(dataset.columns, dataset.rows)!,
      plainFormat(),
    ).examples;
    expect(first).toMatchObject({ prompt: 'The capital of France is\n', completion: ' Paris.' });
  });

  it("TRL conversational: the prompt's messages are context, the completion's assistant turns are trained", () => {
    const dataset = read('trl-conversational.jsonl');
    const mapping = detectLayout(dataset.columns, dataset.rows)!;
    expect(mapping).toEqual({ kind: 'chat', messages: 'prompt', completion: 'completion' });
    const example = renderDataset(dataset, mapping, chat).examples[2];
    // The prompt's own assistant turn ("An apple.") is context: TRL trains on the completion only.
    expect(example.segments).toEqual([
      {
        text: render(
          [
            { role: 'user', content: 'Name a fruit.' },
            { role: 'assistant', content: 'An apple.' },
            { role: 'user', content: 'Another one?' },
          ],
          true,
        ),
        trained: false,
      },
      { text: 'A pear.' + chat.chat!.endOfTurn, trained: true },
    ]);
  });
});

describe('choosing another layout', () => {
  it('refuses a ShareGPT turn from a speaker it does not know, naming the line, the turn and the speaker', () => {
    const text =
      '{"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]}\n' +
      '{"conversations": [{"from": "human", "value": "hi"}, {"from": "robot", "value": "beep"}]}\n';
    expect(() => parseDataset(text, 'chats.jsonl')).toThrow(
      /^Line 2: message 2 in "conversations" has "from": "robot", which is none of human, gpt or system\./,
    );
  });

  it('gives the mapping of the layout named, or says what the file lacks for it', () => {
    const dataset = read('alpaca-system.jsonl');
    // Alpaca's input/output columns also make an input/output file.
    expect(layoutMapping('input-output', dataset)).toEqual({
      kind: 'template',
      promptTemplate: '{input}',
      completionTemplate: '{output}',
    });
    expect(() => layoutMapping('sharegpt', dataset)).toThrow(DatasetError);
    expect(() => layoutMapping('sharegpt', dataset)).toThrow(
      `The ShareGPT conversations layout needs a 'conversations' list of {"from": human, gpt or system, "value": …}, but the file has: system, instruction, input, output. Choose another layout, or choose the columns yourself.`,
    );
    expect(() => layoutMapping('conversational', read('trl-prompt-completion.jsonl'))).toThrow(
      "this file's 'prompt' and 'completion' hold text. Choose the prompt/completion pairs layout (prompt-completion).",
    );
  });

  it("the page's worker lists the layouts a file fits, names the one in use, and takes another", async () => {
    const session = new DatasetSession();
    const bytes = new Uint8Array(fs.readFileSync(dataFile('alpaca-system.jsonl')));
    const settings = { mapping: null, useChatTemplate: false, maxLength: 128, valSplit: 0, seed: 1 };
    const detected = session.open({ bytes, fileName: 'alpaca-system.jsonl', settings });
    expect(detected.layout).toEqual({ name: 'alpaca', description: 'Alpaca instructions, 6 rows' });
    expect(detected.detected).toBe(true);
    expect(detected.layouts?.map((l) => l.name)).toEqual(['alpaca', 'input-output']);
    const other = detected.layouts!.find((l) => l.name === 'input-output')!;
    const chosen = session.configure({ ...settings, mapping: other.mapping });
    expect(chosen.layout).toEqual({ name: 'input-output', description: 'input/output pairs, 6 rows' });
    expect(chosen.detected).toBe(false);
    expect(chosen.preview[0]).toMatchObject({
      prompt: 'It has a long neck and eats leaves from tall trees.\n',
      completion: 'That is a giraffe.',
    });
  });
});

describe('webtune train --layout', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-layout-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const base = ['train', '--model', modelDir('stories260K'), '--epochs', '1', '--backend', 'cpu'];

  it('names the layout it detected, and trains every layout fixture to the end', async () => {
    const fixtures: [string, string][] = [
      ['sharegpt.jsonl', 'ShareGPT conversations, 4 rows (sharegpt, detected;'],
      ['alpaca-system.jsonl', 'Alpaca instructions, 6 rows (alpaca, detected;'],
      ['openai-chat.jsonl', 'OpenAI chat messages, 5 rows (openai-chat, detected;'],
      ['trl-prompt-completion.jsonl', 'prompt/completion pairs, 4 rows (prompt-completion, detected;'],
      ['trl-conversational.jsonl', 'conversational prompt/completion, 4 rows (conversational, detected;'],
    ];
    for (const [file, line] of fixtures) {
      const out = path.join(dir, `${file}.zip`);
      const run = await runCli([...base, '--data', dataFile(file), '--out', out, '--max-length', '64']);
      expect(run.stderr, file).toContain(`layout: ${line}`);
      expect(run.status, run.stderr).toBe(0);
      expect(run.stderr, file).toMatch(/^wrote .*\.zip$/m);
    }
  });

  it('reads the file as the layout given, and refuses one the file does not fit, saying why', async () => {
    const ok = await runCli([
      ...base,
      '--data',
      dataFile('alpaca-system.jsonl'),
      '--out',
      `${dir}/b.zip`,
      '--layout',
      'input-output',
      '--max-length',
      '64',
    ]);
    expect(ok.stderr).toContain('layout: input/output pairs, 6 rows (input-output)');
    expect(ok.status).toBe(0);
    const wrong = await runCli([
      ...base,
      '--data',
      dataFile('alpaca-system.jsonl'),
      '--out',
      `${dir}/c.zip`,
      '--layout',
      'sharegpt',
    ]);
    expect(wrong.status).toBe(1);
    expect(wrong.stderr).toBe(
      "webtune train: --layout sharegpt: The ShareGPT conversations layout needs a 'conversations' list of " +
        '{"from": human, gpt or system, "value": …}, but the file has: system, instruction, input, output. ' +
        'Choose another layout, or choose the columns yourself.\n',
    );
    const unknown = await runCli([
      ...base,
      '--data',
      dataFile('alpaca-system.jsonl'),
      '--out',
      `${dir}/d.zip`,
      '--layout',
      'dolly',
    ]);
    expect(unknown.stderr).toBe(
      'webtune train: --layout dolly: There is no layout "dolly". Layouts: alpaca, sharegpt, openai-chat, ' +
        'prompt-completion, conversational, question-answer, input-output, text, preference, openai-preference.\n',
    );
    const both = await runCli([
      ...base,
      '--data',
      dataFile('alpaca-system.jsonl'),
      '--out',
      `${dir}/e.zip`,
      '--layout',
      'alpaca',
      '--completion-column',
      'output',
    ]);
    expect(both.stderr).toBe(
      'webtune train: Give either --layout or --completion-column, not both: a layout names its columns.\n',
    );
  });
});
