// Rebuilds the CLI bundle when any source file is newer than it, so `webtune` never runs stale code
// and no manual build step is needed after editing.
import fs from 'node:fs';
import path from 'node:path';
import { buildCli, root } from './build-cli.mjs';

function newestMtime(dir) {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(full) : fs.statSync(full).mtimeMs);
  }
  return newest;
}

export async function ensureBuilt(name) {
  const bundle = path.join(root, 'dist-cli', `${name}.mjs`);
  const built = fs.existsSync(bundle) ? fs.statSync(bundle).mtimeMs : 0;
  if (
    built < newestMtime(path.join(root, 'src')) ||
    built < fs.statSync(path.join(root, 'package-lock.json')).mtimeMs
  ) {
    await buildCli();
  }
  return bundle;
}
