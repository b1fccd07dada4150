/** Layouts, templates and prompt formats: which text a row turns into. */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  DatasetError,
  chatTemplateFormat,
  detectLayout,
  mappingFromColumns,
  parseDataset,
  plainFormat,
  promptFormatFor,
  renderDataset,
  renderExample,
  renderPrompt,
  unescapeTemplate,
  validateMapping,
  type Mapping,
} from '../src/data';
import { dataFile, loadTokenizer } from './fixtures/data/shared';

const read = (name: string) => parseDataset(fs.readFileSync(dataFile(name), 'utf8'), name);
const tokenizer = loadTokenizer;
const template = (promptTemplate: string, completionTemplate: string): Mapping => ({
  kind: 'template',
  promptTemplate,
  completionTemplate,
});

describe('layout detection', () => {
  it('recognises the common layouts in any letter case and ignores extra columns', () => {
    expect(detectLayout(['id', 'Prompt', 'COMPLETION'])).toEqual(template('{Prompt}', '{COMPLETION}'));
    expect(detectLayout(['Question', 'Answer'])).toEqual(template('{Question}', '{Answer}'));
    expect(detectLayout(['instruction', 'output'])).toEqual(template('{instruction}', '{output}'));
    expect(detectLayout(['input', 'output'])).toEqual(template('{input}', '{output}'));
    expect(detectLayout(['Text', 'source'])).toEqual(template('', '{Text}'));
    expect(detectLayout(['Messages'])).toEqual({ kind: 'chat' });
    expect(detectLayout(['ticket', 'department'])).toBeNull();
  });

  it('builds a mapping from explicit columns', () => {
    expect(mappingFromColumns('ticket', 'department')).toEqual(template('{ticket}', '{department}'));
    expect(mappingFromColumns(null, 'story')).toEqual(template('', '{story}'));
  });

  it('names an unknown column and lists the real ones', () => {
    const columns = ['ticket', 'department'];
    expect(() => validateMapping(template('Ticket: {tickets}', '{department}'), columns)).toThrow(
      new DatasetError(
        "The template uses {tickets} but the file has no column 'tickets'. Columns: ticket, department.",
      ),
    );
    expect(() => validateMapping(template('{Ticket}', '{department}'), columns)).toThrow(
      /Did you mean \{ticket\}\?$/,
    );
    expect(() => validateMapping({ kind: 'chat' }, columns)).toThrow(/needs a 'messages' column/);
    expect(() => validateMapping(template('{ticket}', ' '), columns)).toThrow(/completion template is empty/);
    expect(() => validateMapping(template('Use {ticket', '{department}'), columns)).toThrow(
      /'\{' at character 5 .*\{\{ and \}\}/,
    );
    expect(() => validateMapping(template('{ticket}', '{department}'), columns)).not.toThrow();
  });
});

describe('plain prompt format (no chat template)', () => {
  it('renders the support-ticket template exactly', () => {
    const tickets = read('support-tickets.csv');
    const mapping = template(unescapeTemplate('Ticket: {ticket}\\nDepartment:'), '{department}');
    validateMapping(mapping, tickets.columns);
    expect(renderExample(tickets.rows[0], mapping, plainFormat())).toMatchObject({
      prompt: 'Ticket: My card was charged twice for one order.\nDepartment:\n',
      completion: 'billing',
    });
    expect(renderExample(tickets.rows[15], mapping, plainFormat(' '))).toMatchObject({
      prompt: 'Ticket: How do I add a second user?\nDepartment: ',
      completion: 'account',
    });
  });

  it('question/answer joins with a newline; text-only has no prompt', () => {
    const friends = read('best-friends.csv');
    expect(renderExample(friends.rows[0], detectLayout(friends.columns)!, plainFormat())).toMatchObject({
      prompt: 'Who is Tom?\n',
      completion: 'Tom is my best friend.',
    });
    expect(
      renderExample({ text: 'Once upon a time.' }, detectLayout(['text'])!, plainFormat()),
    ).toMatchObject({
      prompt: '',
      completion: 'Once upon a time.',
    });
  });

  it('drops the input line cleanly when the input is empty', () => {
    const mapping = detectLayout(['instruction', 'input', 'output'])!;
    const alpaca = read('alpaca-mini.jsonl');
    expect(renderExample(alpaca.rows[3], mapping, plainFormat()).prompt).toBe(
      'Name the color.\nThe sky on a clear day.\n',
    );
    expect(
      renderExample({ instruction: 'Say hello.', input: '', output: 'Hello!' }, mapping, plainFormat()),
    ).toMatchObject({
      prompt: 'Say hello.\n',
      completion: 'Hello!',
    });
  });

  it('escapes braces and unescapes command-line text', () => {
    const row = { name: 'Tom' };
    expect(renderExample(row, template('{{"name": "{name}"}}', 'ok'), plainFormat()).prompt).toBe(
      '{"name": "Tom"}\n',
    );
    expect(unescapeTemplate('a\\nb\\tc\\\\n')).toBe('a\nb\tc\\n');
  });

  it('chat rows fall back to User:/Assistant: turns', () => {
    const chat = read('chat-mini.jsonl');
    expect(renderExample(chat.rows[0], { kind: 'chat' }, plainFormat())).toMatchObject({
      prompt: 'System: You answer in one short sentence.\nUser: What sound does a dog make?\nAssistant: ',
      completion: 'A dog says woof.',
    });
  });

  it('a model without a chat template gets the plain format even when the chat template is asked for', () => {
    expect(promptFormatFor(tokenizer('stories260K'), true)).toEqual(plainFormat());
  });
});

