// Weights read a tensor at a time (issue 22): a model built from its file through a descriptor scores
// exactly as one built from the file's bytes, and as the PyTorch reference; no read is larger than the
// largest tensor; a truncated or hostile file is refused by name, without reading (or allocating) what its
// header claims; and the CLI opens the model's files by descriptor and closes every one, whether it succeeds
// or fails.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadModel } from '../src/engine/load';
import { disposeModel } from '../src/engine/model';
import { scoreTokens } from '../src/engine/score';
import { closeWeights, type WeightsSource } from '../src/engine/weights-source';
import { FileSource } from '../src/node/file-source';
import { openModelFolder, readModelFolder } from '../src/node/model-folder';
import { runCli } from './helpers/cli';
import { maxAbsDiff, modelConfig, modelDir, reference, switchBackend } from './helpers/shared';

const made: string[] = [];
afterAll(() => made.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })));

/** A copy of a fixture whose model.safetensors `edit` rewrites. */
function copyWith(fixture: string, edit: (bytes: Buffer) => Buffer): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-source-'));
  made.push(dir);
  for (const file of fs.readdirSync(modelDir(fixture)))
    fs.copyFileSync(path.join(modelDir(fixture), file), path.join(dir, file));
  const weights = path.join(dir, 'model.safetensors');
  fs.writeFileSync(weights, edit(fs.readFileSync(weights)));
  return dir;
}

/** What this process has open that resolves into `dir` (Linux's /proc/self/fd). */
function openFilesIn(dir: string): string[] {
  const real = fs.realpathSync(dir);
  return fs.readdirSync('/proc/self/fd').flatMap((fd) => {
    try {
      const target = fs.readlinkSync(`/proc/self/fd/${fd}`);
      return target.startsWith(real + path.sep) ? [target] : [];
    } catch {
      return [];
    }
  });
}

/** Every read a source is asked for, by offset and length. */
function recorded(source: WeightsSource): { source: WeightsSource; reads: [number, number][] } {
  const reads: [number, number][] = [];
  return {
    reads,
    source: {
      name: source.name,
      byteLength: source.byteLength,
      read: (offset, length) => (reads.push([offset, length]), source.read(offset, length)),
      close: () => source.close(),
    },
  };
}

const LILY = reference<{ ids: number[]; logprobs: number[] }>('stories260K', 'score-lily.json');

