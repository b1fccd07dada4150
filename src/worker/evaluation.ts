/**
 * The worker's Evaluate step: the chat's adapter measured on the open dataset's held-out examples three
 * ways — base model (adapter off), base model shown training examples first (adapter off), fine-tuned
 * (adapter on) — with the items `webtune eval` builds, so the page and the CLI give the same numbers.
 */
import { buildEvalItems, evalMaxNewTokens, evalStopStrings, type EvalSplit } from '../data/eval-items';
import { evaluateItems, measureForgetting, type EvalItem, type EvalReport } from '../data/evaluate';
import { endTokenIds, type LoadedModel } from '../engine/load';
import type { AdapterSlot } from './adapter-slot';
import type { DatasetSession } from './dataset-session';
import { keepEvaluation } from './library';
import type { EvalProgress, EvaluateRequest, EvaluationResult } from './protocol';

/** Lets a cancel message in between examples. */
const nextTask = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

export class EvaluationSession {
  private abort: AbortController | null = null;

  constructor(
    private readonly slot: AdapterSlot,
    private readonly dataset: DatasetSession,
  ) {}

  get busy(): boolean {
    return this.abort !== null;
  }

  cancel(): boolean {
    this.abort?.abort();
    return this.abort !== null;
  }

  /** Base, few-shot and fine-tuned reports on the same items; `onProgress` hears after every answer. */
  async evaluate(
    loaded: LoadedModel,
    request: EvaluateRequest,
    onProgress: (progress: EvalProgress) => void,
  ): Promise<EvaluationResult> {
    if (this.abort) throw new Error('An evaluation is already running. Wait for it or press Cancel.');
    const adapter = this.slot.adapter;
    const info = this.slot.info;
    if (!adapter || !info)
      throw new Error(
        'There is no fine-tuned adapter to evaluate. Train one, or choose one in the adapter library.',
      );
    const input = this.dataset.evaluationInput();
    const { tokenizer, model } = loaded;
    const build = (split: EvalSplit, fewShot: number) =>
      buildEvalItems(input.dataset, input.mapping, input.format, {
        split,
        valSplit: input.valSplit,
        seed: input.seed,
        fewShot,
      });
    // The held-out rows training set aside; every row when there are none (the page says which).
    let split: EvalSplit = 'validation';
    let plain = build(split, 0);
    if (plain.items.length === 0) plain = build((split = 'all'), 0);
    const shots = Math.min(request.shots, plain.trainExamples);
    const prompted = build(split, shots);

    const abort = new AbortController();
    this.abort = abort;
    const wasEnabled = adapter.enabled;
    const settings = {
      maxLength: input.maxLength,
      addEos: input.format.addEos,
      maxNewTokens: evalMaxNewTokens(tokenizer, plain.items),
      endTokenIds: endTokenIds(loaded),
      stopStrings: evalStopStrings(input.format),
      labels: plain.labels,
      signal: abort.signal,
    };
    const run = (
      stage: EvalProgress['stage'],
      items: EvalItem[],
      adapterOn: boolean,
    ): Promise<EvalReport> => {
      adapter.enabled = adapterOn;
      onProgress({ stage, done: 0, total: items.length });
      return evaluateItems(model, tokenizer, items, {
        ...settings,
        onProgress: async (done, total) => {
          onProgress({ stage, done, total });
          await nextTask();
        },
      });
    };
    try {
      const base = await run('base', plain.items, false);
      const fewShot = await run('fewshot', prompted.items, false);
      const tuned = await run('tuned', plain.items, true);
      let forgetting: EvaluationResult['forgetting'] = null;
      if (request.referenceText !== null && request.referenceText.trim() !== '') {
        let scored = 0;
        onProgress({ stage: 'reference', done: 0, total: 2 });
        const measured = await measureForgetting(model, tokenizer, request.referenceText, adapter, () =>
          onProgress({ stage: 'reference', done: ++scored, total: 2 }),
        );
        forgetting = { ...measured, adapted_perplexity: measured.adapted_perplexity! };
      }
      const result: EvaluationResult = {
        split,
        examples: plain.items.length,
        shots,
        adapter: { id: info.id, name: info.name },
        base,
        fewShot,
        tuned,
        forgetting,
        warning: null,
      };
      // The library shows each adapter's latest figures, after a reload too.
      result.warning = await keepEvaluation(result);
      return result;
    } finally {
      adapter.enabled = wasEnabled;
      this.abort = null;
    }
  }
}
