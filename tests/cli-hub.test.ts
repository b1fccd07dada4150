// `webtune --model <hub id>` against a local Hub double: the first run downloads into
// $XDG_CACHE_HOME/webtune (resuming a dropped connection), later runs read the cache with the
// endpoint unreachable, and a missing model or unsupported architecture is one clear line.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './helpers/cli';
import { startHubServer, type HubServer } from './helpers/hub-server';
import { maxAbsDiff, modelDir } from './helpers/shared';

const STORIES = 'webtune-test/stories260K';
const GPT2 = 'webtune-test/gpt2-shaped';

/** The CLI in this process, `env` added to the environment for a run; this process serves the Hub double. */
const webtune = (env: Record<string, string>, ...args: string[]) => runCli(args, { env });

describe('the CLI with Hub ids', () => {
  let hub: HubServer;
  let cache: string;

  beforeAll(async () => {
    const gpt2 = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-gpt2-'));
    for (const f of fs.readdirSync(modelDir('stories260K')))
      fs.copyFileSync(path.join(modelDir('stories260K'), f), path.join(gpt2, f));
    fs.writeFileSync(path.join(gpt2, 'config.json'), JSON.stringify({ model_type: 'gpt2', n_embd: 64 }));
    hub = await startHubServer({ repos: { [STORIES]: modelDir('stories260K'), [GPT2]: gpt2 } });
    cache = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-xdg-'));
  });
  afterAll(async () => {
    await hub.close();
  });

  it('downloads into $XDG_CACHE_HOME/webtune through HF_ENDPOINT, resuming a dropped connection', async () => {
    const size = fs.statSync(path.join(modelDir('stories260K'), 'model.safetensors')).size;
    hub.setFault('model.safetensors', { kind: 'drop', afterBytes: Math.floor(size / 2) });
    const run = await webtune(
      { XDG_CACHE_HOME: cache, HF_ENDPOINT: hub.url },
      'generate',
      '--model',
      STORIES,
      '--prompt',
      'Once upon a time',
      '--max-new-tokens',
      '8',
      '--json',
    );
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/downloading model\.safetensors: .*resumed at/);
    const cached = path.join(
      cache,
      'webtune',
      `http+${new URL(hub.url).host}`,
      STORIES,
      'main',
      'model.safetensors',
    );
    expect(
      fs
        .readFileSync(cached)
        .equals(fs.readFileSync(path.join(modelDir('stories260K'), 'model.safetensors'))),
    ).toBe(true);
    const ranges = hub.requests
      .filter((r) => r.path.endsWith('/model.safetensors'))
      .map((r) => r.range ?? null);
    expect(ranges).toEqual([null, expect.stringMatching(/^bytes=\d+-$/)]);
  }, 120_000);

  it('scores from the cache with the endpoint unreachable, exactly as from the folder', async () => {
    await hub.stop();
    try {
      const run = await webtune(
        { XDG_CACHE_HOME: cache },
        'score',
        '--model',
        STORIES,
        '--hf-endpoint',
        hub.url,
        '--text',
        'Lily',
        '--json',
      );
      expect(run.status, run.stderr).toBe(0);
      expect(run.stderr).toMatch(/read from the cache .* no network used/);
      const result = JSON.parse(run.stdout) as { tokens: number[]; logprobs: number[] };
      // The cached copy is the fixture itself: the same log-probs as the folder (which tests/cli.test.ts
      // checks against PyTorch).
      const folder = await webtune(
        {},
        'score',
        '--model',
        modelDir('stories260K'),
        '--text',
        'Lily',
        '--json',
      );
      expect(
        maxAbsDiff(result.logprobs, (JSON.parse(folder.stdout) as { logprobs: number[] }).logprobs),
      ).toBe(0);
    } finally {
      await hub.start();
    }
  }, 120_000);

  it('lists the cache with sizes and deletes a model from it', async () => {
    const listed = await webtune({ XDG_CACHE_HOME: cache }, 'cache', '--json');
    expect(listed.status, listed.stderr).toBe(0);
    const { models } = JSON.parse(listed.stdout) as { models: { key: string; bytes: number }[] };
    const folder = path.join(cache, 'webtune', `http+${new URL(hub.url).host}`, STORIES, 'main');
    const onDisk = fs
      .readdirSync(folder)
      .filter((f) => !f.endsWith('.meta.json') && !f.endsWith('.absent'))
      .reduce((n, f) => n + fs.statSync(path.join(folder, f)).size, 0);
    expect(models).toEqual([{ key: `http+${new URL(hub.url).host}/${STORIES}/main`, bytes: onDisk }]);
    const deleted = await webtune({ XDG_CACHE_HOME: cache }, 'cache', '--delete', STORIES, '--json');
    expect(deleted.status, deleted.stderr).toBe(0);
    expect(JSON.parse(deleted.stdout).models).toEqual([]);
    expect(fs.existsSync(folder)).toBe(false);
    const again = await webtune({ XDG_CACHE_HOME: cache }, 'cache', '--delete', STORIES);
    expect(again.status).not.toBe(0);
    expect(again.stderr).toMatch(/is not in the cache/);
  }, 60_000);

  it('one clear line for a model that does not exist, an unsupported architecture and an unreachable endpoint', async () => {
    const gpt2 = await webtune(
      { XDG_CACHE_HOME: cache },
      'score',
      '--model',
      GPT2,
      '--hf-endpoint',
      hub.url,
      '--text',
      'x',
    );
    expect(gpt2.status).not.toBe(0);
    expect(gpt2.stderr.trim().split('\n')).toHaveLength(1);
    expect(gpt2.stderr).toMatch(/Model type "gpt2" is not supported/);
    expect(
      hub.requests.filter((r) => r.path.startsWith(`/${GPT2}/`) && r.path.endsWith('.safetensors')),
    ).toEqual([]);
    const missing = await webtune(
      { XDG_CACHE_HOME: cache },
      'score',
      '--model',
      'nobody/nothing',
      '--hf-endpoint',
      hub.url,
      '--text',
      'x',
      '--json',
    );
    expect(missing.status).not.toBe(0);
    expect(missing.stdout).toBe('');
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stderr).toMatch(/no model "nobody\/nothing" on the Hub/);
    const offline = await webtune(
      { XDG_CACHE_HOME: fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-xdg-')) },
      'score',
      '--model',
      STORIES,
      '--hf-endpoint',
      'http://127.0.0.1:9',
      '--text',
      'x',
    );
    expect(offline.status).not.toBe(0);
    expect(offline.stderr).toMatch(/could not reach 127\.0\.0\.1:9/);
  }, 120_000);

  it('refuses an endpoint with a path (from --hf-endpoint or HF_ENDPOINT) before any request, in one line', async () => {
    const before = hub.requests.length;
    const poisoned = `${hub.url}/${STORIES}/resolve/main/x`;
    const flag = await webtune(
      { XDG_CACHE_HOME: cache },
      'score',
      '--model',
      STORIES,
      '--hf-endpoint',
      poisoned,
      '--text',
      'x',
    );
    expect(flag.status).not.toBe(0);
    expect(flag.stderr.trim().split('\n')).toHaveLength(1);
    expect(flag.stderr).toContain(
      `--hf-endpoint: "${poisoned}" cannot be used as the Hub endpoint: it has a path, query or fragment.`,
    );
    const env = await webtune(
      { XDG_CACHE_HOME: cache, HF_ENDPOINT: poisoned },
      'score',
      '--model',
      STORIES,
      '--text',
      'x',
    );
    expect(env.status).not.toBe(0);
    expect(env.stderr.trim().split('\n')).toHaveLength(1);
    expect(env.stderr).toContain(`"${poisoned}" cannot be used as the Hub endpoint`);
    expect(hub.requests.length).toBe(before);
  }, 60_000);
});
