/**
 * Running `webtune` for the CLI tests. `runCli` calls the CLI's `main` in this process (a launch of node per
 * case cost seconds each) with stdout and stderr captured, and checks that the command left no tfjs tensor
 * behind; `runBin` launches bin/webtune.mjs as a person does, for the few end-to-end runs that check the
 * bundle, the exit code and the streams of a real process.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { expect } from 'vitest';
import { main } from '../../src/cli/main';
import { tf } from '../../src/engine/tf';

export const ROOT = path.resolve(__dirname, '..', '..');

/** A finished run, as spawnSync reports it. */
export interface CliRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Environment variables for this run only (undefined removes one); restored afterwards. */
  env?: Record<string, string | undefined>;
  /** The working directory for this run only (default: the project root, as the launched CLI had). */
  cwd?: string;
}

let running = false;

/**
 * `webtune ...args` in this process. Environment and working directory are the process's own, so they are set
 * for the call and put back after it; runs therefore go one at a time.
 */
export async function runCli(args: string[], options: RunOptions = {}): Promise<CliRun> {
  if (running) throw new Error('runCli: one run at a time (it sets process.env and the working directory)');
  running = true;
  const savedEnv = { ...process.env };
  const cwd = process.cwd();
  let stdout = '';
  let stderr = '';
  const tensors = tf.memory().numTensors;
  let status: number;
  try {
    for (const [name, value] of Object.entries(options.env ?? {})) setEnv(name, value);
    process.chdir(options.cwd ?? ROOT);
    status = await main(args, {
      stdout: { write: (text: string) => (stdout += text) },
      stderr: { write: (text: string) => (stderr += text) },
    });
  } finally {
    process.chdir(cwd);
    // Put back all of it: besides the test's variables, starting WebGPU sets some of its own.
    for (const name of Object.keys(process.env)) if (!(name in savedEnv)) delete process.env[name];
    for (const [name, value] of Object.entries(savedEnv)) setEnv(name, value);
    running = false;
  }
  expect(tf.memory().numTensors - tensors, `tfjs tensors left behind by webtune ${args.join(' ')}`).toBe(0);
  return { status, stdout, stderr };
}

function setEnv(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}

/** `webtune ...args` as its own process, through bin/webtune.mjs (which builds the bundle when stale). */
export function runBin(args: string[], options: RunOptions = {}): CliRun {
  const run = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'webtune.mjs'), ...args], {
    cwd: options.cwd ?? ROOT,
    env: Object.fromEntries(
      Object.entries({ ...process.env, ...options.env }).filter(([, value]) => value !== undefined),
    ),
    encoding: 'utf8',
    timeout: 180_000,
  });
  if (run.error) throw run.error;
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

/** A successful --json run: exit 0, and the whole of stdout is one JSON object. */
export function jsonResult<T = Record<string, unknown>>(run: CliRun): T {
  expect(run.status, run.stderr).toBe(0);
  const value: unknown = JSON.parse(run.stdout.trim());
  expect(typeof value === 'object' && value !== null && !Array.isArray(value), run.stdout).toBe(true);
  return value as T;
}

/** A failed run: non-zero exit, nothing on stdout, exactly one line on stderr (returned). */
export function failure(run: CliRun): string {
  expect(run.status, run.stderr).not.toBe(0);
  expect(run.status).not.toBeNull();
  expect(run.stdout).toBe('');
  const lines = run.stderr.trimEnd().split('\n');
  expect(lines, run.stderr).toHaveLength(1);
  return lines[0];
}
