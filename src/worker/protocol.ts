/**
 * The typed messages between the page and the engine worker. The worker is the only place where UI
 * and engine meet: the page sends requests, the worker answers each with a result or an error, and
 * may stream tokens for a request before its result.
 */
import type { BackendChoice, BackendName } from '../engine/backend';
import type { ModelFiles } from '../engine/load';

export interface ModelSummary {
  name: string;
  modelType: string;
  parameters: number;
  layers: number;
  hiddenSize: number;
  vocabSize: number;
  hasChatTemplate: boolean;
}

export interface GenerateRequest {
  prompt: string;
  maxNewTokens?: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  seed?: number;
  stopStrings?: string[];
}

export interface Requests {
  init: { params: { backend: BackendName | 'auto' }; result: BackendChoice };
  loadModel: { params: { files: ModelFiles }; result: ModelSummary };
  score: { params: { text: string }; result: { tokens: number[]; logprobs: number[]; nll: number } };
  generate: { params: GenerateRequest; result: { text: string; tokens: number[]; stopReason: string } };
}

export type RequestName = keyof Requests;

export type WorkerRequest = { [K in RequestName]: { id: number; type: K; params: Requests[K]['params'] } }[RequestName];

export type WorkerResponse =
  | { id: number; type: 'result'; value: unknown }
  | { id: number; type: 'error'; message: string }
  | { id: number; type: 'token'; text: string };
