// The webtune command as a person runs it: real processes, real files, answers checked against the reference.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { unzipSync } from 'fflate';
import { beforeAll, describe, expect, it } from 'vitest';
import { dataFile, maxAbsDiff, modelDir, reference } from './helpers/shared';

const ROOT = path.resolve(__dirname, '..');
const STORIES = modelDir('stories260K');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-cli-'));

function webtune(...args: string[]) {
  const run = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'webtune.mjs'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

/** With --json, stdout must be exactly one JSON object. */
function json(result: ReturnType<typeof webtune>) {
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout.trim());
}

/** A failure: non-zero exit and one line on stderr. */
function failure(result: ReturnType<typeof webtune>): string {
  expect(result.code).not.toBe(0);
  const lines = result.stderr.trim().split('\n');
  expect(lines, result.stderr).toHaveLength(1);
  return lines[0];
}

describe('webtune CLI', () => {
  beforeAll(() => {
    const build = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'build-cli.mjs')], { cwd: ROOT, encoding: 'utf8' });
    expect(build.status, build.stderr).toBe(0);
  });

  it('explains itself', () => {
    const help = webtune('--help');
    expect(help.code).toBe(0);
    for (const command of ['train', 'generate', 'score']) expect(help.stdout).toContain(`webtune ${command}`);
    expect(webtune('train', '--help').stdout).toContain('--completion-column');
  });

  it('scores a text like the PyTorch reference', () => {
    const ref = reference<{ ids: number[]; logprobs: number[] }>('stories260K', 'score-lily.json');
    const text = reference<{ text: string; ids: number[] }[]>('stories260K', 'tokenize.json').find((t) => t.ids.join() === ref.ids.join())!.text;
    const out = json(webtune('score', '--model', STORIES, '--text', text, '--backend', 'wasm', '--json'));
    expect(out.tokens).toEqual(ref.ids);
    expect(maxAbsDiff(out.logprobs, ref.logprobs)).toBeLessThan(1e-3);
    expect(out.nll).toBeCloseTo(-ref.logprobs.reduce((a, b) => a + b, 0) / ref.logprobs.length, 3);
  });

  it('continues a prompt greedily like the reference, and stops at a stop string', () => {
    const greedy = reference<{ new: number[] }>('stories260K', 'greedy-once-upon-a-time.json');
    const out = json(webtune('generate', '--model', STORIES, '--prompt', 'Once upon a time', '--max-new-tokens', '20', '--backend', 'cpu', '--json'));
    expect(out.tokens).toEqual(greedy.new.slice(0, 20));
    expect(out.text.startsWith('Once upon a time')).toBe(false);
    const stopped = json(webtune('generate', '--model', STORIES, '--prompt', 'Once upon a time', '--max-new-tokens', '20', '--stop', 'Lily', '--backend', 'cpu', '--json'));
    expect(out.text).toContain('Lily');
    expect(stopped.text).toBe(out.text.slice(0, out.text.indexOf('Lily')));
  });

  it('trains an adapter, writes a PEFT zip, and the adapter changes the scores', () => {
    const zip = path.join(tmp, 'friends.zip');
    const run = webtune('train', '--model', STORIES, '--data', dataFile('best-friends.csv'), '--out', zip, '--epochs', '2', '--backend', 'wasm', '--json');
    const out = json(run);
    expect(Object.keys(out).sort()).toEqual(['backend', 'steps', 'tokens_per_second', 'train_loss', 'val_loss']);
    expect(out.backend).toBe('wasm');
    expect(run.stderr.split('\n').filter((l) => /^step \d+\/\d+/.test(l))).toHaveLength(out.steps);
    const files = unzipSync(new Uint8Array(fs.readFileSync(zip)));
    expect(Object.keys(files).sort()).toEqual(['README.md', 'adapter_config.json', 'adapter_model.safetensors']);
    const config = JSON.parse(new TextDecoder().decode(files['adapter_config.json']));
    expect(config).toMatchObject({ peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 8, lora_alpha: 16, target_modules: ['q_proj', 'v_proj'] });
    const base = json(webtune('score', '--model', STORIES, '--text', 'Who is Tom?\nTom is my best friend.', '--backend', 'cpu', '--json'));
    const tuned = json(webtune('score', '--model', STORIES, '--adapter', zip, '--text', 'Who is Tom?\nTom is my best friend.', '--backend', 'cpu', '--json'));
    expect(tuned.nll).toBeLessThan(base.nll);
    const noValidation = json(webtune('train', '--model', STORIES, '--data', dataFile('best-friends.csv'), '--out', path.join(tmp, 'b.zip'), '--epochs', '1', '--val-split', '0', '--backend', 'wasm', '--json'));
    expect(noValidation.val_loss).toBeNull();
  });

  it('takes explicit columns and templates, and the other example layouts', () => {
    const out = (name: string) => path.join(tmp, `${name}.zip`);
    json(webtune('train', '--model', STORIES, '--data', dataFile('support-tickets.csv'), '--template', 'Ticket: {ticket}\\nDepartment:', '--completion-column', 'department', '--out', out('t'), '--epochs', '1', '--backend', 'wasm', '--json'));
    json(webtune('train', '--model', STORIES, '--data', dataFile('best-friends.csv'), '--prompt-column', 'question', '--completion-column', 'answer', '--out', out('q'), '--epochs', '1', '--backend', 'wasm', '--json'));
    json(webtune('train', '--model', STORIES, '--data', dataFile('animal-sounds.jsonl'), '--out', out('a'), '--epochs', '1', '--backend', 'wasm', '--json'));
    json(webtune('train', '--model', STORIES, '--data', dataFile('alpaca-mini.jsonl'), '--out', out('i'), '--epochs', '1', '--backend', 'wasm', '--json'));
    json(webtune('train', '--model', modelDir('stories260K-chat'), '--data', dataFile('chat-mini.jsonl'), '--out', out('c'), '--epochs', '1', '--backend', 'wasm', '--json'));
  });

  it('answers bad input with one line naming the problem', () => {
    const train = (...extra: string[]) => webtune('train', '--model', STORIES, '--out', path.join(tmp, 'x.zip'), '--backend', 'cpu', ...extra);
    expect(failure(train('--data', path.join(tmp, 'missing.csv')))).toMatch(/Dataset not found: .*missing\.csv/);
    expect(failure(webtune('score', '--model', path.join(tmp, 'nope'), '--text', 'hi'))).toMatch(/Model folder not found/);
    expect(failure(webtune('score', '--model', path.dirname(dataFile('best-friends.csv')), '--text', 'hi'))).toMatch(/not a complete model folder: config\.json, tokenizer\.json/);
    expect(failure(train('--data', dataFile('best-friends.csv'), '--completion-column', 'reply'))).toMatch(/no column 'reply'.*Columns: question, answer/);
    const headerOnly = path.join(tmp, 'empty.csv');
    fs.writeFileSync(headerOnly, 'question,answer\n');
    expect(failure(train('--data', headerOnly))).toMatch(/no rows|no data|empty/i);
    const broken = path.join(tmp, 'broken.jsonl');
    fs.writeFileSync(broken, '{"prompt":"a","completion":"b"}\n{"prompt":"c","completion":"d"}\n{"prompt": oops}\n');
    expect(failure(train('--data', broken))).toMatch(/Line 3/);
    expect(failure(webtune('fly'))).toMatch(/unknown command "fly"/);
    expect(failure(webtune('score', '--model', STORIES, '--text', 'hi', '--colour'))).toMatch(/--colour/);
    expect(failure(train('--data', dataFile('best-friends.csv'), '--epochs', 'abc'))).toMatch(/--epochs must be a number/);
    const gpt2 = path.join(tmp, 'gpt2');
    fs.mkdirSync(gpt2);
    for (const f of fs.readdirSync(STORIES)) fs.copyFileSync(path.join(STORIES, f), path.join(gpt2, f));
    fs.writeFileSync(path.join(gpt2, 'config.json'), JSON.stringify({ model_type: 'gpt2', n_embd: 64 }));
    expect(failure(webtune('score', '--model', gpt2, '--text', 'hi'))).toMatch(/"gpt2" is not supported.*llama, mistral, qwen2, qwen3/);
    const notZip = path.join(tmp, 'notes.txt');
    fs.writeFileSync(notZip, 'not an adapter');
    expect(failure(webtune('score', '--model', STORIES, '--adapter', notZip, '--text', 'hi'))).toMatch(/adapter/i);
  });
});
