/** An adapter's kept evaluation in one line for the library, worded like the Evaluate step's table. */
import type { EvaluationSummary } from '../../store/adapters';

const percent = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(0)}%` : '–');

/** "Evaluated on 4 held-out examples: label accuracy 75% (base 0%, 3-shot 25%), token accuracy 69%". */
export function evaluationLine(summary: EvaluationSummary): string {
  const { base, fewShot, tuned, shots, examples } = summary;
  const rows =
    summary.split === 'validation'
      ? `${examples} held-out example${examples === 1 ? '' : 's'}`
      : `${examples} training example${examples === 1 ? '' : 's'} (no held-out split)`;
  // Label accuracy says most for label datasets; exact match otherwise.
  const headline =
    tuned.label_accuracy !== null
      ? `label accuracy ${percent(tuned.label_accuracy)} (base ${percent(base.label_accuracy ?? NaN)}, ${shots}-shot ${percent(fewShot.label_accuracy ?? NaN)})`
      : `exact match ${percent(tuned.exact_match)} (base ${percent(base.exact_match)}, ${shots}-shot ${percent(fewShot.exact_match)})`;
  const parts = [headline, `token accuracy ${percent(tuned.token_accuracy)}`];
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
  return `Evaluated on ${rows}: ${parts.join(', ')}`;
}
