/**
 * Questions drafted from a document: the document cut into chunks (whole paragraphs, a markdown heading
 * starting a new one), each chunk put to an instruct model through its chat template with a short
 * instruction, and the model's answer read back into question/answer pairs, whatever shape it wrote them
 * in. The pairs become a JSON Lines dataset of {"prompt", "completion"} rows, which trains like any file.
 */
import { DatasetError } from './dataset';
import { renderPrompt, type PromptFormat } from './template';

export const DRAFT_DEFAULTS = {
  instruction:
    'Write 3 questions a reader could answer from this text, each followed by its answer. ' +
    'Use only facts from the text. Format:\nQ: …\nA: …',
  /** Characters of the document in one chunk (a paragraph longer than this is cut at a sentence). */
  chunkChars: 1500,
  /** Tokens the model may write for one chunk. */
  maxNewTokens: 256,
} as const;

/** Smallest chunk size accepted: shorter chunks hold too little to ask about. */
export const MIN_CHUNK_CHARS = 200;

/** A .txt or .md file is a document to draft questions from. */
export function isDocumentFile(fileName: string): boolean {
  return /\.(txt|text|md|markdown)$/i.test(fileName);
}

export interface DocumentChunk {
  /** 0-based, in document order. */
  index: number;
  text: string;
  /** 1-based line of the document where the chunk starts, as an editor shows it. */
  line: number;
}

interface Block {
  text: string;
  line: number;
  heading: boolean;
}

/**
 * The document cut into chunks of at most about `chunkChars` characters: paragraphs are kept whole and
 * packed together; a markdown heading starts a new chunk (unless the chunk so far is short, under a quarter
 * of the size), so sections stay whole where they fit; a paragraph longer than a chunk is cut after a
 * sentence, else at a space. A heading is never left alone at the end of a chunk: it goes with what follows.
 */
export function chunkDocument(text: string, chunkChars: number = DRAFT_DEFAULTS.chunkChars): DocumentChunk[] {
  if (!Number.isFinite(chunkChars) || chunkChars < MIN_CHUNK_CHARS)
    throw new DatasetError(
      `The chunk size is ${chunkChars} characters; it must be at least ${MIN_CHUNK_CHARS}, or a chunk holds too little to ask about.`,
    );
  const max = Math.floor(chunkChars);
  const chunks: DocumentChunk[] = [];
  let current: Block[] = [];
  const size = (blocks: Block[]) => blocks.reduce((n, b) => n + b.text.length + 2, -2);
  const flush = () => {
    if (current.length === 0 || current.every((b) => b.heading)) return;
    chunks.push({
      index: chunks.length,
      text: current.map((b) => b.text).join('\n\n'),
      line: current[0].line,
    });
    current = [];
  };
  for (const block of blocks(text).flatMap((b) => splitLong(b, max))) {
    const onlyHeadings = current.every((b) => b.heading);
    if (block.heading && !onlyHeadings && size(current) >= max / 4) flush();
    else if (!onlyHeadings && size([...current, block]) > max) flush();
    current.push(block);
  }
  flush();
  return chunks;
}

/** Paragraphs (separated by blank lines) with the line each starts on; a heading line is its own block. */
function blocks(text: string): Block[] {
  const lines = text.replace(/^\uFEFF/, '').split(/\r\n|\n|\r/);
  const found: Block[] = [];
  let open: { lines: string[]; line: number } | null = null;
  const close = () => {
    if (open) found.push({ text: open.lines.join('\n').trim(), line: open.line, heading: false });
    open = null;
  };
  lines.forEach((content, i) => {
    if (content.trim() === '') return close();
    if (/^\s{0,3}#{1,6}\s+\S/.test(content)) {
      close();
      found.push({ text: content.trim(), line: i + 1, heading: true });
      return;
    }
    open ??= { lines: [], line: i + 1 };
    open.lines.push(content);
  });
  close();
  return found;
}

