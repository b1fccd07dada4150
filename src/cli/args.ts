/** Small helpers for turning command-line strings into checked values. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CliError } from './errors';

export type Options = NonNullable<ParseArgsConfig['options']>;

export type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

export function parse(argv: string[], options: Options, command: string): Values {
  try {
    return parseArgs({
      args: argv,
      options: { ...options, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: false,
      strict: true,
    }).values;
  } catch (error) {
    // Node's later lines carry the fix (e.g. "use '--seed=-1'" for a value starting with a dash); keep them
    // on the one line.
    throw new CliError(`${(error as Error).message.split('\n').join(' ')} (see webtune ${command} --help)`);
  }
}

export function required(values: Record<string, unknown>, name: string, command: string): string {
  const value = values[name];
  if (typeof value !== 'string' || value === '')
    throw new CliError(`--${name} is missing. See webtune ${command} --help.`);
  return value;
}

export function number(
  values: Record<string, unknown>,
  name: string,
  fallback: number,
  check: { min?: number; max?: number; integer?: boolean } = {},
): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  const problem = !Number.isFinite(value)
    ? 'a number'
    : check.integer && !Number.isInteger(value)
      ? 'a whole number'
      : check.min !== undefined && value < check.min
        ? `at least ${check.min}`
        : check.max !== undefined && value > check.max
          ? `at most ${check.max}`
          : null;
  if (problem) throw new CliError(`--${name} must be ${problem} (got "${String(raw)}").`);
  return value;
}

export function list(values: Record<string, unknown>, name: string): string[] {
  const raw = values[name];
  const items = Array.isArray(raw) ? raw : typeof raw === 'string' ? [raw] : [];
  return items
    .flatMap((s) => String(s).split(','))
    .map((s) => s.trim())
    .filter(Boolean);
}
