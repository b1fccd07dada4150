// The CLI and the page share one source of defaults: with no flags, `webtune train` runs the Balanced preset
// the page shows for the same dataset and model (the page's e2e test sees 10 epochs and 0.005 for
// best-friends.csv on stories260K), flags override it, and rsLoRA can be turned on.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { strFromU8, unzipSync } from 'fflate';
import { afterAll, describe, expect, it } from 'vitest';
import { readAdapterInfo } from '../src/formats/adapter-info';
import { readAdapterZip } from '../src/formats/peft';
import { runCli } from './helpers/cli';
import { dataFile, modelDir } from './helpers/shared';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-defaults-'));

async function train(...extra: string[]) {
  const out = path.join(tmp, `${extra.join('') || 'defaults'}.zip`);
  const run = await runCli([
    'train',
    '--model',
    modelDir('stories260K'),
    '--data',
    dataFile('best-friends.csv'),
    '--out',
    out,
    '--backend',
    'wasm',
    '--json',
    ...extra,
  ]);
  expect(run.status, run.stderr).toBe(0);
  const zip = new Uint8Array(fs.readFileSync(out));
  return {
    stderr: run.stderr,
    config: JSON.parse(strFromU8(unzipSync(zip)['adapter_config.json'])) as Record<string, unknown>,
    settings: readAdapterInfo(readAdapterZip(zip).metadata)?.settings as Record<string, unknown>,
  };
}

describe('webtune train defaults', () => {
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('with no flags: the Balanced preset for 32 training examples on a 260K model, as the page chooses it', async () => {
    const { stderr, config, settings } = await train();
    expect(stderr).toMatch(
      /run: 10 epochs, learning rate 0\.005, LoRA rank 8 \(alpha 16\) on q_proj, k_proj, v_proj, o_proj \(preset balanced/,
    );
    expect(settings).toMatchObject({
      epochs: 10,
      learningRate: 0.005,
      batchSize: 4,
      maxLength: 256,
      valSplit: 0.1,
    });
    expect(config).toMatchObject({
      r: 8,
      lora_alpha: 16,
      target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj'],
      use_rslora: false,
    });
  });

  it('--preset quick, a flag over it, alpha following the rank, and --rslora', async () => {
    const { stderr, config, settings } = await train(
      '--preset',
      'quick',
      '--epochs',
      '2',
      '--rank',
      '4',
      '--rslora',
    );
    expect(settings).toMatchObject({ epochs: 2, learningRate: 0.01 });
    expect(config).toMatchObject({
      r: 4,
      lora_alpha: 8,
      target_modules: ['q_proj', 'v_proj'],
      use_rslora: true,
    });
    expect(stderr).toMatch(/rsLoRA/);
  });
});
