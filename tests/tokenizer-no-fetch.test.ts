/**
 * transformers.js is used for tokenizers built from files webtune already holds; it never loads anything
 * itself.
 */
import { describe, expect, it, vi } from 'vitest';
import * as transformers from '@huggingface/transformers';
import { loadFixture } from './helpers/shared';

describe('transformers.js inside webtune', () => {
  it('builds the fixture tokenizers without a request, and refuses to fetch a model by id', async () => {
    const fetchSpy = vi.spyOn(globalThis, 'fetch');
    // transformers.js fetches through its own env.fetch: record every call, answer none.
    const own = transformers.env.fetch;
    const calls: unknown[] = [];
    transformers.env.fetch = (async (...args: unknown[]) => (
      calls.push(args[0]),
      new Response('', { status: 404 })
    )) as typeof own;
    const { tokenizer } = loadFixture('stories260K'); // importing webtune's tokenizer module sets the switches
    expect(tokenizer.encode('Once upon a time').length).toBeGreaterThan(0);
    await expect(
      transformers.AutoTokenizer.from_pretrained('HuggingFaceTB/SmolLM2-135M-Instruct'),
    ).rejects.toThrow();
    expect(calls).toEqual([]);
    expect(fetchSpy).not.toHaveBeenCalled();
    fetchSpy.mockRestore();
    transformers.env.fetch = own;
  });
});
