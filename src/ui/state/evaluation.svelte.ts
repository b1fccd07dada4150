/**
 * The Evaluate step: scores for base, base + examples and fine-tuned on the rows the adapter held out when
 * it was trained (or, when asked after a refusal, every row of the open dataset), run in the worker.
 */
import type { EvalSplit } from '../../data/eval-items';
import type { EvalReport } from '../../data/evaluate';
import type { WindowsScore } from '../../data/evaluate-documents';
import type { PreferenceScore } from '../../data/evaluate-preference';
import type { EvalProgress, EvaluationResult, WeightsCost } from '../../worker/protocol';
import { adapters } from './adapters.svelte';
import { dataset } from './dataset.svelte';
import { engine } from './engine.svelte';
import { evaluatedRows } from './evaluation-summary';

/**
 * Plain general English the adapter was not trained on: its perplexity shows what fine-tuning did to the
 * rest.
 */
export const DEFAULT_REFERENCE_TEXT =
  'The library opens at nine in the morning and closes at six in the evening. Visitors can borrow up to five books at a time ' +
  'and keep them for three weeks. If you need a book for longer, you can renew it at the front desk or on the website. ' +
  'Children under twelve should be with an adult. On Saturdays there is a reading hour for young children.';

/** Training examples shown in the few-shot column. */
export const SHOTS = 3;

export type Column = 'base' | 'fewShot' | 'tuned';

export const COLUMNS: { key: Column; title: string }[] = [
  { key: 'base', title: 'Base model' },
  { key: 'fewShot', title: `Base + ${SHOTS} examples` },
  { key: 'tuned', title: 'Fine-tuned' },
];

const STAGE_NAMES: Record<EvalProgress['stage'], string> = {
  base: 'Base model',
  fewshot: `Base + ${SHOTS} examples`,
  tuned: 'Fine-tuned',
  preference: 'Preference pairs, base then fine-tuned',
  reference: 'General text',
};

/** What a stage counts as it goes. */
const UNITS: Record<EvalProgress['stage'], string> = {
  base: 'answers',
  fewshot: 'answers',
  tuned: 'answers',
  preference: 'answers scored',
  reference: 'passes',
};

export interface FigureRow {
  name: string;
  explain: string;
  /** One cell per column, already worded; null where the figure does not apply. */
  cells: Record<Column, string | null>;
  /** The column that did best on this figure, marked in the table. */
  best: Column | null;
}

