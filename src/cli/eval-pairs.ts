/**
 * `webtune eval` on a preference dataset: for the base model and with the adapter, the share of pairs whose
 * chosen answer gets the higher log-probability and the mean margin (evaluatePreferences), over the pairs the
 * run held out, and a few greedy answers side by side with the chosen one.
 *
 * The held-out pairs are those training held out: for a DPO or ORPO adapter the pair split
 * (buildPairTrainingSet, same max length, share and seed); for an SFT adapter trained on the file's chosen
 * answers, the rows its example split held out.
 */
import type { Dataset } from '../data';
import { padTokenId, splitTrainValidation } from '../data/batch';
import type { EvalSplit } from '../data/eval-items';
import { baseAndTuned } from '../data/base-and-tuned';
import { evaluatePreferences, type PreferenceScore } from '../data/evaluate-preference';
import { renderDataset } from '../data/examples';
import { cleanOutput } from '../data/metrics';
import { buildPairTrainingSet, type EncodedPairExample } from '../data/pair-set';
import type { PairMapping } from '../data/pairs';
import type { PromptFormat } from '../data/template';
import { generate } from '../engine/generate';
import { endTokenIds } from '../engine/load';
import { objectiveOf } from '../formats/adapter-info';
import { CliError } from './errors';
import type { Output } from './output';
import type { Session } from './session';

export interface PairEvalOptions {
  mapping: PairMapping;
  format: PromptFormat;
  split: EvalSplit;
  maxLength: number;
  valSplit: number;
  seed: number;
  /** Held-out prompts answered greedily by both models. */
  samples: number;
  /** Longest greedy answer (default: the longest chosen answer, plus 8 tokens). */
  maxNewTokens?: number;
  stopStrings: string[];
}

/** The pairs to score: every pair, or those the adapter's run held out. */
function heldOutPairs(
  session: Session,
  dataset: Dataset,
  options: PairEvalOptions,
): { pairs: EncodedPairExample[]; skipped: string[] } {
  const { mapping, format, maxLength, valSplit, seed } = options;
  const sft = session.adapterInfo !== null && objectiveOf(session.adapterInfo.settings).name === 'sft';
  // An SFT run split the chosen answers as examples; a preference run split the pairs.
  const pairSplit = options.split === 'validation' && !sft ? valSplit : 0;
  const set = buildPairTrainingSet(dataset, mapping, session.tokenizer, {
    format,
    maxLength,
    valSplit: pairSplit,
    seed,
    batchSize: 4,
  });
  const skipped = set.skipped.map((s) => s.reason);
  if (options.split === 'all') return { pairs: [...set.train, ...set.validation], skipped };
  if (!sft) return { pairs: set.validation, skipped };
  const examples = renderDataset(dataset, mapping, format).examples;
  const rows = new Set(splitTrainValidation(examples, valSplit, seed).validation.map((e) => e.row));
  return { pairs: set.train.filter((p) => rows.has(p.pair.row)), skipped };
}

/** The answer as the data gives it: the rendered completion without the end of turn or EOS. */
const answerOf = (completion: string, stops: string[]) => cleanOutput(completion, stops).trim();

/** The ids of the prompt: the encoded answer before its first target. */
const promptIds = (pair: EncodedPairExample) => {
  const first = pair.chosen.completionMask.indexOf(1);
  return pair.chosen.ids.slice(0, first < 0 ? pair.chosen.ids.length : first);
};

/** One line of text: a newline shown as ⏎. */
const oneLine = (text: string) => text.replace(/\r?\n/g, ' ⏎ ');

const percent = (x: number) => `${(x * 100).toFixed(1)}%`;

function scoreJson(score: PreferenceScore) {
  return {
    accuracy: score.accuracy,
    margin: score.margin,
    chosen_logp: score.chosen,
    rejected_logp: score.rejected,
  };
}

export async function evalPairs(
  session: Session,
  dataset: Dataset,
  out: Output,
  options: PairEvalOptions,
): Promise<void> {
  const { model, tokenizer, adapter } = session;
  const { pairs, skipped } = heldOutPairs(session, dataset, options);
  const held = options.split === 'all' ? 'pairs (every one)' : 'held-out pairs';
  if (pairs.length === 0)
    throw new CliError(
      'No pair was held out to evaluate (the validation split is empty). Use --split all to evaluate on every pair.',
    );
  out.progress(`${pairs.length} ${held}; backend: ${session.backend.reason}`);
  for (const reason of skipped.slice(0, 5)) out.progress(`left out: ${reason}`);
  const result = await evaluatePreferences(model, pairs, padTokenId(tokenizer), adapter, {
    onStage: (stage) =>
      out.progress(stage === 'base' ? 'scoring the pairs with the base model' : 'scoring with the adapter'),
  });

  const stops = options.stopStrings;
  const shown = pairs.slice(0, options.samples);
  const longest = Math.max(...shown.map((p) => p.chosen.completionMask.reduce((n, m) => n + m, 0)), 0);
  const answer = async () => {
    const answers: string[] = [];
    for (const pair of shown) {
      const reply = await generate(model, promptIds(pair), {
        maxNewTokens: options.maxNewTokens ?? longest + 8,
        eosTokenIds: endTokenIds(session),
        stopStrings: stops,
        decode: (ids) => tokenizer.decode(ids),
      });
      answers.push(cleanOutput(reply.text, stops).trim());
    }
    return answers;
  };
  const greedy = shown.length
    ? await baseAndTuned(adapter, answer, (stage) =>
        out.progress(
          `answering ${shown.length} prompts ${stage === 'base' ? 'with the base model' : 'with the adapter'}`,
        ),
      )
    : { base: [], tuned: null };
  const samples = shown.map(({ pair }, i) => ({
    prompt: pair.chosen.prompt,
    chosen: answerOf(pair.chosen.completion, stops),
    rejected: answerOf(pair.rejected.completion, stops),
    base: greedy.base[i],
    tuned: greedy.tuned?.[i] ?? null,
  }));

  const { base, tuned } = result;
  out.result(
    {
      split: options.split,
      pairs: result.pairs,
      base: scoreJson(base),
      tuned: tuned && scoreJson(tuned),
      samples,
    },
    () =>
      [
        `${result.pairs} ${held}: chosen answer preferred ${percent(base.accuracy)} base` +
          (tuned ? `, ${percent(tuned.accuracy)} with the adapter` : '') +
          `; mean margin log π(chosen) − log π(rejected) ${base.margin.toFixed(3)} nats base` +
          (tuned ? `, ${tuned.margin.toFixed(3)} nats with the adapter` : ''),
        ...samples.flatMap((s) => [
          '',
          `prompt:   ${oneLine(s.prompt.trim())}`,
          `chosen:   ${oneLine(s.chosen)}`,
          `base:     ${oneLine(s.base)}`,
          ...(s.tuned !== null ? [`adapter:  ${oneLine(s.tuned)}`] : []),
        ]),
      ].join('\n'),
  );
}
