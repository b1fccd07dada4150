/**
 * Links and mirrors other people make: an endpoint that smuggles a path, files that are not the ones
 * the server published. Each is refused before it can reach the cache, saying what and where.
 */
import { describe, expect, it } from 'vitest';
import { downloadFile } from '../src/hub/download';
import { fetchHubModel, modelKey } from '../src/hub/model';
import { HubError, isOfficialHub, normalizeEndpoint } from '../src/hub/resolve';
import { MemoryStore } from '../src/hub/store';

const sha256 = async (bytes: Uint8Array<ArrayBuffer>) =>
  Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)), (b) =>
    b.toString(16).padStart(2, '0'),
  ).join('');

describe('the Hub endpoint', () => {
  it('is a bare origin: a path, query, fragment or login is refused with the endpoint named', () => {
    const attack = 'https://huggingface.co/attacker/repo/resolve/main/x';
    expect(() => normalizeEndpoint(attack)).toThrow(HubError);
    expect(() => normalizeEndpoint(attack)).toThrow(
      `"${attack}" cannot be used as the Hub endpoint: it has a path, query or fragment.`,
    );
    for (const bad of [
      'https://huggingface.co/mirror',
      'https://huggingface.co?x=1',
      'https://huggingface.co/#a',
      'https://huggingface.co?',
      'https://user:pw@huggingface.co',
      'not a url',
      'ftp://huggingface.co',
    ]) {
      expect(() => normalizeEndpoint(bad), bad).toThrow(/cannot be used as the Hub endpoint/);
    }
  });

  it('uses https; plain http only on this machine', () => {
    expect(normalizeEndpoint('https://huggingface.co/')).toBe('https://huggingface.co');
    expect(normalizeEndpoint('https://hf-mirror.example:8443')).toBe('https://hf-mirror.example:8443');
    expect(normalizeEndpoint('http://127.0.0.1:9000')).toBe('http://127.0.0.1:9000');
    expect(normalizeEndpoint('http://localhost:9000/')).toBe('http://localhost:9000');
    expect(() => normalizeEndpoint('http://hf-mirror.example')).toThrow(
      /must use https \(plain http only for 127\.0\.0\.1 or localhost\)/,
    );
    expect(isOfficialHub('https://huggingface.co/')).toBe(true);
    expect(isOfficialHub('https://hf-mirror.example')).toBe(false);
  });

  it('is part of the cache key, so two servers never share a cached model', () => {
    const keys = [
      'https://huggingface.co',
      'https://hf-mirror.example',
      'https://hf-mirror.example:8443',
      'http://127.0.0.1:9000',
      'https://127.0.0.1:9000',
    ].map((e) => modelKey(e, 'HuggingFaceTB/SmolLM2-135M-Instruct', 'main'));
    expect(new Set(keys).size).toBe(keys.length);
    // Folders the page and the CLI made before this rule (https, keyed by host) are still found.
    expect(keys[0]).toBe('huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct/main');
    expect(() => modelKey('https://huggingface.co/attacker/repo/resolve/main/x', 'a/b', 'main')).toThrow(
      HubError,
    );
  });

  it('a model asked for through an endpoint with a path is refused before any request', async () => {
    let requests = 0;
    const fetchSpy = (async () => {
      requests++;
      return new Response('{}');
    }) as typeof fetch;
    const store = new MemoryStore();
    const attempt = fetchHubModel('HuggingFaceTB/SmolLM2-135M-Instruct', {
      endpoint: 'https://huggingface.co/attacker/repo/resolve/main/x',
      store,
      fetch: fetchSpy,
    });
    await expect(attempt).rejects.toThrow(/has a path, query or fragment/);
    expect(requests).toBe(0);
    expect(await store.list()).toEqual([]);
  });
});

describe('a downloaded file', () => {
  const body = new TextEncoder().encode('the weights the server published'.repeat(1000));
  const request = {
    url: 'https://huggingface.co/a/b/resolve/main/model.safetensors',
    key: 'huggingface.co/a/b/main/model.safetensors',
    id: 'a/b',
    file: 'model.safetensors',
    revision: 'main',
  };
  const serve = (bytes: Uint8Array<ArrayBuffer>, headers: Record<string, string>) =>
    (async () =>
      new Response(bytes, {
        status: 200,
        headers: { 'Content-Length': String(bytes.byteLength), ETag: '"x"', ...headers },
      })) as typeof fetch;

  it('is kept when it has the sha256 and size the Hub announced', async () => {
    const store = new MemoryStore();
    await downloadFile(request, store, {
      fetch: serve(body, {
        'X-Linked-Etag': `"${await sha256(body)}"`,
        'X-Linked-Size': String(body.byteLength),
      }),
    });
    expect(await store.read(request.key)).toEqual(body);
  });

  it('is deleted, with a message naming the server, when its bytes are not the ones announced', async () => {
    const store = new MemoryStore();
    const altered = body.slice();
    altered[100] ^= 1;
    const announced = await sha256(body);
    const error = await downloadFile(request, store, {
      fetch: serve(altered, { 'X-Linked-Etag': `"${announced}"`, 'X-Linked-Size': String(body.byteLength) }),
      retries: 0,
    }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(HubError);
    expect((error as Error).message).toBe(
      `model.safetensors of a/b from huggingface.co is not the file the server published: its sha256 is not the ${announced} the server announced. It was deleted. ` +
        'Load the model again; if this repeats, the server is sending damaged or altered files: use another endpoint.',
    );
    expect(await store.read(request.key)).toBeNull();
    expect(await store.partial(request.key)).toBeNull();
  });

  it('is deleted when its size is not the one announced', async () => {
    const store = new MemoryStore();
    const error = await downloadFile(request, store, {
      fetch: serve(body, {
        'X-Linked-Etag': `"${await sha256(body)}"`,
        'X-Linked-Size': String(body.byteLength + 1),
      }),
      retries: 0,
    }).catch((e: Error) => e);
    expect((error as Error).message).toMatch(/has \d+ bytes where the server announced \d+/);
    expect(await store.read(request.key)).toBeNull();
  });
});
