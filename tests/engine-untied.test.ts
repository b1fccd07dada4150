/**
 * tie_word_embeddings false: a separate lm_head.weight is read and used for the output, the embedding
 * for the input. stories260K made untied with lm_head rows permuted (row v = embedding row π(v)) must
 * give exactly the tied model's logits with columns permuted — and the tied model matches PyTorch.
 */
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../src/engine/load';
import { disposeModel, hiddenStates, lmHead } from '../src/engine/model';
import { readSafetensors, writeSafetensors } from '../src/engine/safetensors';
import { tf } from '../src/engine/tf';
import { loadFixture, maxAbsDiff, modelDir, switchBackend } from './helpers/shared';
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
