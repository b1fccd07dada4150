#!/usr/bin/env node
// `npm test`: every stage in order (set-up, check, unit, WebGPU, end-to-end), stopping at the first that
// fails, then how long each took, so a slow stage shows up where everyone looks. The set-up stage
// (`npm run setup`) installs what the tests need beyond npm, or stops saying how, so the one command works
// on a fresh machine.
import { spawnSync } from 'node:child_process';

const STAGES = ['setup', 'check', 'test:unit', 'test:webgpu', 'test:e2e'];
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const times = [];
let failed = null;
for (const stage of STAGES) {
  const started = Date.now();
  const run = spawnSync(npm, ['run', '-s', stage], { stdio: 'inherit' });
  times.push([stage, (Date.now() - started) / 1000]);
  if (run.status !== 0) {
    failed = stage;
    break;
  }
}
const total = times.reduce((sum, [, s]) => sum + s, 0);
const rows = [...times, ['total', total]].map(
  ([stage, s]) => `  ${stage.padEnd(12)} ${s.toFixed(0).padStart(5)} s`,
);
process.stdout.write(`\nnpm test stage times:\n${rows.join('\n')}\n`);
if (failed) {
  process.stderr.write(`npm test: the ${failed} stage failed (see above).\n`);
  process.exit(1);
}
