import fs from 'node:fs';
import path from 'node:path';
import { validateMapping, type Dataset, type Mapping } from '../data';
import { RUN_DEFAULTS } from '../data/defaults';
import {
  buildEvalItems,
  evalMaxNewTokens,
  evalStopStrings,
  NotEnoughShots,
  type EvalItems,
  type EvalSplit,
} from '../data/eval-items';
import { evaluateItems, measureForgetting, type EvalReport } from '../data/evaluate';
import { endTokenIds } from '../engine/load';
import type { TrainingSplit } from '../formats/adapter-info';
import { number, parse, required, type Options, type Values } from './args';
import {
  chooseMapping,
  DATA_OPTIONS,
  dataFiles,
  datasetName,
  DOCUMENTS_HELP,
  formatChoice,
  guessLine,
  promptFormat,
  readDataset,
  type FormatChoice,
} from './dataset-args';
import { CliError } from './errors';
import { evalDocuments } from './eval-documents';
import { evalPairs } from './eval-pairs';
import type { Output } from './output';
import { MODEL_SOURCE_HELP, MODEL_SOURCE_OPTIONS, sourceOptions } from './model-source';
import {
  closeSession,
  openSession,
  WEIGHTS_HELP,
  WEIGHTS_OPTION,
  reportWeights,
  weightsSetting,
} from './session';

export const EVAL_HELP = `webtune eval --model DIR --data FILE [--adapter ADAPTER.zip] [options] [--json]

Measures a model, or a model with an adapter, on a dataset's examples: its greedy answer to each prompt
against the expected completion (exact match; accuracy and a confusion matrix when the completions are
a few labels), and token accuracy and loss under teacher forcing. Prompts are formatted as train does.
  --layout NAME --prompt-column C --completion-column C --template "…" --format chat|plain --sheet NAME
  --chosen-column C --rejected-column C                                            as for train
  --split validation|all   the held-out examples train set aside (same --val-split and --seed), or every one
  --val-split ${RUN_DEFAULTS.valSplit}  --seed ${RUN_DEFAULTS.seed}  --max-length ${RUN_DEFAULTS.maxLength}
                           an adapter written by webtune says how its run split the data: its columns,
                           format, --val-split, --seed and --max-length are the defaults then, so
                           --split validation scores the rows it held out (flags override them)
  --max-new-tokens N       longest answer (default: the longest expected completion, plus 8 tokens)
  --stop STR               end an answer before this text (repeatable); a chat template's end of turn always does
  --samples N              a preference dataset (prompt, chosen, rejected): instead of exact match, the share
                           of held-out pairs whose chosen answer gets the higher log-probability and the mean
                           margin, base and with the adapter, and N prompts (default 3) answered by both
  --few-shot K             the base model with K training examples before each prompt: prompting instead
                           of fine-tuning (the adapter, if given, is switched off)
  --reference-text FILE    a general text's perplexity with and without the adapter: what it forgot
${DOCUMENTS_HELP}
                           documents are measured by the held-out windows' perplexity, base and adapted
  --backend auto|cpu|wasm|webgpu
${MODEL_SOURCE_HELP}
${WEIGHTS_HELP}
--json prints {"split","examples","exact_match","token_accuracy","loss","perplexity","classification",
"forgetting","results":[{"prompt","expected","output","exact"}]}; for pairs {"split","pairs","base","tuned",
"samples":[{"prompt","chosen","rejected","base","tuned"}]}, base and tuned each {"accuracy","margin",
"chosen_logp","rejected_logp"}.`;

const OPTIONS: Options = {
  ...Object.fromEntries(
    [
      'model',
      'adapter',
      'layout',
      'sheet',
      'prompt-column',
      'completion-column',
      'chosen-column',
      'rejected-column',
      'template',
      'format',
      'split',
      'val-split',
      'seed',
      'max-length',
      'max-new-tokens',
      'few-shot',
      'samples',
      'reference-text',
      'backend',
    ].map((name) => [name, { type: 'string' as const }]),
  ),
  stop: { type: 'string', multiple: true },
  ...DATA_OPTIONS,
  ...WEIGHTS_OPTION,
  ...MODEL_SOURCE_OPTIONS,
};

const percent = (x: number) => `${(x * 100).toFixed(1)}%`;

