// `webtune --adapter` with a zip bomb: refused in seconds, with one line, before the memory it asks for.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { strToU8 } from 'fflate';
import { afterAll, describe, expect, it } from 'vitest';
import { adapterConfigJson } from '../src/formats/peft';
import { failure, runCli } from './helpers/cli';
import { modelDir } from './helpers/shared';
import { handZip, zeroBomb } from './helpers/zip-bomb';

const STORIES = modelDir('stories260K');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-cli-bomb-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/**
 * A failed `webtune generate` with the adapter: non-zero exit, nothing on stdout, one line on stderr; and how
 * long it took.
 */
async function refusedGenerate(zip: Uint8Array, name: string): Promise<{ line: string; seconds: number }> {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, zip);
  const started = performance.now();
  const run = await runCli([
    'generate',
    '--model',
    STORIES,
    '--adapter',
    file,
    '--prompt',
    'hi',
    '--backend',
    'cpu',
  ]);
  const seconds = (performance.now() - started) / 1000;
  return { line: failure(run), seconds };
}

const config = strToU8(
  JSON.stringify(
    adapterConfigJson({
      r: 8,
      lora_alpha: 16,
      lora_dropout: 0,
      target_modules: ['q_proj'],
      use_rslora: false,
      base_model_name_or_path: 'stories260K',
    }),
  ),
);
const configEntry = {
  name: 'adapter_config.json',
  data: config,
  method: 0 as const,
  declared: config.length,
};

describe('webtune generate --adapter with a zip bomb', () => {
  it('a zip that claims 4 GiB of weights', async () => {
    const bomb = handZip([
      configEntry,
      { name: 'adapter_model.safetensors', data: zeroBomb(1000), declared: 2 ** 32 },
    ]);
    const { line, seconds } = await refusedGenerate(bomb, 'bomb.zip');
    expect(line).toMatch(
      /^webtune generate: Could not use the adapter .*bomb\.zip: The zip says adapter_model\.safetensors unpacks to 4\.3 GB, but a rank-8 adapter for this model needs at most 16\.2 MB\. This is not a webtune or PEFT adapter for this model \(it was trained on stories260K\); load it with the model it was trained on, or export it again\.$/,
    );
    expect(seconds).toBeLessThan(30);
  }, 150_000);

  it('a zip whose directory claims 500 KB but inflates to 1 GiB', async () => {
    const bomb = handZip([
      configEntry,
      { name: 'adapter_model.safetensors', data: zeroBomb(Math.floor(2 ** 30 / 258)), declared: 500_000 },
    ]);
    const { line, seconds } = await refusedGenerate(bomb, 'liar.zip');
    expect(line).toMatch(
      /^webtune generate: Could not use the adapter .*liar\.zip: The zip is damaged or was tampered with: 'adapter_model\.safetensors' unpacks to more than the 500000 bytes the zip declares\./,
    );
    expect(seconds).toBeLessThan(30);
  }, 150_000);

  it('an adapter folder whose weights file is far larger than the rank needs, refused by its size on disk', async () => {
    const folder = path.join(tmp, 'big-adapter');
    fs.mkdirSync(folder);
    fs.writeFileSync(path.join(folder, 'adapter_config.json'), config);
    fs.writeFileSync(path.join(folder, 'adapter_model.safetensors'), '');
    fs.truncateSync(path.join(folder, 'adapter_model.safetensors'), 3 * 2 ** 30); // sparse: nothing is written
    const run = await runCli([
      'generate',
      '--model',
      STORIES,
      '--adapter',
      folder,
      '--prompt',
      'hi',
      '--backend',
      'cpu',
    ]);
    expect(run.status).toBe(1);
    expect(run.stderr.trimEnd()).toMatch(
      /^webtune generate: Could not use the adapter .*big-adapter: adapter_model\.safetensors is 3\.2 GB, but a rank-8 adapter for this model needs at most 16\.2 MB\. This is not a webtune or PEFT adapter for this model \(it was trained on stories260K\); load it with the model it was trained on, or export it again\.$/,
    );
  }, 150_000);

  it('a file larger than any adapter of the model, refused by its size on disk', async () => {
    const { line } = await refusedGenerate(new Uint8Array(20_000_000), 'huge.zip');
    expect(line).toMatch(
      /^webtune generate: Could not use the adapter .*huge\.zip: The file is 20\.0 MB, but an adapter zip for this model, even at full rank, is at most 19\.5 MB/,
    );
  }, 150_000);
});
