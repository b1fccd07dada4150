#!/usr/bin/env node
// Installs llama.cpp (node-llama-cpp's prebuilt CPU binary, pinned in tools/llama/package-lock.json) for
// the GGUF tests, once: nothing happens when it is already there. --omit=optional leaves out the CUDA and
// Vulkan builds (~600 MB); --ignore-scripts and NODE_LLAMA_CPP_SKIP_DOWNLOAD keep node-llama-cpp's
// postinstall from downloading or compiling anything, as the prebuilt binary is all the tests use.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const prefix = path.join(root, 'tools', 'llama');
if (fs.existsSync(path.join(prefix, 'node_modules', 'node-llama-cpp', 'package.json'))) process.exit(0);

console.log('Installing llama.cpp for the GGUF tests into tools/llama (about 85 MB, once)…');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const result = spawnSync(
  npm,
  ['ci', '--prefix', prefix, '--omit=optional', '--ignore-scripts', '--no-audit', '--no-fund'],
  {
    stdio: 'inherit',
    env: { ...process.env, NODE_LLAMA_CPP_SKIP_DOWNLOAD: 'true' },
  },
);
if (result.status !== 0) {
  console.error(
    'Installing tools/llama failed; the GGUF tests need it. Run `npm run setup:llama` again once the registry is reachable.',
  );
  process.exit(result.status ?? 1);
}
