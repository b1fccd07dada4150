import { createHash } from 'node:crypto';
import { strFromU8, strToU8, unzipSync, zipSync, type Zippable } from 'fflate';
import { describe, expect, test } from 'vitest';
import { readSafetensors } from '../src/engine/safetensors';
import {
  AdapterFormatError,
  adapterConfigJson,
  checkAdapterFits,
  loraScale,
  modulePath,
  parseModulePath,
  readAdapterFiles,
  readAdapterZip,
  writeAdapterZip,
  type AdapterWeights,
} from '../src/formats/peft';
import pythonReads from './fixtures/python-reads-webtune.json';
import { sampleAdapter } from './fixtures/samples';

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** A safetensors file assembled by hand (not with writeSafetensors) from raw little-endian bytes. */
function handMadeSafetensors(
  tensors: { key: string; dtype: string; shape: number[]; bits: number[] }[],
): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const { key, dtype, shape, bits } of tensors) {
    const bytes =
      dtype === 'F32'
        ? new Uint8Array(new Float32Array(bits).buffer)
        : new Uint8Array(new Uint16Array(bits).buffer);
    header[key] = { dtype, shape, data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  const json = strToU8(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setUint32(0, json.length, true);
  out.set(json, 8);
  let position = 8 + json.length;
  for (const chunk of chunks) {
    out.set(chunk, position);
    position += chunk.length;
  }
  return out;
}

/** adapter_config.json roughly as PEFT 0.13 writes it, with fields webtune does not use. */
const peftConfig = (overrides: Record<string, unknown> = {}) => ({
  alpha_pattern: {},
  auto_mapping: null,
  base_model_name_or_path: 'someone/tiny-llama',
  bias: 'none',
  fan_in_fan_out: false,
  inference_mode: true,
  init_lora_weights: true,
  layer_replication: null,
  layers_pattern: null,
  layers_to_transform: null,
  loftq_config: {},
  lora_alpha: 16,
  lora_dropout: 0.1,
  megatron_config: null,
  megatron_core: 'megatron.core',
  modules_to_save: null,
  peft_type: 'LORA',
  r: 2,
  rank_pattern: {},
  revision: null,
  target_modules: ['down_proj', 'q_proj'],
  task_type: 'CAUSAL_LM',
  use_dora: false,
  use_rslora: false,
  ...overrides,
});

// F16 and BF16 patterns of 1, 0.5, -0.25, 2 (A) and -1, 0.125, 1.5, 0.75 (B).
const F16_A = [0x3c00, 0x3800, 0xb400, 0x4000];
const BF16_B = [0xbf80, 0x3e00, 0x3fc0, 0x3f40];

function peftTensors(prefix = 'base_model.model.', suffix = '.weight') {
  return [
    {
      key: `${prefix}model.layers.0.self_attn.q_proj.lora_A${suffix}`,
      dtype: 'F16',
      shape: [2, 2],
      bits: F16_A,
    },
    {
      key: `${prefix}model.layers.0.self_attn.q_proj.lora_B${suffix}`,
      dtype: 'BF16',
      shape: [2, 2],
      bits: BF16_B,
    },
    {
      key: `${prefix}model.layers.1.mlp.down_proj.lora_A.default${suffix}`,
      dtype: 'F16',
      shape: [2, 2],
      bits: F16_A,
    },
    {
      key: `${prefix}model.layers.1.mlp.down_proj.lora_B.default${suffix}`,
      dtype: 'BF16',
      shape: [2, 2],
      bits: BF16_B,
    },
  ];
}

const zipOf = (files: Record<string, Uint8Array | string>) =>
  zipSync(
    Object.fromEntries(
      Object.entries(files).map(([name, data]) => [name, typeof data === 'string' ? strToU8(data) : data]),
    ) as Zippable,
  );

function expectAdapterError(read: () => unknown, message: RegExp) {
  let thrown: unknown;
  try {
    read();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(AdapterFormatError);
  expect((thrown as Error).message).toMatch(message);
}

describe('module names', () => {
  test('modulePath gives Hugging Face checkpoint names and parseModulePath inverts it', () => {
    expect(modulePath(3, 'q_proj')).toBe('model.layers.3.self_attn.q_proj');
    expect(modulePath(0, 'down_proj')).toBe('model.layers.0.mlp.down_proj');
    expect(parseModulePath('model.layers.12.mlp.gate_proj')).toEqual({ layer: 12, target: 'gate_proj' });
    expect(parseModulePath('model.layers.0.mlp.q_proj')).toBeUndefined();
    expect(parseModulePath('lm_head')).toBeUndefined();
  });

  test('loraScale is alpha / r, or alpha / sqrt(r) with rsLoRA', () => {
    expect(loraScale({ r: 4, lora_alpha: 8, use_rslora: false })).toBe(2);
    expect(loraScale({ r: 4, lora_alpha: 8, use_rslora: true })).toBe(4);
  });
});

describe('writing an adapter zip', () => {
  const adapter = sampleAdapter();
  const files = unzipSync(writeAdapterZip(adapter, { readme: '# My adapter\n' }));

  test('the zip holds the PEFT files at its root', () => {
    expect(Object.keys(files).sort()).toEqual([
      'README.md',
      'adapter_config.json',
      'adapter_model.safetensors',
    ]);
    expect(strFromU8(files['README.md'])).toBe('# My adapter\n');
    expect(Object.keys(unzipSync(writeAdapterZip(adapter))).sort()).toEqual([
      'adapter_config.json',
      'adapter_model.safetensors',
    ]);
  });

  test('adapter_config.json has every field PEFT writes', () => {
    expect(JSON.parse(strFromU8(files['adapter_config.json']))).toEqual({
      alpha_pattern: {},
      base_model_name_or_path: 'stories260K',
      bias: 'none',
      fan_in_fan_out: false,
      inference_mode: true,
      init_lora_weights: true,
      layers_pattern: null,
      layers_to_transform: null,
      lora_alpha: 6,
      lora_dropout: 0.05,
      modules_to_save: null,
      peft_type: 'LORA',
      r: 2,
      rank_pattern: {},
      revision: null,
      target_modules: ['q_proj', 'v_proj'],
      task_type: 'CAUSAL_LM',
      use_dora: false,
      use_rslora: true,
    });
    expect(adapterConfigJson(adapter.config)).toEqual(JSON.parse(strFromU8(files['adapter_config.json'])));
  });

  test('adapter_model.safetensors uses PEFT key names, float32 and [r, in] / [out, r]', () => {
    const { metadata, tensors } = readSafetensors(files['adapter_model.safetensors']);
    expect(metadata).toEqual({ format: 'pt' });
    const layout = [...tensors].map(([key, t]) => [key, t.dtype, t.shape]);
    expect(layout).toEqual([
      ['base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight', 'F32', [2, 4]],
      ['base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight', 'F32', [4, 2]],
      ['base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight', 'F32', [2, 4]],
      ['base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight', 'F32', [2, 2]],
      ['base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight', 'F32', [2, 4]],
      ['base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight', 'F32', [4, 2]],
      ['base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight', 'F32', [2, 4]],
      ['base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight', 'F32', [2, 2]],
    ]);
  });

  test("the PyTorch reference's load_adapter reads it (recorded in tests/fixtures)", () => {
    // The reference read exactly these bytes; if a hash changes, regenerate the fixture (README.md).
    expect(sha256(files['adapter_config.json'])).toBe(pythonReads.adapterConfigSha256);
    expect(sha256(files['adapter_model.safetensors'])).toBe(pythonReads.adapterWeightsSha256);
    expect(Object.keys(pythonReads.adapterModules)).toEqual([...adapter.modules.keys()]);
    for (const [path, { A, B }] of adapter.modules) {
      const read = pythonReads.adapterModules[path as keyof typeof pythonReads.adapterModules];
      expect(read.A.flat()).toEqual([...A.data]);
      expect(read.B.flat()).toEqual([...B.data]);
      expect([read.A.length, read.A[0].length, read.B.length, read.B[0].length]).toEqual([
        ...A.shape,
        ...B.shape,
      ]);
      expect(read.scale).toBeCloseTo(loraScale(adapter.config), 12);
    }
  });

  test('reading it back gives the same adapter', () => {
    const read = readAdapterZip(writeAdapterZip(adapter));
    expect(read.config).toEqual(adapter.config);
    expect(read.modules).toEqual(adapter.modules);
  });
});

describe('reading adapters PEFT wrote', () => {
  const expectPeftAdapter = (read: AdapterWeights) => {
    expect(read.config).toEqual({
      r: 2,
      lora_alpha: 16,
      lora_dropout: 0.1,
      target_modules: ['q_proj', 'down_proj'],
      use_rslora: false,
      base_model_name_or_path: 'someone/tiny-llama',
    });
    expect([...read.modules.keys()]).toEqual([
      'model.layers.0.self_attn.q_proj',
      'model.layers.1.mlp.down_proj',
    ]);
    for (const { A, B } of read.modules.values()) {
      expect(A).toEqual({ shape: [2, 2], data: Float32Array.of(1, 0.5, -0.25, 2) });
      expect(B).toEqual({ shape: [2, 2], data: Float32Array.of(-1, 0.125, 1.5, 0.75) });
    }
  };

  test('F16/BF16 tensors with adapter names, inside a top-level folder', () => {
    const zip = zipOf({
      'my-adapter/adapter_config.json': JSON.stringify(peftConfig()),
      'my-adapter/adapter_model.safetensors': handMadeSafetensors(peftTensors()),
      'my-adapter/README.md': '# card',
      '__MACOSX/my-adapter/._adapter_config.json': 'resource fork',
    });
    expectPeftAdapter(readAdapterZip(zip));
  });

  test('keys without base_model.model. or .weight, and a folder given as files', () => {
    expectPeftAdapter(
      readAdapterFiles(JSON.stringify(peftConfig()), handMadeSafetensors(peftTensors('', ''))),
    );
    expectPeftAdapter(readAdapterFiles(peftConfig(), handMadeSafetensors(peftTensors())));
  });

  test('target_modules given as "all-linear" are taken from the tensors', () => {
    expectPeftAdapter(
      readAdapterFiles(peftConfig({ target_modules: 'all-linear' }), handMadeSafetensors(peftTensors())),
    );
  });
});

describe('broken or unsupported adapters are rejected with a clear message', () => {
  const files =
    (config: object, tensors = peftTensors()) =>
    () =>
      readAdapterFiles(JSON.stringify(config), handMadeSafetensors(tensors));
  const cases: [string, () => unknown, RegExp][] = [
    [
      'missing lora_B',
      files(peftConfig(), peftTensors().slice(0, 3)),
      /'model\.layers\.1\.mlp\.down_proj' has lora_A but no lora_B/,
    ],
    [
      'wrong peft_type',
      files(peftConfig({ peft_type: 'PREFIX_TUNING' })),
      /peft_type is "PREFIX_TUNING", but webtune reads only LoRA adapters/,
    ],
    [
      'unsupported module',
      files(peftConfig(), [
        ...peftTensors(),
        { key: 'base_model.model.lm_head.lora_A.weight', dtype: 'F16', shape: [2, 2], bits: F16_A },
      ]),
      /adapts 'lm_head', which webtune does not support/,
    ],
    [
      'projection under the wrong parent',
      files(peftConfig(), [
        {
          key: 'base_model.model.model.layers.0.mlp.q_proj.lora_A.weight',
          dtype: 'F16',
          shape: [2, 2],
          bits: F16_A,
        },
      ]),
      /adapts 'model\.layers\.0\.mlp\.q_proj'/,
    ],
    [
      'A does not match r',
      files(peftConfig({ r: 4 })),
      /lora_A of 'model\.layers\.0\.self_attn\.q_proj' has shape \[2, 2\], but r = 4 needs \[4, in\]/,
    ],
    [
      'B does not match r',
      files(peftConfig(), [peftTensors()[0], { ...peftTensors()[1], shape: [1, 4] }]),
      /lora_B of .* has shape \[1, 4\], but r = 2 needs \[out, 2\]/,
    ],
    ['r is not a positive integer', files(peftConfig({ r: 0 })), /r must be a positive whole number, not 0/],
    ['DoRA', files(peftConfig({ use_dora: true })), /DoRA/],
    ['per-module ranks', files(peftConfig({ rank_pattern: { q_proj: 4 } })), /rank_pattern/],
    [
      'a tensor that is not LoRA',
      files(peftConfig(), [
        ...peftTensors(),
        { key: 'base_model.model.model.norm.weight', dtype: 'F16', shape: [2], bits: [0, 0] },
      ]),
      /'base_model\.model\.model\.norm\.weight' is not a LoRA A or B matrix/,
    ],
    [
      'config is not JSON',
      () => readAdapterFiles('{"r": 2,', handMadeSafetensors(peftTensors())),
      /adapter_config\.json is not valid JSON/,
    ],
    ['not a zip', () => readAdapterZip(strToU8('PK but not really a zip file')), /not a readable zip file/],
    [
      'zip without adapter_config.json',
      () => readAdapterZip(zipOf({ 'adapter_model.safetensors': handMadeSafetensors(peftTensors()) })),
      /no adapter_config\.json, so it is not a PEFT LoRA adapter/,
    ],
    [
      'zip with only adapter_model.bin',
      () =>
        readAdapterZip(
          zipOf({ 'adapter_config.json': JSON.stringify(peftConfig()), 'adapter_model.bin': 'pickle' }),
        ),
      /adapter_model\.bin.*safe_serialization=True/,
    ],
    [
      'zip with two adapters',
      () => readAdapterZip(zipOf({ 'a/adapter_config.json': '{}', 'b/adapter_config.json': '{}' })),
      /several adapters \(a\/, b\/\)/,
    ],
  ];
  test.each(cases)('%s', (_, read, message) => expectAdapterError(read, message));
});

describe('checkAdapterFits', () => {
  const adapter = sampleAdapter();
  const shapes = (target: string) => (target === 'q_proj' ? { in: 4, out: 4 } : { in: 4, out: 2 });

  test('an adapter for this model fits', () => {
    expect(() => checkAdapterFits(adapter, { numLayers: 2, shapes })).not.toThrow();
  });

  test('too few layers, other sizes, or missing layers are refused', () => {
    expectAdapterError(
      () => checkAdapterFits(adapter, { numLayers: 1, shapes }),
      /weights for layer 1, but this model has only 1 layers.*stories260K/,
    );
    expectAdapterError(
      () => checkAdapterFits(adapter, { numLayers: 2, shapes: () => ({ in: 8, out: 4 }) }),
      /lora_A \[2, 4\] and lora_B \[4, 2\], but this model needs \[2, 8\] and \[4, 2\]/,
    );
    expectAdapterError(
      () => checkAdapterFits(adapter, { numLayers: 3, shapes }),
      /no weights for model\.layers\.2\.self_attn\.q_proj/,
    );
  });
});
