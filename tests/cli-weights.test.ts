/**
 * `--weights` on the commands that load a model: a run on a base held in 8 or 4 bits is the run on its
 * weights as the formats' definitions dequantize them (reference/quant_model.py, numpy, apart from the
 * engine), and 'auto' picks the widest format whose training fits a tab's budget, saying why.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseModelConfig } from '../src/engine/config';
import { estimateTrainingMemory } from '../src/engine/memory';
import { chooseWeights, tabMemoryNeed, TAB_MEMORY_BUDGET } from '../src/engine/weights-choice';
import { SHAPES } from '../src/bench/run';
import { jsonResult, runCli } from './helpers/cli';
import { dequantizedFolder, removeDequantizedFolders } from './helpers/quantized';
import { dataFile, modelDir, REFERENCE_SCRIPT } from './helpers/shared';

const temporary: string[] = [];
const tmp = (prefix: string) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  temporary.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of temporary) fs.rmSync(dir, { recursive: true, force: true });
  removeDequantizedFolders();
});

/** The step losses `webtune train` printed. */
const losses = (stderr: string) =>
  [...stderr.matchAll(/^step \d+\/\d+ .*? loss (\S+)/gm)].map((m) => Number(m[1]));

describe('webtune --weights', () => {
  for (const format of ['q8_0', 'nf4'] as const)
    it(`train --weights ${format} follows, loss for loss, the run on the reference's dequantized weights`, async () => {
      const dequantized = dequantizedFolder(modelDir('stories260K'), format);
      const out = tmp('webtune-cli-out-');
      const common = [
        '--data',
        dataFile('animal-sounds.jsonl'),
        '--epochs',
        '2',
        '--backend',
        'wasm',
        '--json',
      ];
      const quantized = await runCli([
        'train',
        '--model',
        modelDir('stories260K'),
        '--weights',
        format,
        '--out',
        path.join(out, 'q.zip'),
        ...common,
      ]);
      expect(quantized.status, quantized.stderr).toBe(0);
      expect(quantized.stderr).toContain(
        `weights: ${format === 'q8_0' ? '8-bit (q8_0)' : '4-bit (nf4)'}, as chosen`,
      );
      const wide = await runCli([
        'train',
        '--model',
        dequantized,
        '--weights',
        'f32',
        '--out',
        path.join(out, 'f.zip'),
        ...common,
      ]);
      expect(wide.status, wide.stderr).toBe(0);
      const [a, b] = [losses(quantized.stderr), losses(wide.stderr)];
      expect(a.length).toBeGreaterThan(4);
      expect(a).toEqual(b);
      expect(jsonResult<{ val_loss: number }>(quantized).val_loss).toBe(
        jsonResult<{ val_loss: number }>(wide).val_loss,
      );
      // The base mattered: the float32 checkpoint trains on other losses.
      const original = await runCli([
        'train',
        '--model',
        modelDir('stories260K'),
        '--weights',
        'f32',
        '--out',
        path.join(out, 'o.zip'),
        ...common,
      ]);
      expect(losses(original.stderr)).not.toEqual(a);
      if (format !== 'nf4') return;
      // Export merges into the original weights, as QLoRA users merge: --weights changes nothing there.
      const exported = async (extra: string[]) => {
        const dir = path.join(out, `merged${extra.length}`);
        const run = await runCli([
          'export',
          ...['--model', modelDir('stories260K'), '--adapter', path.join(out, 'q.zip')],
          ...['--format', 'merged', '--out', dir, ...extra],
        ]);
        expect(run.status, run.stderr).toBe(0);
        return { run, bytes: fs.readFileSync(path.join(dir, 'model.safetensors')) };
      };
      const [plain, narrow] = [await exported([]), await exported(['--weights', 'nf4'])];
      expect(narrow.run.stderr).toContain("export reads stories260K's original weights");
      expect(Buffer.compare(plain.bytes, narrow.bytes)).toBe(0);
    });

  it('score and generate take it too, and refuse a format that is not one', async () => {
    const text = ['--text', 'Once upon a time, there was a little girl'];
    const score = await runCli([
      'score',
      '--model',
      modelDir('stories260K'),
      '--weights',
      'nf4',
      ...text,
      '--json',
    ]);
    expect(score.status, score.stderr).toBe(0);
    expect(score.stderr).toContain('weights: 4-bit (nf4), as chosen');
    const generate = await runCli([
      'generate',
      '--model',
      modelDir('stories260K'),
      '--weights',
      'bf16',
      '--prompt',
      'Once',
      '--max-new-tokens',
      '4',
    ]);
    expect(generate.status, generate.stderr).toBe(0);
    expect(generate.stderr).toContain('weights: 16-bit, as chosen');
    const bad = await runCli(['score', '--model', modelDir('stories260K'), '--weights', 'q4', ...text]);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain('--weights must be auto, f32, bf16, q8_0, nf4 (got "q4")');
  });

  it('auto: the widest format whose run fits the budget, and why', () => {
    const run = { rank: 8, targets: ['q_proj', 'v_proj'], batchSize: 1, maxLength: 256 };
    const order = ['f32', 'bf16', 'q8_0', 'nf4'] as const;
    for (const name of ['smollm2-135m', 'qwen2.5-0.5b']) {
      const args = parseModelConfig(SHAPES[name]);
      const decision = chooseWeights('auto', args, run, 'wasm');
      // Every wider format needs more than the budget; the chosen one fits.
      const need = (f: (typeof order)[number]) =>
        tabMemoryNeed(estimateTrainingMemory(args, { ...run, weights: f }), 'wasm');
      const index = order.indexOf(decision.format as (typeof order)[number]);
      for (const wider of order.slice(0, index)) expect(need(wider)).toBeGreaterThan(TAB_MEMORY_BUDGET);
      expect(need(decision.format as (typeof order)[number])).toBeLessThanOrEqual(TAB_MEMORY_BUDGET);
      expect(decision.reason).toMatch(
        /^32-bit: training on 1 × 256 tokens needs about \d\.\d GB, within the 3\.0 GB/,
      );
    }
    // A 1.5B model's 32-bit weights alone are 6 GB: auto narrows them, and says what the wider ones need.
    const qwen15 = parseModelConfig({
      ...SHAPES['qwen2.5-0.5b'],
      hidden_size: 1536,
      intermediate_size: 8960,
      num_hidden_layers: 28,
      num_attention_heads: 12,
      num_key_value_heads: 2,
    });
    const narrowed = chooseWeights('auto', qwen15, run, 'wasm');
    expect(['q8_0', 'nf4']).toContain(narrowed.format);
    expect(narrowed.reason).toMatch(
      /32-bit would need about \d+\.\d GB( of WebAssembly memory)? and 16-bit would need about \d\.\d GB/,
    );
    // Less budget, narrower weights.
    expect(chooseWeights('auto', qwen15, run, 'wasm', 1.2 * 2 ** 30).format).toBe('nf4');
    expect(chooseWeights('q8_0', qwen15, run, 'wasm').reason).toBe('8-bit (q8_0), as chosen');
  });
});

