/**
 * The worker's Evaluate step: the chat's adapter measured three ways — base model (adapter off), base model
 * shown training examples first (adapter off), fine-tuned (adapter on) — on the rows it held out when it was
 * trained, rebuilt from the open file with its run's own split (whatever the dataset's settings are now),
 * or on every row of the open dataset when asked. The items are those `webtune eval` builds, so the page and
 * the CLI give the same numbers.
 */
import { padTokenId } from '../data/batch';
import type { EncodedExample } from '../data/encode';
import {
  evaluateDocuments,
  evaluationWindows,
  type DocumentEvaluation,
  type WindowsScore,
} from '../data/evaluate-documents';
import { evaluatePreferences, type PreferenceEvaluation } from '../data/evaluate-preference';
import { buildPairTrainingSet } from '../data/pair-set';
import type { PairMapping } from '../data/pairs';
import { buildEvalItems, evalMaxNewTokens, evalStopStrings } from '../data/eval-items';
import { evaluateItems, measureForgetting, type EvalItem, type EvalReport } from '../data/evaluate';
import { endTokenIds, type LoadedModel } from '../engine/load';
import type { TrainingSplit } from '../formats/adapter-info';
import type { AdapterSlot, TrainedOn } from './adapter-slot';
import type { DatasetSession } from './dataset-session';
import { keepEvaluation } from './library';
import type { EvalProgress, EvaluateRequest, EvaluationResult, HeldOutRefusal } from './protocol';

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
  ): Promise<EvaluationResult | HeldOutRefusal> {
    if (this.abort) throw new Error('An evaluation is already running. Wait for it or press Cancel.');
    const adapter = this.slot.adapter;
    const info = this.slot.info;
    if (!adapter || !info)
      throw new Error(
        'There is no fine-tuned adapter to evaluate. Train one, or choose one in the adapter library.',
      );
    const datasetName = this.dataset.fileName ?? 'the open dataset';
    const split = request.split;
    // The adapter's own split rebuilds the rows it held out; every row is every row, whatever the split.
    const heldOut =
      split === 'validation'
        ? heldOutSplit(info.trainedOn, { id: request.datasetId, name: datasetName })
        : undefined;
    if (heldOut && 'refused' in heldOut) return heldOut;
    if (heldOut?.sheet && heldOut.sheet !== this.dataset.sheet)
      return {
        refused:
          `This adapter was trained on the sheet '${heldOut.sheet}' of ${datasetName}, but the sheet '${this.dataset.sheet}' is open. ` +
          `Pick '${heldOut.sheet}' in step 2 to evaluate it on the rows it held out, or evaluate it on all rows of this sheet.`,
      };
    const input = this.dataset.evaluationInput(heldOut);
    const { tokenizer, model } = loaded;
    if (input.mapping.kind === 'text') {
      const windows = evaluationWindows(input.dataset, input.mapping, tokenizer, { ...input, split });
      if (heldOut && windows.length === 0)
        return {
          refused:
            `This adapter was trained on every window of ${datasetName}: it held none out, so there is no unseen text to evaluate it on. ` +
            'Evaluate it on all windows to see how well it learned them, or train again with a validation split above 0.',
        };
      const base = { split, datasetName, shots: 0, adapter: { id: info.id, name: info.name } };
      return this.evaluateText(loaded, adapter, windows, request, base, onProgress);
    }
    const build = (fewShot: number) =>
      buildEvalItems(input.dataset, input.mapping, input.format, {
        split,
        valSplit: input.valSplit,
        seed: input.seed,
        fewShot,
      });
    const plain = build(0);
    if (heldOut && plain.items.length === 0)
      return {
        refused:
          `This adapter was trained on every row of ${datasetName}: it held none out, so there are no unseen rows to evaluate it on. ` +
          'Evaluate it on all rows to see how well it learned them, or train again with a validation split above 0.',
      };
    const shots = Math.min(request.shots, plain.trainExamples);
    const prompted = build(shots);

    const abort = new AbortController();
    this.abort = abort;
    const wasEnabled = adapter.enabled;
    const settings = {
      maxLength: input.maxLength,
      addEos: input.format.addEos,
      maxNewTokens: evalMaxNewTokens(tokenizer, plain.items),
      endTokenIds: endTokenIds(loaded),
      stopStrings: evalStopStrings(input.format),
      // A pairs file's chosen answers may repeat a few endings, but they are answers, not labels to classify.
      labels: input.mapping.kind === 'pairs' ? null : plain.labels,
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
      const preference =
        input.mapping.kind === 'pairs'
          ? await this.preferences(loaded, adapter, input, split, abort.signal, onProgress)
          : null;
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
        datasetName,
        shots,
        adapter: { id: info.id, name: info.name },
        base,
        fewShot,
        tuned,
        forgetting,
        ...(preference && { preference }),
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

  /**
   * Preference pairs: how often the base model and the fine-tuned one give the chosen answer the higher
   * log-probability, and by how much, on the pairs held out as a preference run holds them out (or all).
   */
  private async preferences(
    loaded: LoadedModel,
    adapter: { enabled: boolean },
    input: ReturnType<DatasetSession['evaluationInput']>,
    split: EvaluateRequest['split'],
    signal: AbortSignal,
    onProgress: (progress: EvalProgress) => void,
  ): Promise<PreferenceEvaluation> {
    const { model, tokenizer } = loaded;
    const set = buildPairTrainingSet(input.dataset, input.mapping as PairMapping, tokenizer, {
      format: input.format,
      maxLength: input.maxLength,
      valSplit: input.valSplit,
      seed: input.seed,
      batchSize: 1,
    });
    const pairs = split === 'all' ? [...set.train, ...set.validation] : set.validation;
    let offset = 0;
    onProgress({ stage: 'preference', done: 0, total: 2 * pairs.length });
    return evaluatePreferences(model, pairs, padTokenId(tokenizer), adapter, {
      signal,
      onStage: (stage) => (offset = stage === 'base' ? 0 : pairs.length),
      onProgress: async (done) => {
        onProgress({ stage: 'preference', done: offset + done, total: 2 * pairs.length });
        await nextTask();
      },
    });
  }

  /**
   * Documents: the windows' perplexity, base and fine-tuned; the text forgetting check as for any dataset.
   * The reports hold the same figures without answers (no exact match; few-shot does not apply).
   */
  private async evaluateText(
    loaded: LoadedModel,
    adapter: { enabled: boolean },
    windows: EncodedExample[],
    request: EvaluateRequest,
    base: Pick<EvaluationResult, 'split' | 'datasetName' | 'shots' | 'adapter'>,
    onProgress: (progress: EvalProgress) => void,
  ): Promise<EvaluationResult> {
    const abort = new AbortController();
    this.abort = abort;
    const { model, tokenizer } = loaded;
    let stage: 'base' | 'tuned' = 'base';
    try {
      const documents: DocumentEvaluation = await evaluateDocuments(
        model,
        windows,
        padTokenId(tokenizer),
        adapter,
        {
          signal: abort.signal,
          onStage: (next) => onProgress({ stage: (stage = next), done: 0, total: windows.length }),
          onProgress: async (done, total) => {
            onProgress({ stage, done, total });
            await nextTask();
          },
        },
      );
      let forgetting: EvaluationResult['forgetting'] = null;
      if (request.referenceText !== null && request.referenceText.trim() !== '') {
        onProgress({ stage: 'reference', done: 0, total: 2 });
        const measured = await measureForgetting(model, tokenizer, request.referenceText, adapter);
        forgetting = { ...measured, adapted_perplexity: measured.adapted_perplexity! };
      }
      const report = (score: WindowsScore): EvalReport => ({
        examples: windows.length,
        exact_match: NaN,
        ...score,
        classification: null,
        results: [],
      });
      const result: EvaluationResult = {
        ...base,
        examples: windows.length,
        base: report(documents.base),
        fewShot: report(documents.base),
        tuned: report(documents.tuned!),
        forgetting,
        documents,
        warning: null,
      };
      result.warning = await keepEvaluation(result);
      return result;
    } finally {
      this.abort = null;
    }
  }
}

/**
 * The split that rebuilds, from the open dataset (`open`: its stored id and file name), the rows an adapter
 * held out; or why it cannot, in words that say what to do.
 */
export function heldOutSplit(
  trainedOn: TrainedOn | null,
  open: { id: string | null; name: string },
): TrainingSplit | HeldOutRefusal {
  const allRows = `evaluate it on all rows of ${open.name}`;
  if (!trainedOn)
    return {
      refused:
        'This adapter was imported, so this device does not know which rows it held out when it was trained. ' +
        `You can ${allRows} instead, but it may have been trained on some of them, which makes its figures look better than they are.`,
    };
  if (trainedOn.datasetId !== open.id)
    return {
      refused:
        trainedOn.datasetName === open.name
          ? `The open ${open.name} is not the file this adapter was trained on: its rows differ. ` +
            'Open the copy it was trained on (under "Your datasets on this device" in step 2) to evaluate it on the rows it held out, ' +
            `or ${allRows}.`
          : `This adapter was trained on ${trainedOn.datasetName}, not on the open dataset (${open.name}), so the rows it held out are not here. ` +
            `Open ${trainedOn.datasetName} (under "Your datasets on this device" in step 2) to evaluate it on them, or ${allRows}.`,
    };
  if (!trainedOn.split)
    return {
      refused:
        'This adapter was saved before webtune kept which rows a run holds out, so they cannot be told apart from the rows it was trained on. ' +
        `Train it again to evaluate it on held-out rows, or ${allRows}: it learned most of them, so its figures will look better than they are.`,
    };
  return trainedOn.split;
}
