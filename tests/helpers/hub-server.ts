/**
 * A local double of the Hugging Face Hub's file server, for tests of resumable, cached downloads in Node
 * and from a page on another port: `GET|HEAD /<repo id>/resolve/<revision>/<path>` served from fixture
 * folders in place, with Range, If-Range and strong ETags as the Hub answers them, the Hub's
 * `X-Error-Code`s, LFS-style `X-Linked-*` headers, CORS readable under COEP require-corp, and injected
 * faults (a connection dropped mid-file, an error status, a slow link, a server that goes quiet).
 * `stop()` refuses connections on the same port until `start()`.
 *
 * The real Hub redirects LFS files to a CDN; this double serves them directly, which is what a client
 * sees after following the redirect.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { HubApi, type HubApiOptions } from './hub-api';

/**
 * A fault injected into the answers for one file, set with `setFault(key, fault)`. The key is either
 * '<repo id>/<path in repo>' ('webtune-test/stories260K/model.safetensors') for that repo only, or
 * '<path in repo>' ('model.safetensors', 'onnx/model.onnx') for that file in every repo; when both
 * match, the repo-specific one wins. Setting a key again replaces its fault and restarts its count.
 *
 * - `drop`: headers, then `afterBytes` bytes of the body (counted from the start of this answer, and
 *   never the whole body, so it is always short), then the socket is destroyed.
 * - `status`: that status instead of the file, with a small JSON body (404 carries EntryNotFound).
 * - `slow`: the body trickles out in small chunks at about `bytesPerSecond`, until cleared.
 * - `hang`: headers, then nothing until the client gives up or the server stops.
 * - `no-length`: the body without Content-Length (sent chunked).
 *
 * `drop`, `status`, `hang` and `no-length` hit the next `times` requests (default 1), then the file is served
 * normally. `drop`, `slow` and `hang` shape a body, so HEAD requests pass them by untouched; `status`
 * answers HEAD too, and a HEAD counts towards its `times`.
 */
export type Fault =
  | { kind: 'drop'; afterBytes: number; times?: number }
  | { kind: 'status'; status: 404 | 500 | 503; times?: number }
  | { kind: 'slow'; bytesPerSecond: number }
  /** The body without Content-Length (chunked), as some servers and proxies send it. */
  | { kind: 'no-length'; times?: number }
  | { kind: 'hang'; times?: number };

/** One request as the server saw it. */
export interface HubRequest {
  method: string;
  /** The decoded URL path, without the query string. */
  path: string;
  /** The Range header as sent, or null. */
  range: string | null;
  /** The status sent (0 if the request is still being read). */
  status: number;
  /** Body bytes written so far; short for a dropped or hung answer. */
  bytes: number;
  /** The injected fault that shaped this answer, if any. */
  fault: Fault['kind'] | null;
  /** The Authorization header as sent, or null. */
  authorization: string | null;
  /** The request's target (path and query), headers and body bytes as text: to search for a token. */
  raw: string;
}

export interface HubServer {
  /** http://<host>:<port>, without a trailing slash; the same across stop() and start(). */
  url: string;
  /** Every request in arrival order, preflights included. Tests may clear it (`requests.length = 0`). */
  requests: HubRequest[];
  setFault(key: string, fault: Fault): void;
  clearFaults(): void;
  /** Closes the port and every open connection: new requests fail with ECONNREFUSED. */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
  /** stop(), for good. */
  close(): Promise<void>;
  /** Accounts, gated repositories, and what was published (tests/helpers/hub-api.ts). */
  api: HubApi;
}

export interface HubServerOptions extends HubApiOptions {
  /** Repo id ("HuggingFaceTB/SmolLM2-135M-Instruct", "webtune-test/stories260K") → local folder. */
  repos: Record<string, string>;
  /** Interface to listen on; 127.0.0.1 unless given. */
  host?: string;
}

/** The commit every revision resolves to; any other 40-hex revision is accepted as an alias of main. */
export const HUB_COMMIT = '0123456789abcdef0123456789abcdef01234567';

/** Files the Hub keeps in LFS (and so answers with X-Linked-Etag / X-Linked-Size). */
const LFS_MIN_BYTES = 1024 * 1024;

const CORS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Expose-Headers':
    'Content-Length, Content-Range, ETag, X-Linked-Etag, X-Linked-Size, X-Repo-Commit, X-Error-Code, Accept-Ranges',
  'Cross-Origin-Resource-Policy': 'cross-origin',
};
const PREFLIGHT = {
  'Access-Control-Allow-Headers': 'Range, If-Range, Authorization, Content-Type, Accept, X-Request-Id',
  'Access-Control-Allow-Methods': 'GET, HEAD, POST, PUT',
};

type ActiveFault = Fault & { used: number };

