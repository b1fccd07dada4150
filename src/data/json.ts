/**
 * JSON Lines (one object per line) and JSON (an array of objects). Cell values become text; a list in a
 * field that holds conversations — `messages` (OpenAI), `conversations` (ShareGPT, whose {from, value}
 * turns are read as {role, content}: human → user, gpt → assistant), TRL's conversational `prompt`,
 * `completion`, `chosen` and `rejected`, OpenAI's preference answers and its `input` ({"messages": …}) —
 * becomes chat messages, checked here so later steps can trust them. Any other nested value is kept as its
 * JSON text. The file itself is never changed: this is only how it is read.
 */
import {
  DatasetError,
  MAX_COLUMNS,
  checkCellSize,
  excerpt,
  lineIndex,
  tooManyColumns,
  type DataMessage,
  type Dataset,
  type Row,
} from './dataset';

const JSONL_RULE =
  'Each line of a .jsonl file must be one JSON object, like {"prompt": "…", "completion": "…"}.';
const JSON_RULE =
  'A .json dataset must be an array of objects, like [{"prompt": "…", "completion": "…"}, …].';

export function parseJsonLines(text: string): Dataset {
  const objects: { value: Record<string, unknown>; line: number }[] = [];
  text.split(/\r\n|\n|\r/).forEach((source, i) => {
    const line = i + 1;
    if (source.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(source);
    } catch (e) {
      throw new DatasetError(`Line ${line} is not valid JSON (${jsonReason(e)}). ${JSONL_RULE}`, line);
    }
    if (!isObject(value))
      throw new DatasetError(`Line ${line} holds ${describe(value)}, not an object. ${JSONL_RULE}`, line);
    objects.push({ value, line });
  });
  return toDataset('jsonl', objects, (line) => `Line ${line}`);
}

export function parseJson(text: string): Dataset {
  const lineOf = lineIndex(text);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    const position = /at position (\d+)/.exec(String(e))?.[1];
    const line = position === undefined ? undefined : lineOf(Number(position));
    const where = line === undefined ? '' : ` on line ${line}`;
    throw new DatasetError(`The file is not valid JSON${where} (${jsonReason(e)}). ${JSON_RULE}`, line);
  }
  if (!Array.isArray(value)) {
    throw new DatasetError(`The file holds ${describe(value)}, not a list of examples. ${JSON_RULE}`);
  }
  if (value.length === 0) throw new DatasetError(`The JSON array is empty. ${JSON_RULE}`);
  const starts = elementOffsets(text);
  const objects = value.map((item, i) => {
    const line = lineOf(starts[i] ?? 0);
    if (!isObject(item)) {
      throw new DatasetError(
        `Item ${i + 1} of the array (line ${line}) is ${describe(item)}, not an object. ${JSON_RULE}`,
        line,
      );
    }
    return { value: item, line };
  });
  return toDataset('json', objects, (line) => `The item on line ${line}`);
}

function toDataset(
  format: 'json' | 'jsonl',
  objects: { value: Record<string, unknown>; line: number }[],
  where: (line: number) => string,
): Dataset {
  // Each row keeps only its own fields: a file whose rows each bring new field names stays linear in size.
  const columns: string[] = [];
  const known = new Set<string>();
  const rows = objects.map(({ value, line }) => {
    const row: Row = {};
    for (const key of Object.keys(value)) {
      if (key.trim() === '')
        throw new DatasetError(
          `${where(line)} has a field with an empty name. Give every field a name.`,
          line,
        );
      if (!known.has(key)) {
        if (known.size >= MAX_COLUMNS) throw tooManyColumns(where(line), key, line);
        known.add(key);
        columns.push(key);
      }
      row[key] = cell(key, value[key], () => where(line), line);
    }
    return row;
  });
  return { format, columns, rows, rowLines: objects.map((o) => o.line), skipped: [] };
}

/**
 * Fields whose list value is a conversation (matched in any letter case, like every layout name). TRL's
 * `prompt` and `completion` are one only when they list objects; another list there stays JSON text.
 */
function isConversation(column: string, value: unknown): value is unknown[] {
  if (!Array.isArray(value)) return false;
  const name = column.toLowerCase();
  if (name === 'messages' || name === 'conversations') return true;
  return LISTS_OF_MESSAGES.has(name) && value.length > 0 && value.every(isObject);
}

