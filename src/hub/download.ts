/**
 * One file from the Hub into the device's file store: streamed to storage as it arrives (never held
 * twice in memory), progress with speed, cancellable, and resumed with an HTTP Range request after a
 * dropped connection — within this call, or in a later one from the partial file left behind.
 */
import { hubError, HubError } from './resolve';
import { Sha256 } from './sha256';
import type { FileStore } from './store';

export interface DownloadProgress {
  file: string;
  done: number;
  /** null when the server did not say. */
  total: number | null;
  bytesPerSecond: number;
  /** Bytes that were already on the device when this attempt started. */
  resumedFrom: number;
}

export interface DownloadOptions {
  fetch?: typeof fetch;
  signal?: AbortSignal;
  onProgress?: (progress: DownloadProgress) => void;
  /** Further attempts after a dropped connection or a 5xx answer; each resumes where the last stopped. */
  retries?: number;
  /** Wait before attempt n is n × this. */
  retryDelayMs?: number;
  /**
   * The person's access token, sent as `Authorization: Bearer` to the endpoint only (gated and private
   * repositories). The caller decides whether this endpoint may have it (token.ts, tokenGoesTo).
   */
  token?: string;
  /**
   * The most bytes the file may have (an adapter's files, bounded like an imported zip's): a larger one is
   * refused from its announced size, or the moment it passes the bound, and nothing of it is kept.
   */
  limit?: { bytes: number; refuse: (size: number) => Error };
}

export interface FileRequest {
  url: string;
  /** Key in the store: `<model key>/<file>`. */
  key: string;
  id: string;
  file: string;
  revision: string;
}

export class DownloadCancelled extends HubError {
  override name = 'DownloadCancelled';
  constructor(file: string) {
    super(`Download of ${file} cancelled. What was downloaded is kept; load the model again to continue.`);
  }
}

const wait = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });

/** The total size from `Content-Range: bytes a-b/total`, or Content-Length for a full answer. */
function totalSize(response: Response, resumed: boolean): number | null {
  if (resumed) {
    const total = /\/(\d+)\s*$/.exec(response.headers.get('Content-Range') ?? '')?.[1];
    return total ? Number(total) : null;
  }
  const length = response.headers.get('Content-Length');
  return length === null ? null : Number(length);
}

/** What the Hub publishes for a file it keeps in LFS: its sha256 (X-Linked-Etag) and size (X-Linked-Size). */
function linkedFile(response: Response): { sha256: string | null; size: number | null } {
  const etag =
    /^(?:W\/)?"?([0-9a-f]{64})"?$/i
      .exec(response.headers.get('X-Linked-Etag')?.trim() ?? '')?.[1]
      ?.toLowerCase() ?? null;
  const size = response.headers.get('X-Linked-Size');
  return { sha256: etag, size: size !== null && /^\d+$/.test(size) ? Number(size) : null };
}

/** Bytes of the stored file hashed at once: a checkpoint is read back a piece at a time, never whole. */
const HASH_PIECE = 16 * 2 ** 20;

/** Why the stored file is not the one announced, or null when it is; it is read back a piece at a time. */
async function storedProblem(
  store: FileStore,
  key: string,
  expected: { sha256: string | null; size: number | null },
): Promise<string | null> {
  const source = await store.source(key);
  if (!source) return 'it could not be read back';
  try {
    if (expected.size !== null && source.byteLength !== expected.size)
      return `it has ${source.byteLength} bytes where the server announced ${expected.size}`;
    if (expected.sha256 === null) return null;
    const hash = new Sha256();
    for (let at = 0; at < source.byteLength; at += HASH_PIECE)
      hash.update(source.read(at, Math.min(HASH_PIECE, source.byteLength - at)));
    return hash.hex() === expected.sha256
      ? null
      : `its sha256 is not the ${expected.sha256} the server announced`;
  } finally {
    source.close();
  }
}

/**
 * A finished file must be the one the Hub published: its size and sha256 when the answer named them.
 * A file that is not is deleted, so it is never loaded, and never loaded again from the cache.
 */
