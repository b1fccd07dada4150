// The Hub double (tests/helpers/hub-server.ts) answers like huggingface.co's resolve endpoint — bytes,
// headers, ranges, If-Range, error codes, CORS — and its injected faults do what the download tests rely
// on. Plain fetch in Node, against the stories260K fixture folders in fixtures/models.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HUB_COMMIT, startHubServer, type HubServer } from './helpers/hub-server';
import { modelDir } from './helpers/paths';

const STORIES = 'webtune-test/stories260K';
const CHAT = 'webtune-test/stories260K-chat';
const fileBytes = (name: string) => fs.readFileSync(path.join(modelDir('stories260K'), name));
const WEIGHTS = fileBytes('model.safetensors');
const CONFIG = fileBytes('config.json');
const WEIGHTS_ETAG = `"${createHash('sha256').update(WEIGHTS).digest('hex')}"`;

/** The error fetch rejects with, and the code of its cause (ECONNREFUSED, UND_ERR_SOCKET, …). */
async function failure(promise: Promise<unknown>): Promise<{ error: Error; code: string | undefined }> {
  try {
    await promise;
  } catch (error) {
    return { error: error as Error, code: ((error as Error).cause as { code?: string } | undefined)?.code };
  }
  throw new Error('expected the request to fail');
}

