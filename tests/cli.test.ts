// `webtune` as a person runs it: real files, answers checked against references that the CLI did not
// produce (PyTorch ids and log-probs, the tokenizer's own vocabulary, the model's config). Commands run in
// this process through the CLI's main (tests/helpers/cli.ts); the last group launches bin/webtune.mjs as its
// own process, for what only a real process shows: the bundle, exit codes and the streams.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { unzipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { failure, jsonResult, ROOT, runBin, runCli } from './helpers/cli';
import { dataFile, maxAbsDiff, modelDir, reference } from './helpers/shared';

const STORIES = modelDir('stories260K');
const STORIES_CHAT = modelDir('stories260K-chat');
const PROMPT = 'Once upon a time';

let tmp = '';
const tmpFile = (name: string) => path.join(tmp, name);

const webtune = (...args: string[]) => runCli(args);

/** Rows of a .csv (header excluded) or .jsonl file, counted without webtune's parser. */
function rowCount(file: string): number {
  const lines = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '');
  return file.endsWith('.csv') ? lines.length - 1 : lines.length;
}

/** "N examples (a train, b validation), T tokens" — the first progress line of `train`. */
function trainingSetLine(stderr: string): {
  examples: number;
  train: number;
  validation: number;
  tokens: number;
} {
  const match = /^(\d+) examples \((\d+) train, (\d+) validation\), (\d+) tokens/m.exec(stderr);
  expect(match, stderr).not.toBeNull();
  const [examples, train, validation, tokens] = match!.slice(1).map(Number);
  return { examples, train, validation, tokens };
}

const stepLines = (stderr: string) => stderr.split('\n').filter((line) => /^step \d+\/\d+/.test(line));

/**
 * Decodes ids straight from tokenizer.json's vocabulary, following its declared decoder
 * (▁ → space, <0xNN> byte fallback, strip one leading space) — independent of webtune's tokenizer.
 */
function vocabDecoder(model: string): (ids: number[]) => string {
  const tokenizer = JSON.parse(fs.readFileSync(path.join(model, 'tokenizer.json'), 'utf8')) as {
    model: { vocab: Record<string, number> };
  };
  const pieces: string[] = [];
  for (const [piece, id] of Object.entries(tokenizer.model.vocab)) pieces[id] = piece;
  return (ids) => {
    const bytes: number[] = [];
    for (const id of ids) {
      const piece = pieces[id];
      const byte = /^<0x([0-9A-F]{2})>$/.exec(piece);
      if (byte) bytes.push(parseInt(byte[1], 16));
      else bytes.push(...new TextEncoder().encode(piece.replaceAll('▁', ' ')));
    }
    const text = new TextDecoder().decode(new Uint8Array(bytes));
    return text.startsWith(' ') ? text.slice(1) : text;
  };
}

/** Tensor names and shapes from a safetensors header (8-byte little-endian length, then JSON). */
function safetensorsShapes(bytes: Uint8Array): Record<string, number[]> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))) as Record<
    string,
    { shape: number[] }
  >;
  return Object.fromEntries(
    Object.entries(header)
      .filter(([name]) => name !== '__metadata__')
      .map(([name, info]) => [name, info.shape]),
  );
}

/** A copy of a model folder in tmp (fixture files are read-only, so bytes are copied, not modes). */
function copyModel(source: string, name: string): string {
  const target = tmpFile(name);
  fs.mkdirSync(target);
  for (const file of fs.readdirSync(source))
    fs.writeFileSync(path.join(target, file), fs.readFileSync(path.join(source, file)));
  return target;
}

interface TrainResult {
  steps: number;
  train_loss: number;
  val_loss: number | null;
  tokens_per_second: number;
  backend: string;
}
interface ScoreResult {
  tokens: number[];
  logprobs: number[];
  nll: number;
}
interface GenerateResult {
  text: string;
  tokens: number[];
}

const scoreLily = reference<{ ids: number[]; logprobs: number[] }>('stories260K', 'score-lily.json');
const tokenizeRef = reference<{ text: string; ids: number[] }[]>('stories260K', 'tokenize.json');
const greedyRef = reference<{ ids: number[]; new: number[] }>('stories260K', 'greedy-once-upon-a-time.json');
const decode = vocabDecoder(STORIES);
/** The text score-lily.json was made from: its ids decoded without BOS. */
const LILY = decode(scoreLily.ids.slice(1));

