/** What the CLI tests assert of a finished `webtune` run. */
import { expect } from 'vitest';

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A failed run: non-zero exit, nothing on stdout, exactly one line on stderr (returned). */
export function failure(run: Run): string {
  expect(run.code, run.stderr).not.toBe(0);
  expect(run.code).not.toBeNull();
  expect(run.stdout).toBe('');
  const lines = run.stderr.trimEnd().split('\n');
  expect(lines, run.stderr).toHaveLength(1);
  return lines[0];
}
