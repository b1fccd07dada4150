/**
 * The examples of a `trl` export as TRL reads them: split exactly as webtune split them, each written as a
 * row of TRL's prompt/completion layout (plain text) or conversational prompt/completion (through the chat
 * template); a conversation of several trained turns is one row per turn (see trl.ts for the mapping).
 */
import type { ChatMessage, Dataset, Row } from '../data/dataset';
import { renderDataset, type Example } from '../data/examples';
import { splitTrainValidation } from '../data/batch';
import type { Mapping } from '../data/layout';
import { conversationOf } from '../data/conversation';
import { pairAnswer, type AnswerName } from '../data/pair-rows';
import { buildPairTrainingSet } from '../data/pair-set';
import type { PairMapping } from '../data/pairs';
import type { Tokenizer } from '../engine/tokenizer';
import { renderTemplate, type PromptFormat } from '../data/template';
import type { TrlExample } from './trl-input';

/** A row of train.jsonl: plain text, or conversational (TRL applies the model's chat template). */
export type TrlRow =
  { prompt: string; completion: string } | { prompt: ChatMessage[]; completion: ChatMessage[] };

/** A row of a preference run's train.jsonl: TRL's preference layout, plain or conversational. */
export type TrlPairRow =
  | { prompt: string; chosen: string; rejected: string }
  | { prompt: ChatMessage[]; chosen: ChatMessage[]; rejected: ChatMessage[] };

/**
 * The training and validation examples exactly as buildTrainingSet splits them, without tokenising: the
 * split is made on the rendered examples (after empty and duplicate rows are left out), which needs the
 * format (for the chat template, only its Jinja rendering) but no tokenizer.
 */
export function trlExamples(
  dataset: Dataset,
  mapping: Mapping,
  format: PromptFormat,
  valSplit: number,
  seed: number,
): { train: Example[]; validation: Example[] } {
  // Webtune splits documents by window, which needs the tokenizer; TRL would pack the texts its own way.
  if (mapping.kind === 'text')
    throw new Error(
      'The TRL export does not take documents (a text dataset trained in windows) yet. Export the adapter for PEFT, llama.cpp or as a merged model instead.',
    );
  return splitTrainValidation(renderDataset(dataset, mapping, format).examples, valSplit, seed);
}

/**
 * One example in TRL's prompt/completion layout; throws when the row does not give the example's completion.
 * A conversation webtune trained on several turns of gives several rows: see trlRows.
 */
export function trlRow(
  example: TrlExample,
  rows: readonly Row[],
  mapping: Mapping,
  chatTemplate: boolean,
): TrlRow {
  return trlRows(example, rows, mapping, chatTemplate).at(-1)!;
}

/**
 * The example as TRL rows, one per trained turn: the text (or messages) before the turn is the prompt and
 * the turn the completion. TRL's SFT trains every assistant turn of one sequence only with
 * `assistant_only_loss`, which needs a chat template marked up with `{% generation %}` (few are), so a
 * conversation webtune trained whole becomes one row per turn: the same targets, each after the same context.
 */