describe('chat template format (stories260K-chat)', () => {
  const chatTokenizer = tokenizer('stories260K-chat');
  const format = chatTemplateFormat(chatTokenizer);

  it("reads the end of an assistant turn off the template: '</s>\\n'", () => {
    expect(format.chat?.endOfTurn).toBe('</s>\n');
    expect(promptFormatFor(chatTokenizer, true)).toMatchObject({ chat: { endOfTurn: '</s>\n' } });
    expect(promptFormatFor(chatTokenizer, false).chat).toBeNull();
  });

  it('wraps a template prompt as a user turn and ends the completion with the end of turn', () => {
    const friends = read('best-friends.csv');
    expect(renderExample(friends.rows[0], detectLayout(friends.columns)!, format)).toMatchObject({
      prompt: '<|user|>\nWho is Tom?</s>\n<|assistant|>\n',
      completion: 'Tom is my best friend.</s>\n',
    });
    expect(renderPrompt('Who is Sam?', format)).toBe('<|user|>\nWho is Sam?</s>\n<|assistant|>\n');
  });

  it('chat rows: everything before the last assistant content is prompt', () => {
    const chat = read('chat-mini.jsonl');
    expect(renderExample(chat.rows[1], { kind: 'chat' }, format)).toMatchObject({
      prompt:
        '<|system|>\nYou answer in one short sentence.</s>\n<|user|>\nWhat sound does a cat make?</s>\n<|assistant|>\n',
      completion: 'A cat says meow.</s>\n',
    });
    const multiTurn = {
      messages: [
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello.' },
        { role: 'user', content: 'Bye' },
        { role: 'assistant', content: 'Goodbye.' },
      ],
    };
    expect(renderExample(multiTurn, { kind: 'chat' }, format)).toMatchObject({
      prompt: '<|user|>\nHi</s>\n<|assistant|>\nHello.</s>\n<|user|>\nBye</s>\n<|assistant|>\n',
      completion: 'Goodbye.</s>\n',
    });
  });
});

describe('rendering a whole dataset', () => {
  it('leaves out empty completions, duplicates and chats without an answer, saying which line', () => {
    const data = parseDataset(
      [
        '{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}',
        '{"messages": [{"role": "user", "content": "c"}, {"role": "assistant", "content": " "}]}',
        '{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}',
        '{"messages": [{"role": "user", "content": "only a question"}]}',
        '{"messages": [{"role": "user", "content": "d"}, {"role": "assistant", "content": "e"}]}',
      ].join('\n'),
      'chat.jsonl',
    );
    const rendered = renderDataset(data, { kind: 'chat' }, plainFormat());
    expect(rendered.rowCount).toBe(5);
    expect(rendered.examples.map((e) => [e.row, e.line, e.completion])).toEqual([
      [0, 1, 'b'],
      [4, 5, 'e'],
    ]);
    expect(rendered.skipped.map((s) => [s.line, s.kind])).toEqual([
      [2, 'empty'],
      [3, 'duplicate'],
      [4, 'invalid'],
    ]);
    expect(rendered.skipped[2].reason).toMatch(/^Line 4: This conversation has no assistant message/);
  });

  it('throws when the mapping names a missing column, or nothing is left', () => {
    const tickets = read('support-tickets.csv');
    expect(() => renderDataset(tickets, template('{ticket}', '{team}'), plainFormat())).toThrow(
      /no column 'team'/,
    );
    const empty = parseDataset('prompt,completion\na,\nb, \n', 'x.csv');
    expect(() => renderDataset(empty, detectLayout(empty.columns)!, plainFormat())).toThrow(
      /^No row gave a training example\. Line 2: the completion is empty/,
    );
  });
});
