/** What the bench page asks its worker, and what the worker answers: one message per benchmark, then done. */
import type { BenchOptions, BenchResult } from './run';

export interface BenchRequest {
  models: string[];
  backends: string[];
  options: BenchOptions;
  /** wasm's threads (default: every logical core, up to 8; see BackendOptions.wasmThreads). */
  wasmThreads?: number;
}

export type BenchReport =
  | { type: 'result'; result: BenchResult }
  | { type: 'skipped'; model: string; backend: string; message: string }
  | { type: 'done' }
  | { type: 'failed'; message: string };