export async function evalCommand(argv: string[], out: Output): Promise<void> {
  const values = parse(argv, OPTIONS, 'eval');
  if (values.help) return out.help(EVAL_HELP);
  const modelDir = required(values, 'model', 'eval');
  const files = dataFiles(values, 'eval');
  const split = (values.split as string | undefined) ?? 'validation';
  if (!['validation', 'all'].includes(split))
    throw new CliError(`--split must be validation or all (got "${split}").`);
  // The split's flags and --format are checked before the model loads, and settled once the adapter has said
  // how its run split the data (splitSettings).
  for (const [name, check] of Object.entries(SPLIT_CHECKS)) number(values, name, 0, check);
  formatChoice(values);
  if (split === 'validation' && values['val-split'] !== undefined && Number(values['val-split']) === 0)
    throw new CliError(
      '--val-split 0 leaves no validation examples; use --split all to evaluate on every row.',
    );
  const fewShot = number(values, 'few-shot', 0, { min: 0, max: 16, integer: true });
  const referenceFile = values['reference-text'] as string | undefined;
  if (
    referenceFile !== undefined &&
    (!fs.existsSync(referenceFile) || fs.statSync(referenceFile).isDirectory())
  )
    throw new CliError(`Reference text not found: ${referenceFile}.`);

  let { dataset, sheet } = await readDataset(files, values.sheet as string | undefined);
  const adapterFile = values.adapter as string | undefined;
  // Columns given, or no adapter to say which it was trained with: checked now, before the model loads.
  const columnsGiven = [
    'layout',
    'prompt-column',
    'completion-column',
    'chosen-column',
    'rejected-column',
    'template',
  ].some((f) => values[f] !== undefined);
  const given = columnsGiven || !adapterFile ? chooseMapping(values, dataset) : null;
  if (given?.layout) out.progress(given.layout);
  if (given?.guess) out.progress(guessLine(given.guess));
  const session = await openSession({
    model: modelDir,
    adapter: adapterFile,
    backend: (values.backend as string | undefined) ?? 'auto',
    source: sourceOptions(values, out),
    weights: weightsSetting(values),
  });
  reportWeights(weightsSetting(values), session.weights, out);
  try {
    const { tokenizer } = session;
    const adapterName = adapterFile ? path.basename(adapterFile) : '';
    const stored = session.adapterInfo?.split;
    // A workbook is read at the sheet the adapter was trained on, unless --sheet names one.
    if (values.sheet === undefined && stored?.sheet && sheet !== null && stored.sheet !== sheet) {
      ({ dataset, sheet } = await readDataset(files, stored.sheet));
      out.progress(`sheet: ${sheet}, the one ${adapterName} was trained on (--sheet reads another)`);
    }
    const { mapping, formatName, valSplit, seed, maxLength } = splitSettings(values, stored, {
      mapping: given?.mapping ?? null,
      dataset,
      adapterName,
    });
    if (split === 'validation' && valSplit === 0)
      throw new CliError(
        `${adapterName} was trained on every row (no validation split), so it held none out; use --split all to evaluate on every row.`,
      );
    if (stored) {
      out.progress(
        `${adapterName} says how its run split ${stored.fileName}: --val-split ${valSplit} --seed ${seed} --max-length ${maxLength}, ` +
          'its columns and format, so its held-out rows are the validation split (flags override these)',
      );
      if (stored.fileName !== datasetName(files))
        out.progress(
          `note: ${adapterName} was trained on ${stored.fileName}, not ${datasetName(files)}; if that is another file, the rows it held out are not these`,
        );
    } else if (adapterFile && split === 'validation' && values['val-split'] === undefined)
      out.progress(
        `note: ${adapterName} does not say which rows its run held out, so this is --val-split ${valSplit} --seed ${seed}; ` +
          'pass the ones it was trained with, or the figures may include rows it learned',
      );
    if (mapping.kind === 'text') {
      if (fewShot)
        throw new CliError(
          '--few-shot does not apply to documents: they have no prompts to put examples before.',
        );
      return await evalDocuments(session, dataset, out, {
        mapping,
        split: split as EvalSplit,
        maxLength,
        valSplit,
        seed,
        referenceFile,
      });
    }
    const format = promptFormat(formatName, tokenizer, session.name);
    if (mapping.kind === 'pairs' && !fewShot)
      return await evalPairs(session, dataset, out, {
        mapping,
        format,
        split: split as EvalSplit,
        maxLength,
        valSplit,
        seed,
        samples: number(values, 'samples', 3, { min: 0, integer: true }),
        maxNewTokens:
          values['max-new-tokens'] === undefined
            ? undefined
            : number(values, 'max-new-tokens', 0, { min: 1, integer: true }),
        stopStrings: evalStopStrings(format, (values.stop as string[] | undefined) ?? []),
      });
    let built: EvalItems;
    try {
      built = buildEvalItems(dataset, mapping, format, {
        split: split as EvalSplit,
        valSplit,
        seed,
        fewShot,
      });
    } catch (error) {
      if (error instanceof NotEnoughShots)
        throw new CliError(
          `--few-shot ${fewShot} needs that many training examples; the split has ${error.available}.`,
        );
      throw error;
    }
    const { items } = built;
    if (fewShot && session.adapter) session.adapter.enabled = false;

    const stopStrings = evalStopStrings(format, (values.stop as string[] | undefined) ?? []);
    const maxNewTokens = number(values, 'max-new-tokens', evalMaxNewTokens(tokenizer, items), {
      min: 1,
      integer: true,
    });
    out.progress(
      `${items.length} ${split === 'all' ? '' : 'validation '}examples${fewShot ? `, ${fewShot}-shot prompts on the base model` : ''}; backend: ${session.backend.reason}`,
    );
    const report: EvalReport = await evaluateItems(session.model, tokenizer, items, {
      maxLength,
      addEos: format.addEos,
      maxNewTokens,
      endTokenIds: endTokenIds(session),
      stopStrings,
      labels: built.labels,
      onProgress: (done, total) => out.progress(`answered ${done}/${total}`),
    });

    const forgetting =
      referenceFile === undefined
        ? null
        : await measureForgetting(
            session.model,
            tokenizer,
            fs.readFileSync(referenceFile, 'utf8'),
            session.adapter,
          );

    const {
      examples: count,
      exact_match,
      token_accuracy,
      loss,
      perplexity,
      classification,
      results,
    } = report;
    out.result(
      {
        split,
        examples: count,
        exact_match,
        token_accuracy,
        loss,
        perplexity,
        classification,
        forgetting,
        results,
      },
      () =>
        [
          `${count} examples: exact match ${percent(exact_match)}, token accuracy ${percent(token_accuracy)}, loss ${loss.toFixed(4)} (perplexity ${perplexity.toFixed(2)})`,
          ...(classification
            ? [`labels ${classification.labels.join(', ')}: accuracy ${percent(classification.accuracy)}`]
            : []),
          ...(forgetting
            ? [
                `reference text (${forgetting.tokens} tokens): perplexity ${forgetting.base_perplexity.toFixed(2)} base${forgetting.adapted_perplexity === null ? '' : `, ${forgetting.adapted_perplexity.toFixed(2)} with the adapter`}`,
              ]
            : []),
        ].join('\n'),
    );
  } finally {
    closeSession(session);
  }
}

