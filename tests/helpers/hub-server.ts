/**
 * A local double of the Hugging Face Hub's file server for download tests: `GET|HEAD
 * /<owner>/<name>/resolve/<revision>/<file>` served from fixture folders, with Range, If-Range and ETag
 * as the Hub answers them, the Hub's error codes, CORS for a page on another port, and injected faults
 * (a connection dropped mid-file, an error status, a slow link). `stop()` refuses connections on the
 * same port until `start()`.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import path from 'node:path';

/** Faults are keyed by file name ("model.safetensors"), applying to that file in every repo. */
export type Fault =
  | { kind: 'drop'; afterBytes: number; times?: number }
  | { kind: 'status'; status: number; times?: number }
  | { kind: 'slow'; bytesPerSecond: number };

export interface HubRequest {
  method: string;
  path: string;
  range: string | null;
  status: number;
}

export interface HubServer {
  url: string;
  requests: HubRequest[];
  setFault(file: string, fault: Fault): void;
  clearFaults(): void;
  /** Closes the port: requests fail with connection refused. */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
  close(): Promise<void>;
}

const COMMIT = '0123456789abcdef0123456789abcdef01234567';
const CORS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Expose-Headers': 'Content-Length, Content-Range, ETag, X-Linked-Etag, X-Linked-Size, X-Repo-Commit, X-Error-Code, Accept-Ranges',
  'Cross-Origin-Resource-Policy': 'cross-origin',
};

export async function startHubServer(options: { repos: Record<string, string> }): Promise<HubServer> {
  const faults = new Map<string, Fault & { used: number }>();
  const requests: HubRequest[] = [];
  const etags = new Map<string, string>();
  const sockets = new Set<Socket>();
  const etagOf = (file: string) => {
    if (!etags.has(file)) etags.set(file, `"${createHash('sha256').update(fs.readFileSync(file)).digest('hex')}"`);
    return etags.get(file)!;
  };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const log: HubRequest = { method: req.method ?? 'GET', path: decodeURIComponent(url.pathname), range: req.headers.range ?? null, status: 0 };
    requests.push(log);
    const send = (status: number, headers: Record<string, string | number> = {}, body?: string) => {
      log.status = status;
      res.writeHead(status, { ...CORS, ...headers });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    const error = (status: number, code: string, message: string) => send(status, { 'Content-Type': 'application/json', 'X-Error-Code': code }, JSON.stringify({ error: message }));

    if (req.method === 'OPTIONS') {
      return send(204, { 'Access-Control-Allow-Headers': 'Range, If-Range, Authorization, Content-Type', 'Access-Control-Allow-Methods': 'GET, HEAD' });
    }
    const match = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(log.path);
    if (!match || (req.method !== 'GET' && req.method !== 'HEAD')) return error(404, 'EntryNotFound', 'Not found');
    const [, repo, revision, file] = match;
    const folder = options.repos[repo];
    if (!folder) return error(404, 'RepoNotFound', `Repository ${repo} not found`);
    if (revision !== 'main' && !/^[0-9a-f]{40}$/.test(revision)) return error(404, 'RevisionNotFound', `Revision ${revision} not found`);

    const fault = faults.get(path.basename(file));
    const limited = fault && fault.kind !== 'slow' && fault.used < (fault.times ?? 1);
    if (limited && fault.kind === 'status') {
      fault.used++;
      return error(fault.status, 'Fault', `Injected ${fault.status}`);
    }
    const full = path.join(folder, file);
    if (file.includes('..') || !fs.existsSync(full) || !fs.statSync(full).isFile()) return error(404, 'EntryNotFound', `${file} not found in ${repo}`);

    const size = fs.statSync(full).size;
    const etag = etagOf(full);
    let start = 0;
    let end = size - 1;
    let status = 200;
    const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '');
    const ifRange = req.headers['if-range'];
    if (range && (!ifRange || ifRange === etag)) {
      start = range[1] === '' ? size - Number(range[2]) : Number(range[1]);
      end = range[1] !== '' && range[2] !== '' ? Math.min(Number(range[2]), size - 1) : size - 1;
      if (start >= size || start > end) return send(416, { 'Content-Range': `bytes */${size}` });
      status = 206;
    }
    const headers: Record<string, string | number> = {
      'Content-Length': end - start + 1,
      'Accept-Ranges': 'bytes',
      ETag: etag,
      'X-Repo-Commit': COMMIT,
      ...(file.endsWith('.safetensors') || size > 2 ** 20 ? { 'X-Linked-Etag': etag, 'X-Linked-Size': size } : {}),
      ...(status === 206 ? { 'Content-Range': `bytes ${start}-${end}/${size}` } : {}),
    };
    log.status = status;
    res.writeHead(status, { ...CORS, ...headers });
    if (req.method === 'HEAD') return res.end();
    const body = fs.readFileSync(full).subarray(start, end + 1);

    if (limited && fault.kind === 'drop') {
      fault.used++;
      // Part of the body, then the connection goes away: the client sees a truncated answer.
      res.write(body.subarray(0, fault.afterBytes), () => setTimeout(() => req.socket.destroy(), 20));
      return;
    }
    if (fault?.kind === 'slow') {
      const chunk = Math.max(1, Math.floor(fault.bytesPerSecond / 20));
      let at = 0;
      const timer = setInterval(() => {
        if (res.destroyed || at >= body.length) {
          clearInterval(timer);
          if (!res.destroyed) res.end();
          return;
        }
        res.write(body.subarray(at, at + chunk));
        at += chunk;
      }, 50);
      res.on('close', () => clearInterval(timer));
      return;
    }
    res.end(body);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  const listen = (port: number) => new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
  const shut = () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    });
  await listen(0);
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    setFault: (file, fault) => faults.set(file, { ...fault, used: 0 }),
    clearFaults: () => faults.clear(),
    stop: shut,
    start: () => listen(port),
    close: async () => {
      if (server.listening) await shut();
    },
  };
}
