import fs from 'node:fs';
import path from 'node:path';
import { unzipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { linearShape } from '../src/engine/config';
import { attachAdapterWeights, attachLora, detachLora } from '../src/engine/lora';
import { disposeModel } from '../src/engine/model';
import { scoreTokens } from '../src/engine/score';
import { tf } from '../src/engine/tf';
import { checkAdapterFits, readAdapterZip, writeAdapterZip } from '../src/formats/peft';
import { ADAPTER_TEXT, DET_ADAPTERS } from './helpers/det-adapters';
import { detLora } from './helpers/det-lora';
import { loadFixture, maxAbsDiff, reference, switchBackend } from './helpers/shared';
import { disposeAfterEach } from './helpers/cleanup';

const own = disposeAfterEach();

const fixture = (name: string) =>
  JSON.parse(
    fs.readFileSync(path.join(__dirname, 'fixtures', 'adapters', `${name}.reference.json`), 'utf8'),
  ) as { ids: number[]; logprobs: number[] };

describe('PEFT adapter export and import', () => {
  for (const { name, settings } of DET_ADAPTERS) {
    it(`${name}: scores like the PyTorch reference, and survives export → import unchanged`, async () => {
      await switchBackend('cpu');
      const ref = fixture(name);
      const base = reference<{ logprobs: number[] }>('stories260K', 'score-lily.json');
      const { model, tokenizer, args } = own(loadFixture('stories260K'));
      const ids = tokenizer.encode(ADAPTER_TEXT);
      expect(ids).toEqual(ref.ids);

      const adapter = own.adapter(model, attachLora(model, settings, detLora, 'stories260K'));
      const adapted = await scoreTokens(model, ids);
      expect(maxAbsDiff(adapted.logprobs, ref.logprobs)).toBeLessThan(1e-3);
      // The adapter really changes the model, and switching it off gives the base model back.
      expect(maxAbsDiff(adapted.logprobs, base.logprobs)).toBeGreaterThan(1e-3);
      adapter.enabled = false;
      expect(maxAbsDiff((await scoreTokens(model, ids)).logprobs, base.logprobs)).toBeLessThan(1e-3);
      adapter.enabled = true;

      const zip = writeAdapterZip(await adapter.toWeights());
      expect(Object.keys(unzipSync(zip)).sort()).toEqual([
        'adapter_config.json',
        'adapter_model.safetensors',
      ]);
      detachLora(model, adapter);

      const before = tf.memory().numTensors;
      const imported = readAdapterZip(zip);
      checkAdapterFits(imported, { numLayers: args.numLayers, shapes: (t) => linearShape(args, t) });
      const again = own.adapter(model, attachAdapterWeights(model, imported));
      expect((await scoreTokens(model, ids)).logprobs).toEqual(adapted.logprobs);
      detachLora(model, again);
      expect(tf.memory().numTensors).toBe(before);
      disposeModel(model);
    });
  }

  it('refuses an adapter trained for a model of another shape', async () => {
    await switchBackend('cpu');
    const stories = own(loadFixture('stories260K'));
    const adapter = own.adapter(
      stories.model,
      attachLora(stories.model, DET_ADAPTERS[0].settings, detLora, 'stories260K'),
    );
    const weights = await adapter.toWeights();
    detachLora(stories.model, adapter);
    disposeModel(stories.model);
    const qwen = own(loadFixture('tiny-random-qwen2'));
    expect(() =>
      checkAdapterFits(weights, { numLayers: qwen.args.numLayers, shapes: (t) => linearShape(qwen.args, t) }),
    ).toThrow(/layer|shape/i);
    disposeModel(qwen.model);
  });
});
