/**
 * The common dataset layouts, recognised by their column names (in any letter case) and, where names are
 * shared, by what the cells hold: each has a name the page and the CLI show and the person can choose
 * instead (`--layout NAME`, or the page's layout select).
 *
 *   alpaca                    instruction, input (optional), output, system (optional)
 *   sharegpt                  conversations: [{from: human|gpt|system, value}, …]
 *   openai-chat               messages: [{role, content, weight?}, …]
 *   prompt-completion         prompt, completion (texts; TRL's standard prompt/completion)
 *   conversational            prompt, completion (lists of messages; TRL's conversational prompt/completion)
 *   question-answer           question, answer
 *   input-output              input, output
 *   text                      text: alone (or with `file`) documents trained in windows (documents.ts);
 *                             beside other columns the completion of an empty prompt
 *   preference                prompt, chosen, rejected (TRL's preference layout; texts or lists of messages)
 *   openai-preference         input ({messages}), preferred_output, non_preferred_output (OpenAI's DPO JSONL)
 *
 * The last two are pairs of answers (pairs.ts), for the preference objectives (DPO, ORPO).
 */
import { RUN_DEFAULTS } from './defaults';
import { DatasetError, messagesColumn, type Dataset, type Mapping, type Row } from './dataset';

export const LAYOUT_NAMES = [
  'alpaca',
  'sharegpt',
  'openai-chat',
  'prompt-completion',
  'conversational',
  'question-answer',
  'input-output',
  'text',
  'preference',
  'openai-preference',
] as const;

export type LayoutName = (typeof LAYOUT_NAMES)[number];

/** What each layout is called in a sentence ("ShareGPT conversations, 120 rows"), and what it needs. */
export const LAYOUTS: Record<LayoutName, { title: string; needs: string }> = {
  alpaca: {
    title: 'Alpaca instructions',
    needs: "columns 'instruction' and 'output' (and optionally 'input' and 'system')",
  },
  sharegpt: {
    title: 'ShareGPT conversations',
    needs: 'a \'conversations\' list of {"from": human, gpt or system, "value": …}',
  },
  'openai-chat': {
    title: 'OpenAI chat messages',
    needs: 'a \'messages\' list of {"role", "content"} (assistant messages may have "weight": 0 or 1)',
  },
  'prompt-completion': { title: 'prompt/completion pairs', needs: "text columns 'prompt' and 'completion'" },
  conversational: {
    title: 'conversational prompt/completion',
    needs: '\'prompt\' and \'completion\' each a list of {"role", "content"} messages',
  },
  'question-answer': { title: 'question/answer pairs', needs: "columns 'question' and 'answer'" },
  'input-output': { title: 'input/output pairs', needs: "columns 'input' and 'output'" },
  text: { title: 'text', needs: "a column 'text' (alone: documents)" },
  preference: {
    title: 'preference pairs',
    needs: "columns 'prompt', 'chosen' and 'rejected' (texts, or lists of chat messages)",
  },
  'openai-preference': {
    title: 'OpenAI preference pairs',
    needs: "'input' (with its \"messages\"), 'preferred_output' and 'non_preferred_output'",
  },
};

/** The layouts whose rows are pairs of answers, trained with a preference objective (DPO, ORPO). */
export const PAIR_LAYOUTS: readonly LayoutName[] = ['preference', 'openai-preference'];

export interface DetectedLayout {
  name: LayoutName;
  mapping: Mapping;
}

type Columns = Pick<Dataset, 'columns'> & { rows?: readonly Row[] };

const finder = (columns: string[]) => (name: string) => columns.find((c) => c.trim().toLowerCase() === name);

/** Whether the first row that has `column` holds a list of messages there (TRL's conversational layout). */
function holdsMessages(rows: readonly Row[] | undefined, column: string): boolean {
  const first = rows?.find((row) => row[column] !== undefined && row[column] !== '');
  return Array.isArray(first?.[column]);
}

/**
 * The mapping of layout `name` for these columns (and rows, which tell TRL's two prompt/completion layouts
 * apart); throws a DatasetError saying what the file lacks for it.
 */
