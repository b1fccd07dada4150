/**
 * Writes the deterministic adapters of tests/helpers/det-adapters.ts as unzipped PEFT folders, plus
 * the token ids to score, for the PyTorch reference. See tests/fixtures/adapters/README.md.
 */
import fs from 'node:fs';
import path from 'node:path';
import { unzipSync } from 'fflate';
import { readModelFolder } from '../src/node/model-folder';
import { loadModel } from '../src/engine/load';
import { attachLora, detachLora } from '../src/engine/lora';
import { writeAdapterZip } from '../src/formats/peft';
import { detLora } from '../tests/helpers/det-lora';
import { ADAPTER_TEXT, DET_ADAPTERS } from '../tests/helpers/det-adapters';

export async function main([modelDir, outDir]: string[]): Promise<number> {
  const { model, tokenizer } = loadModel(readModelFolder(modelDir));
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'ids.txt'), tokenizer.encode(ADAPTER_TEXT).join(','));
  for (const { name, settings } of DET_ADAPTERS) {
    const adapter = attachLora(model, settings, detLora, 'stories260K');
    const files = unzipSync(writeAdapterZip(await adapter.toWeights()));
    fs.mkdirSync(path.join(outDir, name), { recursive: true });
    for (const [file, bytes] of Object.entries(files)) fs.writeFileSync(path.join(outDir, name, file), bytes);
    detachLora(model, adapter);
  }
  return 0;
}
