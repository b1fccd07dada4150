/**
 * End-to-end harness: the app as it ships (the production build made once per run by global-setup.ts,
 * served by `vite preview` on 127.0.0.1 with the app's own config: cross-origin isolation and /models/), or
 * the Vite dev server when WEBTUNE_E2E_SERVER=dev, and Debian's Chromium with WebGPU (SwiftShader), driven by
 * playwright-core. Every request the page makes is recorded so tests can prove nothing leaves the machine.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { createServer, preview } from 'vite';
import { afterAll, beforeAll, beforeEach, expect, inject } from 'vitest';
import { CHROMIUM, CHROMIUM_FLAGS } from '../../src/bench/browser';

const CONFIG = path.resolve(__dirname, '..', '..', 'vite.config.ts');

export interface Harness {
  baseUrl: string;
  page: Page;
  requests: string[];
  /** Console reports of anything the Content-Security-Policy blocked, from the page and its workers. */
  cspViolations: string[];
  /**
   * How many times the page asked before being left (reloaded or closed while training); each was answered
   * "Leave".
   */
  leavePrompts: number;
  /**
   * Empties what the site keeps on the device (IndexedDB, the origin private file system, caches), with the
   * page on about:blank so no connection of the app holds it: a test that calls this first depends on
   * nothing an earlier test left behind. The caller opens the page it needs next.
   */
  clearSiteData(): Promise<void>;
  close(): Promise<void>;
}

/** The built app under `vite preview`, or the dev server; on a free port of 127.0.0.1. */
async function startServer(): Promise<{ port: number; close(): Promise<void> }> {
  const outDir = inject('e2eBuild');
  if (outDir) {
    const server = await preview({
      configFile: CONFIG,
      build: { outDir },
      preview: { host: '127.0.0.1', port: 0, strictPort: false, open: false },
      logLevel: 'error',
    });
    return { port: (server.httpServer.address() as AddressInfo).port, close: () => server.close() };
  }
  const server = await createServer({
    configFile: CONFIG,
    server: { host: '127.0.0.1', port: 0, strictPort: false },
    logLevel: 'error',
  });
  await server.listen();
  return { port: (server.httpServer!.address() as AddressInfo).port, close: () => server.close() };
}

export async function openHarness(): Promise<Harness> {
  const server = await startServer();
  const { port } = server;
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-chrome-'));
  const context: BrowserContext = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
  });
  const requests: string[] = [];
  context.on('request', (request) => requests.push(request.url()));
  const page = context.pages()[0] ?? (await context.newPage());
  const cspViolations: string[] = [];
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) cspViolations.push(message.text());
  });
  // A person who reloads or closes the page mid-run and is asked "Leave site?" answers Leave; tests count the
  // asks.
  const harness = { leavePrompts: 0 };
  page.on('dialog', (dialog) => {
    if (dialog.type() !== 'beforeunload') return;
    harness.leavePrompts++;
    void dialog.accept();
  });
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    page,
    requests,
    cspViolations,
    get leavePrompts() {
      return harness.leavePrompts;
    },
    async clearSiteData() {
      for (const other of context.pages()) if (other !== page) await other.close();
      await page.goto('about:blank');
      const cdp = await context.newCDPSession(page);
      try {
        await cdp.send('Storage.clearDataForOrigin', {
          origin: `http://127.0.0.1:${port}`,
          storageTypes: 'all',
        });
      } finally {
        await cdp.detach();
      }
    },
    async close() {
      await context.close();
      await server.close();
      fs.rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/** Requests that went anywhere but this machine's loopback server (data: and blob: URLs are local). */
export function externalRequests(requests: string[]): string[] {
  return requests.filter((url) => !/^(data|blob):/.test(url) && new URL(url).hostname !== '127.0.0.1');
}

/** Where e2e tests leave screenshots of the page, to look at as a person would. */
export const SCREENSHOTS = path.resolve(__dirname, '..', '..', 'test-results', 'screenshots');

/**
 * A page for the tests of the enclosing describe: opened before them, closed after them, where it is
 * also checked that no request left this machine. `shot(name)` saves a full-page screenshot. With
 * `{ fresh: true }` the site's storage is emptied before each test (see Harness.clearSiteData), so the tests
 * pass in any order and alone.
 */
export function useHarness(
  options: { fresh?: boolean } = {},
): Harness & { shot(name: string): Promise<unknown> } {
  let opened: Harness | undefined;
  beforeAll(async () => {
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    opened = await openHarness();
  });
  if (options.fresh) beforeEach(() => opened?.clearSiteData());
  afterAll(async () => {
    if (!opened) return;
    expect(externalRequests(opened.requests)).toEqual([]);
    await opened.close();
  });
  const current = () => {
    if (!opened) throw new Error('The page opens in beforeAll: use the harness inside a test.');
    return opened;
  };
  return {
    get baseUrl() {
      return current().baseUrl;
    },
    get page() {
      return current().page;
    },
    get requests() {
      return current().requests;
    },
    get cspViolations() {
      return current().cspViolations;
    },
    get leavePrompts() {
      return current().leavePrompts;
    },
    clearSiteData: () => current().clearSiteData(),
    close: () => current().close(),
    shot: (name) =>
      current().page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true }),
  };
}

/** The steps of the checkpoints saved in the page's database (one per unfinished run). */
export function checkpointSteps(page: Page): Promise<number[]> {
  return page.evaluate(
    () =>
      new Promise<number[]>((resolve, reject) => {
        const open = indexedDB.open('webtune');
        // Read only: a database the app has not made yet is not made here (the app's upgrade would then
        // find a version it did not write).
        open.onupgradeneeded = () => open.transaction!.abort();
        open.onerror = () => (open.error?.name === 'AbortError' ? resolve([]) : reject(open.error));
        open.onsuccess = () => {
          if (!open.result.objectStoreNames.contains('checkpoints')) {
            open.result.close();
            resolve([]);
            return;
          }
          const request = open.result.transaction('checkpoints').objectStore('checkpoints').getAll();
          request.onerror = () => reject(request.error);
          request.onsuccess = () => {
            open.result.close();
            resolve((request.result as { step: number }[]).map((c) => c.step));
          };
        };
      }),
  );
}

/** Drops a file on the page as a person drags one from their desktop (dragover, then drop). */
export async function dropFile(page: Page, name: string, text: string, type = 'text/csv'): Promise<void> {
  const transfer = await page.evaluateHandle(
    ({ text, name, type }) => {
      const data = new DataTransfer();
      data.items.add(new File([text], name, { type }));
      return data;
    },
    { text, name, type },
  );
  await page.dispatchEvent('main', 'dragover', { dataTransfer: transfer });
  await page.dispatchEvent('main', 'drop', { dataTransfer: transfer });
}
