/**
 * Whole conversations as training examples: every assistant turn is a target, each exactly as the model
 * sees it at that point of the conversation; `weight: 0` leaves a turn as context.
 *
 * Through a chat template the conversation is rendered prefix by prefix: for each trained turn k, the
 * messages before it with the generation prompt (what the model reads when it starts to answer) and the
 * messages through it without (what it should have written by the end of its turn). When each rendering is a
 * prefix of the next, the text is the template's rendering of the whole conversation, and each turn's
 * target is what its rendering adds after the generation prompt. Some templates do not render prefixes:
 * Qwen3's drops the thinking block of turns before the last question, so an earlier turn reads differently
 * once the conversation goes on. Then only the last assistant turn is trained, after its generation prompt,
 * as a single-turn row would be, and the example says so.
 *
 * Without a chat template the turns are written "System: …\nUser: …\nAssistant: …\n"; every trained answer
 * is a target with the newline that ends it (the last one ends with EOS instead, added by the encoder).
 */
import {
  DatasetError,
  messagesColumn,
  type ChatMessage,
  type DataMessage,
  type Mapping,
  type Row,
} from './dataset';
import type { PromptFormat } from './prompt-format';

/** A piece of a rendered example: context the model reads, or text it learns to write. */
export interface Segment {
  text: string;
  trained: boolean;
}

type ChatMapping = Extract<Mapping, { kind: 'chat' }>;

export interface Conversation {
  /** The messages up to the last trained turn (what follows it teaches nothing). */
  messages: DataMessage[];
  /** Indices of the assistant messages that are targets, in order; empty when every weight is 0. */
  trained: number[];
}

/** The row's messages under a chat mapping; throws a DatasetError naming what the row lacks. */
export function conversationOf(row: Row, mapping: ChatMapping): Conversation {
  const column = mapping.messages ?? messagesColumn(Object.keys(row)) ?? 'messages';
  const messages = messagesIn(row, column);
  // TRL's conversational prompt/completion: only the completion's turns are trained.
  const firstTarget = mapping.completion === undefined ? 0 : messages.length;
  const all =
    mapping.completion === undefined ? messages : [...messages, ...messagesIn(row, mapping.completion)];
  const assistant = all.flatMap((m, i) => (m.role === 'assistant' && i >= firstTarget ? [i] : []));
  if (assistant.length === 0)
    throw new DatasetError(
      `This conversation has no assistant message${mapping.completion ? ` in '${mapping.completion}'` : ''}, so there is nothing to learn. ` +
        'Add the answer as a message with "role": "assistant" (in ShareGPT\'s layout, "from": "gpt").',
    );
  const trained = assistant.filter((i) => all[i].weight !== 0);
  const end = trained.length ? trained[trained.length - 1] + 1 : all.length;
  return { messages: all.slice(0, end), trained };
}

function messagesIn(row: Row, column: string): DataMessage[] {
  const messages = row[column];
  if (Array.isArray(messages)) return messages;
  throw new DatasetError(
    messages === undefined || messages === ''
      ? `This row has no '${column}' (a list of chat messages).`
      : `This row's '${column}' is text, not a list of chat messages like [{"role": "user", "content": "…"}, …].`,
  );
}

/** The last trained turn's answer and the messages before it (the quick prompts, few-shot, eval, TRL). */
export function lastTurn(conversation: Conversation): { context: DataMessage[]; answer: string } {
  const last = conversation.trained.at(-1) ?? conversation.messages.length - 1;
  return { context: conversation.messages.slice(0, last), answer: conversation.messages[last].content };
}

export interface RenderedConversation {
  segments: Segment[];
  /** Indices of the messages whose turns are targets, in the order of the trained segments. */
  trainedTurns: number[];
  /** The template does not render prefixes: only the last of several trained turns is a target. */
  lastTurnOnly: boolean;
}

/** The conversation as text with its trained turns marked (see the top of this file). */
export function renderConversation(conversation: Conversation, format: PromptFormat): RenderedConversation {
  const { messages, trained } = conversation;
  if (trained.length === 0) throw new Error('A conversation without a trained turn has nothing to render.');
  return format.chat
    ? renderThroughTemplate(messages, trained, format.chat)
    : { segments: renderPlain(messages, trained), trainedTurns: trained, lastTurnOnly: false };
}

function renderThroughTemplate(
  messages: DataMessage[],
  trained: number[],
  chat: NonNullable<PromptFormat['chat']>,
): RenderedConversation {
  // The weight is webtune's, not the template's: templates see role and content only.
  const plain = messages.map(({ role, content }): ChatMessage => ({ role, content }));
  const render = (end: number, generationPrompt: boolean) =>
    chat.render(plain.slice(0, end), generationPrompt);
  const last = trained[trained.length - 1];
  const whole = render(last + 1, false);
  const segments: Segment[] = [];
  let at = 0;
  for (const turn of trained.slice(0, -1)) {
    const before = render(turn, true);
    const through = render(turn + 1, false);
    if (before.length < at || !through.startsWith(before) || !whole.startsWith(through)) {
      const lastOnly = lastTurnSegments(render(last, true), messages[last].content, chat.endOfTurn);
      return { segments: lastOnly, trainedTurns: [last], lastTurnOnly: true };
    }
    segments.push({ text: whole.slice(at, before.length), trained: false });
    segments.push({ text: whole.slice(before.length, through.length), trained: true });
    at = through.length;
  }
  const before = render(last, true);
  if (before.length < at || !whole.startsWith(before)) {
    const lastOnly = lastTurnSegments(before, messages[last].content, chat.endOfTurn);
    return { segments: lastOnly, trainedTurns: [last], lastTurnOnly: trained.length > 1 };
  }
  // The last turn as a single-turn row has always been trained: its answer and the end of turn.
  segments.push({ text: whole.slice(at, before.length), trained: false });
  segments.push({ text: messages[last].content + chat.endOfTurn, trained: true });
  return { segments: dropEmpty(segments), trainedTurns: trained, lastTurnOnly: false };
}

function lastTurnSegments(prompt: string, answer: string, endOfTurn: string): Segment[] {
  return dropEmpty([
    { text: prompt, trained: false },
    { text: answer + endOfTurn, trained: true },
  ]);
}

/** Turns as "Role: content" lines; trained answers are targets with their newline, the last without it. */
function renderPlain(messages: DataMessage[], trained: number[]): Segment[] {
  const targets = new Set(trained);
  const last = messages.length - 1;
  const segments: Segment[] = [];
  let context = '';
  messages.forEach((m, i) => {
    if (!targets.has(i)) {
      context += `${roleLabel(m.role)}: ${m.content}\n`;
      return;
    }
    segments.push({ text: `${context}Assistant: `, trained: false });
    segments.push({ text: i === last ? m.content : `${m.content}\n`, trained: true });
    context = '';
  });
  return dropEmpty(segments);
}

export const roleLabel = (role: string) => role.charAt(0).toUpperCase() + role.slice(1);

const dropEmpty = (segments: Segment[]) => segments.filter((s) => s.text !== '');
