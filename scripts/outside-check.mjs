#!/usr/bin/env node
// Checks the project's PyTorch reference (reference/webtune_reference.py) against another implementation
// with the same command line (score, generate, lora-grad, merge; see reference/README.md):
//
//   node scripts/outside-check.mjs /path/to/other_reference.py
//
// Both run on the fixture models with the ids the committed outputs record: score in float32 and float64,
// with and without adapters (one stored as F32, one as BF16 with rsLoRA, both written here), greedy
// generation with and without an adapter, lora-grad, and merge. Prints the largest differences and exits 1
// when one is above its tolerance. Not part of npm test: the other implementation is outside the repository.
// Needs /usr/bin/python3 with torch (apt-get install -y python3-torch libopenblas0-pthread).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OURS = path.join(ROOT, 'reference', 'webtune_reference.py');
const MODELS = path.join(ROOT, 'fixtures', 'models');
const OUTPUTS = path.join(ROOT, 'reference', 'outputs');
const PYTHON = '/usr/bin/python3';
const ALL = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

/** The largest difference each kind of result may show before the check fails. */
const TOLERANCE = {
  logprobF32: 1e-4, // float32 arithmetic in a different order; the engine's own tests allow 1e-3
  logprobF64: 1e-10,
  tokens: 0, // greedy tokens that differ
  loss: 1e-10, // float64
  gradRelative: 1e-9, // ‖Δ‖ / ‖g‖ per tensor, float64
  merged: 1e-5, // W + scale·B·A stored as float32
};

const other = process.argv[2];
if (!other || other === '--help' || other === '-h') {
  process.stdout.write(
    'Usage: node scripts/outside-check.mjs OTHER_REFERENCE.py\n' +
      'Runs reference/webtune_reference.py and OTHER_REFERENCE.py (same command line) on the fixture models and\n' +
      'prints the largest differences; exits 1 when one is above its tolerance.\n',
  );
  process.exit(other ? 0 : 2);
}
if (!fs.existsSync(other)) {
  process.stderr.write(
    `outside-check: ${other} does not exist; give the path of the other reference script.\n`,
  );
  process.exit(2);
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-outside-check-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

function run(script, args) {
  return execFileSync(PYTHON, [script, ...args], {
    encoding: 'utf8',
    maxBuffer: 256 << 20,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}
/** Runs the same command with both implementations: [ours, theirs]. */
function both(args) {
  return [run(OURS, args), run(other, args)];
}
const json = (text) => JSON.parse(text);
let files = 0;
/** A fresh file name in the temp folder. */
const tmpFile = (extension) => path.join(tmp, `${++files}${extension}`);
const committed = (model, file) => JSON.parse(fs.readFileSync(path.join(OUTPUTS, model, file), 'utf8'));

// ---- safetensors, just enough to write adapters and read merged weights (float32 and bfloat16).
function readSafetensors(file) {
  const bytes = fs.readFileSync(file);
  const length = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + length).toString('utf8'));
  const body = bytes.subarray(8 + length);
  const tensors = new Map();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (entry.dtype !== 'F32')
      throw new Error(`${file}: ${name} is ${entry.dtype}; this check reads F32 only.`);
    const [start, end] = entry.data_offsets;
    const data = new Float32Array(body.buffer.slice(body.byteOffset + start, body.byteOffset + end));
    tensors.set(name, { shape: entry.shape, data });
  }
  return tensors;
}

function writeSafetensors(file, tensors, dtype) {
  const header = { __metadata__: { format: 'pt' } };
  const chunks = [];
  let offset = 0;
  for (const [name, { shape, data }] of tensors) {
    let raw;
    if (dtype === 'BF16') {
      // The top half of each float32, rounded to nearest even.
      const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
      raw = Buffer.from(Uint16Array.from(bits, (b) => (b + 0x7fff + ((b >>> 16) & 1)) >>> 16).buffer);
    } else raw = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    header[name] = { dtype, shape, data_offsets: [offset, offset + raw.length] };
    chunks.push(raw);
    offset += raw.length;
  }
  let text = JSON.stringify(header);
  text += ' '.repeat((8 - (text.length % 8)) % 8);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(Buffer.byteLength(text)));
  fs.writeFileSync(file, Buffer.concat([length, Buffer.from(text), ...chunks]));
}

