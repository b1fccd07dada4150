/**
 * Which examples an evaluation scores and how their prompts read: one function for `webtune eval` and
 * the page's Evaluate step, so both measure the same thing for the same adapter and data.
 */
import type { Tokenizer } from '../engine/tokenizer';
import { splitTrainValidation } from './batch';
import { defaultStopStrings, fewShotPrompt, promptStyleFor, rowAsShot } from './chat-prompt';
import type { Dataset } from './dataset';
import type { EvalItem } from './evaluate';
import { detectLabels } from './metrics';
import type { Mapping } from './layout';
import { renderDataset } from './examples';
import type { PromptFormat } from './template';

export type EvalSplit = 'validation' | 'all';

export interface EvalItemOptions {
  /** The held-out examples training set aside (same valSplit and seed), or every example. */
  split: EvalSplit;
  valSplit: number;
  seed: number;
  /** Training examples before each prompt (the base model prompted instead of fine-tuned); 0: none. */
  fewShot: number;
}

/** More few-shot examples were asked for than the split has training examples. */
export class NotEnoughShots extends RangeError {
  override name = 'NotEnoughShots';
  constructor(
    readonly wanted: number,
    readonly available: number,
  ) {
    super(`${wanted} few-shot examples need that many training examples; the split has ${available}.`);
  }
}

export interface EvalItems {
  items: EvalItem[];
  /** Training examples in the split: the most a few-shot prompt can show. */
  trainExamples: number;
  /** The dataset's labels when its completions are a few labels (every row counts), else null. */
  labels: string[] | null;
}

/**
 * The examples to score, formatted exactly as training rendered them: the prompt and completion, and
 * the answer the data expects. With `fewShot` K the prompt is the first K training examples followed by
 * the example's message, in the chat's few-shot layout.
 */
export function buildEvalItems(
  dataset: Dataset,
  mapping: Mapping,
  format: PromptFormat,
  options: EvalItemOptions,
): EvalItems {
  const examples = renderDataset(dataset, mapping, format).examples;
  // The split train made: the same function of the examples, valSplit and seed.
  const { train, validation } = splitTrainValidation(examples, options.valSplit, options.seed);
  const chosen = options.split === 'all' ? examples : validation;
  if (options.fewShot > train.length) throw new NotEnoughShots(options.fewShot, train.length);
  const style = promptStyleFor(mapping, format.chat !== null, dataset.rows);
  const shots = train.slice(0, options.fewShot).map((e) => rowAsShot(dataset.rows[e.row], mapping));
  const items = chosen.map((e): EvalItem => {
    const shot = rowAsShot(dataset.rows[e.row], mapping);
    const prompt = options.fewShot
      ? fewShotPrompt(shots, [{ role: 'user', content: shot.message }], style, format)
      : e.prompt;
    // Without shots the example is scored whole, every trained turn, as the validation loss scores it.
    const whole = !options.fewShot && e.segments.length > 2 ? { segments: e.segments } : {};
    return { prompt, completion: e.completion, expected: shot.answer, ...whole };
  });
  const labels = detectLabels(examples.map((e) => rowAsShot(dataset.rows[e.row], mapping).answer));
  return { items, trainExamples: train.length, labels };
}

/** Strings that end an answer: the template's end of a completion, and any the user adds. */
export function evalStopStrings(format: PromptFormat, extra: string[] = []): string[] {
  return [...defaultStopStrings(format), ...extra];
}

/** Room for every expected answer: the longest one in tokens, plus 8 for a model that says a little more. */
export function evalMaxNewTokens(tokenizer: Pick<Tokenizer, 'encode'>, items: EvalItem[]): number {
  return (
    Math.max(...items.map((item) => tokenizer.encode(item.expected, { addSpecialTokens: false }).length)) + 8
  );
}
