import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { generate } from '../src/engine/generate';
import { disposeModel } from '../src/engine/model';
import { loadFixture, modelDir, reference, switchBackend } from './helpers/shared';
import { disposeAfterEach } from './helpers/cleanup';

const own = disposeAfterEach();

describe('generation', () => {
  const greedy = reference<{ ids: number[]; new: number[] }>('stories260K', 'greedy-once-upon-a-time.json');
  const prompt = greedy.ids.slice(0, greedy.ids.length - greedy.new.length);
  let fixture: ReturnType<typeof loadFixture>;
  beforeAll(async () => {
    await switchBackend('cpu');
    fixture = loadFixture('stories260K');
    return () => disposeModel(fixture.model);
  });

  it('stops before an end-of-sequence token', async () => {
    const stopAt = greedy.new.findIndex((t, i) => greedy.new.indexOf(t) === i && i >= 5);
    const result = await generate(fixture.model, prompt, {
      maxNewTokens: 50,
      eosTokenIds: [greedy.new[stopAt]],
    });
    expect(result.stopReason).toBe('eos');
    expect(result.tokens).toEqual(greedy.new.slice(0, stopAt));
  });

  it('cuts the text before a stop string and reports each token as it comes', async () => {
    const decode = (ids: number[]) => fixture.tokenizer.decode(ids);
    const full = decode(greedy.new.slice(0, 30));
    const stop = 'Lily';
    expect(full).toContain(stop);
    const streamed: string[] = [];
    const result = await generate(fixture.model, prompt, {
      maxNewTokens: 30,
      eosTokenIds: [],
      stopStrings: [stop],
      decode,
      onToken: (_t, text) => streamed.push(text),
    });
    expect(result.stopReason).toBe('stop-string');
    expect(result.text).toBe(full.slice(0, full.indexOf(stop)));
    expect(streamed.at(-1)).toBe(result.text);
    expect(streamed).toHaveLength(result.tokens.length);
  });

  it('samples reproducibly for a seed, differently for another, and stops when aborted', async () => {
    const options = { maxNewTokens: 20, temperature: 1, topP: 0.95, eosTokenIds: [] };
    const a = await generate(fixture.model, prompt, { ...options, seed: 1 });
    const b = await generate(fixture.model, prompt, { ...options, seed: 1 });
    const c = await generate(fixture.model, prompt, { ...options, seed: 2 });
    expect(a.tokens).toEqual(b.tokens);
    expect(c.tokens).not.toEqual(a.tokens);
    const controller = new AbortController();
    const aborted = await generate(fixture.model, prompt, {
      ...options,
      onToken: () => controller.abort(),
      signal: controller.signal,
    });
    expect(aborted.stopReason).toBe('aborted');
    expect(aborted.tokens).toHaveLength(1);
  });
});

describe('streamed text', () => {
  it('holds back a character whose bytes are split across tokens until it is whole', async () => {
    await switchBackend('cpu');
    const { model, tokenizer } = own(loadFixture('stories260K'));
    // stories260K spells "é" as two byte tokens, <0xC3> <0xA9>: alone, the first decodes to U+FFFD.
    const vocab = (
      JSON.parse(fs.readFileSync(path.join(modelDir('stories260K'), 'tokenizer.json'), 'utf8')) as {
        model: { vocab: Record<string, number> };
      }
    ).model.vocab;
    const [c3, a9] = [vocab['<0xC3>'], vocab['<0xA9>']];
    expect(tokenizer.decode([c3])).toBe('\uFFFD');
    expect(tokenizer.decode([c3, a9])).toBe('é');
    // Whatever the model picks, decode as if each odd token were the first half of "é".
    const decode = (ids: number[]) => tokenizer.decode(ids.flatMap((_, i) => (i % 2 === 0 ? [c3] : [a9])));
    const streamed: string[] = [];
    const result = await generate(model, tokenizer.encode('Once'), {
      maxNewTokens: 5,
      eosTokenIds: [],
      decode,
      onToken: (_t, text) => void streamed.push(text),
    });
    expect(streamed).toEqual(['', 'é', 'é', 'éé', 'éé']);
    // The finished text keeps a character that never completed.
    expect(result.text).toBe('éé\uFFFD');
    disposeModel(model);
  });
});
