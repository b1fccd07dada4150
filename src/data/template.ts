/**
 * Turning a row into the text a model is trained on: a prompt (context only) and a completion (what
 * the model learns to write).
 *
 * Templates name columns in braces: "Ticket: {ticket}". `{{` and `}}` are literal braces. A line
 * that is nothing but one placeholder whose cell is empty is left out, newline and all, so
 * "{instruction}\n{input}" reads cleanly for rows without an input.
 *
 * Without a chat template, a prompt and its completion are joined by `separator` ("\n" by default) and
 * the encoder appends EOS. A system text (Alpaca's `system`) is a system message through a chat template,
 * and a line before the prompt without one. Conversations (chat rows) are conversation.ts's: every
 * assistant turn is trained.
 *
 * A rendered example is a list of segments, each context or trained; prompt/completion is the two-segment
 * case.
 */
import type { Tokenizer } from '../engine/tokenizer';
import { conversationOf, lastTurn, renderConversation, roleLabel, type Segment } from './conversation';
import { DatasetError, excerpt, type ChatMessage, type Mapping, type Row } from './dataset';
import { pairAnswer } from './pair-rows';
import type { ChatTemplateFormat, PromptFormat } from './prompt-format';

export type { ChatTemplateFormat, PromptFormat };

export type { Segment };

export interface RenderedExample {
  /** The whole text in order: context (not trained on) and what the model learns to write. */
  segments: Segment[];
  /** Everything before the last trained segment: the context of the last answer. */
  prompt: string;
  /** The last trained segment (and anything after it): the last answer the model learns to write. */
  completion: string;
  /** Indices of the conversation's messages whose turns are trained (chat rows only). */
  trainedTurns?: number[];
  /** The chat template does not render prefixes, so only the last of several assistant turns is trained. */
  lastTurnOnly?: boolean;
}

/** An example from its segments: prompt and completion are split at the last trained segment. */
export function exampleOf(segments: Segment[]): RenderedExample {
  const last = segments.map((s) => s.trained).lastIndexOf(true);
  const join = (part: Segment[]) => part.map((s) => s.text).join('');
  return { segments, prompt: join(segments.slice(0, last)), completion: join(segments.slice(last)) };
}

/** The one-prompt, one-completion example. */
export function promptCompletion(prompt: string, completion: string): RenderedExample {
  return {
    segments: [...(prompt ? [{ text: prompt, trained: false }] : []), { text: completion, trained: true }],
    prompt,
    completion,
  };
}

export function plainFormat(separator = '\n'): PromptFormat {
  return { separator, chat: null, addEos: true };
}

/** A format that wraps prompts in the model's chat template; its end of turn is read off the template. */
export function chatTemplateFormat(tokenizer: Pick<Tokenizer, 'applyChatTemplate'>): PromptFormat {
  const render = (messages: ChatMessage[], addGenerationPrompt: boolean) =>
    tokenizer.applyChatTemplate(messages, { addGenerationPrompt });
  // Render a conversation whose answer is a marker: whatever follows the marker is the end of a turn.
  const marker = 'WEBTUNE0ASSISTANT0CONTENT';
  const full = render(
    [
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: marker },
    ],
    false,
  );
  const at = full.lastIndexOf(marker);
  if (at < 0)
    throw new Error(
      "The model's chat template does not write the assistant's message; train with a prompt template instead.",
    );
  return { separator: '', chat: { render, endOfTurn: full.slice(at + marker.length) }, addEos: true };
}

/** The chat template when the user wants it and the model has one, else plain text. */
export function promptFormatFor(
  tokenizer: Pick<Tokenizer, 'applyChatTemplate' | 'chatTemplate'>,
  useChatTemplate: boolean,
): PromptFormat {
  return useChatTemplate && tokenizer.chatTemplate ? chatTemplateFormat(tokenizer) : plainFormat();
}

export function renderExample(row: Row, mapping: Mapping, format: PromptFormat): RenderedExample {
  // A preference pair as one example is its prompt with the chosen answer.
  if (mapping.kind === 'pairs') {
    const chosen = pairAnswer(row, mapping, 'chosen');
    return renderExample(chosen.row, chosen.mapping, format);
  }
  if (mapping.kind === 'chat') {
    const conversation = conversationOf(row, mapping);
    if (conversation.trained.length === 0)
      throw new DatasetError('every assistant turn has "weight": 0, so there is nothing to learn.');
    const { segments, trainedTurns, lastTurnOnly } = renderConversation(conversation, format);
    return { ...exampleOf(segments), trainedTurns, ...(lastTurnOnly && { lastTurnOnly }) };
  }
  // A document is its own text, without a template: windows of its tokens are cut later (documents.ts).
  if (mapping.kind === 'text') return promptCompletion('', cellText(row, mapping.column));
  const completion = renderTemplate(mapping.completionTemplate, row) + endOfTurn(format);
  const system = mapping.systemTemplate ? renderTemplate(mapping.systemTemplate, row) : '';
  return promptCompletion(
    renderPrompt(renderTemplate(mapping.promptTemplate, row), format, system),
    completion,
  );
}

