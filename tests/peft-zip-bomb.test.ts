// Adapter zips are untrusted input: a zip bomb (a few MB that inflate to gigabytes, or a central directory
// that lies about sizes) must be refused in seconds, without the memory it asks for, with one sentence saying
// what is wrong. The hostile zips are built byte by byte (tests/helpers/zip-bomb.ts), so nothing large is
// allocated.
import { inflateSync, strToU8, unzipSync, zipSync, type Zippable } from 'fflate';
import { describe, expect, test } from 'vitest';
import { linearShape, parseModelConfig } from '../src/engine/config';
import {
  AdapterFormatError,
  adapterConfigJson,
  checkAdapterFits,
  modulePath,
  readAdapterZip,
  writeAdapterZip,
  type AdapterWeights,
  type LoraTarget,
} from '../src/formats/peft';
import {
  checkAdapterZipSize,
  maxAdapterRank,
  maxAdapterWeightsBytes,
  maxAdapterZipBytes,
  type AdapterModel,
} from '../src/formats/adapter-limits';
import { modelConfig } from './helpers/shared';
import { handZip, zeroBomb, type RawEntry } from './helpers/zip-bomb';

const args = parseModelConfig(modelConfig('stories260K'));
const STORIES: AdapterModel = {
  numLayers: args.numLayers,
  shapes: (target: LoraTarget) => linearShape(args, target),
};
const GiB = 2 ** 32 / 4;

const configOf = (r: number) =>
  strToU8(
    JSON.stringify(
      adapterConfigJson({
        r,
        lora_alpha: 16,
        lora_dropout: 0,
        target_modules: ['q_proj', 'v_proj'],
        use_rslora: false,
        base_model_name_or_path: 'stories260K',
      }),
    ),
  );
const storedConfig = (r = 8, name = 'adapter_config.json'): RawEntry => ({
  name,
  data: configOf(r),
  method: 0,
  declared: configOf(r).length,
});

/** A real rank-r adapter for stories260K on q_proj and v_proj, with webtune's metadata. */
function storiesAdapter(r = 8, lossPoints = 5000): AdapterWeights {
  const modules: AdapterWeights['modules'] = new Map();
  for (let layer = 0; layer < args.numLayers; layer++) {
    for (const target of ['q_proj', 'v_proj'] as const) {
      const shape = linearShape(args, target);
      modules.set(modulePath(layer, target), {
        A: {
          shape: [r, shape.in],
          data: Float32Array.from({ length: r * shape.in }, (_, i) => Math.sin(i + layer)),
        },
        B: {
          shape: [shape.out, r],
          data: Float32Array.from({ length: shape.out * r }, (_, i) => Math.cos(i - layer)),
        },
      });
    }
  }
  const lossHistory = JSON.stringify(
    Array.from({ length: lossPoints }, (_, step) => ({
      step: step + 1,
      loss: Math.PI / (step + 1),
      valLoss: Math.E / (step + 1),
    })),
  );
  return {
    config: {
      r,
      lora_alpha: 16,
      lora_dropout: 0,
      target_modules: ['q_proj', 'v_proj'],
      use_rslora: false,
      base_model_name_or_path: 'stories260K',
    },
    modules,
    metadata: { webtune: lossHistory },
  };
}

/**
 * The refusal of `read`: an AdapterFormatError with one line, thrown within `seconds`, with memory growth
 * (returned) measured.
 */
function refusal(read: () => unknown, seconds = 5): { message: string; grewBy: number } {
  const before = process.memoryUsage();
  const started = performance.now();
  let thrown: unknown;
  try {
    read();
  } catch (error) {
    thrown = error;
  }
  const elapsed = (performance.now() - started) / 1000;
  const after = process.memoryUsage();
  expect(thrown, 'the zip was accepted').toBeInstanceOf(AdapterFormatError);
  const { message } = thrown as Error;
  expect(message).not.toContain('\n');
  expect(elapsed, message).toBeLessThan(seconds);
  return { message, grewBy: Math.max(after.arrayBuffers - before.arrayBuffers, after.rss - before.rss) };
}

describe('the bomb builder', () => {
  test('zeroBomb is valid DEFLATE that inflates to the promised zeros', () => {
    const out = inflateSync(zeroBomb(1000));
    expect(out.length).toBe(1 + 258 * 1000);
    expect(out.every((byte) => byte === 0)).toBe(true);
  });
});

