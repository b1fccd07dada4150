/**
 * Token ids and completion masks, checked against the tokenizer's true ids for known strings
 * (reference/stories260K/tokenize.json comes from the original SentencePiece model).
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  chatTemplateFormat,
  detectLayout,
  encodeExample,
  parseDataset,
  plainFormat,
  renderExample,
  targetCount,
} from '../src/data';
import { dataFile, loadTokenizer, reference } from './fixtures/data/shared';

const stories = loadTokenizer('stories260K');
const storiesChat = loadTokenizer('stories260K-chat');
const known = reference<{ text: string; ids: number[] }[]>('stories260K', 'tokenize.json');
const knownIds = (text: string) => known.find((k) => k.text === text)!.ids;
const BOS = 1;
const EOS = 2;
const NEWLINE = 13; // SentencePiece byte token <0x0A>
const SPACE = 410; // "▁" on its own, as in the reference ids

const friends = parseDataset(fs.readFileSync(dataFile('best-friends.csv'), 'utf8'), 'best-friends.csv');
const tomRow = friends.rows[0];
const masked = (e: { ids: number[]; completionMask: number[] }, want: 0 | 1) =>
  e.ids.filter((_, i) => e.completionMask[i] === want);

describe('completion masks on stories260K (no chat template)', () => {
  const example = renderExample(tomRow, detectLayout(friends.columns)!, plainFormat());
  const encoded = encodeExample(example, stories, { maxLength: 256, addEos: true });

  it('trains on exactly "Tom is my best friend." followed by EOS', () => {
    expect(example).toMatchObject({ prompt: 'Who is Tom?\n', completion: 'Tom is my best friend.' });
    expect(encoded.completionMask).toHaveLength(encoded.ids.length);
    const completion = masked(encoded, 1);
    expect(completion.at(-1)).toBe(EOS);
    expect(completion.filter((id) => id === EOS)).toHaveLength(1);
    expect(stories.decode(completion)).toBe('Tom is my best friend.');
    expect(encoded.truncated).toBe(false);
  });

  it('marks no prompt token: BOS first, then "Who is Tom?\\n", then only completion', () => {
    expect(encoded.ids[0]).toBe(BOS);
    const prompt = masked(encoded, 0);
    expect(stories.decode(prompt)).toBe('Who is Tom?\n');
    expect(prompt.at(-1)).toBe(NEWLINE);
    // The mask is one run of 0s then one run of 1s.
    const firstTarget = encoded.completionMask.indexOf(1);
    expect(encoded.completionMask).toEqual(encoded.ids.map((_, i) => (i >= firstTarget ? 1 : 0)));
    expect(firstTarget).toBe(prompt.length);
  });

  it('matches the SentencePiece ids of the whole text, with the boundary after "\\n"', () => {
    const text = 'question: what is two plus two?\nanswer: four';
    const truth = knownIds(text);
    const encodedQa = encodeExample(
      { prompt: 'question: what is two plus two?\n', completion: 'answer: four' },
      stories,
      { maxLength: 256, addEos: true },
    );
    expect(encodedQa.ids).toEqual([...truth, EOS]);
    const boundary = truth.indexOf(NEWLINE) + 1;
    expect(encodedQa.completionMask).toEqual([...truth, EOS].map((_, i) => (i >= boundary ? 1 : 0)));
  });

  it('a token merged across the boundary is a target, not hidden in the prompt', () => {
    // "Once upon a ti" + "me": SentencePiece writes "▁time" as one token, the last of the known ids.
    const truth = knownIds('Once upon a time');
    const split = encodeExample({ prompt: 'Once upon a ti', completion: 'me' }, stories, {
      maxLength: 256,
      addEos: true,
    });
    expect(split.ids).toEqual([...truth, EOS]);
    expect(split.completionMask).toEqual([0, 0, 0, 0, 1, 1]);
  });

  it('continues a known prompt with the ids of the full text, not of the parts', () => {
    const full = known[0];
    const prompt = 'Once upon a time';
    const encodedStory = encodeExample({ prompt, completion: full.text.slice(prompt.length) }, stories, {
      maxLength: 256,
      addEos: false,
    });
    expect(encodedStory.ids).toEqual(full.ids);
    expect(encodedStory.completionMask.indexOf(1)).toBe(knownIds(prompt).length);
  });

  it('text-only examples train on everything after BOS', () => {
    const text = encodeExample({ prompt: '', completion: 'Hello, world!' }, stories, {
      maxLength: 256,
      addEos: true,
    });
    expect(text.ids).toEqual([...knownIds('Hello, world!'), EOS]);
    expect(text.completionMask).toEqual([
      0,
      ...knownIds('Hello, world!')
        .slice(1)
        .map(() => 1),
      1,
    ]);
  });

  it('addEos false leaves EOS off', () => {
    const noEos = encodeExample(example, stories, { maxLength: 256, addEos: false });
    expect(noEos.ids).toEqual(encoded.ids.slice(0, -1));
    expect(noEos.ids).not.toContain(EOS);
  });

  it('truncates from the right, keeping the prompt start, and says so', () => {
    const promptLength = masked(encoded, 0).length; // 11: BOS + "Who is Tom?\n"
    const cut = encodeExample(example, stories, { maxLength: promptLength + 3, addEos: true });
    expect(cut.truncated).toBe(true);
    expect(cut.ids).toEqual(encoded.ids.slice(0, promptLength + 3));
    expect(cut.completionMask).toEqual(encoded.completionMask.slice(0, promptLength + 3));
    expect(targetCount(cut)).toBe(3);
    const promptOnly = encodeExample(example, stories, { maxLength: 8, addEos: true });
    expect(promptOnly.ids).toHaveLength(8);
    expect(targetCount(promptOnly)).toBe(0);
    expect(() => encodeExample(example, stories, { maxLength: 1, addEos: true })).toThrow(RangeError);
  });
});

describe('completion masks through the stories260K-chat template', () => {
  const format = chatTemplateFormat(storiesChat);
  const example = renderExample(tomRow, detectLayout(friends.columns)!, format);
  const encoded = encodeExample(example, storiesChat, { maxLength: 256, addEos: format.addEos });

  it('puts <|user|> … <|assistant|>\\n in the prompt and the answer with its end of turn in the completion', () => {
    const prompt = storiesChat.decode(masked(encoded, 0), { skipSpecialTokens: false });
    expect(prompt.startsWith('<s>')).toBe(true);
    expect(prompt).toContain('<|user|>\nWho is Tom?</s>');
    expect(prompt.endsWith('<|assistant|>\n')).toBe(true);
    expect(prompt).not.toContain('Tom is my');

    // The template's "</s>\n" is EOS, then "▁" (legacy SentencePiece adds it after a special token), then
    // "\n".
    const completion = masked(encoded, 1);
    expect(completion.slice(-3)).toEqual([EOS, SPACE, NEWLINE]);
    expect(storiesChat.decode(completion.slice(0, -3))).toBe('Tom is my best friend.');
  });

  it('does not add a second EOS after the template\'s "</s>\\n"', () => {
    // The user turn's and the assistant turn's.
    expect(encoded.ids.filter((id) => id === EOS)).toHaveLength(2);
    expect(masked(encoded, 1).filter((id) => id === EOS)).toHaveLength(1);
    expect(encoded.ids.at(-1)).toBe(NEWLINE);
  });
});
