/**
 * Which columns are the prompt and which the completion. Common layouts are recognised by their
 * column names (in any letter case); anything else is mapped explicitly by the user.
 */
import { DatasetError, messagesColumn, type Mapping } from './dataset';
import { templateColumns } from './template';

export type { Mapping };

/** The mapping for a recognised layout, or null when the columns do not say. */
export function detectLayout(columns: string[]): Mapping | null {
  const find = (name: string) => columns.find((c) => c.trim().toLowerCase() === name);
  const placeholder = (name: string) => `{${find(name)}}`;
  const template = (promptTemplate: string, completionTemplate: string): Mapping => ({
    kind: 'template',
    promptTemplate,
    completionTemplate,
  });

  if (messagesColumn(columns)) return { kind: 'chat' };
  if (find('prompt') && find('completion')) return template(placeholder('prompt'), placeholder('completion'));
  if (find('question') && find('answer')) return template(placeholder('question'), placeholder('answer'));
  if (find('instruction') && find('output')) {
    // An empty input cell drops its whole line (see template.ts), leaving just the instruction.
    const prompt = find('input')
      ? `${placeholder('instruction')}\n${placeholder('input')}`
      : placeholder('instruction');
    return template(prompt, placeholder('output'));
  }
  if (find('input') && find('output')) return template(placeholder('input'), placeholder('output'));
  if (find('text')) return template('', placeholder('text'));
  return null;
}

/**
 * A mapping from explicit column choices (e.g. --prompt-column/--completion-column); no prompt column trains
 * on the text alone.
 */
export function mappingFromColumns(promptColumn: string | null, completionColumn: string): Mapping {
  return {
    kind: 'template',
    promptTemplate: promptColumn ? `{${promptColumn}}` : '',
    completionTemplate: `{${completionColumn}}`,
  };
}

/** Throws a DatasetError naming what does not fit: an unknown column, a stray brace, an empty completion. */
export function validateMapping(mapping: Mapping, columns: string[]): void {
  const list = columns.join(', ');
  if (mapping.kind === 'chat') {
    if (!messagesColumn(columns)) {
      throw new DatasetError(
        `The chat layout needs a 'messages' column holding each conversation, but the file has: ${list}. Choose a prompt and a completion column instead.`,
      );
    }
    return;
  }
  if (mapping.completionTemplate.trim() === '') {
    throw new DatasetError(
      'The completion template is empty. It says what the model should learn to write, for example {answer}.',
    );
  }
  for (const template of [mapping.promptTemplate, mapping.completionTemplate]) {
    for (const name of templateColumns(template)) {
      if (columns.includes(name)) continue;
      const sameLetters = columns.find((c) => c.toLowerCase() === name.toLowerCase());
      const hint = sameLetters === undefined ? '' : ` Did you mean {${sameLetters}}?`;
      throw new DatasetError(
        `The template uses {${name}} but the file has no column '${name}'. Columns: ${list}.${hint}`,
      );
    }
  }
}
