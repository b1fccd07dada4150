#!/usr/bin/env node
// Runs a TypeScript script that uses the engine: `node bin/run-ts.mjs scripts/x.ts [args]`.
// The script is bundled like the CLI (see build-cli.mjs) and must export `main(argv)`.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { bundle, root } from './build-cli.mjs';

const [script, ...args] = process.argv.slice(2);
const name = path.basename(script, '.ts');
const outdir = path.join(root, 'dist-cli', 'scripts');
await bundle({ [name]: path.resolve(script) }, outdir);
const { main } = await import(pathToFileURL(path.join(outdir, `${name}.mjs`)).href);
process.exitCode = (await main(args)) ?? 0;
