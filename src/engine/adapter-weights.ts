/**
 * What a LoRA adapter is, in PEFT's terms, as the engine uses it: the projections it can adapt, their
 * checkpoint names, and the adapter's config and weights in host memory. Reading and writing them as
 * files is formats/peft.ts's job; the engine needs only these shapes.
 */
import { PROJECTION_PARENTS as PARENT, PROJECTIONS, type ProjectionName } from './architecture';

/** Every family's decoder has these projections under these names (architecture.ts). */
export const LORA_TARGETS: readonly ProjectionName[] = PROJECTIONS;
export type LoraTarget = ProjectionName;

/** The checkpoint name of an adapted linear, e.g. `model.layers.3.self_attn.q_proj`. */
export function modulePath(layer: number, target: LoraTarget): string {
  return `model.layers.${layer}.${PARENT[target]}.${target}`;
}

const isTarget = (name: string): name is LoraTarget => (LORA_TARGETS as readonly string[]).includes(name);

/** The inverse of modulePath; undefined for anything webtune cannot adapt. */
export function parseModulePath(path: string): { layer: number; target: LoraTarget } | undefined {
  const match = /^model\.layers\.(\d+)\.(self_attn|mlp)\.(\w+)$/.exec(path);
  if (!match || !isTarget(match[3]) || PARENT[match[3]] !== match[2]) return undefined;
  return { layer: Number(match[1]), target: match[3] };
}

export interface AdapterConfig {
  r: number;
  lora_alpha: number;
  lora_dropout: number;
  target_modules: LoraTarget[];
  use_rslora: boolean;
  base_model_name_or_path: string;
}

export interface LoraMatrix {
  shape: [number, number];
  data: Float32Array;
}

export interface AdapterWeights {
  config: AdapterConfig;
  /** keyed by module path, e.g. "model.layers.0.self_attn.q_proj"; A is [r, in], B is [out, r] */
  modules: Map<string, { A: LoraMatrix; B: LoraMatrix }>;
  /**
   * Extra strings in the safetensors header (`__metadata__`); PEFT writes only format: "pt" and ignores the
   * rest.
   */
  metadata?: Record<string, string>;
}