/**
 * Fields that hold lists of messages when they hold a list of objects: TRL's conversational `prompt`,
 * `completion`, `chosen` and `rejected`, and OpenAI's preference answers.
 */
const LISTS_OF_MESSAGES = new Set([
  'prompt',
  'completion',
  'chosen',
  'rejected',
  'preferred_output',
  'non_preferred_output',
]);

function cell(column: string, value: unknown, where: () => string, line: number): Row[string] {
  if (isConversation(column, value)) return chatMessages(column, value, where, line);
  // OpenAI's preference JSONL puts the conversation so far in `input`: {"messages": [...], …}.
  if (column.toLowerCase() === 'input' && isObject(value) && Array.isArray(value.messages))
    return chatMessages(column, value.messages, where, line);
  if (value === null || value === undefined) return '';
  const text =
    typeof value === 'string' ? value : typeof value === 'object' ? JSON.stringify(value) : String(value);
  checkCellSize(text, () => `${where()}, field '${column}'`, line);
  return text;
}

/** ShareGPT's speaker names, as the roles chat templates know. */
const SHAREGPT_ROLES: Record<string, string> = { human: 'user', gpt: 'assistant', system: 'system' };

/**
 * Chat messages: OpenAI's {role, content, weight?} or ShareGPT's {from, value}; content given as a list of
 * parts ({type: 'text', text}) is joined into one text.
 */
function chatMessages(column: string, items: unknown[], where: () => string, line: number): DataMessage[] {
  return items.map((item, i) => {
    const fail = (what: string): never => {
      throw new DatasetError(
        `${where()}: message ${i + 1} in "${column}" ${what}. Each message needs a "role" (system, user or assistant) and a "content" text` +
          ' (or, in ShareGPT\'s layout, a "from" (human, gpt or system) and a "value").',
        line,
      );
    };
    if (!isObject(item)) return fail(`is ${describe(item)}, not an object`);
    const shareGpt = item.role === undefined && typeof item.from === 'string';
    const speaker = shareGpt ? item.from : item.role;
    if (typeof speaker !== 'string' || speaker === '') return fail('has no "role"');
    const role = shareGpt ? (SHAREGPT_ROLES[speaker.toLowerCase()] ?? speaker) : speaker;
    if (shareGpt && !['user', 'assistant', 'system'].includes(role))
      return fail(`has "from": "${excerpt(speaker, 20)}", which is none of human, gpt or system`);
    const raw = shareGpt ? item.value : item.content;
    const content = Array.isArray(raw) ? textParts(raw) : raw;
    if (typeof content !== 'string') return fail(`has no text "${shareGpt ? 'value' : 'content'}"`);
    checkCellSize(content, () => `${where()}, message ${i + 1} in "${column}"`, line);
    if (item.weight === undefined) return { role, content };
    if (item.weight !== 0 && item.weight !== 1)
      return fail(
        `has "weight": ${excerpt(JSON.stringify(item.weight), 20)}; a weight is 0 (do not train this turn) or 1 (train it)`,
      );
    return { role, content, weight: item.weight };
  });
}

function textParts(parts: unknown[]): string | undefined {
  const texts = parts.map((p) => (isObject(p) && typeof p.text === 'string' ? p.text : undefined));
  return texts.every((t) => t !== undefined) ? texts.join('') : undefined;
}

/** Start offsets of the top-level array's elements, so each row can be given its line. */
function elementOffsets(text: string): number[] {
  const offsets: number[] = [];
  let depth = 0;
  let inString = false;
  let expectElement = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (depth === 1 && expectElement && !/\s|,|\]/.test(c)) {
      offsets.push(i);
      expectElement = false;
    }
    if (c === '"') inString = true;
    else if (c === '{' || c === '[') {
      if (depth === 0) expectElement = true;
      depth++;
    } else if (c === '}' || c === ']') depth--;
    else if (c === ',' && depth === 1) expectElement = true;
  }
  return offsets;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function describe(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  if (value === null) return 'null';
  if (typeof value === 'string') return `the text "${excerpt(value, 30)}"`;
  if (typeof value === 'object') return 'one object';
  return `the ${typeof value} ${String(value)}`;
}

/** The parser's own words, without the position detail we already turned into a line. */
function jsonReason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return excerpt(
    message.replace(/^JSON\.parse: /, '').replace(/\s*(in JSON )?at (position|line) .*$/, ''),
    100,
  );
}
