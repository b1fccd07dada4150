/**
 * The project's PyTorch reference (reference/webtune_reference.py) called from tests, and a
 * PEFT zip unpacked into a folder it can read with --adapter. Needs Debian's python3-torch:
 * apt-get install -y python3-torch libopenblas0-pthread
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { unzipSync } from 'fflate';
import { REFERENCE_SCRIPT as SCRIPT } from './paths';

const PYTHON = '/usr/bin/python3';
export const INSTALL_TORCH = 'apt-get install -y python3-torch libopenblas0-pthread';

/** What `webtune_reference.py score` prints. */
export interface ReferenceScore {
  /** The ids scored, as given. */
  ids: number[];
  /** logprobs[i] = log p(ids[i+1] | ids[..i]), computed in float64 from float32 logits. */
  logprobs: number[];
  /** Mean negative log-likelihood per predicted token. */
  nll: number;
}

let torchAvailable: boolean | undefined;

/** Whether /usr/bin/python3 can import torch (asked once per process). */
export function hasTorch(): boolean {
  if (torchAvailable === undefined) {
    try {
      execFileSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' });
      torchAvailable = true;
    } catch {
      torchAvailable = false;
    }
  }
  return torchAvailable;
}

/**
 * Per-token log-probs of `ids` (BOS included by the caller) under the reference, with a PEFT adapter folder
 * if given.
 */
export function referenceScore(modelDir: string, ids: number[], adapterDir?: string): ReferenceScore {
  const args = [
    SCRIPT,
    'score',
    modelDir,
    '--ids',
    ids.join(','),
    ...(adapterDir === undefined ? [] : ['--adapter', adapterDir]),
  ];
  let stdout: string;
  try {
    stdout = execFileSync(PYTHON, args, {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (error) {
    const e = error as { status?: number | null; stderr?: string | Buffer; message: string };
    const stderr = String(e.stderr ?? '').trim();
    throw new Error(
      `webtune_reference.py score failed (exit ${e.status ?? '?'}): ${stderr || e.message}\n` +
        `Command: ${PYTHON} ${args.join(' ')}\nThe reference needs PyTorch: ${INSTALL_TORCH}`,
      { cause: error },
    );
  }
  try {
    return JSON.parse(stdout) as ReferenceScore;
  } catch {
    throw new Error(
      `webtune_reference.py score printed something that is not JSON:\n${stdout.slice(0, 2000)}`,
    );
  }
}

/**
 * Writes a zip's files, as they are named inside it, into a fresh temp folder; returns the folder that
 * holds adapter_config.json (the temp folder itself, or the zip's top-level folder inside it).
 */
export function unzipToTemp(zip: Uint8Array): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-adapter-'));
  let adapterDir: string | undefined;
  for (const [name, bytes] of Object.entries(unzipSync(zip))) {
    const target = path.resolve(root, name);
    if (target !== root && !target.startsWith(root + path.sep))
      throw new Error(`The zip entry ${JSON.stringify(name)} points outside its folder.`);
    if (name.endsWith('/')) {
      fs.mkdirSync(target, { recursive: true });
      continue;
    }
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, bytes);
    if (
      path.basename(target) === 'adapter_config.json' &&
      (adapterDir === undefined || path.dirname(target).length < adapterDir.length)
    ) {
      adapterDir = path.dirname(target);
    }
  }
  if (adapterDir === undefined)
    throw new Error(`The zip has no adapter_config.json (unpacked into ${root}).`);
  return adapterDir;
}
