/**
 * A model by Hub id: config.json first (an unsupported architecture is refused before any weights are
 * downloaded), then the tokenizer, the model card's license and the weights — one model.safetensors or
 * the shards listed in model.safetensors.index.json. Every file is cached on the device; a model whose
 * files are all cached loads without touching the network.
 */
import type { ModelFiles } from '../engine/model-files';
import type { WeightsSource } from '../engine/weights-source';
import { parseModelConfig, type ModelArgs } from '../engine/config';
import { downloadFile, type DownloadOptions } from './download';
import {
  DEFAULT_ENDPOINT,
  DEFAULT_REVISION,
  checkHubId,
  HubError,
  normalizeEndpoint,
  resolveUrl,
} from './resolve';
import { shardNamesFromIndex } from './shard-index';
import { exclusively } from '../store/locks';
import type { FileStore } from './store';

export interface HubModelOptions extends DownloadOptions {
  endpoint?: string;
  revision?: string;
  store: FileStore;
  /** Called once config.json is read and accepted, before the big downloads start. */
  onConfig?: (args: ModelArgs) => void;
}

/** A model folder's files as the engine takes them, plus what the Hub says about them. */
export interface HubModelFiles extends ModelFiles {
  /**
   * model.safetensors, or its shards in index order, opened in the store (read a tensor at a time, never
   * whole): the caller closes them with closeWeights.
   */
  weights: WeightsSource[];
  /** As the model card (README.md) states it; null when it does not. */
  license: string | null;
  /** Bytes of every file of the model on the device. */
  bytes: number;
  /** Every file came from the device's cache: no network was used. */
  fromCache: boolean;
}

/**
 * The cache's folder for one model revision: `<endpoint>/<owner>/<name>/<revision>`, where an https
 * endpoint is written as its host (folders made before this rule stay valid) and an http one (only
 * allowed on this machine) as `http+<host>`. The endpoint is a bare origin, so files from different
 * servers can never share a folder. Files fetched with the person's token live under `<host>+token`, so
 * a gated model's files and files fetched without a token never share a folder either.
 */
export function modelKey(endpoint: string, id: string, revision: string, withToken = false): string {
  const url = new URL(normalizeEndpoint(endpoint));
  const host = url.protocol === 'https:' ? url.host : `http+${url.host}`;
  return `${host}${withToken ? '+token' : ''}/${id}/${revision}`;
}

const WEIGHTS = 'model.safetensors';
const INDEX = 'model.safetensors.index.json';
/** Marks a file the Hub does not have (an empty cache entry beside where it would be). */
const ABSENT = '.absent';

