/** An adapter's kept evaluation in one line for the library, worded like the Evaluate step's table. */
import type { EvaluationSummary } from '../../store/adapters';

const percent = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(0)}%` : '–');

/**
 * Which rows an evaluation answered, as the Evaluate step and the library say it: "the 4 rows this adapter
 * held out when it was trained", or "all 16 rows of tickets.csv (not held out: …)". Never "held-out" for
 * rows that were not, nor for figures kept before the adapter's own split was used.
 */
export function evaluatedRows(
  evaluated: Pick<EvaluationSummary, 'split' | 'examples' | 'datasetName'>,
): string {
  const { split, examples, datasetName } = evaluated;
  const rows = `${examples} row${examples === 1 ? '' : 's'}`;
  if (datasetName === undefined)
    return split === 'validation'
      ? `${rows} of an older evaluation, which may include rows the adapter was trained on (evaluate again to be sure)`
      : `${rows} (every row: the dataset had no held-out split)`;
  return split === 'validation'
    ? `the ${rows} this adapter held out when it was trained`
    : `all ${rows} of ${datasetName} (not held out: the adapter may have been trained on them)`;
}

/**
 * "Evaluated on the 4 rows this adapter held out when it was trained: label accuracy 75% (base 0%, 3-shot
 * 25%), token accuracy 69%".
 */
export function evaluationLine(summary: EvaluationSummary): string {
  const { base, fewShot, tuned, shots } = summary;
  // Label accuracy says most for label datasets; exact match otherwise.
  const headline =
    tuned.label_accuracy !== null
      ? `label accuracy ${percent(tuned.label_accuracy)} (base ${percent(base.label_accuracy ?? NaN)}, ${shots}-shot ${percent(fewShot.label_accuracy ?? NaN)})`
      : `exact match ${percent(tuned.exact_match)} (base ${percent(base.exact_match)}, ${shots}-shot ${percent(fewShot.exact_match)})`;
  // Documents have no answers to match: their held-out perplexity (exp of the loss) says most.
  const text = !Number.isFinite(tuned.exact_match) && Number.isFinite(tuned.loss);
  const parts = [
    text
      ? `held-out text perplexity ${Math.exp(tuned.loss).toFixed(2)} (base ${Math.exp(base.loss).toFixed(2)})`
      : headline,
    `token accuracy ${percent(tuned.token_accuracy)}`,
  ];
  const forgetting = summary.forgetting;
  if (
    forgetting &&
    Number.isFinite(forgetting.adapted_perplexity) &&
    Number.isFinite(forgetting.base_perplexity)
  ) {
    parts.push(
      `general-text perplexity ${forgetting.adapted_perplexity.toFixed(1)} (base ${forgetting.base_perplexity.toFixed(1)})`,
    );
  }
  return `Evaluated on ${evaluatedRows(summary)}: ${parts.join(', ')}`;
}
