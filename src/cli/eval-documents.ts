/**
 * `webtune eval` on documents: the perplexity of the windows the run held out (same max length, overlap,
 * share and seed), for the base model and with the adapter, and the reference text as for any dataset.
 */
import fs from 'node:fs';
import type { Dataset } from '../data';
import { padTokenId } from '../data/batch';
import type { TextMapping } from '../data/documents';
import { evaluateDocuments, evaluationWindows } from '../data/evaluate-documents';
import type { EvalSplit } from '../data/eval-items';
import { measureForgetting } from '../data/evaluate';
import type { Output } from './output';
import type { Session } from './session';

export async function evalDocuments(
  session: Session,
  dataset: Dataset,
  out: Output,
  options: {
    mapping: TextMapping;
    split: EvalSplit;
    maxLength: number;
    valSplit: number;
    seed: number;
    referenceFile: string | undefined;
  },
): Promise<void> {
  const { model, tokenizer, adapter } = session;
  const windows = evaluationWindows(dataset, options.mapping, tokenizer, options);
  const held = options.split === 'all' ? 'windows (every one)' : 'held-out windows';
  out.progress(
    `${windows.length} ${held} of ≤${options.maxLength} tokens (overlap ${options.mapping.overlap}); backend: ${session.backend.reason}`,
  );
  const result = await evaluateDocuments(model, windows, padTokenId(tokenizer), adapter, {
    onStage: (stage) =>
      out.progress(stage === 'base' ? 'scoring the base model' : 'scoring with the adapter'),
  });
  const forgetting =
    options.referenceFile === undefined
      ? null
      : await measureForgetting(model, tokenizer, fs.readFileSync(options.referenceFile, 'utf8'), adapter);
  const { base, tuned } = result;
  out.result(
    {
      split: options.split,
      windows: result.windows,
      tokens: result.tokens,
      base_perplexity: base.perplexity,
      adapted_perplexity: tuned?.perplexity ?? null,
      base_loss: base.loss,
      adapted_loss: tuned?.loss ?? null,
      base_token_accuracy: base.token_accuracy,
      adapted_token_accuracy: tuned?.token_accuracy ?? null,
      forgetting,
    },
    () =>
      [
        `${result.windows} ${held} (${result.tokens} tokens): perplexity ${base.perplexity.toFixed(2)} base` +
          (tuned ? `, ${tuned.perplexity.toFixed(2)} with the adapter` : ''),
        ...(forgetting
          ? [
              `reference text (${forgetting.tokens} tokens): perplexity ${forgetting.base_perplexity.toFixed(2)} base` +
                (forgetting.adapted_perplexity === null
                  ? ''
                  : `, ${forgetting.adapted_perplexity.toFixed(2)} with the adapter`),
            ]
          : []),
      ].join('\n'),
  );
}
