/**
 * `npm run bench -- --browser`: the benchmark run by the page's own engine code in a Web Worker of headless
 * Chromium. The bench page (src/bench/browser-page.html) is built as the site ships (`vite build` into a
 * temporary folder, never into dist/) and served by `vite preview` on 127.0.0.1, cross-origin isolated so
 * wasm has its threads; /models/ is served from WEBTUNE_MODELS_DIR (default fixtures/models) as in
 * preview. WEBTUNE_BENCH_BUILD names a build that already has the bench page (the e2e suite's), to skip the
 * build; WEBTUNE_BENCH_DEBUG=1 echoes the page's console and every response it gets.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { readEnvironment, repositoryRoot } from '../node/environment';
import type { BenchReport, BenchRequest } from './browser-protocol';
import type { BenchResult } from './run';

/** The page, as Vite names it in a build of the project's root. */
export const BENCH_PAGE = 'src/bench/browser-page.html';

export const CHROMIUM = '/usr/bin/chromium';
/**
 * Debian's Chromium as the bench and the e2e harness (tests/e2e/browser.ts) launch it: WebGPU on, nothing
 * phoning home.
 */
export const CHROMIUM_FLAGS = [
  '--enable-unsafe-webgpu',
  '--no-sandbox',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** The checkout this code runs from; the bench page is built from its sources. */
function projectRoot(): string {
  const root = repositoryRoot();
  if (root === null)
    throw new Error(
      'The browser benchmark needs the project checkout (vite.config.ts was not found above this file).',
    );
  return root;
}

export interface BrowserMachine {
  /** The browser's name and version, as its user agent says. */
  browser: string;
  /** navigator.hardwareConcurrency in the page: the logical cores the browser offers. */
  hardware_concurrency: number;
}

export interface BrowserBench {
  onResult(result: BenchResult): void;
  onSkipped(model: string, backend: string, message: string): void;
}

/** Builds the bench page into a temporary folder; returns it and how to remove it. */
async function buildBenchPage(root: string): Promise<{ outDir: string; remove(): void }> {
  const { build } = await import('vite');
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-bench-build-'));
  await build({
    configFile: path.join(root, 'vite.config.ts'),
    root,
    logLevel: 'error',
    build: { outDir, emptyOutDir: true, rolldownOptions: { input: { bench: path.join(root, BENCH_PAGE) } } },
  });
  return { outDir, remove: () => fs.rmSync(outDir, { recursive: true, force: true }) };
}

/** Chromium and its version, from what it calls itself ("HeadlessChrome/156.0.8078.108"). */
const browserName = (product: string) => {
  const version = /Chrome\/([\d.]+)/.exec(product)?.[1];
  return version ? `Chromium ${version}${/Headless/.test(product) ? ' (headless)' : ''}` : product;
};

/** Runs the benchmark in Chromium, reporting each model × backend as it finishes. */
export async function benchInBrowser(request: BenchRequest, listener: BrowserBench): Promise<BrowserMachine> {
  const root = projectRoot();
  const { benchBuild: given, benchDebug } = readEnvironment(process.env, root);
  const built = given ? { outDir: given, remove: () => {} } : await buildBenchPage(root);
  const cleanups: (() => unknown)[] = [built.remove];
  try {
    const { preview } = await import('vite');
    const server = await preview({
      configFile: path.join(root, 'vite.config.ts'),
      root,
      build: { outDir: built.outDir },
      preview: { host: '127.0.0.1', port: 0, strictPort: false, open: false },
      logLevel: 'error',
    });
    cleanups.unshift(() => server.close());
    const port = (server.httpServer.address() as AddressInfo).port;

    const { chromium } = await import('playwright-core');
    const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-bench-chrome-'));
    cleanups.unshift(() => fs.rmSync(userDataDir, { recursive: true, force: true }));
    const context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_FLAGS,
    });
    cleanups.unshift(() => context.close());
    const page = context.pages()[0] ?? (await context.newPage());
    // What goes wrong in the page or its workers is said where the benchmark's lines go.
    page.on('console', (message) => {
      if (message.type() === 'error' || benchDebug) process.stderr.write(`browser: ${message.text()}\n`);
    });
    if (benchDebug)
      context.on('response', (r) => process.stderr.write(`browser: ${r.status()} ${r.url()}\n`));
    page.on('pageerror', (error) => process.stderr.write(`browser: ${error.message}\n`));
    await page.exposeFunction('webtuneBenchReport', (report: BenchReport) => {
      if (report.type === 'result') listener.onResult(report.result);
      else if (report.type === 'skipped') listener.onSkipped(report.model, report.backend, report.message);
    });
    await page.goto(`http://127.0.0.1:${port}/${BENCH_PAGE}`);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 30_000 });
    const about = await page.evaluate(() => ({
      isolated: self.crossOriginIsolated,
      cores: navigator.hardwareConcurrency,
    }));
    if (!about.isolated)
      throw new Error(
        'The bench page is not cross-origin isolated, so wasm would run without threads. Check the COOP/COEP headers of vite.config.ts.',
      );
    // The user agent's version is reduced to 156.0.0.0; the browser itself says the full one.
    const { product } = (await (await context.newCDPSession(page)).send('Browser.getVersion')) as {
      product: string;
    };
    await page.evaluate(
      (r) => (window as unknown as { runBench(r: BenchRequest): Promise<void> }).runBench(r),
      request,
    );
    return { browser: browserName(product), hardware_concurrency: about.cores };
  } finally {
    for (const cleanup of cleanups) await cleanup();
  }
}
