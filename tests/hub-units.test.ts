/** The Hub client's small parts: ids and URLs, model-card licenses, error messages, the on-disk cache. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FsStore } from '../src/cli/fs-store';
import { licenseFromCard, modelKey } from '../src/hub/model';
import { hubError, isHubId, resolveUrl } from '../src/hub/resolve';
import { MemoryStore, type FileStore } from '../src/hub/store';
import { checkTokenShape, maskToken, tokenGoesTo } from '../src/hub/token';
import { hubModelCard } from '../src/formats/hub-card';

describe('ids and URLs', () => {
  it('tells a Hub id from a path', () => {
    for (const id of ['HuggingFaceTB/SmolLM2-135M-Instruct', 'Qwen/Qwen2.5-0.5B-Instruct', 'a/b'])
      expect(isHubId(id), id).toBe(true);
    for (const notId of [
      '../models/stories260K',
      './x/y',
      '/models/stories260K',
      'stories260K',
      'a/b/c',
      'http://x/y',
      'a/..',
      '~/x',
    ])
      expect(isHubId(notId), notId).toBe(false);
  });
  it('resolves files as the Hub lays them out, for any endpoint', () => {
    expect(resolveUrl('https://huggingface.co', 'Qwen/Qwen3-0.6B', 'main', 'config.json')).toBe(
      'https://huggingface.co/Qwen/Qwen3-0.6B/resolve/main/config.json',
    );
    expect(resolveUrl('http://127.0.0.1:9000/mirror/', 'a/b', 'refs/pr/1', 'sub dir/model.safetensors')).toBe(
      'http://127.0.0.1:9000/mirror/a/b/resolve/refs%2Fpr%2F1/sub%20dir/model.safetensors',
    );
    expect(modelKey('https://huggingface.co', 'a/b', 'main')).toBe('huggingface.co/a/b/main');
  });
  it('reads the license from a model card front matter', () => {
    expect(
      licenseFromCard(
        '---\nlibrary_name: transformers\nlicense: apache-2.0\nlanguage:\n- en\n---\n# SmolLM2',
      ),
    ).toBe('apache-2.0');
    expect(licenseFromCard("---\r\nlicense: 'mit'\r\n---\r\n")).toBe('mit');
    expect(licenseFromCard('# A card without front matter\nlicense: mit')).toBeNull();
  });
  it('explains the Hub answers a person can act on', () => {
    const answer = (status: number, code?: string) => ({
      status,
      statusText: '',
      headers: new Headers(code ? { 'X-Error-Code': code } : {}),
    });
    expect(hubError(answer(404, 'RepoNotFound'), 'a/b', 'config.json', 'main').message).toMatch(
      /no model "a\/b" on the Hub/,
    );
    expect(hubError(answer(404, 'EntryNotFound'), 'a/b', 'model.safetensors', 'main').message).toMatch(
      /has no file model\.safetensors/,
    );
    expect(hubError(answer(404, 'RevisionNotFound'), 'a/b', 'config.json', 'v9').message).toMatch(
      /no revision "v9"/,
    );
    expect(hubError(answer(401), 'a/b', 'config.json', 'main').message).toMatch(/gated or private/);
    expect(hubError(answer(500), 'a/b', 'config.json', 'main').message).toMatch(
      /problem sending config\.json \(500/,
    );
  });
});

describe('file stores', () => {
  const stores: [string, () => FileStore][] = [
    ['memory', () => new MemoryStore()],
    ['disk', () => new FsStore(fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-cache-')))],
  ];
  for (const [name, make] of stores) {
    it(`${name}: a partial file keeps its bytes and ETag, resumes by appending, and is readable only once finished`, async () => {
      const store = make();
      const key = 'host/a/b/main/model.safetensors';
      let writer = await store.open(key, { etag: '"e1"', append: false });
      await writer.write(new Uint8Array([1, 2, 3]));
      await writer.close();
      expect(await store.read(key)).toBeNull();
      expect(await store.partial(key)).toEqual({ size: 3, etag: '"e1"' });
      writer = await store.open(key, { etag: '"e1"', append: true });
      await writer.write(new Uint8Array([4, 5]));
      await writer.finish();
      expect([...(await store.read(key))!]).toEqual([1, 2, 3, 4, 5]);
      expect(await store.partial(key)).toBeNull();
      expect(await store.list()).toEqual([{ key, size: 5 }]);
      // Starting over (another ETag) replaces the bytes.
      writer = await store.open('host/a/b/main/config.json', { etag: null, append: false });
      await writer.write(new Uint8Array([9]));
      await writer.finish();
      await store.remove('host/a/b/main');
      expect(await store.list()).toEqual([]);
    });
  }
  it('refuses keys that would escape the cache folder', async () => {
    const store = new FsStore(fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-cache-')));
    await expect(store.open('../outside', { etag: null, append: false })).rejects.toThrow(
      /outside the cache/,
    );
  });
});

describe('the token and the model card', () => {
  it('sends a token only to the very origin it was given for, and shows it masked', () => {
    expect(tokenGoesTo('https://huggingface.co', 'https://huggingface.co/')).toBe(true);
    expect(tokenGoesTo('https://huggingface.co', 'https://hf-mirror.example')).toBe(false);
    expect(tokenGoesTo('http://127.0.0.1:8000', 'http://127.0.0.1:8001')).toBe(false);
    expect(maskToken('hf_abcdefghijklmnop')).toBe('hf_…mnop');
    expect(checkTokenShape('  hf_abcdefgh \n')).toBe('hf_abcdefgh');
    for (const bad of ['', 'hf_ab cd', 'password123', 'hf_\u0000abcd'])
      expect(() => checkTokenShape(bad), JSON.stringify(bad)).toThrow(/token/);
  });

  it('says a gated model needs a token and its licence accepted, naming the page', () => {
    const gated = (status: number) => ({
      status,
      statusText: '',
      headers: new Headers({ 'X-Error-Code': 'GatedRepo' }),
    });
    const asked = { withToken: false, endpoint: 'https://huggingface.co' };
    expect(hubError(gated(401), 'meta-llama/Llama-3.2-1B', 'config.json', 'main', asked).message).toBe(
      'meta-llama/Llama-3.2-1B is gated (401): it downloads only with a Hugging Face access token, after you ' +
        'accept its licence at https://huggingface.co/meta-llama/Llama-3.2-1B. Add your token under "Hugging ' +
        'Face account" (the CLI reads HF_TOKEN), then load it again.',
    );
    expect(hubError(gated(403), 'a/b', 'config.json', 'main', { ...asked, withToken: true }).message).toMatch(
      /^a\/b is gated and your account has not been given access yet \(403\)\. Open https:\/\/huggingface\.co\/a\/b/,
    );
  });

  it('writes the Hub front matter only for a base model with a Hub id', () => {
    const facts = {
      repo: 'ada/x',
      name: 'x',
      datasetName: '',
      settings: {},
      trainLoss: null,
      valLoss: null,
      datasetFile: null,
    };
    const hubBase = hubModelCard({ ...facts, baseModel: 'HuggingFaceTB/SmolLM2-135M-Instruct' });
    expect(hubBase.split('\n').slice(0, 3)).toEqual([
      '---',
      'base_model: "HuggingFaceTB/SmolLM2-135M-Instruct"',
      'library_name: peft',
    ]);
    const folder = hubModelCard({ ...facts, baseModel: 'stories260K' });
    expect(folder).not.toContain('base_model:');
    expect(folder).toContain('`stories260K` (a local model folder: put its Hub id here and in `base_model`)');
    expect(folder).toContain('Dataset: not known (the adapter was imported)');
  });
});
