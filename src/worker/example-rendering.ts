/**
 * The open dataset's rows as examples (dataset-session.ts): rendered and split with the settings alone, so
 * the preview and the counts are right before a model arrives, and tokenised once one has — in one go, or in
 * slices that report progress and let a cancel in.
 */
import { encodeExample, encodeExamples, renderDataset, splitTrainValidation } from '../data';
import type { Dataset, EncodedExample, EncodeOptions, Mapping, PromptFormat } from '../data';
import type { RenderedDataset } from '../data/examples';
import type { Tokenizer } from '../engine/tokenizer';
import type { DatasetProgress, DatasetSettings } from './protocol';
import type { Slices } from './slices';

/** What the settings make of the rows: rendered and split always, tokenised once a model is loaded. */
export interface Rendering {
  rendered: RenderedDataset;
  /** Indices into rendered.examples. */
  train: number[];
  validation: number[];
  /** Tokens of each rendered example for the loaded model (whatever the batch size); null until tokenised. */
  encoded: EncodedExample[] | null;
}

export function renderExamples(
  dataset: Dataset,
  mapping: Mapping,
  format: PromptFormat,
  { valSplit, seed }: Pick<DatasetSettings, 'valSplit' | 'seed'>,
): Rendering {
  const rendered = renderDataset(dataset, mapping, format);
  const { train, validation } = splitTrainValidation(
    rendered.examples.map((_, i) => i),
    valSplit,
    seed,
  );
  return { rendered, train, validation, encoded: null };
}

/** The tokens of every example, tokenised now in one go unless they already are. */
export function encodedExamples(
  built: Rendering,
  tokenizer: Tokenizer,
  options: EncodeOptions,
): EncodedExample[] {
  built.encoded ??= encodeExamples(built.rendered.examples, tokenizer, options);
  return built.encoded;
}

/** Tokenises every example a slice at a time: `onProgress` hears how many are done. */
export async function encodeInSlices(
  built: Rendering,
  tokenizer: Tokenizer,
  options: EncodeOptions,
  slices: Slices,
  onProgress?: (progress: DatasetProgress) => void,
): Promise<void> {
  const { examples } = built.rendered;
  const total = examples.length;
  await slices.run(
    async (pause) => {
      const encoded: EncodedExample[] = [];
      onProgress?.({ done: 0, total });
      for (const example of examples) {
        encoded.push(encodeExample(example, tokenizer, options));
        if (encoded.length < total) await pause({ done: encoded.length, total });
      }
      onProgress?.({ done: total, total });
      built.encoded = encoded;
    },
    'rows',
    onProgress,
  );
}