/** The flags that set which rows are held out, and what each must be. */
const SPLIT_CHECKS = {
  'val-split': { min: 0, max: 0.9 },
  seed: { integer: true },
  'max-length': { min: 8, integer: true },
} as const;

/**
 * How the rows become examples and which are held out: each flag given (`data.mapping`: from the column
 * flags), else what the adapter says its run used (`stored`, which webtune writes into its zips), else
 * train's defaults and the detected columns. So `--split validation` scores the rows a webtune adapter held
 * out, as the page's Evaluate step does.
 */
function splitSettings(
  values: Values,
  stored: TrainingSplit | undefined,
  data: { mapping: Mapping | null; dataset: Dataset; adapterName: string },
): { mapping: Mapping; formatName: FormatChoice; valSplit: number; seed: number; maxLength: number } {
  let mapping = data.mapping;
  if (!mapping && stored) {
    try {
      validateMapping(stored.mapping, data.dataset.columns);
    } catch (error) {
      throw new CliError(
        `${data.adapterName} was trained with columns this file does not have: ${(error as Error).message} Pass --prompt-column and --completion-column (or --template) for this file.`,
      );
    }
    mapping = stored.mapping;
  }
  // An adapter that does not say: the columns as named (train's defaults for this file).
  mapping ??= chooseMapping(values, data.dataset).mapping;
  if (mapping.kind === 'text' && values.overlap !== undefined)
    mapping = { ...mapping, overlap: number(values, 'overlap', mapping.overlap, { min: 1, integer: true }) };
  const storedFormat = stored && (stored.useChatTemplate ? 'chat' : 'plain');
  const defaults = stored ?? RUN_DEFAULTS;
  return {
    mapping,
    formatName: values.format === undefined && storedFormat ? storedFormat : formatChoice(values),
    valSplit: number(values, 'val-split', defaults.valSplit, SPLIT_CHECKS['val-split']),
    seed: number(values, 'seed', defaults.seed, SPLIT_CHECKS.seed),
    maxLength: number(values, 'max-length', defaults.maxLength, SPLIT_CHECKS['max-length']),
  };
}