/** A PEFT LoRA folder with smooth deterministic weights (B non-zero, so the adapter changes the output). */
function writeAdapter(model, name, { rank, alpha, targets, rslora, dtype }) {
  const base = readSafetensors(path.join(MODELS, model, 'model.safetensors'));
  const tensors = new Map();
  for (const [weight, { shape }] of base) {
    const match = /^(model\.layers\.(\d+)\.\w+\.(\w+))\.weight$/.exec(weight);
    if (!match || !targets.includes(match[3])) continue;
    const [out, inFeatures] = shape;
    const seed = Number(match[2]) + targets.indexOf(match[3]) / 7;
    const A = Float32Array.from({ length: rank * inFeatures }, (_, n) => 0.04 * Math.sin(0.31 * n + seed));
    const B = Float32Array.from({ length: out * rank }, (_, n) => 0.04 * Math.cos(0.17 * n - seed));
    tensors.set(`base_model.model.${match[1]}.lora_A.weight`, { shape: [rank, inFeatures], data: A });
    tensors.set(`base_model.model.${match[1]}.lora_B.weight`, { shape: [out, rank], data: B });
  }
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir);
  writeSafetensors(path.join(dir, 'adapter_model.safetensors'), tensors, dtype);
  const config = {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: model,
    r: rank,
    lora_alpha: alpha,
    lora_dropout: 0,
    target_modules: targets,
    use_rslora: rslora,
    bias: 'none',
    fan_in_fan_out: false,
  };
  fs.writeFileSync(path.join(dir, 'adapter_config.json'), JSON.stringify(config, null, 2));
  return dir;
}

// ---- comparisons
const rows = [];
function report(what, measure, value, tolerance) {
  const ok = value <= tolerance;
  rows.push({ what, measure, value, tolerance, ok });
  const shown = (x) => (Number.isInteger(x) ? String(x) : x.toExponential(2));
  process.stdout.write(
    `${ok ? 'ok  ' : 'FAIL'} ${what.padEnd(58)} ${measure.padEnd(20)} ${shown(value).padStart(9)}  (≤ ${shown(tolerance)})\n`,
  );
}
/** Runs one comparison; a command that fails (either implementation) is a failed row, not the end. */
function attempt(what, compare) {
  try {
    compare();
  } catch (error) {
    const reason = String(error.stderr || error.message)
      .trim()
      .split('\n')
      .at(-1);
    rows.push({ what, ok: false, measure: 'command failed' });
    process.stdout.write(`FAIL ${what}: ${reason}\n`);
  }
}
const maxAbs = (a, b) => a.reduce((worst, x, i) => Math.max(worst, Math.abs(x - b[i])), 0);
function relative(a, b) {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < a.length; i++) {
    diff += (a[i] - b[i]) ** 2;
    norm += b[i] ** 2;
  }
  return Math.sqrt(diff) / Math.sqrt(norm || 1);
}

const models = {
  stories260K: committed('stories260K', 'score-lily.json').ids,
  'tiny-random-qwen2': committed('tiny-random-qwen2', 'score.json').ids,
  'tiny-random-qwen3': committed('tiny-random-qwen3', 'score.json').ids,
};
const adapters = {};
for (const model of Object.keys(models)) {
  adapters[model] = {
    'all-r4': writeAdapter(model, `${model}-all-r4`, {
      rank: 4,
      alpha: 8,
      targets: ALL,
      rslora: false,
      dtype: 'F32',
    }),
    'qv-r8-rslora-bf16': writeAdapter(model, `${model}-qv-r8`, {
      rank: 8,
      alpha: 16,
      targets: ['q_proj', 'v_proj'],
      rslora: true,
      dtype: 'BF16',
    }),
  };
}