describe('webtune score --weights: what the narrower weights cost', () => {
  it('reports the log-prob shift and the KL divergence from 32-bit as the reference measures them', async () => {
    const text = 'Once upon a time, there was a little girl named Lily. She loved to play outside.';
    const run = await runCli([
      'score',
      '--model',
      modelDir('stories260K'),
      '--weights',
      'nf4',
      '--text',
      text,
      '--json',
    ]);
    expect(run.status, run.stderr).toBe(0);
    const result = jsonResult<{
      tokens: number[];
      weights: string;
      against_f32: { mean_abs_logprob_diff: number; mean_kl: number; max_kl: number };
    }>(run);
    expect(result.weights).toBe('nf4');
    const dequantized = dequantizedFolder(modelDir('stories260K'), 'nf4');
    // The reference's own models (float64), the 32-bit checkpoint and its nf4 weights dequantized.
    const script = `
import json, sys, torch
sys.path.insert(0, ${JSON.stringify(path.dirname(REFERENCE_SCRIPT))})
from webtune_reference import CausalLM
ids = json.loads(sys.argv[3])
with torch.no_grad():
    p = torch.log_softmax(CausalLM(sys.argv[1], torch.float64).logits(ids[:-1]), -1)
    q = torch.log_softmax(CausalLM(sys.argv[2], torch.float64).logits(ids[:-1]), -1)
kl = (p.exp() * (p - q)).sum(-1)
nxt = torch.tensor(ids[1:])
diff = (p.gather(1, nxt[:, None]) - q.gather(1, nxt[:, None])).abs().mean()
print(json.dumps({"diff": diff.item(), "mean_kl": kl.mean().item(), "max_kl": kl.max().item()}))
`;
    const ref = JSON.parse(
      execFileSync(
        '/usr/bin/python3',
        ['-c', script, modelDir('stories260K'), dequantized, JSON.stringify(result.tokens)],
        {
          encoding: 'utf8',
        },
      ),
    ) as { diff: number; mean_kl: number; max_kl: number };
    const cost = result.against_f32;
    expect(ref.mean_kl).toBeGreaterThan(1e-4); // nf4 moved the model: the figures are not vacuous
    expect(Math.abs(cost.mean_abs_logprob_diff - ref.diff)).toBeLessThan(1e-4);
    expect(Math.abs(cost.mean_kl - ref.mean_kl)).toBeLessThan(1e-4);
    expect(Math.abs(cost.max_kl - ref.max_kl)).toBeLessThan(1e-4);
    // 32-bit weights have nothing to compare.
    const wide = await runCli([
      'score',
      '--model',
      modelDir('stories260K'),
      '--weights',
      'f32',
      '--text',
      text,
      '--json',
    ]);
    expect(jsonResult<Record<string, unknown>>(wide).against_f32).toBeUndefined();
  });
});
