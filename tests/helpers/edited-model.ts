/**
 * A fixture model copied into a fresh temp folder with its config.json edited and tensors added to its
 * model.safetensors, for checks of checkpoints the fixtures do not ship (the PyTorch reference and the CLI
 * read it as any model folder). The folder is removed when the process exits.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readSafetensors, writeSafetensors, type HostTensor } from '../../src/engine/safetensors';
import { modelDir } from './paths';

export interface ModelEdit {
  /** The new config.json from the fixture's. */
  config?: (config: Record<string, unknown>) => Record<string, unknown>;
  /** Tensors added to the fixture's, from its tensors by name. */
  addTensors?: (tensors: Map<string, HostTensor>) => [string, HostTensor][];
}

const made: string[] = [];
process.on('exit', () => {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
});

export function writeEditedModel(fixture: string, edit: ModelEdit): string {
  const source = modelDir(fixture);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `webtune-${fixture}-`));
  made.push(dir);
  for (const file of fs.readdirSync(source)) fs.copyFileSync(path.join(source, file), path.join(dir, file));
  const config = JSON.parse(fs.readFileSync(path.join(source, 'config.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(edit.config?.(config) ?? config, null, 2));
  const { tensors } = readSafetensors(
    new Uint8Array(fs.readFileSync(path.join(source, 'model.safetensors'))),
  );
  const added = edit.addTensors?.(tensors) ?? [];
  fs.writeFileSync(path.join(dir, 'model.safetensors'), writeSafetensors([...tensors, ...added]));
  return dir;
}

/** config.json without `key`, as a config written before the setting existed (or by hand) has it. */
export const withoutKey =
  (key: string) =>
  (config: Record<string, unknown>): Record<string, unknown> =>
    Object.fromEntries(Object.entries(config).filter(([name]) => name !== key));
