/** A small PEFT adapter zip for the fixture model stories260K, for the Hub tests (Node and e2e). */
import { linearShape, parseModelConfig } from '../../src/engine/config';
import { writeAdapterZip, type AdapterWeights, type LoraTarget } from '../../src/formats/peft';
import { modelConfig } from './shared';

/**
 * A rank-4 adapter on q_proj and v_proj of stories260K, with values that are easy to tell apart; a larger
 * `amplitude` makes one that changes what the model says.
 */
export function adapterZip(rank = 4, amplitude = 0.01): Uint8Array {
  const args = parseModelConfig(modelConfig('stories260K'));
  const modules: AdapterWeights['modules'] = new Map();
  for (let layer = 0; layer < args.numLayers; layer++)
    for (const target of ['q_proj', 'v_proj'] as LoraTarget[]) {
      const { in: inF, out } = linearShape(args, target);
      const fill = (n: number, k: number) =>
        Float32Array.from({ length: n }, (_, i) => amplitude * Math.sin(i + k));
      modules.set(`model.layers.${layer}.self_attn.${target}`, {
        A: { shape: [rank, inF], data: fill(rank * inF, layer) },
        B: { shape: [out, rank], data: fill(out * rank, layer + 1) },
      });
    }
  const config = {
    r: rank,
    lora_alpha: 8,
    lora_dropout: 0,
    target_modules: ['q_proj', 'v_proj'] as LoraTarget[],
    use_rslora: false,
    base_model_name_or_path: 'webtune-test/stories260K',
  };
  return writeAdapterZip({ config, modules, metadata: {} });
}