describe('a model built from its file, a tensor at a time', () => {
  beforeAll(() => switchBackend('cpu'));

  for (const weights of ['f32', 'nf4'] as const) {
    it(`scores exactly as from the file's bytes (${weights})${weights === 'f32' ? ', and like the PyTorch reference' : ''}`, async () => {
      const fromBytes = loadModel(readModelFolder(modelDir('stories260K')), { weights });
      const files = openModelFolder(modelDir('stories260K'));
      const fromFile = loadModel(files, { weights });
      closeWeights(files.weights);
      try {
        const [a, b] = [
          await scoreTokens(fromBytes.model, LILY.ids),
          await scoreTokens(fromFile.model, LILY.ids),
        ];
        expect(b.logprobs).toEqual(a.logprobs);
        if (weights === 'f32') expect(maxAbsDiff(b.logprobs, LILY.logprobs)).toBeLessThan(1e-4);
      } finally {
        disposeModel(fromBytes.model);
        disposeModel(fromFile.model);
      }
    });
  }

  it('reads the header, then each tensor once: no read is larger than the largest tensor', () => {
    const file = path.join(modelDir('stories260K'), 'model.safetensors');
    const { source, reads } = recorded(new FileSource(file));
    const loaded = loadModel({ ...readModelFolder(modelDir('stories260K')), weights: source });
    source.close();
    disposeModel(loaded.model);
    // The largest tensor is the (tied) embedding, vocab × hidden float32, as config.json has it.
    const config = modelConfig('stories260K') as { vocab_size: number; hidden_size: number };
    const largest = config.vocab_size * config.hidden_size * 4;
    const size = fs.statSync(file).size;
    const header = reads[1][1];
    expect(reads[0]).toEqual([0, 8]);
    expect(reads[1][0]).toBe(0);
    expect(Math.max(...reads.slice(2).map(([, length]) => length))).toBe(largest);
    // Every byte after the header once (this checkpoint has nothing the model does not use).
    expect(reads.slice(2).reduce((sum, [, length]) => sum + length, 0)).toBe(size - header);
    expect(new Set(reads.slice(2).map(([offset]) => offset)).size).toBe(reads.length - 2);
  });

  it('refuses a truncated file by name, saying which tensor is cut off', () => {
    const dir = copyWith('stories260K', (bytes) => bytes.subarray(0, bytes.length - 1000));
    const files = openModelFolder(dir);
    try {
      expect(() => loadModel(files)).toThrow(
        /^model\.safetensors is truncated: tensor '.+' ends at byte \d+/,
      );
    } finally {
      closeWeights(files.weights);
    }
  });

  it('says so when the file shrinks after it was opened', () => {
    const dir = copyWith('stories260K', (bytes) => bytes);
    const files = openModelFolder(dir);
    fs.truncateSync(path.join(dir, 'model.safetensors'), 50_000);
    try {
      expect(() => loadModel(files)).toThrow(
        /model\.safetensors could not be read: \d+ bytes were asked for at byte \d+ but only \d+ came back .*it changed or was truncated since\)\. Load the model again\./,
      );
    } finally {
      closeWeights(files.weights);
    }
  });

  it('does not read what a hostile header claims: a 2^50-byte header is refused after 8 bytes', () => {
    const dir = copyWith('stories260K', (bytes) => {
      const out = Buffer.from(bytes);
      out.writeUInt32LE(0, 0);
      out.writeUInt32LE(2 ** 18, 4); // 2^18 · 2^32 = 2^50 bytes of header
      return out;
    });
    const { source, reads } = recorded(new FileSource(path.join(dir, 'model.safetensors')));
    try {
      expect(() => loadModel({ ...readModelFolder(modelDir('stories260K')), weights: source })).toThrow(
        /model\.safetensors is not a safetensors file: its header claims \d+ bytes, more than the 100 MB/,
      );
      expect(reads).toEqual([[0, 8]]);
    } finally {
      source.close();
    }
  });

  it('refuses to read a closed file, with a message', () => {
    const source = new FileSource(path.join(modelDir('stories260K'), 'model.safetensors'));
    source.close();
    source.close();
    expect(() => source.read(0, 8)).toThrow(
      'model.safetensors was closed before it was read. Load the model again.',
    );
  });
});

describe('the CLI reads the model through file descriptors and closes them', () => {
  it('score and export open model.safetensors, never read it whole, and leave nothing open', async () => {
    const dir = copyWith('stories260K', (bytes) => bytes);
    const weights = fs.realpathSync(path.join(dir, 'model.safetensors'));
    const opened = vi.spyOn(fs, 'openSync');
    const readWhole = vi.spyOn(fs, 'readFileSync');
    try {
      const score = await runCli(['score', '--model', dir, '--text', 'Once upon a time', '--json']);
      expect(score.status, score.stderr).toBe(0);
      const out = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-source-out-'));
      made.push(out);
      const exported = await runCli(['export', '--model', dir, '--format', 'merged', '--out', out]);
      expect(exported.status, exported.stderr).toBe(0);
      const opens = opened.mock.calls.filter(([file]) => path.resolve(String(file)) === weights);
      expect(opens.length).toBe(2);
      expect(readWhole.mock.calls.filter(([file]) => path.resolve(String(file)) === weights)).toEqual([]);
      expect(openFilesIn(dir)).toEqual([]);
    } finally {
      opened.mockRestore();
      readWhole.mockRestore();
    }
  });

  it('closes them when the model cannot be loaded', async () => {
    const dir = copyWith('stories260K', (bytes) => bytes.subarray(0, bytes.length - 1000));
    const run = await runCli(['score', '--model', dir, '--text', 'Once upon a time']);
    expect(run.status).not.toBe(0);
    expect(run.stderr).toMatch(/model\.safetensors is truncated/);
    expect(openFilesIn(dir)).toEqual([]);
  });
});
