import fs from 'node:fs';
import path from 'node:path';
import { promptStyleFor } from '../data/chat-prompt';
import { checkObjectiveFits } from '../data/pair-set';
import { parameterCount } from '../engine/config';
import type { RecomputeChoice } from '../engine/memory';
import { tabMemoryNeed, WEIGHTS_LABEL } from '../engine/weights-choice';
import { runTraining } from '../engine/train';
import { setUpTrainer } from '../data/trainer-setup';
import { describeObjective, infoMetadata, objectiveOf, type AdapterInfo } from '../formats/adapter-info';
import { writeAdapterZip } from '../formats/peft';
import { adapterReadme } from '../formats/readme';
import { parse, required, type Options } from './args';
import {
  dataSettings,
  loraSettings,
  objectiveFlag,
  presetChoice,
  RUN_FLAGS,
  RUN_HELP,
  RUN_SWITCHES,
  runObjective,
  trainSettings,
  UNKNOWN,
} from './run-settings';
import { buildRunSet, figuresText, objectiveLine } from './train-objective';
import { CliError } from './errors';
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
import {
  chooseMapping,
  DATA_OPTIONS,
  dataFiles,
  datasetName,
  DOCUMENTS_HELP,
  documentsLine,
  formatChoice,
  guessLine,
  PAIR_COLUMNS_HELP,
  promptFormat,
  readDataset,
} from './dataset-args';

export const TRAIN_HELP = `webtune train --model DIR --data FILE --out ADAPTER.zip [options] [--json]

Trains a LoRA adapter on a .csv, .tsv, .jsonl, .json, .xlsx or .ods dataset, or on documents (.txt, .md),
and writes it as a PEFT zip.
The layout is detected from the column names and named on the first line (alpaca, sharegpt,
openai-chat, prompt-completion, conversational, question-answer, input-output, text, and the pairs of
preference and openai-preference), or for two other columns guessed (a column of a few short values is the completion, else the left column is the prompt),
unless given. In a conversation every assistant turn is trained ("weight": 0 leaves one out).
  --layout NAME         read the file as this layout instead of the detected one
  --prompt-column C --completion-column C     which columns to use
${PAIR_COLUMNS_HELP}
  --sheet NAME          a spreadsheet's sheet (default: its first; the first row names the columns)
  --template "…{col}…" --completion-column C  a prompt template (\\n for a newline)
  --format chat|plain   chat: through the model's chat template (default when it has one);
                        plain: prompt, a newline, the completion, then EOS
${DOCUMENTS_HELP}
${RUN_HELP}
           --backend auto|cpu|wasm|webgpu (default auto)
           --recompute auto|on|off  keep only each layer's input and recompute the rest in the
                        backward pass (far less memory, about a fifth slower; other tools call it
                        gradient checkpointing); auto turns it on unless the run fits in 1 GB without it
Validation: --eval-every N  validation loss every N steps (default: at each epoch's end)
           --patience P   stop after P evaluations in a row without a better validation loss
           --keep best|last  write the weights of the best validation loss (default) or the last step
${MODEL_SOURCE_HELP}
${WEIGHTS_HELP}
A progress line per step goes to stderr (with DPO and ORPO, TRL's rewards/accuracies and rewards/margins
beside the loss; ORPO adds nll_loss and log_odds_ratio); --json prints
{"steps","train_loss","val_loss","best_step","kept","early_stopped","tokens_per_second","backend","recompute",
"memory_estimate_bytes","objective","beta","val_metrics"} on stdout (val_loss and val_metrics, the held-out
figures, are those of the weights written).`;

const OPTIONS: Options = {
  ...Object.fromEntries(
    [
      'model',
      'sheet',
      'out',
      'layout',
      'prompt-column',
      'completion-column',
      'chosen-column',
      'rejected-column',
      'template',
      'format',
      'backend',
      'recompute',
      ...RUN_FLAGS,
    ].map((name) => [name, { type: 'string' as const }]),
  ),
  ...Object.fromEntries(RUN_SWITCHES.map((name) => [name, { type: 'boolean' as const }])),
  ...DATA_OPTIONS,
  ...WEIGHTS_OPTION,
  ...MODEL_SOURCE_OPTIONS,
};

