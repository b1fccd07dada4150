/**
 * The Hub double's accounts and write API (tests/helpers/hub-server.ts serves files): what
 * @huggingface/hub calls to publish, answered as huggingface.co answers it — `GET /api/whoami-v2`,
 * `POST /api/repos/create`, `POST /api/models/<repo>/preupload/<rev>`, the LFS batch
 * (`POST /<repo>.git/info/lfs/objects/batch`, basic transfer), the upload itself (`PUT` to the href the
 * batch gave, without the token, as to a pre-signed storage URL) and `POST /api/models/<repo>/commit/<rev>`
 * (NDJSON) — plus gated and private repositories: 401 without a token, 403 for a token whose account has
 * not been given access. Faults can be injected per step.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import type http from 'node:http';
import os from 'node:os';
import path from 'node:path';

/** An account the double knows, by its token. */
export interface HubAccount {
  name: string;
  role: 'read' | 'write' | 'fineGrained';
  orgs?: string[];
}

/** A step of the write API, for faults. */
export type ApiStep = 'whoami' | 'create' | 'preupload' | 'batch' | 'upload' | 'commit';

/** A status with the Hub's JSON error body, or a connection closed before any answer. */
export type ApiFault = { kind: 'status'; status: number; times?: number } | { kind: 'drop'; times?: number };

/** A repository pushed to the double: its files as committed, servable by the resolve endpoint. */
export interface PushedRepo {
  id: string;
  private: boolean;
  owner: string;
  folder: string;
  files: Map<string, Buffer>;
  commits: { summary: string; files: string[] }[];
}

export interface HubApiOptions {
  /** Token → account. */
  tokens?: Record<string, HubAccount>;
  /** Gated repo id → the accounts that have accepted its licence (and been given access). */
  gated?: Record<string, string[]>;
}

type Send = (status: number, headers: Record<string, string | number>, body?: Buffer | string) => void;

const json = (send: Send, status: number, value: unknown, headers: Record<string, string> = {}) =>
  send(status, { 'Content-Type': 'application/json', ...headers }, JSON.stringify(value));

export class HubApi {
  readonly pushed = new Map<string, PushedRepo>();
  /** Uploaded LFS objects by sha256. */
  readonly objects = new Map<string, Buffer>();
  private readonly faults = new Map<ApiStep, ApiFault & { used: number }>();
  private readonly tokens: Map<string, HubAccount>;
  private readonly gated: Map<string, string[]>;

  constructor(
    options: HubApiOptions,
    private readonly baseUrl: () => string,
    private readonly serve: (repo: string, folder: string) => void,
  ) {
    this.tokens = new Map(Object.entries(options.tokens ?? {}));
    this.gated = new Map(Object.entries(options.gated ?? {}));
  }

  setFault(step: ApiStep, fault: ApiFault): void {
    this.faults.set(step, { ...fault, used: 0 });
  }
  clearFaults(): void {
    this.faults.clear();
  }

  /** The account of the request's bearer token, null without one, 'invalid' for an unknown token. */
  account(req: http.IncomingMessage): HubAccount | null | 'invalid' {
    const header = req.headers.authorization;
    if (!header) return null;
    const token = /^Bearer (.+)$/.exec(header)?.[1];
    return (token && this.tokens.get(token)) || 'invalid';
  }

  /**
   * Whether the resolve request may read `repo`: null when it may, else the Hub's answer (401 without a
   * token, 403 for an account without access; a private repository reads as not found).
   */
  readRefusal(req: http.IncomingMessage, repo: string): { status: number; code: string } | null {
    const account = this.account(req);
    if (account === 'invalid') return { status: 401, code: 'RepoNotFound' };
    const pushed = this.pushed.get(repo);
    if (pushed?.private && pushed.owner !== account?.name) return { status: 401, code: 'RepoNotFound' };
    const accepted = this.gated.get(repo);
    if (!accepted) return null;
    if (!account) return { status: 401, code: 'GatedRepo' };
    return accepted.includes(account.name) ? null : { status: 403, code: 'GatedRepo' };
  }

  /** Answers a write-API request; false when the path is not one (the file server takes it). */
  handle(req: http.IncomingMessage, path_: string, body: Buffer, send: Send): boolean {
    const route = this.route(req.method ?? 'GET', path_);
    if (!route) return false;
    const fault = this.faults.get(route.step);
    if (fault && fault.used < (fault.times ?? 1)) {
      fault.used++;
      if (fault.kind === 'drop') {
        req.socket.destroy();
        return true;
      }
      const message =
        fault.status === 429
          ? 'You have exceeded the rate limit'
          : `Injected ${fault.status} at ${route.step}`;
      json(send, fault.status, { error: message });
      return true;
    }
    const account = this.account(req);
    // The upload goes to storage with a signed URL: it carries no token, and needs none.
    if (route.step !== 'upload' && (account === null || account === 'invalid')) {
      json(send, 401, { error: 'Invalid credentials in Authorization header' });
      return true;
    }
    const who = account as HubAccount;
    switch (route.step) {
      case 'whoami':
        json(send, 200, {
          type: 'user',
          name: who.name,
          fullname: who.name,
          orgs: (who.orgs ?? []).map((name) => ({ type: 'org', name })),
          auth: {
            type: 'access_token',
            accessToken: { displayName: 'webtune test', role: who.role, createdAt: '2026-01-01T00:00:00Z' },
          },
        });
        return true;
      case 'create':
        return (this.create(who, body, send), true);
      case 'preupload':
      case 'batch':
      case 'commit': {
        const repo = this.pushed.get(route.repo);
        if (!repo) json(send, 404, { error: 'Repository not found' }, { 'X-Error-Code': 'RepoNotFound' });
        else if (!this.mayWrite(who, repo.owner))
          json(send, 403, { error: `You don't have the rights to push to ${repo.id}` });
        else if (route.step === 'preupload') this.preupload(body, send);
        else if (route.step === 'batch') this.batch(route.repo, body, send);
        else this.commit(repo, body, send);
        return true;
      }
      case 'upload':
        return (this.upload(route.repo, body, send), true);
    }
  }

