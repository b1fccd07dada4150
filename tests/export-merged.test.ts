// `--format merged`: the base folder with the adapter folded in scores, under the independent PyTorch
// reference and under webtune, like the base model with the adapter attached; its 16-bit weights round
// as numpy and PyTorch round.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readModelFolder } from '../src/node/model-folder';
import { attachLora } from '../src/engine/lora';
import { loadModel } from '../src/engine/load';
import { disposeModel } from '../src/engine/model';
import { parseSafetensorsHeader } from '../src/engine/safetensors';
import { scoreTokens } from '../src/engine/score';
import { tf } from '../src/engine/tf';
import { float16Bits } from '../src/engine/half';
import { bfloat16Bits } from './helpers/half';
import { writeMergedModel } from '../src/formats/merged-model';
import { writeAdapterZip } from '../src/formats/peft';
import { memoryFolder } from '../src/formats/sink';
import { ADAPTER_TEXT, DET_ADAPTERS } from './helpers/det-adapters';
import { detLora } from './helpers/det-lora';
import { hasTorch, INSTALL_TORCH, referenceScore, unzipToTemp } from './helpers/reference';
import { loadFixture, maxAbsDiff, modelDir, REFERENCE_SCRIPT, switchBackend } from './helpers/shared';

const PYTHON = '/usr/bin/python3';

function writeFolder(files: Map<string, Uint8Array>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-merged-'));
  for (const [name, bytes] of files) fs.writeFileSync(path.join(dir, name), bytes);
  return dir;
}

