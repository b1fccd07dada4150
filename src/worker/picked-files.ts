/**
 * A model folder a person picked (File objects: on disk until read), read into ModelFiles. Page and worker
 * both use it.
 */
import { REQUIRED_FILES, type ModelFiles } from '../engine/model-files';

export async function readPickedModel(list: Iterable<File>): Promise<ModelFiles> {
  const byName = new Map([...list].map((f) => [f.name, f]));
  const missing = REQUIRED_FILES.filter((name) => !byName.has(name));
  if (missing.length)
    throw new Error(
      `Missing ${missing.join(', ')}. Pick all four files of the model folder: ${REQUIRED_FILES.join(', ')}.`,
    );
  const text = (name: string) => byName.get(name)!.text();
  return {
    name: byName.get('config.json')!.webkitRelativePath.split('/')[0] || 'local model',
    config: await text('config.json'),
    tokenizerJson: await text('tokenizer.json'),
    tokenizerConfig: await text('tokenizer_config.json'),
    weights: new Uint8Array(await byName.get('model.safetensors')!.arrayBuffer()),
  };
}
