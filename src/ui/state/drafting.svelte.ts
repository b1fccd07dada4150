/**
 * "Draft questions" on the Data step: the open document's text sent to the worker, whose loaded instruct
 * model drafts question/answer pairs a chunk at a time; the pairs land in a table the person edits, and
 * "Save as dataset" stores the kept ones as a JSON Lines file exactly as if it had been dropped, and opens
 * it.
 */
import { decodeDatasetBytes } from '../../data/decode';
import { DRAFT_DEFAULTS, draftedFileName, pairsToJsonl, type DraftEvent } from '../../data/drafting';
import { dataset } from './dataset.svelte';
import { engine } from './engine.svelte';

export interface DraftRow {
  /** Stable across edits and deletions, for the table's keys. */
  id: number;
  question: string;
  answer: string;
  /** Saved with the dataset; unticked rows stay in the table but are left out. */
  keep: boolean;
  /** Where in the document the pair came from; null for a row the person added. */
  from: { chunk: number; line: number } | null;
}

/** Chunks in which no pair was found, with what the model wrote (so the person sees why). */
export interface UnreadChunk {
  chunk: number;
  line: number;
  output: string;
}

class DraftingState {
  instruction = $state<string>(DRAFT_DEFAULTS.instruction);
  chunkChars = $state<number>(DRAFT_DEFAULTS.chunkChars);
  maxNewTokens = $state<number>(DRAFT_DEFAULTS.maxNewTokens);
  /** The document the table was drafted from: another document starts an empty table. */
  documentName = $state<string | null>(null);
  rows = $state<DraftRow[]>([]);
  unread = $state<UnreadChunk[]>([]);
  running = $state(false);
  progress = $state<{ chunks: number; done: number; tokens: number; pairs: number } | null>(null);
  status = $state<string | null>(null);
  error = $state<string | null>(null);
  private nextId = 1;

  /** Rows belong to one document. */
  private useDocument(name: string): void {
    if (this.documentName === name) return;
    this.documentName = name;
    this.rows = [];
    this.unread = [];
    this.status = null;
    this.error = null;
  }

  /** The table for `name`: empty when it was drafted from another document. */
  rowsFor(name: string): DraftRow[] {
    return this.documentName === name ? this.rows : [];
  }

  /** Drafts pairs from the document's bytes with the loaded model; new pairs are added below the table's. */
  async start(file: { name: string; bytes: Uint8Array }): Promise<void> {
    this.useDocument(file.name);
    this.status = null;
    this.error = null;
    this.unread = [];
    const client = engine.client;
    if (!client || !engine.model) {
      this.error = 'Load an instruct model in step 1 first: it is the model that drafts the questions.';
      return;
    }
    let text: string;
    try {
      text = decodeDatasetBytes(file.bytes);
    } catch (error) {
      this.error = (error as Error).message;
      return;
    }
    this.running = true;
    this.progress = { chunks: 0, done: 0, tokens: 0, pairs: 0 };
    try {
      const result = await client.request(
        'draftQuestions',
        {
          text,
          instruction: this.instruction,
          chunkChars: this.chunkChars,
          maxNewTokens: this.maxNewTokens,
        },
        (event) => this.hear(event),
      );
      const pairs = `${result.pairs.length} pair${result.pairs.length === 1 ? '' : 's'}`;
      this.status = result.cancelled
        ? `Cancelled after ${result.chunksDone} of ${result.chunks} chunks: the ${pairs} drafted before are in the table.`
        : `Drafted ${pairs} from ${result.chunks} chunk${result.chunks === 1 ? '' : 's'}. Read each one before you save.`;
    } catch (error) {
      this.error = (error as Error).message;
    } finally {
      this.running = false;
      this.progress = null;
    }
  }

  private hear(event: DraftEvent): void {
    const progress = this.progress;
    if (!progress) return;
    if (event.kind === 'start') progress.chunks = event.chunks;
    else if (event.kind === 'writing') progress.tokens = event.tokens;
    else {
      progress.done++;
      progress.tokens = 0;
      progress.pairs += event.pairs.length;
      for (const pair of event.pairs)
        this.rows.push({
          id: this.nextId++,
          question: pair.question,
          answer: pair.answer,
          keep: true,
          from: { chunk: pair.chunk, line: pair.line },
        });
      if (event.pairs.length === 0)
        this.unread.push({ chunk: event.chunk, line: event.line, output: event.output });
    }
  }

  /** Asks the worker to stop after the token in hand; the request ends with what was drafted. */
  async cancel(): Promise<void> {
    await engine.client?.request('cancelDrafting', {});
  }

  /** An empty row at the end of the table, for a pair the person writes. */
  add(documentName: string): void {
    this.useDocument(documentName);
    this.rows.push({ id: this.nextId++, question: '', answer: '', keep: true, from: null });
  }

  remove(id: number): void {
    this.rows = this.rows.filter((row) => row.id !== id);
  }

  /**
   * Stores the kept rows as `<document>-questions.jsonl` exactly as a dropped file is stored (the Data step
   * then shows it like any other), and opens it.
   */
  async save(): Promise<void> {
    this.error = null;
    this.status = null;
    const name = draftedFileName(this.documentName ?? 'document');
    let jsonl: string;
    try {
      const kept = this.rows.flatMap((row, i) => (row.keep ? [{ ...row, row: i + 1 }] : []));
      jsonl = pairsToJsonl(kept);
      this.status = `Saved ${kept.length} pair${kept.length === 1 ? '' : 's'} as ${name} and opened it below.`;
    } catch (error) {
      this.error = (error as Error).message;
      return;
    }
    await dataset.open(new File([jsonl], name, { type: 'application/jsonl' }));
    if (dataset.error) {
      this.status = null;
      this.error = dataset.error;
    }
  }
}

export const drafting = new DraftingState();
