/** best-friends.csv as a training set for stories260K, shared by the training tests. */
import fs from 'node:fs';
import { detectLayout, parseDataset, plainFormat } from '../../src/data';
import { buildTrainingSet } from '../../src/data/training-set';
import type { attachLora } from '../../src/engine/lora';
import type { Tokenizer } from '../../src/engine/tokenizer';
import { dataFile } from './shared';

export function bestFriends(
  tokenizer: Tokenizer,
  options: { batchSize?: number; gradAccum?: number; valSplit?: number; seed?: number } = {},
) {
  const dataset = parseDataset(fs.readFileSync(dataFile('best-friends.csv'), 'utf8'), 'best-friends.csv');
  return buildTrainingSet(dataset, tokenizer, {
    mapping: detectLayout(dataset.columns)!,
    format: plainFormat(),
    maxLength: 64,
    valSplit: options.valSplit ?? 0,
    batchSize: options.batchSize ?? 4,
    gradAccum: options.gradAccum,
    seed: options.seed ?? 1,
  });
}

export async function weightsOf(adapter: ReturnType<typeof attachLora>): Promise<number[]> {
  const weights = await adapter.toWeights();
  return [...weights.modules.values()].flatMap((m) => [...m.A.data, ...m.B.data]);
}