describe('adapter zip bombs', () => {
  test('the limits come from the model and the rank', () => {
    // stories260K: 5 layers; q (64→64), k and v (64→32), o (64→64), gate and up (64→172), down (172→64).
    const perRank = 5 * (128 + 96 + 96 + 128 + 236 * 3) * 4;
    expect(maxAdapterWeightsBytes(STORIES, 8)).toBe(8 * perRank + 16_000_000);
    expect(maxAdapterRank(STORIES)).toBe(64);
    expect(maxAdapterZipBytes(STORIES)).toBe(64 * perRank + 18_000_000);
    expect(maxAdapterZipBytes(STORIES)).toBeLessThan(20_000_000);
  });

  test('a zip whose weights honestly unpack to far more than the model needs is refused before inflating', () => {
    const zeros = new Uint8Array(40_000_000);
    const zip = zipSync({
      'adapter_config.json': configOf(8),
      'adapter_model.safetensors': zeros,
    } as Zippable);
    expect(zip.length).toBeLessThan(200_000);
    const { message } = refusal(() => readAdapterZip(zip, STORIES));
    expect(message).toBe(
      'The zip says adapter_model.safetensors unpacks to 40.0 MB, but a rank-8 adapter for this model needs at most 16.2 MB. This is not a webtune or PEFT adapter for this model (it was trained on stories260K); load it with the model it was trained on, or export it again.',
    );
  });

  test('a central directory that claims 4 GiB is refused without allocating it', () => {
    const zip = handZip([
      storedConfig(8),
      { name: 'adapter_model.safetensors', data: zeroBomb(100), declared: 4 * GiB },
    ]);
    const { message, grewBy } = refusal(() => readAdapterZip(zip, STORIES), 2);
    expect(message).toBe(
      'The zip says adapter_model.safetensors unpacks to 4.3 GB, but a rank-8 adapter for this model needs at most 16.2 MB. This is not a webtune or PEFT adapter for this model (it was trained on stories260K); load it with the model it was trained on, or export it again.',
    );
    expect(grewBy).toBeLessThan(100_000_000);
    // With no model known, the documented generic cap refuses it too.
    expect(refusal(() => readAdapterZip(zip)).message).toMatch(
      /unpacks to 4\.3 GB, but an adapter needs at most 256\.0 MB/,
    );
  });

  test('a central directory that lies small is not trusted: inflating stops at the declared size, and memory stays bounded', () => {
    // 4 GiB of zeros in 4 MB of DEFLATE, declared as 500 KB (under the rank-8 bound); read without a model,
    // so only the generic cap and the declared size stand between it and 4 GiB.
    const reps = Math.floor((4 * GiB) / 258);
    const bomb = handZip([
      storedConfig(8),
      { name: 'adapter_model.safetensors', data: zeroBomb(reps), declared: 500_000 },
    ]);
    expect(bomb.length).toBeLessThan(4_500_000);
    const { message, grewBy } = refusal(() => readAdapterZip(bomb), 5);
    expect(message).toBe(
      "The zip is damaged or was tampered with: 'adapter_model.safetensors' unpacks to more than the 500000 bytes the zip declares. This is not a webtune or PEFT adapter; export it again.",
    );
    expect(grewBy).toBeLessThan(300_000_000);
    // The same, a quarter of the size, against the model's bound (the zip fits under the model's zip cap).
    const small = handZip([
      storedConfig(8),
      { name: 'adapter_model.safetensors', data: zeroBomb(reps / 4), declared: 500_000 },
    ]);
    expect(refusal(() => readAdapterZip(small, STORIES)).message).toMatch(
      /unpacks to more than the 500000 bytes the zip declares/,
    );
  });

  test('a config that claims more than 1 MB, or a rank wider than the model, is refused before the weights are read', () => {
    const bigConfig = handZip([
      { name: 'adapter_config.json', data: zeroBomb(10), declared: 5_000_000 },
      { name: 'adapter_model.safetensors', data: zeroBomb(10), declared: 2581 },
    ]);
    expect(refusal(() => readAdapterZip(bigConfig, STORIES)).message).toBe(
      "The zip says adapter_config.json unpacks to 5.0 MB, but an adapter's config is at most 1.0 MB. This is not a webtune or PEFT adapter; export it again.",
    );
    const wide = handZip([
      storedConfig(100_000),
      { name: 'adapter_model.safetensors', data: zeroBomb(10), declared: 2581 },
    ]);
    expect(refusal(() => readAdapterZip(wide, STORIES)).message).toMatch(
      /^adapter_config\.json gives rank 100000, but this model's linears are at most 64 wide.*trained on stories260K/,
    );
  });

  test('a file larger than any adapter of the model is refused by its size, before it is read', () => {
    expect(refusal(() => checkAdapterZipSize(3_100_000_000, STORIES)).message).toBe(
      'The file is 3.1 GB, but an adapter zip for this model, even at full rank, is at most 19.5 MB, so it is not a LoRA adapter; pick the zip that webtune or PEFT wrote.',
    );
    expect(
      refusal(() => readAdapterZip(new Uint8Array(maxAdapterZipBytes(STORIES) + 1), STORIES)).message,
    ).toMatch(/^The file is 19\.5 MB, but an adapter zip for this model/);
    expect(() => checkAdapterZipSize(maxAdapterZipBytes(STORIES), STORIES)).not.toThrow();
  });

  test('exactly one adapter: two adapters, or the same file twice, are refused', () => {
    const files = ['a/', 'b/'].flatMap((folder) => [
      storedConfig(8, `${folder}adapter_config.json`),
      { name: `${folder}adapter_model.safetensors`, data: zeroBomb(10), declared: 2581 },
    ]);
    expect(refusal(() => readAdapterZip(handZip(files), STORIES)).message).toBe(
      'The zip holds several adapters (a/, b/). Zip just the one you want.',
    );
    const twice = handZip([
      storedConfig(8),
      { name: 'adapter_model.safetensors', data: zeroBomb(10), declared: 2581 },
      { name: 'adapter_model.safetensors', data: zeroBomb(10), declared: 2581 },
    ]);
    expect(refusal(() => readAdapterZip(twice, STORIES)).message).toBe(
      'The zip holds adapter_model.safetensors 2 times, so it is not one adapter; zip just the one adapter you want.',
    );
    const elsewhere = handZip([
      storedConfig(8, 'a/adapter_config.json'),
      { name: 'b/adapter_model.safetensors', data: zeroBomb(10), declared: 2581 },
    ]);
    expect(refusal(() => readAdapterZip(elsewhere, STORIES)).message).toMatch(
      /several adapters \(a\/, b\/\)/,
    );
  });

  test('a genuine webtune adapter and a PEFT-style adapter (in a folder, with a README) still import with the model known', () => {
    const adapter = storiesAdapter(8);
    const zip = writeAdapterZip(adapter, { readme: '# stories\n' });
    const read = readAdapterZip(zip, STORIES);
    expect(() => checkAdapterFits(read, STORIES)).not.toThrow();
    expect(read.config.r).toBe(8);
    expect(read.metadata?.webtune).toBe(adapter.metadata?.webtune);
    for (const [path, { A, B }] of adapter.modules) {
      expect(read.modules.get(path)?.A.data).toEqual(A.data);
      expect(read.modules.get(path)?.B.data).toEqual(B.data);
    }
    // As PEFT users zip a saved folder: a subfolder, a README, macOS debris, and a checkpoint file beside it.
    const files = Object.fromEntries(
      Object.entries(unzipSync(zip)).map(([name, data]) => [`my-adapter/${name}`, data]),
    );
    const peftZip = zipSync({
      ...files,
      '__MACOSX/my-adapter/._adapter_config.json': strToU8('junk'),
      'my-adapter/training_args.bin': new Uint8Array(1000),
    } as Zippable);
    expect(readAdapterZip(peftZip, STORIES).modules.size).toBe(adapter.modules.size);
    // A long run's loss curve (100,000 steps, where the library stops reading them) fits the header
    // allowance.
    const long = writeAdapterZip(storiesAdapter(8, 100_000));
    expect(readAdapterZip(long, STORIES).metadata?.webtune.length).toBeGreaterThan(6_000_000);
    // A full-rank adapter is the largest the model allows, and fits.
    const full = writeAdapterZip(storiesAdapter(maxAdapterRank(STORIES)), { readme: '# full rank\n' });
    expect(readAdapterZip(full, STORIES).config.r).toBe(64);
  });
});