export function trlRows(
  example: TrlExample,
  rows: readonly Row[],
  given: Mapping,
  chatTemplate: boolean,
  answer: AnswerName = 'chosen',
): TrlRow[] {
  const segments = example.segments ?? [
    { text: example.prompt, trained: false },
    { text: example.completion, trained: true },
  ];
  if (!chatTemplate)
    return segments.flatMap((segment, i) =>
      segment.trained
        ? [
            {
              prompt: segments
                .slice(0, i)
                .map((s) => s.text)
                .join(''),
              completion: segment.text,
            },
          ]
        : [],
    );
  const source = rows[example.row];
  if (source === undefined)
    throw new RangeError(`Example of row ${example.row} has no row in the dataset (${rows.length} rows).`);
  // A preference pair as one example is its prompt with the chosen answer (as webtune's SFT renders it).
  const { row, mapping } =
    given.kind === 'pairs' ? pairAnswer(source, given, answer) : { row: source, mapping: given };
  let turns: { prompt: ChatMessage[]; answer: string }[];
  if (mapping.kind === 'pairs') throw new Error('A pair is rendered as its chosen answer above.');
  if (mapping.kind === 'text') throw new Error('TRL rows are not written for documents.');
  if (mapping.kind === 'chat') {
    const { messages, trained } = conversationOf(row, mapping);
    const message = (m: ChatMessage): ChatMessage => ({ role: m.role, content: m.content });
    turns = (example.trainedTurns ?? trained.slice(-1)).map((turn) => ({
      prompt: messages.slice(0, turn).map(message),
      answer: messages[turn].content,
    }));
  } else {
    const user: ChatMessage = { role: 'user', content: renderTemplate(mapping.promptTemplate, row) };
    const system = mapping.systemTemplate ? renderTemplate(mapping.systemTemplate, row) : '';
    turns = [
      {
        prompt: system ? [{ role: 'system', content: system }, user] : [user],
        answer: renderTemplate(mapping.completionTemplate, row),
      },
    ];
  }
  // Webtune's completion is the last answer then the template's end of turn: a different start means the
  // rows or the mapping are not those the examples were rendered from.
  if (!example.completion.startsWith(turns.at(-1)?.answer ?? '\u0000')) {
    throw new Error(
      `The example of row ${example.row} does not match that row's answer: pass the rows and mapping the examples were rendered from.`,
    );
  }
  return turns.map(({ prompt, answer }) => ({
    prompt,
    completion: [{ role: 'assistant', content: answer }],
  }));
}

/** Rows the bundle writes for these examples, and how many of the examples are conversations of several. */
export function trlRowCounts(examples: readonly TrlExample[]): { rows: number; multiTurn: number } {
  let rows = 0;
  let multiTurn = 0;
  for (const e of examples) {
    const turns = e.segments ? e.segments.filter((s) => s.trained).length : 1;
    rows += turns;
    if (turns > 1) multiTurn++;
  }
  return { rows, multiTurn };
}

/**
 * A preference pair in TRL's preference layout: the prompt, the chosen and the rejected answer, as text (the
 * prompt ends with webtune's separator; TRL appends EOS to each answer as webtune did) or as messages (TRL
 * applies the chat template, as webtune did). Throws when the row does not give the example's answers.
 */
export function trlPairRow(
  example: TrlExample,
  rows: readonly Row[],
  mapping: Mapping,
  chatTemplate: boolean,
): TrlPairRow {
  if (example.rejected === undefined || mapping.kind !== 'pairs')
    throw new Error(`The example of row ${example.row} is not a preference pair: it has no rejected answer.`);
  const chosen = trlRows(example, rows, mapping, chatTemplate, 'chosen')[0];
  const rejected = trlRows(
    { ...example, completion: example.rejected },
    rows,
    mapping,
    chatTemplate,
    'rejected',
  )[0];
  return typeof chosen.prompt === 'string'
    ? { prompt: chosen.prompt, chosen: chosen.completion as string, rejected: rejected.completion as string }
    : {
        prompt: chosen.prompt,
        chosen: chosen.completion as ChatMessage[],
        rejected: rejected.completion as ChatMessage[],
      };
}

/**
 * The pairs of a DPO or ORPO run split exactly as it split them (buildPairTrainingSet: the same rows left
 * out, among them pairs whose prompt fills the max length, which is why the tokenizer is needed), each as a
 * TRL example with its rejected answer.
 */
export function trlPairExamples(
  dataset: Dataset,
  mapping: PairMapping,
  format: PromptFormat,
  tokenizer: Tokenizer,
  options: { maxLength: number; valSplit: number; seed: number },
): { train: TrlExample[]; validation: TrlExample[] } {
  const set = buildPairTrainingSet(dataset, mapping, tokenizer, { format, batchSize: 1, ...options });
  const example = ({ pair }: (typeof set.train)[number]): TrlExample => ({
    row: pair.row,
    prompt: pair.chosen.prompt,
    completion: pair.chosen.completion,
    rejected: pair.rejected.completion,
  });
  return { train: set.train.map(example), validation: set.validation.map(example) };
}
