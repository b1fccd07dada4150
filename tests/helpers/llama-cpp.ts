/**
 * llama.cpp (node-llama-cpp's prebuilt CPU build, installed in tools/llama by `npm run setup:llama`) as an
 * independent reader of webtune's GGUF files: load a model (and a LoRA), tokenize, take logits, continue
 * greedily. Imported by path so the main install never depends on it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const PACKAGE = path.resolve(__dirname, '..', '..', 'tools', 'llama', 'node_modules', 'node-llama-cpp');

// The few parts of node-llama-cpp's API the tests use (typed here so tsc does not need tools/llama
// installed).
interface LlamaSequence {
  evaluate(tokens: number[], options?: { temperature?: number }): AsyncGenerator<number, void, void>;
  controlledEvaluate(
    input: (number | [number, { generateNext?: { logits?: boolean } }])[],
  ): Promise<({ next: { logits?: Map<number, number> } } | undefined)[]>;
  dispose(): void;
}
interface LlamaContext {
  getSequence(): LlamaSequence;
  dispose(): Promise<void>;
}
interface LlamaModelHandle {
  tokenize(text: string, specialTokens?: boolean): number[];
  detokenize(tokens: number[]): string;
  readonly tokens: { readonly bos: number | null; readonly eos: number | null };
  readonly fileInfo: { metadata: Record<string, unknown> };
  createContext(options: {
    contextSize: number;
    threads?: number;
    flashAttention?: boolean;
    experimentalKvCacheKeyType?: string;
    experimentalKvCacheValueType?: string;
    lora?: { adapters: { filePath: string; scale?: number }[] };
  }): Promise<LlamaContext>;
  dispose(): Promise<void>;
}
interface Llama {
  loadModel(options: { modelPath: string }): Promise<LlamaModelHandle>;
  dispose(): Promise<void>;
}

let shared: Promise<Llama> | undefined;

/** One llama.cpp instance per test file (CPU only, never building or downloading anything). */
export function getLlama(): Promise<Llama> {
  if (!fs.existsSync(path.join(PACKAGE, 'package.json'))) {
    throw new Error(
      'llama.cpp is not installed for the tests: run `npm run setup:llama` (npm run test:unit does it first).',
    );
  }
  shared ??= import(pathToFileURL(path.join(PACKAGE, 'dist', 'index.js')).href).then(
    (m: { getLlama(o: object): Promise<Llama> }) =>
      m.getLlama({ gpu: false, build: 'never', logLevel: 'error' }),
  );
  return shared;
}

export interface GgufRun {
  model: LlamaModelHandle;
  /** Greedy continuation of `prompt` (ids as given, no BOS added), `count` new tokens. */
  greedy(prompt: number[], count: number): Promise<number[]>;
  /** The next-token logits after `prompt`, one per vocabulary id. */
  logits(prompt: number[], vocabSize: number): Promise<Float32Array>;
  dispose(): Promise<void>;
}

export async function openGguf(modelPath: string, options: { lora?: string } = {}): Promise<GgufRun> {
  const llama = await getLlama();
  const model = await llama.loadModel({ modelPath });
  // One thread: the machine's few cores are shared with the test runner, and ggml's spinning threads then
  // crawl (24 tokens took 22 s with the default, 20 ms with one). An f32 KV cache and no flash attention
  // (llama.cpp's defaults round keys, values and queries to f16, moving logits by ~1e-2): everything in
  // f32, llama.cpp's logits are within ~1e-5 of webtune's, so a tight tolerance can catch a wrong weight.
  const contextOptions = {
    contextSize: 256,
    threads: 1,
    flashAttention: false,
    experimentalKvCacheKeyType: 'F32',
    experimentalKvCacheValueType: 'F32',
    ...(options.lora ? { lora: { adapters: [{ filePath: options.lora, scale: 1 }] } } : {}),
  };
  return {
    model,
    async greedy(prompt, count) {
      const context = await model.createContext(contextOptions);
      try {
        const out: number[] = [];
        for await (const token of context.getSequence().evaluate(prompt, { temperature: 0 })) {
          out.push(token);
          if (out.length === count) break;
        }
        return out;
      } finally {
        await context.dispose();
      }
    },
    async logits(prompt, vocabSize) {
      const context = await model.createContext(contextOptions);
      try {
        const input: (number | [number, { generateNext: { logits: boolean } }])[] = prompt.slice(0, -1);
        input.push([prompt[prompt.length - 1], { generateNext: { logits: true } }]);
        const result = await context.getSequence().controlledEvaluate(input);
        const map = result[prompt.length - 1]?.next.logits;
        if (!map) throw new Error('llama.cpp returned no logits');
        const out = new Float32Array(vocabSize);
        for (const [token, value] of map) out[token] = value;
        return out;
      } finally {
        await context.dispose();
      }
    },
    dispose: () => model.dispose(),
  };
}