function score(model, ids, extra, label) {
  const [ours, theirs] = both(['score', path.join(MODELS, model), '--ids', ids.join(','), ...extra]).map(
    json,
  );
  const f64 = extra.includes('--f64');
  report(
    `score ${model} ${label}`,
    '|Δ logprob|',
    maxAbs(ours.logprobs, theirs.logprobs),
    TOLERANCE[f64 ? 'logprobF64' : 'logprobF32'],
  );
}
function generate(model, ids, steps, extra, label) {
  const [ours, theirs] = both([
    'generate',
    path.join(MODELS, model),
    '--ids',
    ids.join(','),
    '--steps',
    String(steps),
    ...extra,
  ]).map(json);
  const length = Math.max(ours.ids.length, theirs.ids.length);
  let differ = 0;
  for (let i = 0; i < length; i++) if (ours.ids[i] !== theirs.ids[i]) differ++;
  report(`generate ${model} ${label} (${steps} steps)`, 'tokens that differ', differ, TOLERANCE.tokens);
}
function loraGrad(model, ids, rank, alpha, targets, label) {
  const files = [tmpFile('.json'), tmpFile('.json')];
  const args = (out) => [
    'lora-grad',
    path.join(MODELS, model),
    '--ids',
    ids.join(','),
    '--rank',
    String(rank),
    '--alpha',
    String(alpha),
    '--targets',
    targets.join(','),
    '--out',
    out,
  ];
  run(OURS, args(files[0]));
  run(other, args(files[1]));
  const [ours, theirs] = files.map((f) => json(fs.readFileSync(f, 'utf8')));
  const names = Object.keys(theirs.grads);
  const missing =
    names.filter((n) => !(n in ours.grads)).length +
    Object.keys(ours.grads).filter((n) => !(n in theirs.grads)).length;
  report(`lora-grad ${model} ${label}`, '|Δ loss|', Math.abs(ours.loss - theirs.loss), TOLERANCE.loss);
  report(`lora-grad ${model} ${label}`, 'tensors not in both', missing, 0);
  const worst = names.reduce(
    (w, n) =>
      Math.max(w, n in ours.grads ? relative(ours.grads[n].flat(), theirs.grads[n].flat()) : Infinity),
    0,
  );
  report(`lora-grad ${model} ${label}`, 'max ‖Δg‖/‖g‖', worst, TOLERANCE.gradRelative);
}
function merge(model, adapter, label) {
  const files = [tmpFile('.safetensors'), tmpFile('.safetensors')];
  run(OURS, ['merge', path.join(MODELS, model), '--adapter', adapter, '--out', files[0]]);
  run(other, ['merge', path.join(MODELS, model), '--adapter', adapter, '--out', files[1]]);
  const [ours, theirs] = files.map(readSafetensors);
  const names = new Set([...ours.keys(), ...theirs.keys()]);
  let missing = 0;
  let worst = 0;
  for (const name of names) {
    if (!ours.has(name) || !theirs.has(name)) missing++;
    else worst = Math.max(worst, maxAbs(ours.get(name).data, theirs.get(name).data));
  }
  report(`merge ${model} ${label}`, 'tensors not in both', missing, 0);
  report(`merge ${model} ${label}`, '|Δ weight|', worst, TOLERANCE.merged);
}

process.stdout.write(`webtune_reference.py against ${other}\n`);
for (const [model, ids] of Object.entries(models)) {
  attempt(`score ${model}`, () => score(model, ids, [], 'float32'));
  attempt(`score ${model} --f64`, () => score(model, ids, ['--f64'], 'float64'));
  for (const [label, dir] of Object.entries(adapters[model])) {
    attempt(`score ${model} + ${label}`, () => score(model, ids, ['--adapter', dir], `+ adapter ${label}`));
    attempt(`score ${model} + ${label} --f64`, () =>
      score(model, ids, ['--adapter', dir, '--f64'], `+ adapter ${label}, float64`),
    );
  }
}
const once = committed('stories260K', 'greedy-once-upon-a-time.json');
const prompt = once.ids.slice(0, once.ids.length - once.new.length);
attempt('generate stories260K', () => generate('stories260K', prompt, 100, [], 'float32'));
attempt('generate stories260K + all-r4', () =>
  generate('stories260K', prompt, 40, ['--adapter', adapters['stories260K']['all-r4']], '+ adapter all-r4'),
);
for (const model of ['tiny-random-qwen2', 'tiny-random-qwen3'])
  attempt(`generate ${model}`, () => generate(model, prompt, 20, [], 'float32'));
attempt('lora-grad stories260K qv-r4', () =>
  loraGrad('stories260K', models['stories260K'], 4, 8, ['q_proj', 'v_proj'], 'qv-r4'),
);
attempt('lora-grad stories260K all-r8', () =>
  loraGrad('stories260K', models['stories260K'], 8, 16, ALL, 'all-r8'),
);
for (const model of ['tiny-random-qwen2', 'tiny-random-qwen3'])
  attempt(`lora-grad ${model} all-r4`, () => loraGrad(model, models[model], 4, 8, ALL, 'all-r4'));
for (const model of Object.keys(models))
  for (const [label, dir] of Object.entries(adapters[model]))
    attempt(`merge ${model} + ${label}`, () => merge(model, dir, `+ adapter ${label}`));

const failed = rows.filter((r) => !r.ok).length;
process.stdout.write(`\n${rows.length - failed} passed, ${failed} failed\n`);
process.exitCode = failed ? 1 : 0;