export async function startHubServer(options: HubServerOptions): Promise<HubServer> {
  const host = options.host ?? '127.0.0.1';
  const repos = new Map(Object.entries(options.repos).map(([id, folder]) => [id, path.resolve(folder)]));
  const faults = new Map<string, ActiveFault>();
  const requests: HubRequest[] = [];
  const sockets = new Set<Socket>();
  // Hashing a large checkpoint takes a while; do it once per file, without blocking other requests.
  const etags = new Map<string, Promise<string>>();
  const etagOf = (file: string) => {
    if (!etags.has(file))
      etags.set(
        file,
        sha256(file).then((hex) => `"${hex}"`),
      );
    return etags.get(file)!;
  };

  /** The fault set for this file, if it still has requests to spoil (`slow` always has). */
  const faultFor = (repo: string, file: string): ActiveFault | undefined => {
    const fault = faults.get(`${repo}/${file}`) ?? faults.get(file);
    if (!fault || (fault.kind !== 'slow' && fault.used >= (fault.times ?? 1))) return undefined;
    return fault;
  };

  let baseUrl = '';
  const api = new HubApi(
    options,
    () => baseUrl,
    (repo, folder) => repos.set(repo, folder),
  );

  async function answer(req: http.IncomingMessage, res: http.ServerResponse, log: HubRequest, body: Buffer) {
    const head = (status: number, headers: Record<string, string | number>) => {
      log.status = status;
      res.writeHead(status, { ...CORS, ...headers });
    };
    const error = (status: number, code: string | null, message: string) => {
      const body = JSON.stringify({ error: message });
      head(status, {
        'Content-Type': 'application/json',
        'Content-Length': Buffer.byteLength(body),
        ...(code ? { 'X-Error-Code': code } : {}),
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    };

    if (req.method === 'OPTIONS') {
      head(204, PREFLIGHT);
      return res.end();
    }
    const sent = (status: number, headers: Record<string, string | number>, text?: Buffer | string) => {
      head(status, text === undefined ? headers : { ...headers, 'Content-Length': Buffer.byteLength(text) });
      res.end(text);
    };
    if (api.handle(req, log.path, body, sent)) return;
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return error(405, null, `${req.method} is not supported here`);
    // The first "/resolve/" splits the repo id (which may lack an owner, like "gpt2") from the rest.
    const match = /^\/(.+?)\/resolve\/([^/]+)\/(.+)$/.exec(log.path);
    if (!match) return error(404, null, 'Not found');
    const [, repo, revision, file] = match;
    const folder = repos.get(repo);
    if (!folder) return error(404, 'RepoNotFound', `Repository not found: ${repo}`);
    const refusal = api.readRefusal(req, repo);
    if (refusal)
      return error(
        refusal.status,
        refusal.code,
        `Access to model ${repo} is restricted. Visit ${baseUrl}/${repo}.`,
      );
    if (revision !== 'main' && !/^[0-9a-f]{40}$/.test(revision))
      return error(404, 'RevisionNotFound', `Invalid rev id: ${revision}`);

    // A failing server fails whether or not it has the file; the other faults need a body to spoil.
    const fault = faultFor(repo, file);
    if (fault?.kind === 'status') {
      fault.used++;
      log.fault = fault.kind;
      return error(
        fault.status,
        fault.status === 404 ? 'EntryNotFound' : null,
        `Injected ${fault.status} for ${file}`,
      );
    }
    const full = path.resolve(folder, file);
    const inside = full.startsWith(folder + path.sep);
    if (!inside || !fs.existsSync(full) || !fs.statSync(full).isFile()) {
      return error(404, 'EntryNotFound', `${file} does not exist on "${revision}" of ${repo}`);
    }

    const size = fs.statSync(full).size;
    const etag = await etagOf(full);
    const range = byteRange(req.headers.range, size);
    const ifRange = req.headers['if-range'];
    const honourRange = range !== null && (ifRange === undefined || ifRange === etag);
    if (honourRange && range === 'unsatisfiable') {
      head(416, { 'Content-Range': `bytes */${size}`, ETag: etag, 'X-Repo-Commit': HUB_COMMIT });
      return res.end();
    }
    const [start, end] = honourRange && range !== 'unsatisfiable' ? range : [0, size - 1];
    const length = end - start + 1;
    head(honourRange ? 206 : 200, {
      'Content-Type': file.endsWith('.json') ? 'application/json' : 'application/octet-stream',
      ...(fault?.kind === 'no-length' ? {} : { 'Content-Length': length }),
      'Accept-Ranges': 'bytes',
      ETag: etag,
      'X-Repo-Commit': HUB_COMMIT,
      ...(file.endsWith('.safetensors') || size > LFS_MIN_BYTES
        ? { 'X-Linked-Etag': etag, 'X-Linked-Size': size }
        : {}),
      ...(honourRange ? { 'Content-Range': `bytes ${start}-${end}/${size}` } : {}),
    });
    if (req.method === 'HEAD') return res.end();

    if (fault) {
      if (fault.kind !== 'slow') fault.used++;
      log.fault = fault.kind;
    }
    if (fault?.kind === 'hang') {
      // Headers reach the client, then silence; stop() or the client's abort ends it.
      res.flushHeaders();
      return;
    }
    if (fault?.kind === 'drop') {
      const sent = Math.max(0, Math.min(fault.afterBytes, length - 1));
      res.flushHeaders();
      await streamBody(res, full, start, sent, log);
      // Everything written has reached the kernel, so the client gets those bytes, then a closed socket.
      req.socket.destroy();
      return;
    }
    if (
      await streamBody(
        res,
        full,
        start,
        length,
        log,
        fault?.kind === 'slow' ? fault.bytesPerSecond : undefined,
      )
    )
      res.end();
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://hub');
    let decoded = url.pathname;
    try {
      decoded = decodeURIComponent(url.pathname);
    } catch {
      // A malformed escape stays as sent; it will not name a file.
    }
    const log: HubRequest = {
      method: req.method ?? 'GET',
      path: decoded,
      range: req.headers.range ?? null,
      status: 0,
      bytes: 0,
      fault: null,
      authorization: req.headers.authorization ?? null,
      raw: `${req.url ?? ''}\n${JSON.stringify(req.headers)}\n`,
    };
    requests.push(log);
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      log.raw += body.toString('latin1');
      answer(req, res, log, body).catch(() => res.destroy());
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  const stop = () =>
    new Promise<void>((resolve) => {
      if (!server.listening) return resolve();
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    });

  await listen(0);
  const port = (server.address() as AddressInfo).port;
  let closed = false;
  baseUrl = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return {
    url: baseUrl,
    api,
    requests,
    setFault: (key, fault) => faults.set(key, { ...fault, used: 0 }),
    clearFaults: () => faults.clear(),
    stop,
    start: async () => {
      if (closed) throw new Error('This Hub double was closed; start a new one.');
      if (!server.listening) await listen(port);
    },
    close: async () => {
      closed = true;
      await stop();
    },
  };
}

/**
 * The single byte range a Range header asks for, [first, last] inclusive and clamped to the file;
 * 'unsatisfiable' when it starts past the end; null when there is no usable header (absent, malformed,
 * several ranges, or last < first), which RFC 9110 says to ignore by sending the whole file.
 */
function byteRange(header: string | undefined, size: number): [number, number] | 'unsatisfiable' | null {
  const match = /^bytes=(\d*)-(\d*)$/.exec(header?.trim() ?? '');
  if (!match || (match[1] === '' && match[2] === '')) return null;
  if (match[1] === '') {
    // "bytes=-n": the last n bytes.
    const suffix = Number(match[2]);
    return suffix === 0 || size === 0 ? 'unsatisfiable' : [Math.max(0, size - suffix), size - 1];
  }
  const first = Number(match[1]);
  const last = match[2] === '' ? Infinity : Number(match[2]);
  if (last < first) return null;
  return first >= size ? 'unsatisfiable' : [first, Math.min(last, size - 1)];
}

/**
 * Writes `length` bytes of a file from `start`, each chunk awaited until it has left the process (so a
 * socket destroyed afterwards still delivers it), at about `bytesPerSecond` if given. False if the
 * client went away first.
 */
async function streamBody(
  res: http.ServerResponse,
  file: string,
  start: number,
  length: number,
  log: HubRequest,
  bytesPerSecond?: number,
): Promise<boolean> {
  if (length <= 0) return !res.destroyed;
  // Twenty small chunks a second reads as a steady trickle to a progress bar.
  const chunkSize = bytesPerSecond
    ? Math.min(64 * 1024, Math.max(1, Math.floor(bytesPerSecond / 20)))
    : 64 * 1024;
  const began = Date.now();
  const stream = fs.createReadStream(file, { start, end: start + length - 1, highWaterMark: chunkSize });
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (bytesPerSecond) {
        // Pace by the total so far rather than per chunk, so timer slack does not add up.
        const due = began + ((log.bytes + chunk.length) / bytesPerSecond) * 1000;
        const wait = due - Date.now();
        if (wait > 0) await sleep(wait);
      }
      if (!(await writeChunk(res, chunk))) return false;
      log.bytes += chunk.length;
    }
  } finally {
    stream.destroy();
  }
  return !res.destroyed;
}

function writeChunk(res: http.ServerResponse, chunk: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    if (res.destroyed) return resolve(false);
    const onClose = () => resolve(false);
    res.once('close', onClose);
    res.write(chunk, (err) => {
      res.off('close', onClose);
      resolve(!err && !res.destroyed);
    });
  });
}

function sha256(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    fs.createReadStream(file)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}