describe('merged model folder', () => {
  for (const { name, settings } of DET_ADAPTERS) {
    it(`${name}: scores like base + adapter under webtune_reference.py (1e-3), and webtune loads it`, async () => {
      if (!hasTorch()) throw new Error(`The PyTorch reference needs torch: ${INSTALL_TORCH}`);
      await switchBackend('cpu');
      const start = tf.memory().numTensors;
      const base = loadFixture('stories260K');
      let merged: ReturnType<typeof loadModel> | undefined;
      try {
        const adapter = attachLora(base.model, settings, detLora, base.name);
        const weights = await adapter.toWeights();
        const ids = base.tokenizer.encode(ADAPTER_TEXT);
        const adapterDir = unzipToTemp(writeAdapterZip(weights));

        const folder = memoryFolder();
        const files = readModelFolder(modelDir('stories260K'));
        await writeMergedModel(folder, { files, adapter: weights, name: 'merged', promptStyle: null });
        expect([...folder.files.keys()].sort()).toEqual([
          'README.md',
          'config.json',
          'model.safetensors',
          'tokenizer.json',
          'tokenizer_config.json',
        ]);
        const dir = writeFolder(folder.files);

        const withAdapter = referenceScore(modelDir('stories260K'), ids, adapterDir);
        const fromMerged = referenceScore(dir, ids);
        const plain = referenceScore(modelDir('stories260K'), ids);
        expect(maxAbsDiff(fromMerged.logprobs, withAdapter.logprobs)).toBeLessThan(1e-3);
        // ...and the adapter matters: the merged weights are not the base's.
        expect(maxAbsDiff(fromMerged.logprobs, plain.logprobs)).toBeGreaterThan(1e-2);

        merged = loadModel(readModelFolder(dir));
        const ours = await scoreTokens(merged.model, ids);
        expect(maxAbsDiff(ours.logprobs, withAdapter.logprobs)).toBeLessThan(1e-3);
      } finally {
        if (merged) disposeModel(merged.model);
        disposeModel(base.model);
        tf.engine().disposeVariables();
      }
      expect(tf.memory().numTensors).toBe(start);
    });
  }

  it('f16 and bf16: the file says so, and every weight is the float32 weight rounded as PyTorch rounds it', async () => {
    if (!hasTorch()) throw new Error(`The PyTorch reference needs torch: ${INSTALL_TORCH}`);
    const files = readModelFolder(modelDir('stories260K'));
    for (const [dtype, torchName, header] of [
      ['f16', 'float16', 'F16'],
      ['bf16', 'bfloat16', 'BF16'],
    ] as const) {
      const folder = memoryFolder();
      await writeMergedModel(folder, { files, name: 'm', promptStyle: null }, { dtype });
      expect(JSON.parse(new TextDecoder().decode(folder.files.get('config.json'))).torch_dtype).toBe(
        torchName,
      );
      const bytes = folder.files.get('model.safetensors')!;
      const entries = parseSafetensorsHeader(bytes, bytes.byteLength).tensors;
      expect(new Set(entries.map((e) => e.dtype))).toEqual(new Set([header]));
      const dir = writeFolder(folder.files);
      // PyTorch rounds the f32 base weights; the file must hold exactly those bits.
      const script = `
import json, struct, sys, torch, numpy as np
sys.path.insert(0, ${JSON.stringify(path.dirname(REFERENCE_SCRIPT))})
from webtune_reference import read_safetensors
base = read_safetensors(${JSON.stringify(path.join(modelDir('stories260K'), 'model.safetensors'))})
with open(${JSON.stringify(path.join(dir, 'model.safetensors'))}, 'rb') as f:
    n = struct.unpack('<Q', f.read(8))[0]; header = json.loads(f.read(n)); data = f.read()
bad = 0
for name, arr in base.items():
    a, b = header[name]['data_offsets']
    ours = np.frombuffer(data[a:b], dtype='<u2')
    theirs = torch.from_numpy(arr).to(torch.${torchName}).view(torch.int16).numpy().view('<u2').reshape(-1)
    bad += int((ours != theirs).sum())
print(bad)`;
      const bad = Number(execFileSync(PYTHON, ['-c', script], { encoding: 'utf8' }).trim());
      expect(bad, `${dtype}: weights that differ from PyTorch's rounding`).toBe(0);
    }
  });

  it('float16Bits and bfloat16Bits round every edge case as numpy and PyTorch do', () => {
    if (!hasTorch()) throw new Error(`The PyTorch reference needs torch: ${INSTALL_TORCH}`);
    const values = [
      0,
      -0,
      1,
      -1,
      65504,
      65519.99,
      65520,
      1e6,
      -1e6,
      6.1e-5,
      6.0e-8,
      2.98e-8,
      2.99e-8,
      1e-10,
      0.1,
      1 / 3,
      1.0009765625,
      1.00048828125,
      1.00146484375,
      3.0517578125e-5,
      Infinity,
      -Infinity,
      NaN,
      3.4e38,
      1.17549435e-38,
      2.5e-45,
    ];
    for (let i = 0; i < 200; i++) values.push(Math.sin(i * 12.9898) * 10 ** ((i % 13) - 8));
    const f32 = Float32Array.from(values);
    const script = `
import json, sys, torch, numpy as np
v = np.array(json.load(sys.stdin), dtype=np.float64).astype(np.float32)
print(json.dumps([v.astype(np.float16).view(np.uint16).tolist(), torch.from_numpy(v).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16).tolist()]))`;
    const [f16, bf16] = JSON.parse(
      execFileSync(PYTHON, ['-c', script], {
        input: JSON.stringify(
          Array.from(f32, (v) => (Object.is(v, -0) ? '-0' : Number.isFinite(v) ? v : String(v))),
        ),
        encoding: 'utf8',
      }),
    ) as number[][];
    const ours16 = Array.from(f32, float16Bits);
    const oursBf = Array.from(f32, bfloat16Bits);
    // NaN payloads differ between libraries; NaN must stay NaN.
    const norm16 = (bits: number) => ((bits & 0x7c00) === 0x7c00 && bits & 0x3ff ? 'nan' : bits);
    const normBf = (bits: number) => ((bits & 0x7f80) === 0x7f80 && bits & 0x7f ? 'nan' : bits);
    expect(ours16.map(norm16)).toEqual(f16.map(norm16));
    expect(oursBf.map(normBf)).toEqual(bf16.map(normBf));
  });
});
