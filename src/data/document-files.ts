/**
 * Plain text and Markdown files as a dataset of documents: one row per file, `{ file, text }`, which the
 * layout detection reads as documents (a text column and the name of its file) and documents.ts cuts into
 * windows once a tokenizer is known. Several files dropped together are stored as one JSON Lines file of
 * those rows, so they stay one dataset a person can reopen.
 */
import { DatasetError, MAX_CELL_BYTES, type Dataset } from './dataset';

/** Extensions read as documents: their whole text is trained on, no columns. */
export const DOCUMENT_EXTENSIONS = ['txt', 'text', 'md', 'markdown'] as const;

export interface DocumentFile {
  name: string;
  text: string;
}

const extension = (name: string) => /\.([a-z0-9]+)$/i.exec(name)?.[1].toLowerCase() ?? '';

/** A .txt or .md file: its text is a document. */
export const isDocumentFile = (name: string) =>
  (DOCUMENT_EXTENSIONS as readonly string[]).includes(extension(name));

/** Markdown, whose headings may start windows (documents.ts). */
export const isMarkdownFile = (name: string) => ['md', 'markdown'].includes(extension(name));

/**
 * The files as one dataset of documents, in the order given. Line endings become "\n" (what models read as
 * a new line); a byte-order mark is dropped. An empty file, or one over MAX_CELL_BYTES, is refused by name.
 */
export function parseDocuments(files: DocumentFile[]): Dataset {
  if (files.length === 0) throw new DatasetError('No documents were given. Choose a .txt or .md file.');
  const rows = files.map(({ name, text }) => {
    const body = (text.charCodeAt(0) === 0xfeff ? text.slice(1) : text).replace(/\r\n?/g, '\n');
    if (body.trim() === '')
      throw new DatasetError(`${name} is empty. Write some text in it, or leave it out.`);
    const bytes = new TextEncoder().encode(body).byteLength;
    if (bytes > MAX_CELL_BYTES)
      throw new DatasetError(
        `${name} holds ${(bytes / (1024 * 1024)).toFixed(1)} MB of text; one document can be at most ${MAX_CELL_BYTES / (1024 * 1024)} MB. ` +
          'Split it into several files and open them together.',
      );
    return { file: name, text: body };
  });
  return { format: 'text', columns: ['file', 'text'], rows, rowLines: rows.map(() => 1), skipped: [] };
}

/**
 * Several documents as one file to store and reopen: JSON Lines of `{"file", "text"}`, named after them
 * ("notes.md + story.txt.jsonl", or "notes.md + 4 more.jsonl").
 */
export function documentBundle(files: DocumentFile[]): { fileName: string; text: string } {
  const rows = parseDocuments(files).rows;
  const names = files.map((f) => f.name).join(' + ');
  const base = names.length <= 80 ? names : `${files[0].name} + ${files.length - 1} more`;
  return { fileName: `${base}.jsonl`, text: rows.map((row) => JSON.stringify(row) + '\n').join('') };
}
