// The CLI's Hugging Face token against the Hub double: read from HF_TOKEN or the file huggingface-cli login
// writes, sent to an endpoint that is not huggingface.co only when --send-token-to names it, and used for a
// gated model; `--adapter user/adapter` downloads an adapter repository once and reads it from the cache.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishFiles } from '../src/hub/publish';
import { runCli } from './helpers/cli';
import { startHubServer, type HubServer } from './helpers/hub-server';
import { modelDir } from './helpers/paths';

const GATED = 'webtune-test/gated-stories';
const STORIES = 'webtune-test/stories260K';
const ADA = 'hf_adaWritesAndHasAccepted1';
const BOB = 'hf_bobHasNotAcceptedIt3333';

describe('the CLI with a Hugging Face token', () => {
  let hub: HubServer;
  let xdg: string;
  let hfHome: string;
  let zipFile: string;
  const env = (extra: Record<string, string | undefined> = {}) => ({
    XDG_CACHE_HOME: xdg,
    HF_HOME: hfHome,
    HF_ENDPOINT: hub.url,
    HF_TOKEN: undefined,
    HF_TOKEN_PATH: undefined,
    ...extra,
  });
  const generate = (extra: Record<string, string | undefined>, ...args: string[]) =>
    runCli(['generate', '--prompt', 'Once upon a time', '--max-new-tokens', '6', '--json', ...args], {
      env: env(extra),
    });

  beforeAll(async () => {
    hub = await startHubServer({
      repos: { [GATED]: modelDir('stories260K'), [STORIES]: modelDir('stories260K') },
      tokens: { [ADA]: { name: 'ada', role: 'write' }, [BOB]: { name: 'bob', role: 'read' } },
      gated: { [GATED]: ['ada'] },
    });
    xdg = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-xdg-'));
    hfHome = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-hf-home-'));
    // The file huggingface-cli login writes: the token and a newline.
    fs.writeFileSync(path.join(hfHome, 'token'), `${ADA}\n`);
    // An adapter trained by the CLI itself, published to the double as the page would publish it.
    zipFile = path.join(xdg, 'tiny.zip');
    const train = await runCli(
      [
        'train',
        '--model',
        modelDir('stories260K'),
        '--data',
        'fixtures/data/support-tickets.csv',
        '--prompt-column',
        'ticket',
        '--completion-column',
        'department',
        '--epochs',
        '1',
        '--out',
        zipFile,
      ],
      { env: env() },
    );
    expect(train.status, train.stderr).toBe(0);
    const { unzipSync } = await import('fflate');
    const files = unzipSync(new Uint8Array(fs.readFileSync(zipFile)));
    await publishFiles({
      repo: 'ada/tiny',
      private: true,
      endpoint: hub.url,
      token: ADA,
      files: ['adapter_config.json', 'adapter_model.safetensors'].map((p) => ({ path: p, bytes: files[p] })),
    });
  });
  afterAll(async () => {
    await hub.close();
  });

  it('keeps the token from an endpoint that is not huggingface.co unless --send-token-to names it', async () => {
    hub.requests.length = 0;
    const run = await generate({}, '--model', GATED);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(
      `not sending your Hugging Face token (${path.join(hfHome, 'token')}) to ${hub.url}: it is not https://huggingface.co. Pass --send-token-to ${hub.url}`,
    );
    expect(run.stderr).toContain(`${GATED} is gated (401)`);
    expect(hub.requests.some((r) => r.raw.includes(ADA))).toBe(false);
    const elsewhere = await generate({}, '--model', GATED, '--send-token-to', 'https://mirror.example');
    expect(elsewhere.stderr).toMatch(/--send-token-to https:\/\/mirror\.example is not the endpoint in use/);
    expect(hub.requests.some((r) => r.raw.includes(ADA))).toBe(false);
  });

  it("reads huggingface-cli login's token file, and HF_TOKEN before it, for a gated model", async () => {
    const named = await generate({}, '--model', GATED, '--send-token-to', hub.url);
    expect(named.status, named.stderr).toBe(0);
    expect(hub.requests.filter((r) => r.path.startsWith(`/${GATED}/`)).at(-1)!.authorization).toBe(
      `Bearer ${ADA}`,
    );
    // HF_TOKEN wins over the file: bob has not accepted the licence. The cache goes first, or ada's files
    // (in the token's folder) would answer without asking the Hub.
    fs.rmSync(path.join(xdg, 'webtune'), { recursive: true, force: true });
    const bob = await generate({ HF_TOKEN: BOB }, '--model', GATED, '--send-token-to', hub.url);
    expect(bob.status).toBe(1);
    expect(bob.stderr).toContain('your account has not been given access yet (403)');
    expect(bob.stderr).not.toContain(BOB);
  });

  it('takes an adapter by Hub id, downloads it once, then reads it from the cache offline', async () => {
    const fromZip = await generate({}, '--model', STORIES, '--adapter', zipFile);
    expect(fromZip.status, fromZip.stderr).toBe(0);
    const byId = await generate({}, '--model', STORIES, '--adapter', 'ada/tiny', '--send-token-to', hub.url);
    expect(byId.status, byId.stderr).toBe(0);
    expect(byId.stderr).toContain('adapter ada/tiny: downloaded');
    expect(JSON.parse(byId.stdout).text).toBe(JSON.parse(fromZip.stdout).text);
    await hub.stop();
    try {
      const offline = await generate(
        {},
        '--model',
        STORIES,
        '--adapter',
        'ada/tiny',
        '--send-token-to',
        hub.url,
      );
      expect(offline.status, offline.stderr).toBe(0);
      expect(offline.stderr).toContain('adapter ada/tiny: read from the cache, no network used');
    } finally {
      await hub.start();
    }
    // Private: without the owner's token it is not there.
    const anonymous = await generate(
      { HF_HOME: xdg },
      '--model',
      STORIES,
      '--adapter',
      'ada/tiny',
      '--revision',
      'main',
    );
    expect(anonymous.status).toBe(1);
  });

  it('publishes a zip with webtune publish: a dry run sends nothing, then the files arrive as they are', async () => {
    const publish = (extra: Record<string, string | undefined>, ...args: string[]) =>
      runCli(['publish', '--adapter', zipFile, '--repo', 'ada/from-cli', ...args], { env: env(extra) });
    hub.requests.length = 0;
    const dry = await publish({}, '--dry-run');
    expect(dry.status, dry.stderr).toBe(0);
    expect(dry.stderr).toMatch(
      /would send to http:\/\/127\.0\.0\.1:\d+, new private repository ada\/from-cli: adapter_config\.json \(/,
    );
    expect(dry.stdout).toContain('PeftModel.from_pretrained(base, "ada/from-cli")');
    expect(hub.requests).toEqual([]);

    const refused = await publish({});
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain(`goes only to huggingface.co unless --send-token-to names ${hub.url}`);
    expect(hub.requests).toEqual([]);

    const sent = await publish({}, '--send-token-to', hub.url, '--json');
    expect(sent.status, sent.stderr).toBe(0);
    expect(JSON.parse(sent.stdout).url).toBe(`${hub.url}/ada/from-cli`);
    const repo = hub.api.pushed.get('ada/from-cli')!;
    expect(repo.private).toBe(true);
    const { unzipSync } = await import('fflate');
    const original = unzipSync(new Uint8Array(fs.readFileSync(zipFile)));
    for (const file of ['adapter_config.json', 'adapter_model.safetensors'])
      expect(repo.files.get(file)!.equals(Buffer.from(original[file])), file).toBe(true);
    expect(repo.files.get('README.md')!.toString('utf8')).toBe(dry.stdout.replace(/\n$/, ''));

    const again = await publish({}, '--send-token-to', hub.url);
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(
      /ada\/from-cli already exists on 127\.0\.0\.1:\d+\. Pick another repository name/,
    );
    const noToken = await publish({ HF_HOME: xdg }, '--send-token-to', hub.url);
    expect(noToken.stderr).toContain('Publishing needs a Hugging Face token with write permission');
  });
});
