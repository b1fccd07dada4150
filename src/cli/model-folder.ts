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
  const missing = REQUIRED_FILES.filter((f) => !fs.existsSync(path.join(abs, f)));
  if (missing.length) {
    const sharded = fs.existsSync(path.join(abs, 'model.safetensors.index.json'));
    throw new CliError(
      `${dir} is not a complete model folder: ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} missing.` +
        (sharded ? ' Sharded checkpoints are not supported yet.' : ` A model folder needs ${REQUIRED_FILES.join(', ')}.`),
    );
  }
  const read = (f: string) => fs.readFileSync(path.join(abs, f), 'utf8');
  const weights = fs.readFileSync(path.join(abs, 'model.safetensors'));
  return {
    name: path.basename(abs),
    config: read('config.json'),
    tokenizerJson: read('tokenizer.json'),
    tokenizerConfig: read('tokenizer_config.json'),
    weights: new Uint8Array(weights.buffer, weights.byteOffset, weights.byteLength),
  };
}
