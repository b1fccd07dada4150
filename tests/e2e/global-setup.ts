/**
 * Once per e2e run: the app as it ships, `vite build` into a temporary folder, which every test file then
 * serves with `vite preview` (tests/e2e/browser.ts). The build has a second page, tests/e2e/engine-page.html
 * (the engine driven without the app), at the same URL as under the dev server, and a third, the bench page
 * of `npm run bench -- --browser`. The app's own dist/ is left alone. WEBTUNE_E2E_SERVER=dev runs the suite
 * against the dev server instead (quicker to iterate on).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { build } from 'vite';
import type { TestProject } from 'vitest/node';

const ROOT = path.resolve(__dirname, '..', '..');

declare module 'vitest' {
  export interface ProvidedContext {
    /** The production build to preview, or null to use the dev server. */
    e2eBuild: string | null;
  }
}

export default async function setup(project: TestProject): Promise<(() => void) | undefined> {
  if (process.env.WEBTUNE_E2E_SERVER === 'dev') {
    project.provide('e2eBuild', null);
    return undefined;
  }
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-e2e-build-'));
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
  project.provide('e2eBuild', outDir);
  return () => fs.rmSync(outDir, { recursive: true, force: true });
}
