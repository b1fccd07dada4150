/** What the page is told of a model the worker loaded. */
import { parameterCount } from '../engine/config';
import type { LoadedModel } from '../engine/load';
import type { ModelSummary } from './protocol';

export function modelSummary({ args, tokenizer, name, weights }: LoadedModel): ModelSummary {
  return {
    name,
    modelType: args.modelType,
    parameters: parameterCount(args),
    layers: args.numLayers,
    hiddenSize: args.hiddenSize,
    vocabSize: args.vocabSize,
    hasChatTemplate: tokenizer.chatTemplate !== null,
    args,
    weights,
  };
}