describe('webtune CLI', () => {
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-cli-test-'));
  });

  afterAll(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  describe('help', () => {
    it('lists the three commands and exits 0', async () => {
      const help = await webtune('--help');
      expect(help.status).toBe(0);
      for (const command of ['train', 'generate', 'score'])
        expect(help.stdout).toMatch(new RegExp(`^\\s*webtune ${command} `, 'm'));
    });

    it('shows the options of each command', async () => {
      const train = await webtune('train', '--help');
      expect(train.status).toBe(0);
      for (const option of [
        '--model',
        '--data',
        '--out',
        '--prompt-column',
        '--completion-column',
        '--template',
        '--format',
        '--rank',
        '--alpha',
        '--targets',
        '--lr',
        '--epochs',
        '--val-split',
        '--backend',
        '--json',
      ]) {
        expect(train.stdout).toContain(option);
      }
      const generate = await webtune('generate', '--help');
      expect(generate.status).toBe(0);
      for (const option of ['--prompt', '--max-new-tokens', '--temperature', '--seed', '--stop', '--adapter'])
        expect(generate.stdout).toContain(option);
    });
  });

  describe('score', () => {
    it('uses the sentence the reference was made from', () => {
      // tokenize.json's first text is the same sentence with the same ids, so both references agree.
      expect(tokenizeRef[0].ids).toEqual(scoreLily.ids);
      expect(LILY).toBe(tokenizeRef[0].text);
    });

    it('matches the PyTorch ids and log-probabilities', async () => {
      const out = jsonResult<ScoreResult & { weights: string }>(
        await webtune('score', '--model', STORIES, '--text', LILY, '--backend', 'cpu', '--json'),
      );
      expect(Object.keys(out).sort()).toEqual(['logprobs', 'nll', 'tokens', 'weights']);
      expect(out.weights).toBe('f32');
      expect(out.tokens).toEqual(scoreLily.ids);
      expect(out.logprobs).toHaveLength(scoreLily.logprobs.length);
      expect(maxAbsDiff(out.logprobs, scoreLily.logprobs)).toBeLessThan(1e-3);
      const meanNll = -out.logprobs.reduce((sum, lp) => sum + lp, 0) / out.logprobs.length;
      expect(Math.abs(out.nll - meanNll)).toBeLessThan(1e-9);
    });

    it('with the default backend and no --json, prints the same NLL as a sentence', async () => {
      const run = await webtune('score', '--model', STORIES, '--text', LILY);
      expect(run.status, run.stderr).toBe(0);
      const referenceNll = -scoreLily.logprobs.reduce((sum, lp) => sum + lp, 0) / scoreLily.logprobs.length;
      const match = new RegExp(
        `^${scoreLily.logprobs.length} predicted tokens, mean negative log-likelihood (\\d+\\.\\d{4}) `,
      ).exec(run.stdout);
      expect(match, run.stdout).not.toBeNull();
      expect(Math.abs(Number(match![1]) - referenceNll)).toBeLessThan(1e-3);
    });
  });

  describe('generate', () => {
    const generate = async (...extra: string[]) =>
      jsonResult<GenerateResult>(
        await webtune(
          'generate',
          '--model',
          STORIES,
          '--prompt',
          PROMPT,
          '--max-new-tokens',
          '20',
          '--backend',
          'cpu',
          '--json',
          ...extra,
        ),
      );

    it('continues greedily like the reference and prints only the continuation', async () => {
      const out = await generate();
      expect(out.tokens).toEqual(greedyRef.new.slice(0, 20));
      expect(out.text).toBe(decode(out.tokens));
      expect(out.text.startsWith(PROMPT)).toBe(false);
      expect(out.text.startsWith(', there was')).toBe(true);
    });

    it('cuts the text before a stop string, the earliest of several', async () => {
      const full = (await generate()).text;
      expect(full).toContain('Lily');
      const lily = await generate('--stop', 'Lily');
      expect(lily.text).toBe(full.slice(0, full.indexOf('Lily')));
      expect(greedyRef.new.slice(0, lily.tokens.length)).toEqual(lily.tokens);
      expect(lily.tokens.length).toBeLessThan(20);
      const both = await generate('--stop', 'Lily', '--stop', 'girl');
      expect(both.text).toBe(full.slice(0, full.indexOf('girl')));
    });

    it('samples reproducibly per seed, and another seed gives another story', async () => {
      const sample = (seed: string) => generate('--temperature', '0.8', '--seed', seed);
      const first = await sample('1');
      expect(await sample('1')).toEqual(first);
      const second = await sample('2');
      expect(await sample('2')).toEqual(second);
      expect(second.tokens).not.toEqual(first.tokens);
      for (const out of [first, second]) {
        expect(out.tokens).toHaveLength(20);
        expect(out.text).toBe(decode(out.tokens));
      }
    });
  });

  describe('train', () => {
    const train = (data: string, out: string, ...extra: string[]) =>
      webtune(
        'train',
        '--model',
        STORIES,
        '--data',
        data,
        '--out',
        out,
        '--epochs',
        '1',
        '--backend',
        'wasm',
        '--json',
        ...extra,
      );

    it('writes a PEFT zip that changes the scores, reporting one progress line per step', async () => {
      const zip = tmpFile('a.zip');
      const data = dataFile('best-friends.csv');
      const run = await webtune(
        'train',
        '--model',
        STORIES,
        '--data',
        data,
        '--out',
        zip,
        '--epochs',
        '2',
        '--targets',
        'q_proj,v_proj',
        '--json',
        '--backend',
        'wasm',
      );
      const out = jsonResult<TrainResult>(run);
      expect(Object.keys(out).sort()).toEqual([
        'backend',
        'best_step',
        'beta',
        'early_stopped',
        'kept',
        'memory_estimate_bytes',
        'objective',
        'recompute',
        'steps',
        'tokens_per_second',
        'train_loss',
        'val_loss',
        'val_metrics',
      ]);
      // A file of single answers trains with SFT, which has no β and no figures of its own.
      expect(out).toMatchObject({ objective: 'sft', beta: null, val_metrics: null });
      expect(out.backend).toBe('wasm');
      expect(out.steps).toBeGreaterThan(0);
      expect(stepLines(run.stderr)).toHaveLength(out.steps);
      expect(stepLines(run.stderr).at(-1)).toMatch(new RegExp(`^step ${out.steps}/${out.steps} `));
      expect(Number.isFinite(out.train_loss) && out.train_loss > 0).toBe(true);
      expect(Number.isFinite(out.val_loss) && out.val_loss! > 0).toBe(true);
      expect(out.tokens_per_second).toBeGreaterThan(0);
      const set = trainingSetLine(run.stderr);
      expect(set.examples).toBe(rowCount(data));
      expect(set.train + set.validation).toBe(set.examples);
      expect(set.validation).toBeGreaterThan(0);

      const files = unzipSync(new Uint8Array(fs.readFileSync(zip)));
      expect(Object.keys(files).sort()).toEqual([
        'README.md',
        'adapter_config.json',
        'adapter_model.safetensors',
      ]);
      const config = JSON.parse(new TextDecoder().decode(files['adapter_config.json'])) as Record<
        string,
        unknown
      >;
      expect(config).toMatchObject({ peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 8, lora_alpha: 16 });
      expect([...(config.target_modules as string[])].sort()).toEqual(['q_proj', 'v_proj']);
      // Shapes follow from the base model's config: A is [r, hidden], B is [heads·head_dim, r].
      const base = JSON.parse(fs.readFileSync(path.join(STORIES, 'config.json'), 'utf8')) as Record<
        string,
        number
      >;
      const shapes = safetensorsShapes(files['adapter_model.safetensors']);
      expect(Object.keys(shapes)).toHaveLength(base.num_hidden_layers * 2 * 2);
      for (let layer = 0; layer < base.num_hidden_layers; layer++) {
        const prefix = `base_model.model.model.layers.${layer}.self_attn`;
        expect(shapes[`${prefix}.q_proj.lora_A.weight`]).toEqual([8, base.hidden_size]);
        expect(shapes[`${prefix}.q_proj.lora_B.weight`]).toEqual([
          base.num_attention_heads * base.head_dim,
          8,
        ]);
        expect(shapes[`${prefix}.v_proj.lora_A.weight`]).toEqual([8, base.hidden_size]);
        expect(shapes[`${prefix}.v_proj.lora_B.weight`]).toEqual([
          base.num_key_value_heads * base.head_dim,
          8,
        ]);
      }
      expect(new TextDecoder().decode(files['README.md'])).toContain('stories260K');

      const text = 'Who is Tom?\nTom is my best friend.';
      const plain = jsonResult<ScoreResult>(
        await webtune('score', '--model', STORIES, '--text', text, '--backend', 'cpu', '--json'),
      );
      const tuned = jsonResult<ScoreResult>(
        await webtune(
          'score',
          '--model',
          STORIES,
          '--adapter',
          zip,
          '--text',
          text,
          '--backend',
          'cpu',
          '--json',
        ),
      );
      expect(tuned.tokens).toEqual(plain.tokens);
      expect(maxAbsDiff(tuned.logprobs, plain.logprobs)).toBeGreaterThan(1e-3);
      // Two epochs on rows like this one make it more likely, not just different.
      expect(tuned.nll).toBeLessThan(plain.nll);
    });

    it('says how much memory the run needs and whether layers are recomputed; both settings train alike', async () => {
      const data = dataFile('best-friends.csv');
      const runs = [];
      for (const choice of ['auto', 'on', 'off'] as const) {
        const run = await train(data, tmpFile(`ckpt-${choice}.zip`), '--recompute', choice);
        const memoryLine = run.stderr.split('\n').find((line) => line.startsWith('memory: '));
        runs.push({
          choice,
          out: jsonResult<TrainResult & { recompute: boolean; memory_estimate_bytes: number }>(run),
          memoryLine,
        });
      }
      const [auto, on, off] = runs;
      // stories260K fits in far less than the 1 GB budget, so auto keeps every activation.
      expect(auto.out.recompute).toBe(false);
      expect(auto.memoryLine).toMatch(
        /^memory: about \d+ MB \(weights \d+ (MB|KB) in 32-bit, batch 4 × \d+ tokens, activations kept, chosen from the estimate\)$/,
      );
      expect(on.out.recompute).toBe(true);
      expect(on.memoryLine).toMatch(/activations recomputed\)$/);
      expect(off.out.recompute).toBe(false);
      expect(on.out.memory_estimate_bytes).toBeLessThan(off.out.memory_estimate_bytes);
      // Recomputing layers changes the memory, not the arithmetic.
      expect(Math.abs(on.out.train_loss - off.out.train_loss)).toBeLessThan(1e-4);
      expect(Math.abs(on.out.val_loss! - off.out.val_loss!)).toBeLessThan(1e-4);
    });

    it('with --val-split 0 trains on every row and reports val_loss null', async () => {
      const data = dataFile('best-friends.csv');
      const run = await train(data, tmpFile('no-val.zip'), '--val-split', '0');
      const out = jsonResult<TrainResult>(run);
      expect(out.val_loss).toBeNull();
      const set = trainingSetLine(run.stderr);
      expect(set).toMatchObject({ examples: rowCount(data), train: rowCount(data), validation: 0 });
      expect(run.stderr).not.toMatch(/validation loss/);
    });

    it('takes a prompt template or explicit prompt and completion columns', async () => {
      const data = dataFile('best-friends.csv');
      const templated = await train(
        data,
        tmpFile('template.zip'),
        '--template',
        'Q: {question}\\nA:',
        '--completion-column',
        'answer',
      );
      const columns = await train(
        data,
        tmpFile('columns.zip'),
        '--prompt-column',
        'question',
        '--completion-column',
        'answer',
      );
      for (const run of [templated, columns]) {
        expect(jsonResult<TrainResult>(run).steps).toBe(stepLines(run.stderr).length);
        expect(trainingSetLine(run.stderr).examples).toBe(rowCount(data));
      }
      // "Q: " and "\nA:" add tokens to every row.
      expect(trainingSetLine(templated.stderr).tokens).toBeGreaterThan(
        trainingSetLine(columns.stderr).tokens,
      );
      expect(fs.existsSync(tmpFile('template.zip')) && fs.existsSync(tmpFile('columns.zip'))).toBe(true);
    });

    it('reads the other example datasets for one epoch', async () => {
      const cases: [string, string[]][] = [
        ['animal-sounds.jsonl', []],
        ['alpaca-mini.jsonl', []],
        [
          'support-tickets.csv',
          ['--template', 'Ticket: {ticket}\\nDepartment:', '--completion-column', 'department'],
        ],
      ];
      for (const [name, extra] of cases) {
        const zip = tmpFile(`${name}.zip`);
        const run = await train(dataFile(name), zip, ...extra);
        const out = jsonResult<TrainResult>(run);
        expect(out.steps, name).toBeGreaterThan(0);
        expect(trainingSetLine(run.stderr).examples, name).toBe(rowCount(dataFile(name)));
        expect(fs.existsSync(zip), name).toBe(true);
      }
    });

    it('guesses the columns of a two-column file, says so on a progress line, and the flags override it', async () => {
      const data = dataFile('support-tickets.csv');
      const guessed = await train(data, tmpFile('guessed.zip'));
      expect(guessed.stderr).toMatch(
        /^columns guessed: ticket is the prompt, department the answer \(department holds a few short values, like labels\); --prompt-column and --completion-column choose others$/m,
      );
      const chosen = await train(
        data,
        tmpFile('chosen.zip'),
        '--prompt-column',
        'ticket',
        '--completion-column',
        'department',
      );
      expect(chosen.stderr).not.toMatch(/columns guessed/);
      // The guess trains on exactly the text the flags give.
      expect(trainingSetLine(guessed.stderr)).toEqual(trainingSetLine(chosen.stderr));
      const swapped = await train(
        data,
        tmpFile('swapped.zip'),
        '--prompt-column',
        'department',
        '--completion-column',
        'ticket',
      );
      expect(swapped.stderr).not.toMatch(/columns guessed/);
      expect(jsonResult<TrainResult>(swapped).steps).toBeGreaterThan(0);
    });

    it('trains chat data through a chat template, or falls back to plain text without one', async () => {
      const data = dataFile('chat-mini.jsonl');
      const chat = await webtune(
        'train',
        '--model',
        STORIES_CHAT,
        '--data',
        data,
        '--out',
        tmpFile('chat.zip'),
        '--epochs',
        '1',
        '--backend',
        'wasm',
        '--json',
      );
      const plain = await train(data, tmpFile('chat-plain.zip'));
      for (const run of [chat, plain]) {
        expect(jsonResult<TrainResult>(run).steps).toBeGreaterThan(0);
        expect(trainingSetLine(run.stderr).examples).toBe(rowCount(data));
      }
      // The template wraps every turn in <|role|> … </s>, which the plain format does not.
      expect(trainingSetLine(chat.stderr).tokens).toBeGreaterThan(trainingSetLine(plain.stderr).tokens);
      // Asking for the chat template on a model without one is refused rather than silently ignored.
      expect(failure(await train(data, tmpFile('chat-refused.zip'), '--format', 'chat'))).toMatch(
        /stories260K has no chat template; use --format plain/,
      );
    });

    it('picks a backend by itself and says which', async () => {
      const run = await webtune(
        'train',
        '--model',
        STORIES,
        '--data',
        dataFile('animal-sounds.jsonl'),
        '--out',
        tmpFile('auto.zip'),
        '--epochs',
        '1',
        '--json',
      );
      const out = jsonResult<TrainResult>(run);
      expect(['cpu', 'wasm', 'webgpu']).toContain(out.backend);
      expect(run.stderr).toMatch(/; backend: \S/);
    });
  });

  describe('bad input: non-zero exit and one line naming the problem', () => {
    const train = (...extra: string[]) =>
      webtune(
        'train',
        '--model',
        STORIES,
        '--out',
        tmpFile('bad.zip'),
        '--backend',
        'cpu',
        '--epochs',
        '1',
        ...extra,
      );
    const friends = dataFile('best-friends.csv');

    it('missing files and folders', async () => {
      expect(failure(await train('--data', tmpFile('missing.csv')))).toMatch(
        /^webtune train: Dataset not found: .*missing\.csv\. Pass --data/,
      );
      expect(
        failure(await webtune('score', '--model', tmpFile('no-model'), '--text', 'hi', '--backend', 'cpu')),
      ).toMatch(/^webtune score: Model folder not found: .*no-model\./);
      expect(
        failure(await webtune('score', '--model', path.dirname(friends), '--text', 'hi', '--backend', 'cpu')),
      ).toMatch(
        /is not a complete model folder: config\.json, tokenizer\.json, tokenizer_config\.json, model\.safetensors are missing/,
      );
      expect(failure(await webtune('score', '--text', 'hi'))).toMatch(
        /^webtune score: --model is missing\. See webtune score --help/,
      );
      expect(failure(await train('--data', friends, '--out', tmp))).toMatch(
        /Cannot write .*: it is a folder/,
      );
      expect(failure(await train('--data', friends, '--out', tmpFile('no-dir/a.zip')))).toMatch(
        /Cannot write .*no-dir.*: its folder does not exist/,
      );
    });

    it('datasets that do not fit', async () => {
      expect(failure(await train('--data', friends, '--completion-column', 'reply'))).toMatch(
        /no column 'reply' \(from --completion-column\)\. Columns: question, answer\./,
      );
      expect(
        failure(await train('--data', friends, '--prompt-column', 'quest', '--completion-column', 'answer')),
      ).toMatch(/no column 'quest' \(from --prompt-column\)/);
      const threeColumns = tmpFile('three-columns.csv');
      fs.writeFileSync(threeColumns, 'ticket,department,id\nMy card was charged twice.,billing,1\n');
      expect(failure(await train('--data', threeColumns))).toMatch(
        /Could not tell which columns.*columns: ticket, department, id/,
      );

      const headerOnly = tmpFile('header-only.csv');
      fs.writeFileSync(headerOnly, 'question,answer\n');
      expect(failure(await train('--data', headerOnly))).toMatch(
        /header row \(question, answer\) but no data rows/,
      );

      const broken = tmpFile('broken.jsonl');
      fs.writeFileSync(
        broken,
        '{"prompt": "a", "completion": "b"}\n{"prompt": "c", "completion": "d"}\n{"prompt": oops}\n{"prompt": "e", "completion": "f"}\n',
      );
      expect(failure(await train('--data', broken))).toMatch(/Line 3 is not valid JSON/);
    });

    it('commands, options and values it does not know', async () => {
      expect(failure(await webtune('fly'))).toMatch(
        /^webtune: unknown command "fly"\. Commands: train, generate, score/,
      );
      expect(failure(await webtune('score', '--model', STORIES, '--text', 'hi', '--colour'))).toMatch(
        /Unknown option '--colour'.*see webtune score --help/,
      );
      expect(failure(await train('--data', friends, '--epochs', 'abc'))).toMatch(
        /--epochs must be a number \(got "abc"\)/,
      );
      expect(failure(await train('--data', friends, '--targets', 'q_proj,w_proj'))).toMatch(
        /Unknown --targets w_proj/,
      );
      expect(failure(await train('--data', friends, '--recompute', 'maybe'))).toMatch(
        /--recompute must be auto, on or off \(got "maybe"\)/,
      );
      expect(failure(await webtune('score', '--model', STORIES, '--text', 'hi', '--backend', 'tpu'))).toMatch(
        /Unknown backend "tpu"/,
      );
      // A value starting with a dash needs --opt=value; the message says so.
      expect(
        failure(
          await webtune('generate', '--model', STORIES, '--prompt', 'hi', '--seed', '-1', '--backend', 'cpu'),
        ),
      ).toMatch(/'--seed' argument is ambiguous.*--seed=-XYZ/);
    });

    it('a model type webtune does not support', async () => {
      const gpt2 = copyModel(STORIES, 'gpt2');
      const config = JSON.parse(fs.readFileSync(path.join(gpt2, 'config.json'), 'utf8')) as Record<
        string,
        unknown
      >;
      fs.writeFileSync(
        path.join(gpt2, 'config.json'),
        JSON.stringify({ ...config, model_type: 'gpt2', architectures: ['GPT2LMHeadModel'] }),
      );
      expect(failure(await webtune('score', '--model', gpt2, '--text', 'hi', '--backend', 'cpu'))).toMatch(
        /Model type "gpt2" is not supported.*llama, mistral, qwen2, qwen3/,
      );
    });

    it('adapters that are not adapters, or belong to another model', async () => {
      const notes = tmpFile('notes.txt');
      fs.writeFileSync(notes, 'not an adapter');
      expect(
        failure(
          await webtune('score', '--model', STORIES, '--adapter', notes, '--text', 'hi', '--backend', 'cpu'),
        ),
      ).toMatch(/Could not use the adapter .*notes\.txt: .*not a readable zip/);
      expect(
        failure(
          await webtune(
            'score',
            '--model',
            STORIES,
            '--adapter',
            tmpFile('none.zip'),
            '--text',
            'hi',
            '--backend',
            'cpu',
          ),
        ),
      ).toMatch(/Adapter not found: .*none\.zip/);

      // tiny-random-qwen2 has 3 layers, stories260K 5: its adapter cannot cover the Llama.
      const qwen = tmpFile('qwen2.zip');
      jsonResult(
        await webtune(
          'train',
          '--model',
          modelDir('tiny-random-qwen2'),
          '--data',
          dataFile('animal-sounds.jsonl'),
          '--out',
          qwen,
          '--epochs',
          '1',
          '--backend',
          'wasm',
          '--json',
        ),
      );
      expect(
        failure(
          await webtune('score', '--model', STORIES, '--adapter', qwen, '--text', 'hi', '--backend', 'cpu'),
        ),
      ).toMatch(/Could not use the adapter .*tiny-random-qwen2/);
    });
  });

  describe('bin/webtune.mjs as its own process', () => {
    beforeAll(() => {
      // Build once here so the launches below find a fresh bundle instead of racing to rebuild it.
      const build = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'build-cli.mjs')], {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 120_000,
      });
      expect(build.status, build.stderr).toBe(0);
    });

    it('trains an adapter that another process generates with, answering as the same command run here', async () => {
      const zip = tmpFile('process.zip');
      const data = dataFile('best-friends.csv');
      const trained = runBin([
        'train',
        '--model',
        STORIES,
        '--data',
        data,
        '--out',
        zip,
        '--epochs',
        '3',
        '--lr',
        '0.01',
        '--rank',
        '4',
        '--alpha',
        '8',
        '--targets',
        'q_proj,v_proj',
        '--val-split',
        '0.2',
        '--seed',
        '2',
        '--backend',
        'wasm',
        '--json',
      ]);
      const out = jsonResult<TrainResult>(trained);
      expect(out.backend).toBe('wasm');
      expect(stepLines(trained.stderr)).toHaveLength(out.steps);
      expect(trainingSetLine(trained.stderr).examples).toBe(rowCount(data));

      const generate = [
        'generate',
        '--model',
        STORIES,
        '--prompt',
        'Who is Tom?\n',
        '--max-new-tokens',
        '24',
        '--backend',
        'cpu',
        '--json',
      ];
      const tuned = jsonResult<GenerateResult>(runBin([...generate, '--adapter', zip]));
      expect(tuned.text).toBe(decode(tuned.tokens));
      // The bundle and the source, launched and in this process, give the same answer.
      expect(jsonResult<GenerateResult>(await webtune(...generate, '--adapter', zip))).toEqual(tuned);
      const base = jsonResult<GenerateResult>(await webtune(...generate));
      expect(tuned.tokens, 'the adapter must change the answer, or this test proves nothing').not.toEqual(
        base.tokens,
      );
    });

    it('a failing command exits 1, with nothing on stdout and one line on stderr', () => {
      const notes = tmpFile('process-notes.txt');
      fs.writeFileSync(notes, 'not an adapter');
      // Fails after the wasm backend has started and the model is loaded: nothing on the way prints either.
      const run = runBin([
        'score',
        '--model',
        STORIES,
        '--adapter',
        notes,
        '--text',
        'hi',
        '--backend',
        'wasm',
      ]);
      expect(run.status).toBe(1);
      expect(failure(run)).toMatch(
        /^webtune score: Could not use the adapter .*notes\.txt: .*not a readable zip/,
      );
    });
  });
});