describe('the Hub double', () => {
  let hub: HubServer;
  const url = (file: string, repo = STORIES, revision = 'main') =>
    `${hub.url}/${repo}/resolve/${revision}/${file}`;
  const bodyOf = async (response: Response) => Buffer.from(await response.arrayBuffer());

  beforeAll(async () => {
    hub = await startHubServer({
      repos: { [STORIES]: modelDir('stories260K'), [CHAT]: modelDir('stories260K-chat') },
    });
  });
  afterEach(() => {
    hub.clearFaults();
    hub.requests.length = 0;
  });
  afterAll(async () => {
    await hub.close();
  });

  it('listens on 127.0.0.1 and serves a file byte for byte, logging what it sent', async () => {
    expect(hub.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const response = await fetch(url('model.safetensors'));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-length')).toBe(String(WEIGHTS.length));
    expect((await bodyOf(response)).equals(WEIGHTS)).toBe(true);
    expect((await bodyOf(await fetch(url('config.json')))).equals(CONFIG)).toBe(true);
    expect(hub.requests[0]).toEqual({
      method: 'GET',
      path: `/${STORIES}/resolve/main/model.safetensors`,
      range: null,
      status: 200,
      bytes: WEIGHTS.length,
      fault: null,
      authorization: null,
      raw: expect.stringContaining(`/${STORIES}/resolve/main/model.safetensors`),
    });
  });

  it('answers HEAD with the Hub headers and no body; LFS headers only for LFS-sized files', async () => {
    const weights = await fetch(url('model.safetensors'), { method: 'HEAD' });
    expect(weights.status).toBe(200);
    expect(
      Object.fromEntries(
        ['content-length', 'accept-ranges', 'etag', 'x-repo-commit', 'x-linked-etag', 'x-linked-size'].map(
          (h) => [h, weights.headers.get(h)],
        ),
      ),
    ).toEqual({
      'content-length': String(WEIGHTS.length),
      'accept-ranges': 'bytes',
      etag: WEIGHTS_ETAG,
      'x-repo-commit': HUB_COMMIT,
      'x-linked-etag': WEIGHTS_ETAG,
      'x-linked-size': String(WEIGHTS.length),
    });
    expect((await bodyOf(weights)).length).toBe(0);
    expect(hub.requests.at(-1)!.bytes).toBe(0);

    const config = await fetch(url('config.json'), { method: 'HEAD' });
    expect(config.headers.get('etag')).toMatch(/^"[0-9a-f]{64}"$/);
    expect(config.headers.get('x-linked-etag')).toBeNull();
    expect(config.headers.get('x-linked-size')).toBeNull();
    // A commit hash is an alias of main.
    expect(
      (await fetch(url('config.json', STORIES, HUB_COMMIT.replace(/0/g, 'f')), { method: 'HEAD' })).status,
    ).toBe(200);
  });

  it('serves byte ranges with 206 and Content-Range, and 416 past the end', async () => {
    const size = WEIGHTS.length;
    const cases: [string, number, number][] = [
      ['bytes=10-19', 10, 19],
      ['bytes=1000-', 1000, size - 1],
      ['bytes=-16', size - 16, size - 1],
      [`bytes=${size - 5}-${size + 100}`, size - 5, size - 1],
    ];
    for (const [range, first, last] of cases) {
      const response = await fetch(url('model.safetensors'), { headers: { Range: range } });
      expect(response.status, range).toBe(206);
      expect(response.headers.get('content-range'), range).toBe(`bytes ${first}-${last}/${size}`);
      expect(response.headers.get('content-length'), range).toBe(String(last - first + 1));
      expect((await bodyOf(response)).equals(WEIGHTS.subarray(first, last + 1)), range).toBe(true);
    }
    const past = await fetch(url('model.safetensors'), { headers: { Range: `bytes=${size}-` } });
    expect(past.status).toBe(416);
    expect(past.headers.get('content-range')).toBe(`bytes */${size}`);
    expect(hub.requests.map((r) => r.range)).toEqual([...cases.map(([range]) => range), `bytes=${size}-`]);
  });

  it('honours Range only when If-Range matches the ETag', async () => {
    const matching = await fetch(url('model.safetensors'), {
      headers: { Range: 'bytes=100-', 'If-Range': WEIGHTS_ETAG },
    });
    expect(matching.status).toBe(206);
    expect((await bodyOf(matching)).equals(WEIGHTS.subarray(100))).toBe(true);
    const stale = await fetch(url('model.safetensors'), {
      headers: { Range: 'bytes=100-', 'If-Range': '"an-older-version"' },
    });
    expect(stale.status).toBe(200);
    expect(stale.headers.get('content-range')).toBeNull();
    expect((await bodyOf(stale)).equals(WEIGHTS)).toBe(true);
  });

  it('answers 404 with the Hub error codes and a JSON body', async () => {
    const cases: [string, string][] = [
      [url('config.json', 'nobody/nothing'), 'RepoNotFound'],
      [url('README.md'), 'EntryNotFound'],
      // "../" sent as one segment, so fetch cannot normalise it away; the sibling folder stays out of reach.
      [url('..%2Fstories260K-chat%2Fconfig.json'), 'EntryNotFound'],
      [url('config.json', STORIES, 'v9-no-such-branch'), 'RevisionNotFound'],
    ];
    for (const [address, code] of cases) {
      const response = await fetch(address);
      expect(response.status, address).toBe(404);
      expect(response.headers.get('x-error-code'), address).toBe(code);
      expect(typeof ((await response.json()) as { error: unknown }).error).toBe('string');
    }
    expect(hub.requests.map((r) => r.path)).toContain(
      `/${STORIES}/resolve/main/../stories260K-chat/config.json`,
    );
  });

  it('sends CORS headers readable from another origin under COEP, on files and errors, and answers preflights', async () => {
    for (const address of [url('model.safetensors'), url('missing.bin')]) {
      const response = await fetch(address, { headers: { Origin: 'http://127.0.0.1:5173' } });
      expect(response.headers.get('access-control-allow-origin')).toBe('*');
      expect(response.headers.get('cross-origin-resource-policy')).toBe('cross-origin');
      const exposed = response.headers.get('access-control-expose-headers')!.split(/,\s*/);
      expect(exposed).toEqual(
        expect.arrayContaining([
          'Content-Length',
          'Content-Range',
          'ETag',
          'X-Linked-Etag',
          'X-Linked-Size',
          'X-Repo-Commit',
          'X-Error-Code',
          'Accept-Ranges',
        ]),
      );
      await response.arrayBuffer();
    }
    const preflight = await fetch(url('model.safetensors'), {
      method: 'OPTIONS',
      headers: {
        Origin: 'http://127.0.0.1:5173',
        'Access-Control-Request-Method': 'GET',
        'Access-Control-Request-Headers': 'range, if-range',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('*');
    expect(preflight.headers.get('access-control-allow-headers')!.split(/,\s*/)).toEqual(
      expect.arrayContaining(['Range', 'If-Range', 'Authorization', 'Content-Type']),
    );
    expect(preflight.headers.get('access-control-allow-methods')!.split(/,\s*/)).toEqual(
      expect.arrayContaining(['GET', 'HEAD']),
    );
  });

  it('drop: truncates the next answer for that file, then serves it whole; HEAD passes it by', async () => {
    hub.setFault('model.safetensors', { kind: 'drop', afterBytes: 1000 });
    expect((await fetch(url('model.safetensors'), { method: 'HEAD' })).status).toBe(200);
    const dropped = await fetch(url('model.safetensors'));
    expect(dropped.status).toBe(200);
    const { code } = await failure(dropped.arrayBuffer());
    expect(code).toBe('UND_ERR_SOCKET');
    expect(hub.requests.at(-1)).toMatchObject({ status: 200, bytes: 1000, fault: 'drop' });
    expect((await bodyOf(await fetch(url('model.safetensors')))).equals(WEIGHTS)).toBe(true);
  });

  it('drop keyed by "<repo>/<file>" hits that repo only, counts from the start of a range, and repeats `times` times', async () => {
    hub.setFault(`${CHAT}/model.safetensors`, { kind: 'drop', afterBytes: 10, times: 2 });
    expect((await bodyOf(await fetch(url('model.safetensors')))).equals(WEIGHTS)).toBe(true);
    for (let i = 0; i < 2; i++) {
      const response = await fetch(url('model.safetensors', CHAT), { headers: { Range: 'bytes=500-' } });
      expect(response.status).toBe(206);
      await failure(response.arrayBuffer());
      expect(hub.requests.at(-1)).toMatchObject({ bytes: 10, fault: 'drop' });
    }
    expect((await fetch(url('model.safetensors', CHAT))).status).toBe(200);
    expect(hub.requests.at(-1)).toMatchObject({ fault: null });
  });

  it('status: answers 500 for `times` requests, then the file', async () => {
    hub.setFault('config.json', { kind: 'status', status: 500, times: 2 });
    expect((await fetch(url('config.json'))).status).toBe(500);
    expect((await fetch(url('config.json'), { method: 'HEAD' })).status).toBe(500);
    const recovered = await fetch(url('config.json'));
    expect(recovered.status).toBe(200);
    expect((await bodyOf(recovered)).equals(CONFIG)).toBe(true);
  });

  it('slow: throttles the body to about the given rate', async () => {
    const bytesPerSecond = 4000;
    hub.setFault('config.json', { kind: 'slow', bytesPerSecond });
    const began = performance.now();
    const body = await bodyOf(await fetch(url('config.json')));
    const elapsed = performance.now() - began;
    expect(body.equals(CONFIG)).toBe(true);
    const expected = (CONFIG.length / bytesPerSecond) * 1000;
    expect(elapsed).toBeGreaterThanOrEqual(0.5 * expected);
    expect(elapsed).toBeLessThan(expected + 2000);
  });

  it('hang: sends the headers and then nothing, until the client aborts or the server stops', async () => {
    hub.setFault('config.json', { kind: 'hang', times: 2 });
    const aborted = new AbortController();
    const response = await fetch(url('config.json'), { signal: aborted.signal });
    expect(response.status).toBe(200);
    const body = response.arrayBuffer();
    const outcome = await Promise.race([
      body.then(() => 'body'),
      new Promise((resolve) => setTimeout(() => resolve('silence'), 300)),
    ]);
    expect(outcome).toBe('silence');
    aborted.abort();
    await expect(body).rejects.toThrow();

    const second = await fetch(url('config.json'));
    await hub.stop();
    await failure(second.arrayBuffer());
    await hub.start();
    expect((await bodyOf(await fetch(url('config.json')))).equals(CONFIG)).toBe(true);
  });

  it('stop() refuses connections; start() serves again at the same URL', async () => {
    const before = hub.url;
    await hub.stop();
    try {
      const { code } = await failure(fetch(url('config.json')));
      expect(code).toBe('ECONNREFUSED');
    } finally {
      await hub.start();
    }
    expect(hub.url).toBe(before);
    expect((await bodyOf(await fetch(url('config.json')))).equals(CONFIG)).toBe(true);
  });
});
