/**
 * What a person types in the chat, formatted exactly as the model saw prompts during training: through
 * the dataset's prompt template (the message fills its one column) and the chat template when training
 * used it. Also the few-shot prompt (k training examples before the message) and the quick prompts
 * (validation rows with their expected answers).
 */
import type { ChatMessage, Row } from './dataset';
import type { Mapping } from './layout';
import { conversationOf } from './conversation';
import { PAIR_CHAT_MAPPING, pairAnswer, pairHoldsMessages, type PairMapping } from './pair-rows';
import {
  renderConversationPrompt,
  renderPrompt,
  renderTemplate,
  splitConversation,
  templateColumns,
  type PromptFormat,
} from './template';

/** How an adapter's training formatted prompts; saved with the adapter so the chat can do the same. */
export interface PromptStyle {
  useChatTemplate: boolean;
  /**
   * The dataset's prompt template: "{question}", "Ticket: {ticket}", "" (text continuation), or several
   * columns.
   */
  promptTemplate: string;
  /** The rows were conversations (`messages`): without a chat template, turns were written "User: …". */
  conversation: boolean;
  /**
   * The system message every conversation in the data began with (or the system text every row of an
   * Alpaca file had); the chat starts with it too.
   */
  system?: string;
}

export function promptStyleFor(mapping: Mapping, useChatTemplate: boolean, rows: Row[] = []): PromptStyle {
  // Documents were trained on as plain text: what is typed is the start of a text to continue.
  if (mapping.kind === 'text') return { useChatTemplate: false, promptTemplate: '', conversation: false };
  if (mapping.kind === 'pairs') return pairsPromptStyle(mapping, useChatTemplate, rows);
  const system = sharedSystemMessage(rows, mapping);
  return {
    useChatTemplate,
    promptTemplate: mapping.kind === 'chat' ? '' : mapping.promptTemplate,
    conversation: mapping.kind === 'chat',
    ...(system !== undefined && { system }),
  };
}

/** A pairs dataset's style: its prompt column, or conversations like a chat dataset's. */
function pairsPromptStyle(mapping: PairMapping, useChatTemplate: boolean, rows: Row[]): PromptStyle {
  if (!rows.some((row) => pairHoldsMessages(row, mapping)))
    return { useChatTemplate, promptTemplate: `{${mapping.prompt}}`, conversation: false };
  const chosen = rows.flatMap((row) => {
    try {
      return [pairAnswer(row, mapping, 'chosen').row];
    } catch {
      return []; // a row that is no pair is left out of training too
    }
  });
  return promptStyleFor(PAIR_CHAT_MAPPING, useChatTemplate, chosen);
}

/** The system message when every row starts with the same one. */
function sharedSystemMessage(rows: Row[], mapping: Mapping): string | undefined {
  if (mapping.kind === 'text' || mapping.kind === 'pairs') return undefined;
  if (mapping.kind === 'template' && !mapping.systemTemplate) return undefined;
  const systemOf = (row: Row): string | undefined => {
    if (mapping.kind === 'template') return renderTemplate(mapping.systemTemplate!, row) || undefined;
    try {
      const first = conversationOf(row, mapping).messages[0];
      return first?.role === 'system' ? first.content : undefined;
    } catch {
      return undefined; // a row that is no conversation is left out of training too
    }
  };
  const first = rows.length ? systemOf(rows[0]) : undefined;
  return first !== undefined && rows.every((row) => systemOf(row) === first) ? first : undefined;
}

/**
 * One column: the message fills it. No prompt (text continuation) or several columns: the message is the
 * prompt as typed.
 */
function messageColumn(style: PromptStyle): string | null {
  const columns = templateColumns(style.promptTemplate);
  return columns.length === 1 ? columns[0] : null;
}

/** The message as the prompt template renders it ("Ticket: {ticket}" + "My card…" → "Ticket: My card…"). */
export function messageText(message: string, style: PromptStyle): string {
  const column = messageColumn(style);
  return column === null ? message : renderTemplate(style.promptTemplate, { [column]: message });
}

const isContinuation = (style: PromptStyle) => !style.conversation && style.promptTemplate.trim() === '';

/**
 * The prompt for a conversation (user and assistant turns, the last one the user's). With a chat template
 * every turn is kept; without one the model only ever saw single prompts, so only the last message counts.
 */
export function chatPrompt(turns: ChatMessage[], style: PromptStyle, format: PromptFormat): string {
  const last = turns.at(-1);
  if (!last || last.role !== 'user') throw new Error("A chat prompt ends with the user's message.");
  if (style.system !== undefined && turns[0].role !== 'system')
    turns = [{ role: 'system', content: style.system }, ...turns];
  if (format.chat)
    return format.chat.render(
      turns.map((t) => (t.role === 'user' ? { ...t, content: messageText(t.content, style) } : t)),
      true,
    );
  if (style.conversation) return renderConversationPrompt(turns, format);
  return plainPrompt(last.content, style, format);
}

function plainPrompt(message: string, style: PromptStyle, format: PromptFormat): string {
  // A text-only dataset was trained on continuations: what is typed is the start of the text.
  if (isContinuation(style)) return message;
  return renderPrompt(messageText(message, style), format, style.system);
}

/** A training example as a user's message and the answer it taught. */
export interface Shot {
  message: string;
  answer: string;
}

/** Between examples in a plain-text few-shot prompt; the few-shot pane also stops at it. */
export const SHOT_SEPARATOR = '\n\n';

/**
 * The base model prompted with `shots` before the conversation: in-context learning to compare against
 * fine-tuning.
 */
export function fewShotPrompt(
  shots: Shot[],
  turns: ChatMessage[],
  style: PromptStyle,
  format: PromptFormat,
): string {
  if (format.chat) {
    const examples = shots.flatMap((s): ChatMessage[] => [
      { role: 'user', content: s.message },
      { role: 'assistant', content: s.answer },
    ]);
    return chatPrompt([...examples, ...turns], style, format);
  }
  const examples = shots
    .map((s) => chatPrompt([{ role: 'user', content: s.message }], style, format) + s.answer + SHOT_SEPARATOR)
    .join('');
  return examples + chatPrompt(turns, style, format);
}

/**
 * A dataset row as the message a person would type for it and the answer the data expects: the cell of
 * the prompt template's one column (or the whole rendered prompt), and the rendered completion.
 */
export function rowAsShot(row: Row, mapping: Mapping): Shot {
  if (mapping.kind === 'chat') {
    const { context, answer } = splitConversation(row, mapping);
    return { message: context.filter((m) => m.role === 'user').at(-1)?.content ?? '', answer };
  }
  if (mapping.kind === 'text') return { message: '', answer: String(row[mapping.column] ?? '') };
  if (mapping.kind === 'pairs') {
    const chosen = pairAnswer(row, mapping, 'chosen');
    return rowAsShot(chosen.row, chosen.mapping);
  }
  const column = messageColumn(promptStyleFor(mapping, false));
  const message = column !== null ? String(row[column] ?? '') : renderTemplate(mapping.promptTemplate, row);
  return { message, answer: renderTemplate(mapping.completionTemplate, row) };
}

/**
 * Strings that end a generated answer by default: what the template writes after a completion. EOS stops
 * anyway.
 */
export function defaultStopStrings(format: PromptFormat): string[] {
  const end = format.chat?.endOfTurn.trim() ?? '';
  return end ? [end] : [];
}
