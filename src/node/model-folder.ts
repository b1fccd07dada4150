/**
 * Reading a Hugging Face model folder from disk, for the CLI and the bench, with a clear message for what is
 * missing: opened (the weights read a tensor at a time through file descriptors) or read whole into memory.
 */
import fs from 'node:fs';
import path from 'node:path';
import { REQUIRED_FILES, type ModelFiles } from '../engine/load';
import { SHARD_INDEX, shardNamesFromIndex } from '../hub/shard-index';
import { CliError } from './errors';
import { FileSource } from './file-source';
import type { WeightsSource } from '../engine/weights-source';

/** The folder's files with its weights read into memory (small models, tests). */
export function readModelFolder(dir: string): ModelFiles {
  const { text, weightFiles, sharded, abs } = checkFolder(dir);
  const bytes = (file: string) => {
    const b = fs.readFileSync(file);
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  };
  return {
    ...text,
    name: path.basename(abs),
    weights: sharded ? weightFiles.map(bytes) : bytes(weightFiles[0]),
  };
}

/**
 * The folder's files with its weights opened, not read: each file descriptor stays open until
 * closeWeights(files.weights) (the CLI closes them once the model is built or the export written).
 */
export function openModelFolder(dir: string): ModelFiles & { weights: WeightsSource[] } {
  const { text, weightFiles, abs } = checkFolder(dir);
  const weights: WeightsSource[] = [];
  for (const file of weightFiles) {
    try {
      weights.push(new FileSource(file));
    } catch (error) {
      for (const source of weights) source.close();
      throw new CliError(`Could not open ${file} (${(error as Error).message}). Check that it can be read.`);
    }
  }
  return { ...text, name: path.basename(abs), weights };
}

function checkFolder(dir: string) {
  const abs = path.resolve(dir);
  if (!fs.existsSync(abs) || !fs.statSync(abs).isDirectory()) {
    throw new CliError(
      `Model folder not found: ${dir}. Pass --model with a folder holding ${REQUIRED_FILES.join(', ')}.`,
    );
  }
  // A sharded checkpoint lists its files in model.safetensors.index.json instead of one model.safetensors.
  const index = path.join(abs, SHARD_INDEX);
  const shards =
    !fs.existsSync(path.join(abs, 'model.safetensors')) && fs.existsSync(index)
      ? shardFiles(abs, index)
      : null;
  const missing = REQUIRED_FILES.filter(
    (f) => !(shards && f === 'model.safetensors') && !fs.existsSync(path.join(abs, f)),
  );
  const missingShards = (shards ?? []).filter((f) => !fs.existsSync(path.join(abs, f)));
  if (missing.length || missingShards.length) {
    const all = [...missing, ...missingShards];
    throw new CliError(
      `${dir} is not a complete model folder: ${all.join(', ')} ${all.length === 1 ? 'is' : 'are'} missing. A model folder needs ${REQUIRED_FILES.join(', ')} (or the shards its index lists).`,
    );
  }
  const read = (f: string) => fs.readFileSync(path.join(abs, f), 'utf8');
  return {
    abs,
    weightFiles: (shards ?? ['model.safetensors']).map((f) => path.join(abs, f)),
    sharded: shards !== null,
    text: {
      config: read('config.json'),
      tokenizerJson: read('tokenizer.json'),
      tokenizerConfig: read('tokenizer_config.json'),
    },
  };
}

/**
 * The shards the index lists, every one a .safetensors file inside `dir` (the same check as for the Hub, and
 * the resolved path must agree).
 */
function shardFiles(dir: string, indexFile: string): string[] {
  let files: string[];
  try {
    files = shardNamesFromIndex(fs.readFileSync(indexFile, 'utf8'));
  } catch (error) {
    throw new CliError(`In ${dir}, ${(error as Error).message}`);
  }
  for (const file of files) {
    const relative = path.relative(dir, path.resolve(dir, file));
    if (relative.startsWith('..') || path.isAbsolute(relative))
      throw new CliError(
        `${indexFile} lists "${file}", which is outside the model folder. The index is damaged or hostile.`,
      );
  }
  return files;
}