const formatBytes = (n: number) =>
  n >= 2 ** 30
    ? `${(n / 2 ** 30).toFixed(2)} GB`
    : n >= 2 ** 20
      ? `${(n / 2 ** 20).toFixed(0)} MB`
      : `${Math.max(1, Math.round(n / 1024))} KB`;

export async function trainCommand(argv: string[], out: Output): Promise<void> {
  const values = parse(argv, OPTIONS, 'train');
  if (values.help) return out.help(TRAIN_HELP);
  const modelDir = required(values, 'model', 'train');
  const files = dataFiles(values, 'train');
  const outFile = required(values, 'out', 'train');
  // Checked before anything is read; the preset's values come once the data and the model are known.
  const earlyLora = loraSettings(values, UNKNOWN);
  const early = trainSettings(values, UNKNOWN);
  const { maxLength, batchSize, valSplit } = dataSettings(values);
  const choice = (values.recompute as string | undefined) ?? 'auto';
  if (!['auto', 'on', 'off'].includes(choice))
    throw new CliError(`--recompute must be auto, on or off (got "${choice}").`);
  const formatName = formatChoice(values);
  objectiveFlag(values);
  const weights = weightsSetting(values);
  if (!fs.existsSync(path.dirname(path.resolve(outFile))))
    throw new CliError(`Cannot write ${outFile}: its folder does not exist.`);
  // Found before training, not after minutes of it.
  if (fs.existsSync(outFile) && fs.statSync(outFile).isDirectory())
    throw new CliError(
      `Cannot write ${outFile}: it is a folder. Pass --out with a file name such as ${path.join(outFile, 'adapter.zip')}.`,
    );

  const { dataset, sheet } = await readDataset(files, values.sheet as string | undefined);
  const { mapping, guess, layout } = chooseMapping(values, dataset);
  // Refused before the model loads: --beta that does not fit, DPO or ORPO on single answers.
  const { objective, beta, chosen } = runObjective(values, mapping);
  checkObjectiveFits(objective, mapping);
  const session = await openSession({
    model: modelDir,
    backend: (values.backend as string | undefined) ?? 'auto',
    source: sourceOptions(values, out),
    weights,
    // 'auto' sizes the weights for this run's batches (the LoRA of the flags, or of the presets' first).
    run: { rank: earlyLora.rank, targets: [...earlyLora.targets], batchSize, maxLength },
  });
  reportWeights(weightsSetting(values), session.weights, out);
  try {
    const format = promptFormat(formatName, session.tokenizer, session.name);
    // Once the run can go ahead: a refused run says one thing, why.
    if (layout && mapping.kind !== 'text') out.progress(layout);
    if (guess) out.progress(guessLine(guess));
    const objectiveText = objectiveLine(objective, beta, chosen, mapping);
    if (objectiveText) out.progress(objectiveText);
    const options = {
      mapping,
      format,
      maxLength,
      valSplit,
      batchSize,
      gradAccum: early.gradAccum,
      seed: early.seed,
    };
    const set = buildRunSet(dataset, session.tokenizer, objective, options, session.backend.reason);
    if (mapping.kind === 'text' && set.set) out.progress(documentsLine(set.set, maxLength, dataset.format));
    const known = {
      trainExamples: set.train,
      tokens: set.tokens,
      parameters: parameterCount(session.args),
      objective,
    };
    const lora = loraSettings(values, known);
    const settings = trainSettings(values, known);
    out.progress(
      `run: ${settings.epochs} epochs, learning rate ${settings.learningRate}, LoRA rank ${lora.rank} (alpha ${lora.alpha}${lora.useRslora ? ', rsLoRA' : ''}) on ${lora.targets.join(', ')}` +
        ` (preset ${presetChoice(values)}; flags override it)`,
    );
    for (const line of set.lines) out.progress(line);

    // The page's worker sets a run up the same way (data/trainer-setup.ts).
    const { trainer, adapter, recompute, memory, longest } = setUpTrainer(
      { model: session.model, args: session.args, name: session.name, weights: session.weights },
      set.data,
      { ...lora, ...settings, batchSize, recompute: choice as RecomputeChoice, objective, beta },
      (_lora, make) => (session.adapter = make()), // freed with the session
    );
    // On wasm, XNNPACK's packed copies of the weights come on top of the tensors.
    const needed = tabMemoryNeed(memory, session.backend.backend);
    out.progress(
      `memory: about ${formatBytes(needed)} (weights ${formatBytes(memory.weights)} in ${WEIGHTS_LABEL[session.weights.format]}, batch ${batchSize} × ${longest} tokens, ` +
        `activations ${recompute ? 'recomputed' : 'kept'}${choice === 'auto' ? ', chosen from the estimate' : ''})`,
    );
    const lossHistory: AdapterInfo['lossHistory'] = [];
    // The held-out figures of each evaluation, by step: the summary gives those of the weights written.
    const heldOut = new Map<number, Record<string, number>>();
    const summary = await (async () => {
      if (objective === 'dpo') {
        // Once, before step 1, with no gradient; the run's state keeps them from then on.
        out.progress(`Scoring ${set.train + set.validation} pairs with the adapter off (DPO's reference)…`);
        await trainer.prepare();
      }
      return runTraining(trainer, {
        onStep: (m) => {
          lossHistory.push({ step: m.step, loss: m.loss });
          out.progress(
            `step ${m.step}/${m.totalSteps}  epoch ${m.epoch + 1}  loss ${m.loss.toFixed(4)}${figuresText(m.objectiveMetrics)}  lr ${m.learningRate.toExponential(2)}  grad ${m.gradNorm.toFixed(3)}  ${Math.round(m.tokensPerSecond)} tok/s`,
          );
        },
        onEval: (e) => {
          const point = lossHistory.find((p) => p.step === e.step);
          if (point) point.valLoss = e.valLoss;
          if (e.objectiveMetrics) heldOut.set(e.step, e.objectiveMetrics);
          out.progress(
            `step ${e.step} (epoch ${e.epoch + 1}): validation loss ${e.valLoss.toFixed(4)}${figuresText(e.objectiveMetrics)}${e.best ? ' (best so far)' : ''}`,
          );
        },
      });
    })().finally(() => trainer.dispose());
    const keptStep = summary.kept === 'best' && summary.best ? summary.best.step : summary.steps;
    const valMetrics = heldOut.get(keptStep) ?? null;
    const weights = await adapter.toWeights();
    // The run's details ride in the zip as the page's do, so export --format trl and the page's library know
    // them.
    const info: AdapterInfo = {
      name: path.basename(outFile, '.zip'),
      modelName: session.name,
      datasetName: datasetName(files),
      promptStyle: promptStyleFor(mapping, format.chat !== null, dataset.rows),
      settings: {
        ...settings,
        ...lora,
        batchSize,
        maxLength,
        valSplit,
        objective,
        ...(beta !== undefined && { beta }),
      },
      trainLoss: summary.trainLoss,
      valLoss: summary.valLoss,
      lossHistory,
      // Which rows were held out, so webtune eval and the page's Evaluate step score it on those by default.
      split: {
        fileName: datasetName(files),
        ...(sheet !== null && { sheet }),
        mapping,
        useChatTemplate: format.chat !== null,
        maxLength,
        valSplit,
        seed: early.seed,
      },
    };
    fs.writeFileSync(
      outFile,
      writeAdapterZip(
        { ...weights, metadata: infoMetadata(info) },
        { readme: adapterReadme(weights.config, info.name, info.promptStyle, objectiveOf(info.settings)) },
      ),
    );
    out.progress(`wrote ${outFile}`);
    out.result(
      {
        steps: summary.steps,
        train_loss: summary.trainLoss,
        val_loss: summary.valLoss,
        best_step: summary.best?.step ?? null,
        kept: summary.kept,
        early_stopped: summary.earlyStopped,
        tokens_per_second: summary.tokensPerSecond,
        backend: session.backend.backend,
        recompute,
        memory_estimate_bytes: needed,
        objective,
        beta: beta ?? null,
        val_metrics: valMetrics,
      },
      () =>
        `trained ${summary.steps} steps with ${describeObjective(objectiveOf(info.settings))}${summary.earlyStopped ? ' (stopped early: no better validation loss)' : ''}: train loss ${summary.trainLoss.toFixed(4)}` +
        (summary.valLoss !== null ? `, validation loss ${summary.valLoss.toFixed(4)}` : '') +
        (summary.kept === 'best' && summary.best ? ` (the best, from step ${summary.best.step})` : '') +
        (valMetrics ? `, held out ${figuresText(valMetrics).trim()}` : '') +
        ` → ${outFile}`,
    );
  } finally {
    closeSession(session);
  }
}
