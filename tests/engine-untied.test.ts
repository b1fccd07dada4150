/**
 * tie_word_embeddings false: a separate lm_head.weight is read and used for the output, the embedding
 * for the input. stories260K made untied with lm_head rows permuted (row v = embedding row π(v)) must
 * give exactly the tied model's logits with columns permuted — and the tied model matches PyTorch.
 *
 * A config.json without tie_word_embeddings is untied, as transformers' Llama, Mistral, Qwen2 and Qwen3
 * configs default it to false: with an lm_head.weight it scores like the PyTorch reference (which uses
 * lm_head.weight whenever the checkpoint has one); without one it is refused, naming the tensor and the
 * setting, by loading and by both exports that carry the output layer.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parameterCount, parseModelConfig, SUPPORTED_MODEL_TYPES } from '../src/engine/config';
import { loadModel } from '../src/engine/load';
import { disposeModel, hiddenStates, lmHead } from '../src/engine/model';
import { readSafetensors, writeSafetensors, type HostTensor } from '../src/engine/safetensors';
import { scoreTokens } from '../src/engine/score';
import { tf } from '../src/engine/tf';
import { ModelWeightsError } from '../src/engine/weights';
import { readModelFolder } from '../src/node/model-folder';
import { runCli } from './helpers/cli';
import { withoutKey, writeEditedModel } from './helpers/edited-model';
import { hasTorch, INSTALL_TORCH, referenceScore } from './helpers/reference';
import { loadFixture, maxAbsDiff, modelConfig, modelDir, switchBackend } from './helpers/shared';
import { disposeAfterEach } from './helpers/cleanup';

const own = disposeAfterEach();

describe('untied embeddings', () => {
  beforeAll(() => switchBackend('cpu'));

  it('uses lm_head.weight for the output and the embedding for the input', async () => {
    const dir = modelDir('stories260K');
    const read = (f: string) => fs.readFileSync(path.join(dir, f), 'utf8');
    const { tensors } = readSafetensors(new Uint8Array(fs.readFileSync(path.join(dir, 'model.safetensors'))));
    const embed = tensors.get('model.embed_tokens.weight')!;
    const [vocab, hidden] = embed.shape;
    const perm = Array.from({ length: vocab }, (_, v) => (v * 7 + 3) % vocab); // 7 is coprime with 512
    const head = new Float32Array(vocab * hidden);
    perm.forEach((source, v) =>
      head.set(embed.data.subarray(source * hidden, (source + 1) * hidden), v * hidden),
    );
    const config = { ...JSON.parse(read('config.json')), tie_word_embeddings: false };
    const untied = own(
      loadModel({
        name: 'stories260K-untied',
        config: JSON.stringify(config),
        tokenizerJson: read('tokenizer.json'),
        tokenizerConfig: read('tokenizer_config.json'),
        weights: writeSafetensors([...tensors, ['lm_head.weight', { shape: [vocab, hidden], data: head }]]),
      }),
    );
    const tied = own(loadFixture('stories260K'));
    const ids = Int32Array.from([1, 403, 407, 261, 378, 432]);
    const before = tf.memory().numTensors;
    const logits = (m: typeof tied.model) => tf.tidy(() => lmHead(m, hiddenStates(m, ids, 1)));
    const [a, b] = [logits(tied.model), logits(untied.model)];
    const tiedLogits = (await a.array()) as number[][];
    const untiedLogits = (await b.array()) as number[][];
    tf.dispose([a, b]);
    expect(tf.memory().numTensors).toBe(before);
    const expected = tiedLogits.map((row) => perm.map((source) => row[source]));
    expect(maxAbsDiff(untiedLogits.flat(), expected.flat())).toBeLessThan(1e-4);
    // And not merely the tied output: the permutation moves most values.
    expect(maxAbsDiff(untiedLogits.flat(), tiedLogits.flat())).toBeGreaterThan(1);
    disposeModel(tied.model);
    disposeModel(untied.model);
  });
});

/** An lm_head.weight whose row v is the embedding row (7v + 3) mod vocab: its own, unlike the embedding. */
function permutedHead(tensors: Map<string, HostTensor>): [string, HostTensor][] {
  const embed = tensors.get('model.embed_tokens.weight')!;
  const [vocab, hidden] = embed.shape;
  const head = new Float32Array(vocab * hidden);
  for (let v = 0; v < vocab; v++) {
    const source = (v * 7 + 3) % vocab;
    head.set(embed.data.subarray(source * hidden, (source + 1) * hidden), v * hidden);
  }
  return [['lm_head.weight', { shape: [vocab, hidden], data: head }]];
}