/**
 * The prompt for one user text exactly as training saw it, for generating after training; `system` (when
 * not empty) is a system message, or the line before the text without a chat template.
 */
export function renderPrompt(text: string, format: PromptFormat, system = ''): string {
  if (format.chat) {
    const user: ChatMessage = { role: 'user', content: text };
    return format.chat.render(system ? [{ role: 'system', content: system }, user] : [user], true);
  }
  const prompt = system && text ? `${system}\n${text}` : system || text;
  return prompt === '' ? '' : prompt + format.separator;
}

/** The prompt for a conversation that the assistant answers next. */
export function renderConversationPrompt(messages: ChatMessage[], format: PromptFormat): string {
  if (format.chat) return format.chat.render(messages, true);
  return messages.map((m) => `${roleLabel(m.role)}: ${m.content}\n`).join('') + 'Assistant: ';
}

const endOfTurn = (format: PromptFormat) => format.chat?.endOfTurn ?? '';

/**
 * The last trained assistant message is the answer; everything before it is context (the quick prompts,
 * few-shot examples and eval items take a conversation's last answer).
 */
export function splitConversation(
  row: Row,
  mapping: Extract<Mapping, { kind: 'chat' }> = { kind: 'chat' },
): { context: ChatMessage[]; answer: string } {
  const { context, answer } = lastTurn(conversationOf(row, mapping));
  return { context: context.map(({ role, content }) => ({ role, content })), answer };
}

type Piece = { text: string } | { column: string };

/** A template split into lines of literal text and column placeholders; throws on a stray brace. */
export function parseTemplate(template: string): Piece[][] {
  return template
    .replace(/\r\n?/g, '\n')
    .split('\n')
    .map((line, lineNumber) => {
      const pieces: Piece[] = [];
      let text = '';
      for (let i = 0; i < line.length; i++) {
        const c = line[i];
        if ((c === '{' || c === '}') && line[i + 1] === c) {
          text += c;
          i++;
        } else if (c === '{') {
          const close = line.indexOf('}', i);
          const name = close < 0 ? '' : line.slice(i + 1, close).trim();
          if (name === '' || name.includes('{')) throw strayBrace(template, line, lineNumber, i);
          if (text) pieces.push({ text });
          pieces.push({ column: name });
          text = '';
          i = close;
        } else if (c === '}') {
          throw strayBrace(template, line, lineNumber, i);
        } else {
          text += c;
        }
      }
      if (text) pieces.push({ text });
      return pieces;
    });
}

function strayBrace(template: string, line: string, lineNumber: number, at: number): DatasetError {
  const where = template.includes('\n') ? `line ${lineNumber + 1}, ` : '';
  return new DatasetError(
    `The template "${excerpt(template, 60)}" has a '${line[at]}' at ${where}character ${at + 1} that is not part of a {column} placeholder. ` +
      'Write {column name} to insert a cell, or {{ and }} for literal braces.',
  );
}

/** Column names a template refers to, in order of first use. */
export function templateColumns(template: string): string[] {
  const names = parseTemplate(template)
    .flat()
    .flatMap((p) => ('column' in p ? [p.column] : []));
  return [...new Set(names)];
}

export function renderTemplate(template: string, row: Row): string {
  const lines: string[] = [];
  for (const pieces of parseTemplate(template)) {
    const values = pieces.map((p) => ('text' in p ? p.text : cellText(row, p.column)));
    const onlyPlaceholder =
      pieces.filter((p) => 'column' in p).length === 1 &&
      pieces.every((p) => 'column' in p || p.text.trim() === '');
    if (onlyPlaceholder && values.join('').trim() === '') continue;
    lines.push(values.join(''));
  }
  return lines.join('\n');
}

export function cellText(row: Row, column: string): string {
  const value = row[column];
  // Rows hold only the fields they have (validateMapping checked the file has the column): missing is empty.
  if (value === undefined) return '';
  if (Array.isArray(value)) {
    throw new DatasetError(
      `The column '${column}' holds chat messages, which a template cannot insert. Use the chat layout for this file.`,
    );
  }
  return value;
}

/** Command-line templates arrive with a literal backslash-n; make \n, \t and \\ the characters they name. */
export function unescapeTemplate(template: string): string {
  return template.replace(/\\([nt\\])/g, (_, c: string) => (c === 'n' ? '\n' : c === 't' ? '\t' : '\\'));
}
