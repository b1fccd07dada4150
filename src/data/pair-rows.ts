/**
 * One answer of a preference pair (pairs.ts) as the prompt/completion row it amounts to: what the rest of
 * the data pipeline knows how to render. Wherever a pair row is used as a single example — SFT on a pairs
 * dataset, the chat's quick prompts and few-shot examples, exact-match evaluation, TRL's rows — it is its
 * prompt with the chosen answer.
 */
import { DatasetError, type DataMessage, type Mapping, type Row } from './dataset';

export type PairMapping = Extract<Mapping, { kind: 'pairs' }>;
export type AnswerName = 'chosen' | 'rejected';

/** The mappings of the rows `pairAnswer` builds: `p` the prompt, `a` the answer. */
const TEXT: Mapping = { kind: 'template', promptTemplate: '{p}', completionTemplate: '{a}' };
export const PAIR_CHAT_MAPPING: Mapping = { kind: 'chat', messages: 'p', completion: 'a' };
const CHAT = PAIR_CHAT_MAPPING;

/** Throws a DatasetError naming a column the mapping needs that the file does not have. */
export function validatePairMapping(mapping: PairMapping, columns: string[]): void {
  for (const part of ['prompt', 'chosen', 'rejected'] as const) {
    const column = mapping[part];
    if (!columns.includes(column))
      throw new DatasetError(
        `The ${part} is read from the column '${column}', but the file has: ${columns.join(', ')}. ` +
          'Choose the prompt, chosen and rejected columns the file has.',
      );
  }
  const named = new Set([mapping.prompt, mapping.chosen, mapping.rejected]);
  if (named.size < 3)
    throw new DatasetError(
      'The prompt, the chosen answer and the rejected answer must be three different columns.',
    );
}

/** Whether the pair is a conversation: any of its three cells is a list of chat messages. */
export function pairHoldsMessages(row: Row, mapping: PairMapping): boolean {
  return [mapping.prompt, mapping.chosen, mapping.rejected].some((column) => Array.isArray(row[column]));
}

/**
 * The prompt and one answer as a row and its mapping. Texts make a prompt/completion row; when any of the
 * three cells is a list of messages, the pair is a conversation (a text prompt is the user's message, a text
 * answer the assistant's) whose answer's assistant turn is trained.
 */
export function pairAnswer(
  row: Row,
  mapping: PairMapping,
  answer: AnswerName,
): { row: Row; mapping: Mapping } {
  const prompt = row[mapping.prompt] ?? '';
  const reply = row[mapping[answer]] ?? '';
  if (!pairHoldsMessages(row, mapping)) return { row: { p: prompt, a: reply }, mapping: TEXT };
  const messages = (cell: Row[string], role: string): DataMessage[] =>
    typeof cell !== 'string' ? cell : cell.trim() === '' ? [] : [{ role, content: cell }];
  const replies = messages(reply, 'assistant');
  if (!replies.some((m) => m.role === 'assistant'))
    throw new DatasetError(
      `the ${answer} answer ('${mapping[answer]}') has no message with "role": "assistant". ` +
        'Each answer is the assistant\'s reply, like [{"role": "assistant", "content": "…"}].',
    );
  return { row: { p: messages(prompt, 'user'), a: replies }, mapping: CHAT };
}

/** An answer's text: the cell, or its messages' contents. */
export function answerText(cell: Row[string] | undefined): string {
  return cell === undefined ? '' : typeof cell === 'string' ? cell : cell.map((m) => m.content).join('');
}