  private route(method: string, p: string): { step: ApiStep; repo: string } | null {
    if (method === 'GET' && p === '/api/whoami-v2') return { step: 'whoami', repo: '' };
    if (method === 'POST' && p === '/api/repos/create') return { step: 'create', repo: '' };
    let m = /^\/api\/models\/(.+)\/(preupload|commit)\/[^/]+$/.exec(p);
    if (method === 'POST' && m) return { step: m[2] as ApiStep, repo: m[1] };
    m = /^\/(.+)\.git\/info\/lfs\/objects\/batch$/.exec(p);
    if (method === 'POST' && m) return { step: 'batch', repo: m[1] };
    m = /^\/lfs-storage\/(.+)\/([0-9a-f]{64})$/.exec(p);
    if (method === 'PUT' && m) return { step: 'upload', repo: `${m[1]}/${m[2]}` };
    return null;
  }

  private mayWrite(who: HubAccount, owner: string): boolean {
    return who.role !== 'read' && (owner === who.name || (who.orgs ?? []).includes(owner));
  }

  private create(who: HubAccount, body: Buffer, send: Send): void {
    const request = JSON.parse(body.toString('utf8')) as {
      name: string;
      organization?: string;
      visibility?: string;
      type?: string;
    };
    const owner = request.organization ?? who.name;
    const id = `${owner}/${request.name}`;
    if (!this.mayWrite(who, owner))
      return json(send, 403, {
        error: `You don't have the rights to create a model under the namespace "${owner}"`,
      });
    if (this.pushed.has(id))
      return json(send, 409, {
        error: 'You already created this model repo',
        url: `${this.baseUrl()}/${id}`,
      });
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-hub-repo-'));
    this.pushed.set(id, {
      id,
      owner,
      private: request.visibility !== 'public',
      folder,
      files: new Map(),
      commits: [],
    });
    this.serve(id, folder);
    json(send, 200, { url: `${this.baseUrl()}/${id}`, name: id, id: `repo-${this.pushed.size}` });
  }

  private preupload(body: Buffer, send: Send): void {
    const { files } = JSON.parse(body.toString('utf8')) as { files: { path: string; size: number }[] };
    // As the Hub's default .gitattributes: safetensors (and anything over 10 MB) go to LFS.
    json(send, 200, {
      files: files.map((f) => ({
        path: f.path,
        uploadMode: f.path.endsWith('.safetensors') || f.size > 10_000_000 ? 'lfs' : 'regular',
        shouldIgnore: false,
      })),
    });
  }

  private batch(repo: string, body: Buffer, send: Send): void {
    const request = JSON.parse(body.toString('utf8')) as { objects: { oid: string; size: number }[] };
    json(
      send,
      200,
      {
        transfer: 'basic',
        objects: request.objects.map(({ oid, size }) => ({
          oid,
          size,
          ...(this.objects.has(oid)
            ? {}
            : { actions: { upload: { href: `${this.baseUrl()}/lfs-storage/${repo}/${oid}` } } }),
        })),
      },
      { 'Content-Type': 'application/vnd.git-lfs+json' },
    );
  }

  private upload(repoAndOid: string, body: Buffer, send: Send): void {
    const oid = repoAndOid.slice(repoAndOid.lastIndexOf('/') + 1);
    if (createHash('sha256').update(body).digest('hex') !== oid)
      return send(400, { 'Content-Type': 'text/plain' }, 'The upload does not match its sha256');
    this.objects.set(oid, body);
    send(200, { ETag: `"${oid}"` });
  }

  private commit(repo: PushedRepo, body: Buffer, send: Send): void {
    const lines = body
      .toString('utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { key: string; value: Record<string, string> });
    const header = lines.find((l) => l.key === 'header')?.value ?? {};
    const written: [string, Buffer][] = [];
    for (const { key, value } of lines) {
      if (key === 'file') written.push([value.path, Buffer.from(value.content, 'base64')]);
      if (key === 'lfsFile') {
        const object = this.objects.get(value.oid);
        if (!object) return json(send, 422, { error: `LFS object ${value.oid} was never uploaded` });
        written.push([value.path, object]);
      }
    }
    for (const [file, bytes] of written) {
      repo.files.set(file, bytes);
      const full = path.join(repo.folder, file);
      fs.mkdirSync(path.dirname(full), { recursive: true });
      fs.writeFileSync(full, bytes);
    }
    repo.commits.push({ summary: header.summary ?? '', files: written.map(([f]) => f) });
    const oid = createHash('sha1').update(`${repo.id}${repo.commits.length}`).digest('hex');
    json(send, 200, { commitOid: oid, commitUrl: `${this.baseUrl()}/${repo.id}/commit/${oid}` });
  }
}
