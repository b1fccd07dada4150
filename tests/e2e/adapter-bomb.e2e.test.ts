// A zip bomb dropped on the page is refused with one sentence, and the adapter library keeps what it had.
import { strToU8 } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { linearShape, parseModelConfig } from '../../src/engine/config';
import { adapterConfigJson, modulePath, writeAdapterZip, type AdapterWeights } from '../../src/formats/peft';
import { modelConfig } from '../helpers/shared';
import { handZip, zeroBomb } from '../helpers/zip-bomb';
import { externalRequests, openHarness, type Harness } from './browser';

const args = parseModelConfig(modelConfig('stories260K'));

/** A genuine rank-2 adapter for stories260K on q_proj, as the library's existing entry. */
function genuineZip(): Uint8Array {
  const modules: AdapterWeights['modules'] = new Map();
  for (let layer = 0; layer < args.numLayers; layer++) {
    const shape = linearShape(args, 'q_proj');
    modules.set(modulePath(layer, 'q_proj'), {
      A: { shape: [2, shape.in], data: new Float32Array(2 * shape.in).fill(0.01) },
      B: { shape: [shape.out, 2], data: new Float32Array(shape.out * 2) },
    });
  }
  return writeAdapterZip({
    config: {
      r: 2,
      lora_alpha: 4,
      lora_dropout: 0,
      target_modules: ['q_proj'],
      use_rslora: false,
      base_model_name_or_path: 'stories260K',
    },
    modules,
  });
}

const config = strToU8(
  JSON.stringify(
    adapterConfigJson({
      r: 8,
      lora_alpha: 16,
      lora_dropout: 0,
      target_modules: ['q_proj'],
      use_rslora: false,
      base_model_name_or_path: 'stories260K',
    }),
  ),
);
const configEntry = {
  name: 'adapter_config.json',
  data: config,
  method: 0 as const,
  declared: config.length,
};

describe('adapter zip bombs on the page', () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await openHarness();
  });
  afterAll(async () => {
    expect(externalRequests(harness.requests)).toEqual([]);
    await harness.close();
  });

  /**
   * Drops a zip on the page as a person drags a file in: its bytes, or `size` zero bytes made in the page.
   */
  async function drop(name: string, contents: Uint8Array | { size: number }): Promise<void> {
    const { page } = harness;
    const transfer = await page.evaluateHandle(
      ({ bytes, size, name }) => {
        const data = new DataTransfer();
        data.items.add(
          new File([bytes ? new Uint8Array(bytes) : new Uint8Array(size)], name, { type: 'application/zip' }),
        );
        return data;
      },
      {
        bytes: contents instanceof Uint8Array ? [...contents] : null,
        size: contents instanceof Uint8Array ? 0 : contents.size,
        name,
      },
    );
    await page.dispatchEvent('main', 'dragover', { dataTransfer: transfer });
    await page.dispatchEvent('main', 'drop', { dataTransfer: transfer });
  }

  it('refuses a zip bomb, a lying zip and an oversized file, and the library keeps its one adapter', async () => {
    const { page } = harness;
    await page.goto(`${harness.baseUrl}/`);
    await page.evaluate(
      () =>
        new Promise((resolve, reject) => {
          const request = indexedDB.deleteDatabase('webtune');
          request.onsuccess = resolve;
          request.onerror = () => reject(request.error);
        }),
    );
    await page.goto(`${harness.baseUrl}/?model=/models/stories260K`);
    await page.getByText('260K parameters').waitFor({ timeout: 60_000 });
    await drop('genuine.zip', genuineZip());
    await page
      .getByRole('status')
      .filter({ hasText: 'Imported genuine; the chat now uses it.' })
      .waitFor({ timeout: 30_000 });
    const entries = page.getByRole('listitem', { name: /^Adapter / });
    await expect(entries.count()).resolves.toBe(1);

    const refusals: [string, Uint8Array | { size: number }, string][] = [
      [
        'bomb.zip',
        handZip([
          configEntry,
          { name: 'adapter_model.safetensors', data: zeroBomb(1000), declared: 2 ** 32 },
        ]),
        'The zip says adapter_model.safetensors unpacks to 4.3 GB, but a rank-8 adapter for this model needs at most 16.2 MB. This is not a webtune or PEFT adapter for this model (it was trained on stories260K); load it with the model it was trained on, or export it again.',
      ],
      [
        'liar.zip',
        handZip([
          configEntry,
          { name: 'adapter_model.safetensors', data: zeroBomb(Math.floor(2 ** 30 / 258)), declared: 500_000 },
        ]),
        "'adapter_model.safetensors' unpacks to more than the 500000 bytes the zip declares",
      ],
      [
        'huge.zip',
        { size: 20_000_000 },
        'The file is 20.0 MB, but an adapter zip for this model, even at full rank, is at most 19.5 MB',
      ],
    ];
    for (const [name, contents, message] of refusals) {
      const started = Date.now();
      await drop(name, contents);
      await page.getByRole('alert').filter({ hasText: message }).waitFor({ timeout: 20_000 });
      expect(Date.now() - started).toBeLessThan(20_000);
    }
    await expect(entries.count()).resolves.toBe(1);
    await expect(page.getByRole('listitem', { name: 'Adapter genuine' }).count()).resolves.toBe(1);
    await page.reload();
    await page.getByRole('listitem', { name: 'Adapter genuine' }).waitFor({ timeout: 60_000 });
    await expect(entries.count()).resolves.toBe(1);
  }, 180_000);
});
