// The committed outputs in reference/outputs/ are what reference/webtune_reference.py computes today: a few
// of them are made again live, from the ids (and LoRA settings) each file records, and must come out the
// same. A change to the script that is not followed by `bash reference/make-outputs.sh` fails here.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ObjectiveRef } from './helpers/objective-checks';
import { hasTorch, INSTALL_TORCH } from './helpers/reference';
import { maxAbsDiff, modelDir, reference, REFERENCE_SCRIPT, relativeError } from './helpers/shared';

function run(args: string[]): string {
  if (!hasTorch())
    throw new Error(`/usr/bin/python3 cannot import torch, which the reference needs: ${INSTALL_TORCH}`);
  return execFileSync('/usr/bin/python3', [REFERENCE_SCRIPT, ...args], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
}

describe('reference/outputs against the reference run live', () => {
  it('tiny-random-qwen3 score.json', () => {
    const committed = reference<{ ids: number[]; logprobs: number[]; nll: number }>(
      'tiny-random-qwen3',
      'score.json',
    );
    const live = JSON.parse(run(['score', modelDir('tiny-random-qwen3'), '--ids', committed.ids.join(',')]));
    expect(live.ids).toEqual(committed.ids);
    expect(maxAbsDiff(live.logprobs, committed.logprobs)).toBeLessThan(1e-5);
    expect(Math.abs(live.nll - committed.nll)).toBeLessThan(1e-5);
  });

  it('tiny-random-qwen2 lora-grad-all-r4.json (float64)', () => {
    type Grads = {
      ids: number[];
      rank: number;
      alpha: number;
      targets: string[];
      loss: number;
      grads: Record<string, number[][]>;
    };
    const committed = reference<Grads>('tiny-random-qwen2', 'lora-grad-all-r4.json');
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-reference-')), 'grads.json');
    try {
      run([
        'lora-grad',
        modelDir('tiny-random-qwen2'),
        '--ids',
        committed.ids.join(','),
        '--rank',
        String(committed.rank),
        '--alpha',
        String(committed.alpha),
        '--targets',
        committed.targets.join(','),
        '--out',
        out,
      ]);
      const live = JSON.parse(fs.readFileSync(out, 'utf8')) as Grads;
      expect(Math.abs(live.loss - committed.loss)).toBeLessThan(1e-12);
      expect(Object.keys(live.grads)).toEqual(Object.keys(committed.grads));
      for (const [name, grad] of Object.entries(committed.grads))
        expect(relativeError(live.grads[name].flat(), grad.flat()), name).toBeLessThan(1e-9);
    } finally {
      fs.rmSync(path.dirname(out), { recursive: true, force: true });
    }
  });

  it('stories260K greedy-once-upon-a-time.json', () => {
    const committed = reference<{ ids: number[]; new: number[] }>(
      'stories260K',
      'greedy-once-upon-a-time.json',
    );
    const prompt = committed.ids.slice(0, committed.ids.length - committed.new.length);
    const live = JSON.parse(
      run([
        'generate',
        modelDir('stories260K'),
        '--ids',
        prompt.join(','),
        '--steps',
        String(committed.new.length),
      ]),
    );
    expect(live).toEqual(committed);
  });

  it('tiny-random-qwen2 objective-orpo.json and stories260K objective-dpo.json (objectives_reference.py)', () => {
    for (const [model, name] of [
      ['tiny-random-qwen2', 'orpo'],
      ['stories260K', 'dpo'],
    ]) {
      const committed = reference<ObjectiveRef>(model, `objective-${name}.json`);
      const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-reference-')), 'objective.json');
      try {
        execFileSync('/usr/bin/python3', [
          path.join(path.dirname(REFERENCE_SCRIPT), 'objectives_reference.py'),
          modelDir(model),
          ...[
            '--objective',
            name,
            '--data',
            path.join(path.dirname(REFERENCE_SCRIPT), 'inputs', 'pairs.json'),
          ],
          ...['--beta', String(committed.beta), '--rank', String(committed.rank)],
          ...['--alpha', String(committed.alpha), '--targets', committed.targets.join(','), '--out', out],
        ]);
        const live = JSON.parse(fs.readFileSync(out, 'utf8')) as ObjectiveRef;
        expect(Math.abs(live.loss - committed.loss)).toBeLessThan(1e-12);
        expect(live.metrics).toEqual(committed.metrics);
        for (const [tensor, grad] of Object.entries(committed.grads))
          expect(relativeError(live.grads[tensor].flat(), grad.flat()), tensor).toBeLessThan(1e-9);
      } finally {
        fs.rmSync(path.dirname(out), { recursive: true, force: true });
      }
    }
  });
});
