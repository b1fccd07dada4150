/** Writing webtune's GGUF exports to temporary files for llama.cpp, and the prompts both sides tokenize. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ByteSink } from '../../src/formats/sink';

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Runs `write` into a file, chunk by chunk as the writer hands them over; returns the path. */
export async function writeFile(file: string, write: (sink: ByteSink) => Promise<void>): Promise<string> {
  const fd = fs.openSync(file, 'w');
  try {
    await write({ write: (chunk) => void fs.writeSync(fd, chunk) });
  } finally {
    fs.closeSync(fd);
  }
  return file;
}

/**
 * Prompts that exercise spaces (leading, doubled, trailing), punctuation, digits and characters outside the
 * vocabulary (byte fallback).
 */
export const TOKENIZER_PROBES = [
  'Once upon a time',
  'Hello, world! How are you today?',
  '  two leading spaces and  double  spaces ',
  'Lily said: "Let\'s go to the park."\nThen they ran.',
  'Numbers 12345 and 3.14, done.',
  'Café naïve façade — déjà vu',
  '日本語のテキスト 🙂 emoji',
  'tab\there, end.',
];
