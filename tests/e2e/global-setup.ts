/**
 * Once per e2e run: the app as it ships, `vite build` into a temporary folder, which every test file then
 * serves with `vite preview` (tests/e2e/browser.ts). The build has a second page, tests/e2e/engine-page.html
 * (the engine driven without the app), at the same URL as under the dev server, and a third, the bench page
 * of `npm run bench -- --browser`. The app's own dist/ is left alone. WEBTUNE_E2E_SERVER=dev runs the suite
 * against the dev server instead (quicker to iterate on).
 *
 * A build is kept in the temporary folder under a hash of everything it is made from (the sources, the
 * pages, the Vite config and plugins, the lockfile), so running one e2e file after another reuses it until
 * something it depends on changes. WEBTUNE_E2E_REBUILD=1 builds afresh regardless.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { build } from 'vite';
import type { TestProject } from 'vitest/node';
import { readEnvironment } from '../../src/node/environment';

const ROOT = path.resolve(__dirname, '..', '..');
/** What the build reads, relative to the root: files, or folders read whole. */
const INPUTS = [
  'index.html',
  'vite.config.ts',
  'package-lock.json',
  'tsconfig.json',
  'vite',
  'src',
  'public',
  'tests/e2e/engine-page.html',
  'tests/e2e/engine-page.ts',
];
const CACHE_PREFIX = 'webtune-e2e-build-';
/** Builds of other sources are removed once this old (another run may still be serving a newer one). */
const STALE_MS = 60 * 60 * 1000;

declare module 'vitest' {
  export interface ProvidedContext {
    /** The production build to preview, or null to use the dev server. */
    e2eBuild: string | null;
  }
}

/** A hash of the names and contents of every input file. */
function sourceHash(): string {
  const hash = createHash('sha256');
  const add = (relative: string) => {
    const full = path.join(ROOT, relative);
    if (!fs.existsSync(full)) return;
    if (fs.statSync(full).isDirectory()) {
      for (const entry of fs.readdirSync(full).sort()) add(path.join(relative, entry));
      return;
    }
    hash.update(`${relative}\0`);
    hash.update(fs.readFileSync(full));
    hash.update('\0');
  };
  for (const input of INPUTS) add(input);
  return hash.digest('hex').slice(0, 16);
}

function removeStaleBuilds(keep: string): void {
  const tmp = os.tmpdir();
  for (const name of fs.readdirSync(tmp)) {
    const full = path.join(tmp, name);
    // Only builds kept under a hash: a folder another kind of run made is not ours to remove.
    if (
      !/^[0-9a-f]{16}$/.test(name.slice(CACHE_PREFIX.length)) ||
      !name.startsWith(CACHE_PREFIX) ||
      full === keep
    )
      continue;
    try {
      if (Date.now() - fs.statSync(full).mtimeMs > STALE_MS)
        fs.rmSync(full, { recursive: true, force: true });
    } catch {
      // Another run removed it first.
    }
  }
}

async function buildInto(outDir: string): Promise<void> {
  await build({
    configFile: path.join(ROOT, 'vite.config.ts'),
    root: ROOT,
    logLevel: 'warn',
    build: {
      outDir,
      emptyOutDir: true,
      rolldownOptions: {
        input: {
          app: path.join(ROOT, 'index.html'),
          engine: path.join(ROOT, 'tests', 'e2e', 'engine-page.html'),
          // `npm run bench -- --browser` (bench-browser.e2e.test.ts) serves this build instead of making its
          // own.
          bench: path.join(ROOT, 'src', 'bench', 'browser-page.html'),
        },
      },
    },
  });
}

export default async function setup(project: TestProject): Promise<undefined> {
  const { e2eDevServer, e2eRebuild } = readEnvironment(process.env, ROOT);
  if (e2eDevServer) {
    project.provide('e2eBuild', null);
    return undefined;
  }
  const outDir = path.join(os.tmpdir(), `${CACHE_PREFIX}${sourceHash()}`);
  const complete = path.join(outDir, '.complete');
  if (e2eRebuild || !fs.existsSync(complete)) {
    // Built beside, then moved into place whole: a run that starts meanwhile never serves half a build.
    const staging = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-e2e-staging-'));
    try {
      await buildInto(staging);
      fs.writeFileSync(path.join(staging, '.complete'), new Date().toISOString());
      fs.rmSync(outDir, { recursive: true, force: true });
      fs.renameSync(staging, outDir);
    } finally {
      fs.rmSync(staging, { recursive: true, force: true });
    }
  } else {
    const now = new Date();
    fs.utimesSync(outDir, now, now);
  }
  removeStaleBuilds(outDir);
  project.provide('e2eBuild', outDir);
  return undefined;
}
