/**
 * Gated models against the Hub double: without a token the Hub answers 401 and the message says to add one
 * and accept the licence on the model's page; with a token whose account has no access, 403 and the same
 * page; with access, the model downloads — into a cache folder of its own, so files fetched with and
 * without a token never mix. The page's worker sends the saved token only to the endpoint it was given
 * for, and an adapter by id is bounded like a zip before its weights finish downloading.
 */
import 'fake-indexeddb/auto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FsStore } from '../src/cli/fs-store';
import { closeWeights, type WeightsSource } from '../src/engine/weights-source';
import { fetchHubAdapter } from '../src/hub/adapter';
import { fetchHubModel, modelKey } from '../src/hub/model';
import { MemoryStore } from '../src/hub/store';
import { HostDriver } from './helpers/host';
import { startHubServer, type HubServer } from './helpers/hub-server';
import { modelDir } from './helpers/paths';

const GATED = 'webtune-test/gated-stories';
const ADA = 'hf_adaHasAcceptedTheLicence1';
const BOB = 'hf_bobHasNotAcceptedIt22222';

describe('gated models', () => {
  let hub: HubServer;
  let other: HubServer;
  let cacheDir: string;
  const opened: WeightsSource[][] = [];
  afterEach(() => opened.splice(0).forEach(closeWeights));
  const load = async (token?: string) => {
    const files = await fetchHubModel(GATED, {
      endpoint: hub.url,
      store: new FsStore(cacheDir),
      token,
      retries: 0,
    });
    opened.push(files.weights);
    return files;
  };
  const refusal = (token?: string) =>
    load(token).then(
      () => 'loaded',
      (e: Error) => e.message,
    );

  beforeAll(async () => {
    const options = {
      repos: { [GATED]: modelDir('stories260K') },
      tokens: {
        [ADA]: { name: 'ada', role: 'read' as const },
        [BOB]: { name: 'bob', role: 'read' as const },
      },
      gated: { [GATED]: ['ada'] },
    };
    hub = await startHubServer(options);
    other = await startHubServer(options);
    cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-gated-'));
  });
  afterAll(async () => {
    await hub.close();
    await other.close();
  });

  it('says to add a token and accept the licence, with the page to do it on, when there is none', async () => {
    const message = await refusal();
    expect(message).toContain(`${GATED} is gated (401)`);
    expect(message).toContain(`accept its licence at ${hub.url}/${GATED}`);
    expect(message).toMatch(/Add your token under "Hugging Face account" \(the CLI reads HF_TOKEN\)/);
    expect(hub.requests.every((r) => r.authorization === null)).toBe(true);
  });

  it('says the account has no access yet for a token whose owner has not accepted the licence', async () => {
    const message = await refusal(BOB);
    expect(message).toContain('your account has not been given access yet (403)');
    expect(message).toContain(`Open ${hub.url}/${GATED}, accept its licence`);
    expect(message).not.toContain(BOB);
  });

  it('downloads with an accepted token, into a folder of its own', async () => {
    const files = await load(ADA);
    expect(files.fromCache).toBe(false);
    const weights = fs.readFileSync(path.join(modelDir('stories260K'), 'model.safetensors'));
    expect(Buffer.from(files.weights[0].read(0, files.weights[0].byteLength)).equals(weights)).toBe(true);
    const tokenFolder = path.join(cacheDir, modelKey(hub.url, GATED, 'main', true));
    expect(tokenFolder).toMatch(/\+token/);
    expect(fs.existsSync(path.join(tokenFolder, 'model.safetensors'))).toBe(true);
    expect(fs.existsSync(path.join(cacheDir, modelKey(hub.url, GATED, 'main')))).toBe(false);
    // Cached with the token, the files are not handed out without one.
    expect(await refusal()).toContain('is gated (401)');
    expect((await load(ADA)).fromCache).toBe(true);
  });

  it("sends the page's saved token only to the endpoint it was given for", async () => {
    const driver = new HostDriver();
    try {
      await driver.send('hubToken', { action: 'save', token: ADA, endpoint: hub.url });
      other.requests.length = 0;
      const message = await driver
        .send('loadHubModel', { id: GATED, revision: 'main', endpoint: other.url })
        .then(
          () => 'loaded',
          (e: Error) => e.message,
        );
      expect(message).toContain('is gated (401)');
      expect(other.requests.length).toBeGreaterThan(0);
      expect(other.requests.some((r) => r.raw.includes(ADA))).toBe(false);
      hub.requests.length = 0;
      const summary = await driver.send('loadHubModel', { id: GATED, revision: 'main', endpoint: hub.url });
      expect(summary.name).toBe(GATED);
      expect(
        hub.requests.filter((r) => r.method === 'GET').every((r) => r.authorization === `Bearer ${ADA}`),
      ).toBe(true);
    } finally {
      await driver.send('hubToken', { action: 'forget' });
      driver.dispose();
    }
  });

  it("refuses an adapter's weights past what its rank can need, before they finish downloading", async () => {
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-big-adapter-'));
    fs.writeFileSync(
      path.join(folder, 'adapter_config.json'),
      JSON.stringify({ r: 1, lora_alpha: 2, target_modules: ['q_proj'], peft_type: 'LORA' }),
    );
    // 40 MB of zeros: a rank-1 adapter of this 64-wide model needs a few KB plus 16 MB of header room.
    fs.writeFileSync(path.join(folder, 'adapter_model.safetensors'), Buffer.alloc(40_000_000));
    const server = await startHubServer({ repos: { 'someone/huge': folder } });
    try {
      server.setFault('adapter_model.safetensors', { kind: 'no-length', times: 5 });
      const message = await fetchHubAdapter('someone/huge', {
        endpoint: server.url,
        store: new MemoryStore(),
        model: { numLayers: 5, shapes: () => ({ in: 64, out: 64 }) },
        retries: 0,
      }).then(
        () => 'accepted',
        (e: Error) => e.message,
      );
      expect(message).toMatch(
        /adapter_model\.safetensors of someone\/huge is at least 16\.\d MB, but a rank-1 adapter/,
      );
      const sent = server.requests.find((r) => r.path.endsWith('adapter_model.safetensors'))!;
      expect(sent.bytes).toBeLessThan(40_000_000);
    } finally {
      await server.close();
    }
  });
});
