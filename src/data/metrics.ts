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
  if (uses.size === 0 || uses.size > MAX_LABELS || [...uses.values()].some((n) => n < MIN_LABEL_USES))
    return null;
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

/** What the data step says about a label dataset. */
export interface LabelSummary {
  /** Each label and how many examples have it, most used first. */
  counts: [string, number][];
  /** The most used label has at most twice the examples of the least used. */
  balanced: boolean;
  /** Labels no held-out example has (so the held-out figures say nothing about them). */
  missingFromValidation: string[];
  /**
   * The smallest validation split (in steps of 0.05, up to 0.5) whose held-out examples have every label and
   * whose training examples too, with the same seed; null when the current one does or none does.
   */
  suggestedSplit: number | null;
}

/**
 * Labels of a dataset's completions (null for free text), how balanced they are, and whether the
 * validation split `split(fraction)` keeps every label. `split` returns the held-out and training
 * completions for a fraction, the way the training set is split.
 */
export function labelSummary(
  completions: string[],
  currentSplit: number,
  split: (fraction: number) => { validation: string[]; train: string[] },
): LabelSummary | null {
  const labels = detectLabels(completions);
  if (!labels) return null;
  const counts = new Map(labels.map((l) => [l, 0]));
  for (const c of completions) counts.set(c.trim(), counts.get(c.trim())! + 1);
  const sorted = [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const missing = (fraction: number) => {
    const { validation, train } = split(fraction);
    const held = new Set(validation.map((c) => c.trim()));
    const trained = new Set(train.map((c) => c.trim()));
    return { validation: labels.filter((l) => !held.has(l)), train: labels.filter((l) => !trained.has(l)) };
  };
  const now = currentSplit > 0 ? missing(currentSplit).validation : labels;
  let suggestedSplit: number | null = null;
  if (now.length > 0) {
    for (let steps = 1; steps <= 10; steps++) {
      const fraction = steps / 20;
      const m = missing(fraction);
      if (m.validation.length === 0 && m.train.length === 0) {
        suggestedSplit = fraction;
        break;
      }
    }
  }
  return {
    counts: sorted,
    balanced: sorted[0][1] <= 2 * sorted[sorted.length - 1][1],
    missingFromValidation: now,
    suggestedSplit,
  };
}
