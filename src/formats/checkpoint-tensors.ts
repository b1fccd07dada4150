/**
 * A model's checkpoint tensors as an export reads them: by name, in the checkpoint's order, each read and
 * converted to float32 only when asked for (one at a time, so a large model is never held whole), with an
 * adapter merged into the linears it adapts.
 */
import { parseModelConfig, type ModelArgs } from '../engine/config';
import { mergeLora } from '../engine/merge';
import type { ModelFiles } from '../engine/model-files';
import { readSafetensorsHeader, readTensor, type DType } from '../engine/safetensors';
import { weightsSources } from '../engine/weights-source';
import { loraScale, type AdapterWeights } from './peft';

export interface CheckpointTensor {
  /** The Hugging Face name, e.g. `model.layers.0.self_attn.q_proj.weight`. */
  name: string;
  shape: number[];
  /** How the base checkpoint stores it. */
  dtype: DType;
  /** Its values as float32 (a new array each call), with the adapter merged when it adapts this linear. */
  read(): Float32Array;
}

export function modelArgsOf(files: Pick<ModelFiles, 'config'>): ModelArgs {
  return parseModelConfig(JSON.parse(files.config));
}

/** Every tensor of every shard, in file order; `adapter` (already checked against the model) is merged in. */
export function checkpointTensors(
  files: Pick<ModelFiles, 'weights'>,
  adapter?: AdapterWeights,
): CheckpointTensor[] {
  const scale = adapter ? loraScale(adapter.config) : 0;
  const tensors: CheckpointTensor[] = [];
  const seen = new Set<string>();
  for (const source of weightsSources(files.weights)) {
    for (const entry of readSafetensorsHeader(source).tensors) {
      if (seen.has(entry.name))
        throw new Error(`The checkpoint holds "${entry.name}" twice; use the files of one model together.`);
      seen.add(entry.name);
      const lora = adapter?.modules.get(entry.name.replace(/\.weight$/, ''));
      tensors.push({
        name: entry.name,
        shape: entry.shape,
        dtype: entry.dtype,
        read: () => {
          const values = readTensor(source, entry);
          if (!lora || !entry.name.endsWith('.weight')) return values;
          const [out, inFeatures] = entry.shape;
          return mergeLora(
            values,
            lora.A.data,
            lora.B.data,
            { out, in: inFeatures, rank: lora.A.shape[0] },
            scale,
          );
        },
      });
    }
  }
  return tensors;
}
