/**
 * The TRL bundle of a Gemma 3 run: nothing in it depends on the family, and this proves it for Gemma, whose
 * chat template has no system role of its own. Every training and validation row is one conversation of
 * chat-mini.jsonl (as the file has it: system, user, then the assistant's answer as the completion), and the
 * config names the model the run trained.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './helpers/cli';
import { dataFile, modelDir } from './helpers/shared';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-trl-gemma-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('webtune export --format trl with Gemma 3', () => {
  it("writes the run's conversations as TRL rows and names the Gemma model", async () => {
    const model = modelDir('tiny-random-gemma3');
    const data = dataFile('chat-mini.jsonl');
    const adapter = path.join(tmp, 'a.zip');
    const common = ['--model', model, '--data', data, '--max-length', '64'];
    const train = await runCli(['train', ...common, '--backend', 'wasm', '--epochs', '1', '--out', adapter]);
    expect(train.status, train.stderr).toBe(0);
    const out = path.join(tmp, 'trl');
    const exported = await runCli([
      'export',
      '--format',
      'trl',
      ...common,
      '--adapter',
      adapter,
      '--out',
      out,
    ]);
    expect(exported.status, exported.stderr).toBe(0);
    const conversations = fs
      .readFileSync(data, 'utf8')
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { messages: { role: string; content: string }[] }).messages);
    const rows = ['train', 'validation'].flatMap((split) =>
      fs
        .readFileSync(path.join(out, 'data', `${split}.jsonl`), 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { prompt: unknown[]; completion: unknown[] }),
    );
    expect(rows).toHaveLength(conversations.length);
    for (const row of rows) expect(conversations).toContainEqual([...row.prompt, ...row.completion]);
    const config = fs.readFileSync(path.join(out, 'sft_config.yaml'), 'utf8');
    expect(config).toMatch(
      new RegExp(`^model_name_or_path: ${model.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'),
    );
  }, 120_000);
});
