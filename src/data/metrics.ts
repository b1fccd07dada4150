/**
 * How well outputs match the expected completions: exact match, and for label datasets (a column of a
 * few classes) accuracy and a confusion matrix. Pure functions of strings, shared by the CLI's
 * `webtune eval` and the page's Evaluate step.
 */

/** At most this many distinct completions make a label dataset… */
export const MAX_LABELS = 20;
/** …each used at least this often. */
export const MIN_LABEL_USES = 2;

/** The output as it is compared: cut before the first stop string, then trimmed. */
export function cleanOutput(output: string, stopStrings: string[] = []): string {
  let end = output.length;
  for (const stop of stopStrings) {
    const at = stop ? output.indexOf(stop) : -1;
    if (at >= 0 && at < end) end = at;
  }
  return output.slice(0, end).trim();
}

export function isExactMatch(output: string, expected: string, stopStrings: string[] = []): boolean {
  return cleanOutput(output, stopStrings) === expected.trim();
}

/**
 * The labels when the expected completions take few distinct values (at most MAX_LABELS, each used at least
 * MIN_LABEL_USES times), sorted; null otherwise (free text).
 */
export function detectLabels(completions: string[]): string[] | null {
  const uses = new Map<string, number>();
  for (const c of completions) uses.set(c.trim(), (uses.get(c.trim()) ?? 0) + 1);
  if (uses.size === 0 || uses.size > MAX_LABELS || [...uses.values()].some((n) => n < MIN_LABEL_USES)) return null;
  if ([...uses.keys()].some((label) => label === '')) return null;
  return [...uses.keys()].sort();
}

/** The label an output starts with (the longest, when several do), or "other". */
export function predictedLabel(output: string, labels: string[]): string {
  const text = output.trim();
  let best = '';
  for (const label of labels) if (text.startsWith(label) && label.length > best.length) best = label;
  return best || 'other';
}

export interface Classification {
  labels: string[];
  accuracy: number;
  /** confusion[expected][predicted] = how many examples; predicted may be "other". */
  confusion: Record<string, Record<string, number>>;
}

/** Accuracy and confusion over (output, expected) pairs whose expected completions are labels. */
export function classify(pairs: { output: string; expected: string }[], labels: string[]): Classification {
  const confusion: Record<string, Record<string, number>> = Object.fromEntries(labels.map((l) => [l, {}]));
  let right = 0;
  for (const { output, expected } of pairs) {
    const truth = expected.trim();
    const guess = predictedLabel(output, labels);
    const row = (confusion[truth] ??= {});
    row[guess] = (row[guess] ?? 0) + 1;
    if (guess === truth) right++;
  }
  return { labels, accuracy: pairs.length ? right / pairs.length : 0, confusion };
}