const IDS = [1, 403, 407, 261, 378, 432, 14, 290];

describe('a config.json without tie_word_embeddings', () => {
  beforeAll(() => switchBackend('cpu'));

  it('is untied for every Llama-like family, as transformers reads it', () => {
    const base = modelConfig('tiny-random-qwen2') as Record<string, unknown>;
    // Gemma3TextConfig defaults tie_word_embeddings to true (tests/gemma3.test.ts).
    for (const modelType of SUPPORTED_MODEL_TYPES.filter((t) => t !== 'gemma3_text')) {
      const args = parseModelConfig(withoutKey('tie_word_embeddings')({ ...base, model_type: modelType }));
      expect(args.tieWordEmbeddings, modelType).toBe(false);
    }
    // Counted with its own output matrix: stories260K's 260,032 parameters plus a 512 × 64 lm_head.
    const stories = withoutKey('tie_word_embeddings')(modelConfig('stories260K') as Record<string, unknown>);
    expect(parameterCount(parseModelConfig(stories))).toBe(260_032 + 512 * 64);
  });

  for (const fixture of ['stories260K', 'tiny-random-qwen2', 'tiny-random-qwen3']) {
    it(`${fixture} with an lm_head.weight loads untied and scores like the PyTorch reference (1e-4)`, async () => {
      if (!hasTorch()) throw new Error(`The PyTorch reference needs torch: ${INSTALL_TORCH}`);
      const dir = writeEditedModel(fixture, {
        config: withoutKey('tie_word_embeddings'),
        addTensors: permutedHead,
      });
      const before = tf.memory().numTensors;
      const { model } = own(loadModel(readModelFolder(dir)));
      expect(model.args.tieWordEmbeddings).toBe(false);
      expect(model.embed_tokens).toBeDefined();
      const ours = await scoreTokens(model, IDS);
      const theirs = referenceScore(dir, IDS);
      expect(maxAbsDiff(ours.logprobs, theirs.logprobs)).toBeLessThan(1e-4);
      // Not the tied model's scores: the head is read, not the embedding.
      const tied = referenceScore(modelDir(fixture), IDS);
      expect(maxAbsDiff(ours.logprobs, tied.logprobs)).toBeGreaterThan(0.1);
      disposeModel(model);
      expect(tf.memory().numTensors).toBe(before);
    });
  }

  it('and no lm_head.weight is refused, naming the tensor and the setting, when loading and exporting', async () => {
    const dir = writeEditedModel('stories260K', { config: withoutKey('tie_word_embeddings') });
    const before = tf.memory().numTensors;
    const problem = /no tensor "lm_head\.weight".*"tie_word_embeddings": true/;
    let error: unknown;
    try {
      own(loadModel(readModelFolder(dir)));
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ModelWeightsError);
    expect((error as Error).message).toMatch(problem);
    expect(tf.memory().numTensors).toBe(before);

    const score = await runCli(['score', '--model', dir, '--text', 'Lily', '--backend', 'cpu']);
    expect(score.status).toBe(1);
    expect(score.stderr).toMatch(problem);
    for (const format of ['gguf', 'merged']) {
      const out = fs.mkdtempSync(path.join(os.tmpdir(), `webtune-untied-${format}-`));
      const exported = await runCli(['export', '--model', dir, '--format', format, '--out', out]);
      expect(exported.status, format).toBe(1);
      expect(exported.stderr, format).toMatch(problem);
      fs.rmSync(out, { recursive: true, force: true });
    }
  });
});
