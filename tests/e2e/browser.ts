/**
 * End-to-end harness: the app's own Vite dev server on 127.0.0.1 and Debian's Chromium with WebGPU
 * (SwiftShader), driven by playwright-core. Every request the page makes is recorded so tests can
 * prove nothing leaves the machine.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { createServer, type ViteDevServer } from 'vite';

export interface Harness {
  baseUrl: string;
  page: Page;
  requests: string[];
  close(): Promise<void>;
}

export async function openHarness(): Promise<Harness> {
  const server: ViteDevServer = await createServer({
    configFile: path.resolve(__dirname, '..', '..', 'vite.config.ts'),
    server: { host: '127.0.0.1', port: 0, strictPort: false },
    logLevel: 'error',
  });
  await server.listen();
  const address = server.httpServer!.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-chrome-'));
  const context: BrowserContext = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--enable-unsafe-webgpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const requests: string[] = [];
  context.on('request', (request) => requests.push(request.url()));
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    page,
    requests,
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