/** The `license:` of a model card's YAML front matter. */
export function licenseFromCard(card: string): string | null {
  const front = /^---\r?\n([\s\S]*?)\r?\n---/.exec(card)?.[1];
  const line = front && /^license:\s*(.+)$/m.exec(front)?.[1];
  return line ? line.trim().replace(/^['"]|['"]$/g, '') : null;
}

/**
 * The shards the index lists, checked as for a local folder (src/hub/shard-index.ts): .safetensors files, no
 * '..' or absolute paths.
 */
function shardNames(indexJson: string): string[] {
  try {
    return shardNamesFromIndex(indexJson);
  } catch (error) {
    throw new HubError((error as Error).message);
  }
}

export async function fetchHubModel(rawId: string, options: HubModelOptions): Promise<HubModelFiles> {
  const id = checkHubId(rawId);
  const endpoint = normalizeEndpoint(options.endpoint ?? DEFAULT_ENDPOINT);
  const revision = options.revision ?? DEFAULT_REVISION;
  const { store } = options;
  // A model begun without a token (a public one) goes on being read and fetched that way, token or not.
  const publicFolder = modelKey(endpoint, id, revision);
  const token =
    options.token && (await store.size(`${publicFolder}/config.json`)) === null ? options.token : undefined;
  const folder = modelKey(endpoint, id, revision, token !== undefined);
  let fromCache = true;
  let bytes = 0;
  const decoder = new TextDecoder();

  /**
   * The file in the cache, downloading it first if needed; false for a missing optional file. One tab
   * at a time: a second tab waits, then finds the file complete instead of appending to it.
   */
  const ensure = (file: string, optional = false) =>
    exclusively(`${folder}/${file}`, () => ensureUnshared(file, optional));
  async function ensureUnshared(file: string, optional: boolean): Promise<boolean> {
    const key = `${folder}/${file}`;
    if ((await store.size(key)) !== null) return true;
    // A file the Hub said it does not have is remembered too, so a cached model needs no network at all.
    if (optional && (await store.size(key + ABSENT)) !== null) return false;
    fromCache = false;
    try {
      await downloadFile({ url: resolveUrl(endpoint, id, revision, file), key, id, file, revision }, store, {
        ...options,
        token,
      });
    } catch (error) {
      if (optional && error instanceof HubError && error.status === 404) {
        await (await store.open(key + ABSENT, { etag: null, append: false })).finish();
        return false;
      }
      throw error;
    }
    return true;
  }
  const unreadable = (file: string) =>
    new HubError(
      `${file} was downloaded but could not be read back from this device's storage. Free some space and try again.`,
    );
  /** A small file's bytes. */
  async function get(file: string, optional = false): Promise<Uint8Array | null> {
    if (!(await ensure(file, optional))) return null;
    const data = await store.read(`${folder}/${file}`);
    if (!data) throw unreadable(file);
    bytes += data.byteLength;
    return data;
  }
  /** A weights file, opened to be read a tensor at a time. */
  async function openWeights(file: string, optional = false): Promise<WeightsSource | null> {
    if (!(await ensure(file, optional))) return null;
    const source = await store.source(`${folder}/${file}`);
    if (!source) throw unreadable(file);
    bytes += source.byteLength;
    return source;
  }
  const text = async (file: string) => decoder.decode((await get(file))!);

  const config = await text('config.json');
  let args: ModelArgs;
  try {
    args = parseModelConfig(JSON.parse(config));
  } catch (error) {
    throw new HubError(`${id} cannot be used: ${(error as Error).message}`);
  }
  options.onConfig?.(args);
  const tokenizerJson = await text('tokenizer.json');
  const tokenizerConfig = await text('tokenizer_config.json');
  const card = await get('README.md', true);
  const license = card ? licenseFromCard(decoder.decode(card)) : null;

  // A cached index means a sharded model; otherwise try the single file and fall back to the index.
  const weights: WeightsSource[] = [];
  try {
    const cachedIndex = await store.read(`${folder}/${INDEX}`);
    const single = cachedIndex ? null : await openWeights(WEIGHTS, true);
    if (single) weights.push(single);
    else {
      const index = decoder.decode((await get(INDEX, true)) ?? fail(id));
      for (const shard of shardNames(index)) weights.push((await openWeights(shard))!);
    }
  } catch (error) {
    for (const source of weights) source.close();
    throw error;
  }
  return { name: id, config, tokenizerJson, tokenizerConfig, weights, license, bytes, fromCache };
}

function fail(id: string): never {
  throw new HubError(
    `${id} has neither ${WEIGHTS} nor ${INDEX}. webtune reads safetensors weights only; pick a model that has them.`,
    404,
  );
}

/** Each cached model revision with its size on the device. */
export async function cachedModels(store: FileStore): Promise<{ key: string; bytes: number }[]> {
  const sizes = new Map<string, number>();
  for (const { key, size } of await store.list()) {
    if (key.endsWith(ABSENT)) continue;
    const folder = key.split('/').slice(0, 4).join('/');
    sizes.set(folder, (sizes.get(folder) ?? 0) + size);
  }
  return [...sizes].map(([key, bytes]) => ({ key, bytes }));
}
