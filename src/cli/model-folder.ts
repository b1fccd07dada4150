/** Reading a Hugging Face model folder from disk for the CLI, with a clear message for what is missing. */
import fs from 'node:fs';
import path from 'node:path';
import { REQUIRED_FILES, type ModelFiles } from '../engine/load';
import { CliError } from './errors';

export function readModelFolder(dir: string): ModelFiles {
  const abs = path.resolve(dir);
  if (!fs.existsSync(abs) || !fs.statSync(abs).isDirectory()) {
    throw new CliError(`Model folder not found: ${dir}. Pass --model with a folder holding ${REQUIRED_FILES.join(', ')}.`);
  }
  // A sharded checkpoint lists its files in model.safetensors.index.json instead of one model.safetensors.
  const index = path.join(abs, 'model.safetensors.index.json');
  const shards = !fs.existsSync(path.join(abs, 'model.safetensors')) && fs.existsSync(index) ? shardFiles(index) : null;
  const missing = REQUIRED_FILES.filter((f) => !(shards && f === 'model.safetensors') && !fs.existsSync(path.join(abs, f)));
  const missingShards = (shards ?? []).filter((f) => !fs.existsSync(path.join(abs, f)));
  if (missing.length || missingShards.length) {
    const all = [...missing, ...missingShards];
    throw new CliError(`${dir} is not a complete model folder: ${all.join(', ')} ${all.length === 1 ? 'is' : 'are'} missing. A model folder needs ${REQUIRED_FILES.join(', ')} (or the shards its index lists).`);
  }
  const read = (f: string) => fs.readFileSync(path.join(abs, f), 'utf8');
  const bytes = (f: string) => {
    const b = fs.readFileSync(path.join(abs, f));
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  };
  return {
    name: path.basename(abs),
    config: read('config.json'),
    tokenizerJson: read('tokenizer.json'),
    tokenizerConfig: read('tokenizer_config.json'),
    weights: shards ? shards.map(bytes) : bytes('model.safetensors'),
  };
}

function shardFiles(indexFile: string): string[] {
  try {
    const map = (JSON.parse(fs.readFileSync(indexFile, 'utf8')) as { weight_map?: Record<string, string> }).weight_map ?? {};
    return [...new Set(Object.values(map))];
  } catch (error) {
    throw new CliError(`${indexFile} is not valid JSON (${(error as Error).message}).`);
  }
}
