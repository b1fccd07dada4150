import fs from 'node:fs';
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
import { number, parse, required, type Options } from './args';
import { chooseMapping, formatChoice, guessLine, promptFormat, readDataset } from './dataset-args';
import { CliError } from './errors';
import type { Output } from './output';
import { MODEL_SOURCE_HELP, MODEL_SOURCE_OPTIONS, sourceOptions } from './model-source';
import { closeSession, openSession } from './session';

export const EVAL_HELP = `webtune eval --model DIR --data FILE [--adapter ADAPTER.zip] [options] [--json]

Measures a model, or a model with an adapter, on a dataset's examples: its greedy answer to each prompt
against the expected completion (exact match; accuracy and a confusion matrix when the completions are
a few labels), and token accuracy and loss under teacher forcing. Prompts are formatted as train does.
  --prompt-column C --completion-column C --template "…" --format chat|plain   as for train
  --split validation|all   the held-out examples train set aside (same --val-split and --seed), or every one
  --val-split 0.1  --seed 0  --max-length 256
  --max-new-tokens N       longest answer (default: the longest expected completion, plus 8 tokens)
  --stop STR               end an answer before this text (repeatable); a chat template's end of turn always does
  --few-shot K             the base model with K training examples before each prompt: prompting instead
                           of fine-tuning (the adapter, if given, is switched off)
  --reference-text FILE    a general text's perplexity with and without the adapter: what it forgot
  --backend auto|cpu|wasm|webgpu
${MODEL_SOURCE_HELP}
--json prints {"split","examples","exact_match","token_accuracy","loss","perplexity","classification",
"forgetting","results":[{"prompt","expected","output","exact"}]}.`;

const OPTIONS: Options = {
  ...Object.fromEntries(
    [
      'model',
      'adapter',
      'data',
      'prompt-column',
      'completion-column',
      'template',
      'format',
      'split',
      'val-split',
      'seed',
      'max-length',
      'max-new-tokens',
      'few-shot',
      'reference-text',
      'backend',
    ].map((name) => [name, { type: 'string' as const }]),
  ),
  stop: { type: 'string', multiple: true },
  ...MODEL_SOURCE_OPTIONS,
};

const percent = (x: number) => `${(x * 100).toFixed(1)}%`;

export async function evalCommand(argv: string[], out: Output): Promise<void> {
  const values = parse(argv, OPTIONS, 'eval');
  if (values.help) return out.help(EVAL_HELP);
  const modelDir = required(values, 'model', 'eval');
  const dataFile = required(values, 'data', 'eval');
  const split = (values.split as string | undefined) ?? 'validation';
  if (!['validation', 'all'].includes(split))
    throw new CliError(`--split must be validation or all (got "${split}").`);
  const valSplit = number(values, 'val-split', 0.1, { min: 0, max: 0.9 });
  if (split === 'validation' && valSplit === 0)
    throw new CliError(
      '--val-split 0 leaves no validation examples; use --split all to evaluate on every row.',
    );
  const seed = number(values, 'seed', 0, { integer: true });
  const maxLength = number(values, 'max-length', 256, { min: 8, integer: true });
  const fewShot = number(values, 'few-shot', 0, { min: 0, max: 16, integer: true });
  const referenceFile = values['reference-text'] as string | undefined;
  if (
    referenceFile !== undefined &&
    (!fs.existsSync(referenceFile) || fs.statSync(referenceFile).isDirectory())
  )
    throw new CliError(`Reference text not found: ${referenceFile}.`);
  const formatName = formatChoice(values);

  const dataset = readDataset(dataFile);
  const { mapping, guess } = chooseMapping(values, dataset);
  if (guess) out.progress(guessLine(guess));
  const session = await openSession({
    model: modelDir,
    adapter: values.adapter as string | undefined,
    backend: (values.backend as string | undefined) ?? 'auto',
    source: sourceOptions(values, out),
  });
  try {
    const { tokenizer } = session;
    const format = promptFormat(formatName, tokenizer, session.name);
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