const percent = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(0)}%` : '–');
const decimal = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '–');

/** The column with the highest (or lowest) value, when there is a strict winner. */
function winner(values: Record<Column, number | null>, higherIsBetter: boolean): Column | null {
  const entries = (Object.entries(values) as [Column, number | null][]).filter(
    (e): e is [Column, number] => e[1] !== null && Number.isFinite(e[1]),
  );
  if (entries.length < 2) return null;
  const sorted = entries.sort((a, b) => (higherIsBetter ? b[1] - a[1] : a[1] - b[1]));
  return sorted[0][1] !== sorted[1][1] ? sorted[0][0] : null;
}

/** One figure's row: its values formatted, and the column that did best. */
function row(
  name: string,
  explain: string,
  values: Record<Column, number | null>,
  format: (x: number) => string,
  higherIsBetter: boolean,
): FigureRow {
  return {
    name,
    explain,
    cells: {
      base: values.base === null ? null : format(values.base),
      fewShot: values.fewShot === null ? null : format(values.fewShot),
      tuned: values.tuned === null ? null : format(values.tuned),
    },
    best: winner(values, higherIsBetter),
  };
}

/** The general-text check of what the model forgot, when it was measured. */
function forgettingRows(result: EvaluationResult): FigureRow[] {
  if (!result.forgetting) return [];
  const { base_perplexity, adapted_perplexity } = result.forgetting;
  // The few-shot column is the base model itself: its general text reads the same.
  return [
    row(
      'General-text perplexity',
      'How well the model still reads ordinary text it was not trained on: lower is better; a big rise means it forgot.',
      { base: base_perplexity, fewShot: null, tuned: adapted_perplexity },
      decimal,
      false,
    ),
  ];
}

/** The table's rows: each figure in words a person deciding whether fine-tuning paid off can read. */
export function figureRows(result: EvaluationResult): FigureRow[] {
  const reports: Record<Column, EvalReport> = {
    base: result.base,
    fewShot: result.fewShot,
    tuned: result.tuned,
  };
  const each = (pick: (r: EvalReport) => number | null) => ({
    base: pick(reports.base),
    fewShot: pick(reports.fewShot),
    tuned: pick(reports.tuned),
  });
  if (result.documents) return documentRows(result);
  const rows = [
    ...preferenceRows(result),
    row(
      'Exact match',
      'Share of answers that are exactly the expected answer.',
      each((r) => r.exact_match),
      percent,
      true,
    ),
    row(
      'Token accuracy',
      'Share of the expected answer\u2019s tokens the model would have predicted next, given the ones before.',
      each((r) => r.token_accuracy),
      percent,
      true,
    ),
  ];
  if (result.tuned.classification) {
    rows.push(
      row(
        'Label accuracy',
        'Share of answers that start with the right label.',
        each((r) => r.classification?.accuracy ?? null),
        percent,
        true,
      ),
    );
  }
  rows.push(
    row(
      result.split === 'validation' ? 'Held-out loss' : 'Loss',
      'How surprised the model is by the expected answers: lower is better.',
      each((r) => r.loss),
      decimal,
      false,
    ),
  );
  return [...rows, ...forgettingRows(result)];
}

/**
 * Preference pairs: how often each model gives the chosen answer the higher log-probability, and the mean
 * margin; the few-shot column does not apply (its prompts are not the pairs' prompts).
 */
function preferenceRows(result: EvaluationResult): FigureRow[] {
  const preference = result.preference;
  if (!preference) return [];
  const pair = (pick: (s: PreferenceScore) => number) => ({
    base: pick(preference.base),
    fewShot: null,
    tuned: preference.tuned ? pick(preference.tuned) : null,
  });
  const signed = (x: number) => (Number.isFinite(x) ? `${x > 0 ? '+' : ''}${x.toFixed(2)}` : '–');
  return [
    row(
      'Chosen answer preferred',
      `Share of the ${preference.pairs} pairs whose chosen answer the model finds more likely than the rejected one.`,
      pair((s) => s.accuracy),
      percent,
      true,
    ),
    row(
      'Mean margin',
      'How much more likely the chosen answer is than the rejected one, on average (log-probability, in nats): higher is better.',
      pair((s) => s.margin),
      signed,
      true,
    ),
  ];
}

/**
 * Documents: the held-out windows' perplexity (the headline), loss and token accuracy, base and fine-tuned;
 * few-shot does not apply to a text.
 */
function documentRows(result: EvaluationResult): FigureRow[] {
  const { base, tuned } = result.documents!;
  const pair = (pick: (s: WindowsScore) => number) => ({
    base: pick(base),
    fewShot: null,
    tuned: tuned ? pick(tuned) : null,
  });
  const held = result.split === 'validation' ? 'Held-out' : 'Text';
  const rows = [
    row(
      `${held} perplexity`,
      'How surprised the model is by text like your documents, on windows it was not trained on: lower is better.',
      pair((s) => s.perplexity),
      decimal,
      false,
    ),
    row(
      `${held} loss`,
      'The same as a loss: its logarithm.',
      pair((s) => s.loss),
      decimal,
      false,
    ),
    row(
      'Token accuracy',
      'Share of the text\u2019s tokens the model would have predicted next, given the ones before.',
      pair((s) => s.token_accuracy),
      percent,
      true,
    ),
  ];
  return [...rows, ...forgettingRows(result)];
}

class EvaluationState {
  referenceText = $state(DEFAULT_REFERENCE_TEXT);
  /** What the base's narrower weights cost on the general text against 32-bit (see measureWeights). */
  weightsCost = $state<WeightsCost | null>(null);
  weightsCostError = $state<string | null>(null);
  measuringWeights = $state(false);

  /** Compares the loaded base's next-token distributions on the general text with its 32-bit weights'. */
  async measureWeights(): Promise<void> {
    const client = engine.client;
    if (!client || this.measuringWeights) return;
    this.measuringWeights = true;
    this.weightsCost = null;
    this.weightsCostError = null;
    try {
      this.weightsCost = await client.request('weightsCost', { text: this.referenceText });
    } catch (error) {
      this.weightsCostError = (error as Error).message;
    } finally {
      this.measuringWeights = false;
    }
  }
  running = $state(false);
  progress = $state<EvalProgress | null>(null);
  result = $state<EvaluationResult | null>(null);
  error = $state<string | null>(null);
  /** Why the adapter's held-out rows could not be evaluated, and what to do; every row still can be. */
  refusal = $state<string | null>(null);

  /** "Fine-tuned: 3 of 4 answers" while it runs. */
  progressText = $derived(
    this.progress
      ? `${STAGE_NAMES[this.progress.stage]}: ${this.progress.done} of ${this.progress.total} ${UNITS[this.progress.stage]}`
      : 'Starting…',
  );
  /** Overall share done: three columns of answers, the scores of pairs (if any), then the reference text. */
  fraction = $derived.by(() => {
    const p = this.progress;
    if (!p) return 0;
    // Pairs are scored too, base then fine-tuned, after the answers.
    const pairs = dataset.prepared?.mapping?.kind === 'pairs';
    const order: EvalProgress['stage'][] = pairs
      ? ['base', 'fewshot', 'tuned', 'preference', 'reference']
      : ['base', 'fewshot', 'tuned', 'reference'];
    return (order.indexOf(p.stage) + (p.total ? p.done / p.total : 0)) / order.length;
  });
  rows = $derived(this.result ? figureRows(this.result) : []);
  /** "Evaluated on the 4 rows this adapter held out when it was trained", or on all rows, said so. */
  evaluatedText = $derived(this.result ? `Evaluated on ${evaluatedRows(this.result)}` : '');

  /**
   * Evaluates the chat's adapter on the rows it held out (`split` 'validation'), or on every row of the open
   * dataset ('all'), which the page offers when the held-out rows are refused.
   */
  async run(split: EvalSplit = 'validation'): Promise<void> {
    const client = engine.client;
    if (!client || this.running) return;
    this.running = true;
    this.error = null;
    this.refusal = null;
    this.progress = null;
    try {
      const answer = await client.request(
        'evaluate',
        { referenceText: this.referenceText.trim() || null, shots: SHOTS, split, datasetId: dataset.id },
        (event) => (this.progress = event),
      );
      if ('refused' in answer) {
        this.refusal = answer.refused;
        return;
      }
      this.result = answer;
      // The worker kept the figures with the adapter: the library shows them.
      void adapters.refresh();
    } catch (error) {
      this.error = (error as Error).message;
    } finally {
      this.running = false;
      this.progress = null;
    }
  }

  cancel(): void {
    void engine.client?.request('cancelEvaluation', {});
  }
}

export const evaluation = new EvaluationState();