export function layoutMapping(name: LayoutName, { columns, rows }: Columns): Mapping {
  const find = finder(columns);
  const missing = (): never => {
    throw new DatasetError(
      `The ${LAYOUTS[name].title} layout needs ${LAYOUTS[name].needs}, but the file has: ${columns.join(', ')}. ` +
        'Choose another layout, or choose the columns yourself.',
    );
  };
  const has = (...names: string[]) => names.map((n) => find(n) ?? missing());
  const braces = (column: string) => `{${column}}`;
  switch (name) {
    case 'alpaca': {
      const [instruction, output] = has('instruction', 'output');
      const [input, system] = [find('input'), find('system')];
      // An empty input cell drops its whole line (see template.ts), leaving just the instruction.
      const prompt = input ? `${braces(instruction)}\n${braces(input)}` : braces(instruction);
      const mapping: Mapping = {
        kind: 'template',
        promptTemplate: prompt,
        completionTemplate: braces(output),
      };
      return system ? { ...mapping, systemTemplate: braces(system) } : mapping;
    }
    case 'sharegpt': {
      const [column] = has('conversations');
      return { kind: 'chat', messages: column };
    }
    case 'openai-chat':
      return messagesColumn(columns) ? { kind: 'chat' } : missing();
    case 'prompt-completion':
    case 'conversational': {
      const [prompt, completion] = has('prompt', 'completion');
      const lists = holdsMessages(rows, prompt) && holdsMessages(rows, completion);
      if (lists !== (name === 'conversational')) {
        const other = lists ? 'conversational' : 'prompt-completion';
        throw new DatasetError(
          `The ${LAYOUTS[name].title} layout needs ${LAYOUTS[name].needs}, but this file's 'prompt' and 'completion' ` +
            `hold ${lists ? 'lists of messages' : 'text'}. Choose the ${LAYOUTS[other].title} layout (${other}).`,
        );
      }
      return lists
        ? { kind: 'chat', messages: prompt, completion }
        : { kind: 'template', promptTemplate: braces(prompt), completionTemplate: braces(completion) };
    }
    case 'question-answer': {
      const [question, answer] = has('question', 'answer');
      return { kind: 'template', promptTemplate: braces(question), completionTemplate: braces(answer) };
    }
    case 'input-output': {
      const [input, output] = has('input', 'output');
      return { kind: 'template', promptTemplate: braces(input), completionTemplate: braces(output) };
    }
    case 'preference': {
      const [prompt, chosen, rejected] = has('prompt', 'chosen', 'rejected');
      return { kind: 'pairs', prompt, chosen, rejected };
    }
    case 'openai-preference': {
      const [prompt, chosen, rejected] = has('input', 'preferred_output', 'non_preferred_output');
      return { kind: 'pairs', prompt, chosen, rejected };
    }
    case 'text': {
      const [text] = has('text');
      // Only a text column (and the name of the file each row came from): documents, trained on in windows.
      const documents = columns.every((c) => c === text || c.trim().toLowerCase() === 'file');
      return documents
        ? { kind: 'text', column: text, overlap: RUN_DEFAULTS.overlap }
        : { kind: 'template', promptTemplate: '', completionTemplate: braces(text) };
    }
  }
}

/** Which layout the columns are, in this order of preference; null when their names say none. */
export function detectNamedLayout(dataset: Columns): DetectedLayout | null {
  const find = finder(dataset.columns);
  const candidates: [LayoutName, boolean][] = [
    ['openai-preference', !!find('preferred_output') && !!find('non_preferred_output')],
    ['preference', !!find('chosen') && !!find('rejected')],
    ['openai-chat', messagesColumn(dataset.columns) !== undefined],
    ['sharegpt', !!find('conversations')],
    [
      'conversational',
      !!find('prompt') && !!find('completion') && holdsMessages(dataset.rows, find('prompt')!),
    ],
    ['prompt-completion', !!find('prompt') && !!find('completion')],
    ['question-answer', !!find('question') && !!find('answer')],
    ['alpaca', !!find('instruction') && !!find('output')],
    ['input-output', !!find('input') && !!find('output')],
    ['text', !!find('text')],
  ];
  for (const [name, fits] of candidates) {
    if (!fits) continue;
    try {
      return { name, mapping: layoutMapping(name, dataset) };
    } catch (error) {
      if (!(error instanceof DatasetError)) throw error;
    }
  }
  return null;
}

/** The layout a mapping is (for the page's select), or null for columns chosen by hand. */
export function layoutOf(mapping: Mapping, dataset: Columns): LayoutName | null {
  for (const name of LAYOUT_NAMES) {
    try {
      if (sameMapping(layoutMapping(name, dataset), mapping)) return name;
    } catch (error) {
      if (!(error instanceof DatasetError)) throw error;
    }
  }
  return null;
}

function sameMapping(a: Mapping, b: Mapping): boolean {
  const fields = (m: Mapping) => m as Record<string, string | number | undefined>;
  // A document dataset is the text layout whatever its overlap setting.
  const keys = new Set([...Object.keys(a), ...Object.keys(b)].filter((key) => key !== 'overlap'));
  return [...keys].every((key) => fields(a)[key] === fields(b)[key]);
}

/** The layout in words for the page and the CLI: "ShareGPT conversations, 120 rows". */
export function describeLayout(name: LayoutName, rows: number): string {
  return `${LAYOUTS[name].title}, ${rows.toLocaleString('en-US')} ${rows === 1 ? 'row' : 'rows'}`;
}

/** A layout name as typed (--layout): checked, with the names listed when it is none of them. */
export function parseLayoutName(text: string): LayoutName {
  const name = text.trim().toLowerCase();
  if ((LAYOUT_NAMES as readonly string[]).includes(name)) return name as LayoutName;
  throw new DatasetError(`There is no layout "${text}". Layouts: ${LAYOUT_NAMES.join(', ')}.`);
}