async function verifyDownload(
  request: FileRequest,
  store: FileStore,
  expected: { sha256: string | null; size: number | null },
): Promise<void> {
  if (expected.sha256 === null && expected.size === null) return;
  const problem = await storedProblem(store, request.key, expected);
  if (problem === null) return;
  const host = new URL(request.url).host;
  await store.remove(request.key);
  throw new HubError(
    `${request.file} of ${request.id} from ${host} is not the file the server published: ${problem}. It was deleted. ` +
      'Load the model again; if this repeats, the server is sending damaged or altered files: use another endpoint.',
  );
}

/** Downloads the file into `store` (or finishes its partial download) and returns once it is complete. */
export async function downloadFile(
  request: FileRequest,
  store: FileStore,
  options: DownloadOptions = {},
): Promise<void> {
  const fetchImpl = options.fetch ?? fetch;
  const retries = options.retries ?? 4;
  const { signal } = options;
  let lastProblem = '';
  for (let attempt = 0; attempt <= retries; attempt++) {
    if (attempt > 0) await wait(attempt * (options.retryDelayMs ?? 500), signal);
    if (signal?.aborted) throw new DownloadCancelled(request.file);
    const partial = await store.partial(request.key);
    const resumeFrom = partial && partial.size > 0 && partial.etag ? partial.size : 0;
    const headers: Record<string, string> = resumeFrom
      ? { Range: `bytes=${resumeFrom}-`, 'If-Range': partial!.etag! }
      : {};
    // fetch drops Authorization on a redirect to another origin (the Hub's file CDN), as it must.
    if (options.token) headers.Authorization = `Bearer ${options.token}`;

    let response: Response;
    try {
      response = await fetchImpl(request.url, { headers, signal, cache: 'no-store' });
    } catch (error) {
      if (signal?.aborted) throw new DownloadCancelled(request.file);
      lastProblem = `could not reach ${new URL(request.url).host} (${(error as Error).message})`;
      continue;
    }
    if (response.status === 416 && resumeFrom) {
      // The partial file is not a prefix of what the server has now: start over.
      await response.body?.cancel();
      await store.remove(request.key);
      continue;
    }
    if (!response.ok) {
      await response.body?.cancel().catch(() => {});
      const error = hubError(response, request.id, request.file, request.revision, {
        withToken: Boolean(options.token),
        endpoint: new URL(request.url).origin,
      });
      if (response.status >= 500 && attempt < retries) {
        lastProblem = error.message;
        continue;
      }
      throw error;
    }

    const resumed = response.status === 206;
    const start = resumed ? resumeFrom : 0;
    const total = totalSize(response, resumed);
    const { limit } = options;
    if (limit && total !== null && total > limit.bytes) {
      await response.body?.cancel().catch(() => {});
      await store.remove(request.key);
      throw limit.refuse(total);
    }
    const etag = response.headers.get('ETag') ?? response.headers.get('X-Linked-Etag');
    const writer = await store.open(request.key, { etag, append: resumed });
    const began = performance.now();
    let done = start;
    let reported = 0;
    const report = (force = false) => {
      const now = performance.now();
      if (!force && now - reported < 100) return;
      reported = now;
      options.onProgress?.({
        file: request.file,
        done,
        total,
        bytesPerSecond: (done - start) / Math.max((now - began) / 1000, 1e-3),
        resumedFrom: start,
      });
    };
    report(true);
    let overLimit = false;
    try {
      if (!response.body) throw new Error('the answer had no body');
      const reader = response.body.getReader();
      for (;;) {
        const { value, done: finished } = await reader.read();
        if (finished) break;
        if (limit && done + value.byteLength > limit.bytes) {
          overLimit = true;
          done += value.byteLength;
          await reader.cancel().catch(() => {});
          break;
        }
        await writer.write(value);
        done += value.byteLength;
        report();
      }
      if (!overLimit && total !== null && done !== total)
        throw new Error(`the connection closed after ${done} of ${total} bytes`);
    } catch (error) {
      await writer.close();
      if (signal?.aborted) throw new DownloadCancelled(request.file);
      lastProblem = `the connection dropped (${(error as Error).message})`;
      continue;
    }
    if (overLimit) {
      await writer.close();
      await store.remove(request.key);
      throw limit!.refuse(done);
    }
    report(true);
    await writer.finish();
    await verifyDownload(request, store, linkedFile(response));
    return;
  }
  throw new HubError(
    `Downloading ${request.file} of ${request.id} failed: ${lastProblem}. Check your connection and load the model again; it continues where it stopped.`,
  );
}
