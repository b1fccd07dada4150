#!/usr/bin/env node
// Bundles the CLI (src/cli/main.ts and the engine) into dist-cli/ with esbuild.
// tfjs publishes its ES builds under the "module" field with extensionless imports that Node
// cannot load directly; bundling resolves them, as Vite does for the page.
import { build } from 'esbuild';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Bundles TypeScript entry points ({name: file}) into `outdir` as Node ES modules (<name>.mjs). */
export async function bundle(entries, outdir = path.join(root, 'dist-cli')) {
  await build({
    absWorkingDir: root,
    entryPoints: entries,
    outdir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    mainFields: ['module', 'main'],
    // Native or heavy packages, and the dev tools `bench --browser` drives (vite, playwright-core), stay
    // external and load from node_modules at run time.
    external: ['@huggingface/transformers', 'webgpu', 'vite', 'playwright-core'],
    banner: {
      js: "import { createRequire as __cr } from 'node:module'; import { fileURLToPath as __fu } from 'node:url'; import { dirname as __dn } from 'node:path'; const require = __cr(import.meta.url); const __filename = __fu(import.meta.url); const __dirname = __dn(__filename);",
    },
    logLevel: 'warning',
  });
}

export const buildCli = () => bundle({ webtune: 'src/cli/main.ts', bench: 'src/bench/main.ts' });

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await buildCli();
}