/** A block cut into pieces of at most `max` characters: after a sentence, else at a space, else anywhere. */
function splitLong(block: Block, max: number): Block[] {
  const pieces: Block[] = [];
  let rest = block.text;
  let line = block.line;
  while (rest.length > max) {
    const window = rest.slice(0, max + 1);
    let cut = 0;
    for (const match of window.matchAll(/[.!?…]["'”’)\]]*\s+/g)) cut = match.index + match[0].length;
    if (cut < max / 2) cut = Math.max(window.lastIndexOf(' '), window.lastIndexOf('\n')) + 1;
    if (cut < max / 4) cut = max - (isHighSurrogate(rest.charCodeAt(max - 1)) ? 1 : 0);
    const piece = rest.slice(0, cut);
    pieces.push({ text: piece.trim(), line, heading: false });
    line += piece.split('\n').length - 1;
    rest = rest.slice(cut).trimStart();
  }
  if (rest !== '') pieces.push({ text: rest, line, heading: block.heading });
  return pieces;
}

const isHighSurrogate = (code: number) => code >= 0xd800 && code <= 0xdbff;

/** What the model is asked, for one chunk: the instruction, then the chunk's text. */
export function draftMessage(instruction: string, chunk: string): string {
  return `${instruction.trim()}\n\nText:\n${chunk}`;
}

/**
 * The prompt for one chunk, through the model's chat template as the user's message with the assistant's
 * turn opened; refused for a model without one (a base model continues text instead of following it).
 */
export function draftPrompt(instruction: string, chunk: string, format: PromptFormat): string {
  if (!format.chat)
    throw new DatasetError(
      'Drafting questions needs an instruct model, one with a chat template, and this model has none: it would continue the text instead of following the instruction. ' +
        'Load an instruct model (for example SmolLM2-135M-Instruct) in step 1.',
    );
  if (instruction.trim() === '')
    throw new DatasetError(
      'The instruction is empty. Say what the model should write, for example the default one.',
    );
  return renderPrompt(draftMessage(instruction, chunk), format);
}

export interface QuestionAnswer {
  question: string;
  answer: string;
}

/** A drafted pair and where in the document it came from. */
export interface DraftedPair extends QuestionAnswer {
  /** The chunk's index (0-based) and its first line in the document. */
  chunk: number;
  line: number;
}

/**
 * The question/answer pairs in what a model wrote: JSON (an array, an object holding one, or one object per
 * line, fenced or not); "Q:"/"A:" or "Question:"/"Answer:" labels (numbered, bulleted or bold, a pair on one
 * line or over several); or a numbered list of questions, each followed by its answer. A question without
 * an answer (the model stopped, or wandered off) is dropped, and so is a repeated pair.
 */
export function parseDraftedPairs(output: string): QuestionAnswer[] {
  const text = output.replace(/\r\n?/g, '\n');
  for (const reader of [jsonPairs, labelledPairs, listedPairs]) {
    const pairs = distinct(
      reader(text)
        .map(tidy)
        .filter((p) => p.question !== '' && p.answer !== ''),
    );
    if (pairs.length) return pairs;
  }
  return [];
}

function tidy({ question, answer }: QuestionAnswer): QuestionAnswer {
  const clean = (s: string) =>
    s
      .replace(/^(\*\*|__)\s*|\s*(\*\*|__)$/g, '')
      .replace(/[ \t]+\n/g, '\n')
      .trim();
  return { question: clean(question), answer: clean(answer) };
}

function distinct(pairs: QuestionAnswer[]): QuestionAnswer[] {
  const seen = new Set<string>();
  return pairs.filter((p) => {
    const key = `${p.question}\u0000${p.answer}`.toLowerCase().replace(/\s+/g, ' ');
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

const QUESTION_KEYS = ['question', 'q', 'prompt', 'instruction'];
const ANSWER_KEYS = ['answer', 'a', 'completion', 'response', 'output'];

function jsonPairs(text: string): QuestionAnswer[] {
  const candidates = [
    ...[...text.matchAll(/```(?:json[l]?)?\s*\n([\s\S]*?)```/gi)].map((m) => m[1]),
    between(text, '[', ']'),
    between(text, '{', '}'),
  ];
  for (const candidate of candidates) {
    if (candidate === null) continue;
    const whole = tryJson(candidate);
    const values = whole === undefined ? candidate.split('\n').map(tryJson) : [whole];
    const pairs = values.flatMap(pairsIn);
    if (pairs.length) return pairs;
  }
  return [];
}

function between(text: string, open: string, close: string): string | null {
  const start = text.indexOf(open);
  const end = text.lastIndexOf(close);
  return start >= 0 && end > start ? text.slice(start, end + 1) : null;
}

function tryJson(text: string): unknown {
  try {
    return JSON.parse(text.trim());
  } catch {
    return undefined;
  }
}

/** Pairs in a parsed JSON value: a pair object, an array of them, or an object holding such an array. */
function pairsIn(value: unknown): QuestionAnswer[] {
  if (Array.isArray(value)) return value.flatMap(pairsIn);
  if (value === null || typeof value !== 'object') return [];
  const fields = new Map(Object.entries(value).map(([k, v]) => [k.toLowerCase(), v]));
  const pick = (keys: string[]) => keys.map((k) => fields.get(k)).find((v) => typeof v === 'string');
  const question = pick(QUESTION_KEYS);
  const answer = pick(ANSWER_KEYS);
  if (typeof question === 'string' && typeof answer === 'string') return [{ question, answer }];
  return [...fields.values()].filter(Array.isArray).flatMap(pairsIn);
}

/** "Q:", "**Question 2:**", "1. Q:", "- A:"; group 1 the label, group 2 what follows it. */
const LABEL =
  /^\s*(?:[-*•>]\s+)?(?:\d{1,3}[.)]\s*)?(?:\*\*|__)?(question|answer|q|a)(?:\s*#?\d{1,3})?\s*(?:\*\*|__)?\s*[:：]\s*(?:\*\*|__)?\s*(.*)$/i;
/** An answer label inside a question's line ("Q: Why? A: Because."). */
const INLINE_ANSWER = /\s(?:\*\*|__)?(?:answer|a)\s*(?:\*\*|__)?\s*[:：]\s*(?:\*\*|__)?\s*/i;

/**
 * Pairs written with labels. A label's text runs on over the following lines up to a blank line (after
 * which a small model's closing remarks are not taken for part of the last answer) or the next label.
 */
function labelledPairs(text: string): QuestionAnswer[] {
  const pairs: QuestionAnswer[] = [];
  let current: { question: string; answer: string | null } | null = null;
  let open = false; // whether lines still add to the last label's text
  const finish = () => {
    if (current?.answer) pairs.push({ question: current.question, answer: current.answer });
    current = null;
  };
  for (const line of text.split('\n')) {
    const label = LABEL.exec(line);
    if (label && label[1].toLowerCase().startsWith('q')) {
      finish();
      const inline = INLINE_ANSWER.exec(label[2]);
      current = inline
        ? {
            question: label[2].slice(0, inline.index),
            answer: label[2].slice(inline.index + inline[0].length),
          }
        : { question: label[2], answer: null };
      open = true;
    } else if (label) {
      if (current && current.answer === null) current.answer = label[2];
      else finish(); // an answer with no question before it
      open = current !== null;
    } else if (line.trim() === '') {
      open = false;
    } else if (current && open) {
      if (current.answer === null) current.question += `\n${line.trim()}`;
      else current.answer += `\n${line.trim()}`;
    }
  }
  finish();
  return pairs;
}

/** "1. ", "2) ", "- ", "* ", "• " at a line's start. */
const LIST_MARK = /^\s*(?:\d{1,3}[.)]|[-*•])\s+/;

/**
 * Pairs with no labels: a line that ends with a question mark is a question (a list item's "What …? It is …"
 * holds both), and the lines after it, up to a blank line or the next question, its answer.
 */
function listedPairs(text: string): QuestionAnswer[] {
  const pairs: QuestionAnswer[] = [];
  let current: QuestionAnswer | null = null;
  const finish = () => {
    if (current) pairs.push(current);
    current = null;
  };
  for (const raw of text.split('\n')) {
    const listed = LIST_MARK.test(raw);
    const line = raw.replace(LIST_MARK, '').trim();
    if (line === '') {
      if (current?.answer) finish();
      continue;
    }
    const split = /^(.*\?)\s+([^?]*[^?\s][^?]*)$/.exec(line);
    if (line.endsWith('?')) {
      finish();
      current = { question: line, answer: '' };
    } else if (listed && split) {
      finish();
      current = { question: split[1], answer: split[2].replace(/^[-–—:]\s*/, '') };
    } else if (current) {
      current.answer += (current.answer ? '\n' : '') + line.replace(/^[-–—:]\s*/, '');
    }
  }
  finish();
  return pairs;
}

/** The file name of the dataset drafted from `documentName`: notes.md → notes-questions.jsonl. */
export function draftedFileName(documentName: string): string {
  const base = documentName.replace(/\.[^./\\]*$/, '') || 'document';
  return `${base}-questions.jsonl`;
}

/**
 * The pairs as a JSON Lines dataset, one {"prompt", "completion"} row each; refused, naming the row (`row`
 * when the page numbers them otherwise), when a pair has lost its question or its answer in editing.
 */
export function pairsToJsonl(pairs: (QuestionAnswer & { row?: number })[]): string {
  if (pairs.length === 0)
    throw new DatasetError('There are no pairs to save. Draft some, or add a row and write one yourself.');
  pairs.forEach((p, i) => {
    const missing = p.question.trim() === '' ? 'question' : p.answer.trim() === '' ? 'answer' : null;
    if (missing)
      throw new DatasetError(
        `Row ${p.row ?? i + 1} has no ${missing}. Write one, or delete the row (or untick Keep).`,
      );
  });
  return (
    pairs.map((p) => JSON.stringify({ prompt: p.question.trim(), completion: p.answer.trim() })).join('\n') +
    '\n'
  );
}

/** What the page asks the worker: draft pairs from this document's text, chunk by chunk. */
export interface DraftRequest {
  /** The document's text (the page decodes the stored file's bytes as UTF-8). */
  text: string;
  instruction: string;
  chunkChars: number;
  /** Tokens the model may write for one chunk (fewer when the context is shorter). */
  maxNewTokens: number;
  /** 0 (the default): greedy, always the most likely token. */
  temperature?: number;
  topP?: number;
  seed?: number;
}

/** Progress of a draft: tokens written for the chunk in hand, then each chunk's pairs as it is done. */
export type DraftEvent =
  | { kind: 'start'; chunks: number }
  | { kind: 'writing'; chunk: number; tokens: number }
  | { kind: 'chunk'; chunk: number; line: number; pairs: DraftedPair[]; output: string };

export interface DraftResult {
  pairs: DraftedPair[];
  chunks: number;
  chunksDone: number;
  /** Cancel was pressed: the pairs are those of the chunks finished before it. */
  cancelled: boolean;
}
