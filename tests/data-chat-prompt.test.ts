/**
 * The chat formats a typed message exactly as training formatted that row's prompt: for every example
 * dataset and both prompt formats, the chat prompt for a row's message equals the training prompt
 * renderDataset produced for it, and the answer it expects is the trained completion.
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  chatTemplateFormat,
  detectLayout,
  parseDataset,
  plainFormat,
  renderDataset,
  type Mapping,
} from '../src/data';
import {
  chatPrompt,
  defaultStopStrings,
  fewShotPrompt,
  messageText,
  promptStyleFor,
  rowAsShot,
  SHOT_SEPARATOR,
} from '../src/data/chat-prompt';
import { dataFile, loadTokenizer } from './fixtures/data/shared';

const read = (name: string) => parseDataset(fs.readFileSync(dataFile(name), 'utf8'), name);
const chatFormat = chatTemplateFormat(loadTokenizer('stories260K-chat'));
const user = (content: string) => ({ role: 'user' as const, content });

describe('a typed message is formatted as in training', () => {
  const datasets = [
    'animal-sounds.jsonl',
    'alpaca-mini.jsonl',
    'chat-mini.jsonl',
    'support-tickets.csv',
    'best-friends.csv',
  ];
  for (const name of datasets) {
    for (const [label, format] of [
      ['plain', plainFormat()],
      ['chat template', chatFormat],
    ] as const) {
      it(`${name}, ${label}: chat prompt + expected answer = the trained prompt + completion`, () => {
        const dataset = read(name);
        const mapping =
          detectLayout(dataset.columns) ??
          ({
            kind: 'template',
            promptTemplate: `{${dataset.columns[0]}}`,
            completionTemplate: `{${dataset.columns[1]}}`,
          } as Mapping);
        const { examples } = renderDataset(dataset, mapping, format);
        const style = promptStyleFor(mapping, format.chat !== null, dataset.rows);
        for (const example of examples.slice(0, 6)) {
          const shot = rowAsShot(dataset.rows[example.row], mapping);
          const row = dataset.rows[example.row];
          // Chat rows with earlier turns: give the chat the whole context, as a conversation would.
          // Chat rows: the user's turns as typed; the shared system message comes from the style.
          const turns =
            mapping.kind === 'chat'
              ? (row.messages as { role: string; content: string }[])
                  .slice(0, -1)
                  .filter((m) => m.role !== 'system')
              : [user(shot.message)];
          expect(chatPrompt(turns as never, style, format)).toBe(example.prompt);
          expect(shot.answer + (format.chat?.endOfTurn ?? '')).toBe(example.completion);
        }
      });
    }
  }
});

describe('conversation datasets', () => {
  it('the system message all rows share opens every chat; differing ones are not guessed', () => {
    const rows = read('chat-mini.jsonl').rows;
    expect(promptStyleFor({ kind: 'chat' }, true, rows).system).toBe('You answer in one short sentence.');
    const mixed = [
      ...rows,
      {
        messages: [
          { role: 'system', content: 'Other.' },
          user('Hi'),
          { role: 'assistant', content: 'Hello' },
        ],
      },
    ];
    expect(promptStyleFor({ kind: 'chat' }, true, mixed).system).toBeUndefined();
  });
});

describe('prompt templates', () => {
  const style = {
    useChatTemplate: false,
    promptTemplate: 'Ticket: {ticket}\nDepartment?',
    conversation: false,
  };
  it('the message fills the one column of the template', () => {
    expect(messageText('My card was charged twice', style)).toBe(
      'Ticket: My card was charged twice\nDepartment?',
    );
    expect(chatPrompt([user('Hi')], style, plainFormat())).toBe('Ticket: Hi\nDepartment?\n');
  });

  it('a text-only dataset (no prompt) treats the message as the start of the text', () => {
    expect(
      chatPrompt(
        [user('Once upon a time')],
        { useChatTemplate: false, promptTemplate: '', conversation: false },
        plainFormat(),
      ),
    ).toBe('Once upon a time');
  });

  it('a template with several columns takes the message as the whole prompt', () => {
    expect(
      messageText('x and y', { useChatTemplate: false, promptTemplate: '{a}\n{b}', conversation: false }),
    ).toBe('x and y');
  });

  it('multi-turn keeps every turn with a chat template, only the last message without one', () => {
    const turns = [
      user('What does the dog say?'),
      { role: 'assistant' as const, content: 'Woof.' },
      user('And the cat?'),
    ];
    const plainStyle = { useChatTemplate: false, promptTemplate: '{prompt}', conversation: false };
    expect(chatPrompt(turns, plainStyle, plainFormat())).toBe('And the cat?\n');
    expect(chatPrompt(turns, { ...plainStyle, useChatTemplate: true }, chatFormat)).toBe(
      '<|user|>\nWhat does the dog say?</s>\n<|assistant|>\nWoof.</s>\n<|user|>\nAnd the cat?</s>\n<|assistant|>\n',
    );
  });
});

describe('few-shot prompts', () => {
  const shots = [
    { message: 'What does the dog say?', answer: 'The dog says woof.' },
    { message: 'What does the cow say?', answer: 'The cow says moo.' },
  ];
  const style = { useChatTemplate: false, promptTemplate: '{prompt}', conversation: false };
  it('plain: each example as it was trained, separated by a blank line, then the question', () => {
    expect(fewShotPrompt(shots, [user('What does the cat say?')], style, plainFormat())).toBe(
      'What does the dog say?\nThe dog says woof.' +
        SHOT_SEPARATOR +
        'What does the cow say?\nThe cow says moo.' +
        SHOT_SEPARATOR +
        'What does the cat say?\n',
    );
  });
  it('chat template: examples become earlier turns of the conversation', () => {
    expect(
      fewShotPrompt(
        shots.slice(0, 1),
        [user('What does the cat say?')],
        { ...style, useChatTemplate: true },
        chatFormat,
      ),
    ).toBe(
      '<|user|>\nWhat does the dog say?</s>\n<|assistant|>\nThe dog says woof.</s>\n<|user|>\nWhat does the cat say?</s>\n<|assistant|>\n',
    );
  });
});

describe('default stop strings', () => {
  it("are the template's end of turn; plain text relies on EOS alone", () => {
    expect(defaultStopStrings(chatFormat)).toEqual(['</s>']);
    expect(defaultStopStrings(plainFormat())).toEqual([]);
  });
});
