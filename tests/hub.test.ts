/**
 * Models by Hub id against a local double of the Hub (tests/helpers/hub-server.ts): progress, resuming
 * after a dropped connection, clear errors for a missing model, a server error and an unsupported
 * architecture (refused before any weights), sharded checkpoints, loading from the cache with the
 * server stopped, and deleting the cache. The loaded models are checked against the PyTorch reference.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FsStore } from '../src/cli/fs-store';
import { loadModel } from '../src/engine/load';
import { disposeModel } from '../src/engine/model';
import { readSafetensors, writeSafetensors } from '../src/engine/safetensors';
import { scoreTokens } from '../src/engine/score';
import { closeWeights, type WeightsSource } from '../src/engine/weights-source';
import { cachedModels, fetchHubModel, modelKey } from '../src/hub/model';
import { startHubServer, type HubServer } from './helpers/hub-server';
import { maxAbsDiff, modelDir, reference, switchBackend } from './helpers/shared';

const STORIES = 'webtune-test/stories260K';
const SHARDED = 'webtune-test/stories260K-sharded';
const GPT2 = 'webtune-test/gpt2-shaped';

/** stories260K split into two shards with an index, as large checkpoints are published. */
function shardedCopy(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-sharded-'));
  const source = modelDir('stories260K');
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json'])
    fs.copyFileSync(path.join(source, f), path.join(dir, f));
  const { tensors } = readSafetensors(
    new Uint8Array(fs.readFileSync(path.join(source, 'model.safetensors'))),
  );
  const names = [...tensors.keys()];
  const halves = [names.slice(0, names.length / 2), names.slice(names.length / 2)];
  const weightMap: Record<string, string> = {};
  halves.forEach((half, i) => {
    const file = `model-0000${i + 1}-of-00002.safetensors`;
    fs.writeFileSync(
      path.join(dir, file),
      writeSafetensors(
        half.map((n) => [n, tensors.get(n)!] as [string, { shape: number[]; data: Float32Array }]),
        { format: 'pt' },
      ),
    );
    for (const n of half) weightMap[n] = file;
  });
  fs.writeFileSync(
    path.join(dir, 'model.safetensors.index.json'),
    JSON.stringify({ metadata: {}, weight_map: weightMap }),
  );
  return dir;
}

/** A folder whose config.json names an architecture webtune does not run. */
function gpt2Shaped(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-gpt2-'));
  const source = modelDir('stories260K');
  for (const f of fs.readdirSync(source)) fs.copyFileSync(path.join(source, f), path.join(dir, f));
  fs.writeFileSync(
    path.join(dir, 'config.json'),
    JSON.stringify({ model_type: 'gpt2', n_embd: 64, n_layer: 5 }),
  );
  return dir;
}

describe('models from the Hub', () => {
  let hub: HubServer;
  let cacheDir: string;
  const store = () => new FsStore(cacheDir);
  /** Every model loaded: its weights are open files until the test ends. */
  const opened: WeightsSource[][] = [];
  const load = async (id: string, extra: Partial<Parameters<typeof fetchHubModel>[1]> = {}) => {
    const files = await fetchHubModel(id, { endpoint: hub.url, store: store(), retryDelayMs: 10, ...extra });
    opened.push(files.weights);
    return files;
  };
  afterEach(() => opened.splice(0).forEach(closeWeights));
  const weightRequests = (repo: string) =>
    hub.requests.filter((r) => r.path.startsWith(`/${repo}/`) && r.path.endsWith('.safetensors'));

  beforeAll(async () => {
    await switchBackend('cpu');
    hub = await startHubServer({
      repos: { [STORIES]: modelDir('stories260K'), [SHARDED]: shardedCopy(), [GPT2]: gpt2Shaped() },
    });
    cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-cache-'));
  });
  afterAll(async () => {
    await hub.close();
  });

  it('downloads with progress, resumes after a dropped connection with a Range request, and scores like the reference', async () => {
    const size = fs.statSync(path.join(modelDir('stories260K'), 'model.safetensors')).size;
    hub.setFault('model.safetensors', { kind: 'drop', afterBytes: Math.floor(size / 3) });
    const progress: { file: string; done: number; total: number | null; resumedFrom: number }[] = [];
    const files = await load(STORIES, { onProgress: (p) => progress.push(p) });
    expect(files.fromCache).toBe(false);
    const weights = progress.filter((p) => p.file === 'model.safetensors');
    expect(weights.at(-1)).toMatchObject({ done: size, total: size });
    // The second attempt asked only for the rest of the file.
    const requests = weightRequests(STORIES);
    expect(requests.length).toBe(2);
    expect(requests[1].range).toMatch(/^bytes=\d+-$/);
    const resumedAt = Number(/bytes=(\d+)-/.exec(requests[1].range!)![1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(weights.some((p) => p.resumedFrom === resumedAt)).toBe(true);
    // Byte for byte the file the server has.
    expect(
      Buffer.from(files.weights[0].read(0, files.weights[0].byteLength)).equals(
        fs.readFileSync(path.join(modelDir('stories260K'), 'model.safetensors')),
      ),
    ).toBe(true);

    const loaded = loadModel({ ...files, name: files.name });
    const ref = reference<{ ids: number[]; logprobs: number[] }>('stories260K', 'score-lily.json');
    const scored = await scoreTokens(loaded.model, ref.ids);
    expect(maxAbsDiff(scored.logprobs, ref.logprobs)).toBeLessThan(1e-4);
    disposeModel(loaded.model);
  });

  it('loads a cached model with the server stopped, and no longer once the cache is deleted', async () => {
    await hub.stop();
    try {
      const files = await load(STORIES);
      expect(files.fromCache).toBe(true);
      const cached = await cachedModels(store());
      const key = modelKey(hub.url, STORIES, 'main');
      expect(cached.find((c) => c.key === key)?.bytes).toBe(files.bytes);
      await store().remove(key);
      expect((await cachedModels(store())).find((c) => c.key === key)).toBeUndefined();
      await expect(load(STORIES, { retries: 1 })).rejects.toThrow(/could not reach 127\.0\.0\.1/);
    } finally {
      await hub.start();
    }
  });

  it('follows model.safetensors.index.json to the shards of a sharded checkpoint', async () => {
    const files = await load(SHARDED);
    expect(files.weights).toHaveLength(2);
    const loaded = loadModel({ ...files });
    const ref = reference<{ ids: number[]; logprobs: number[] }>('stories260K', 'score-lily.json');
    expect(maxAbsDiff((await scoreTokens(loaded.model, ref.ids)).logprobs, ref.logprobs)).toBeLessThan(1e-4);
    disposeModel(loaded.model);
  });

  it('says clearly when a model does not exist, the server fails, or the architecture is unsupported (before any weights)', async () => {
    await expect(load('nobody/nothing')).rejects.toThrow(/no model "nobody\/nothing" on the Hub/);
    hub.setFault('config.json', { kind: 'status', status: 500, times: 2 });
    await expect(load(GPT2, { retries: 1 })).rejects.toThrow(
      /The Hub had a problem sending config\.json \(500/,
    );
    hub.clearFaults();
    await expect(load(GPT2)).rejects.toThrow(/Model type "gpt2" is not supported/);
    expect(weightRequests(GPT2)).toEqual([]);
  });
});
