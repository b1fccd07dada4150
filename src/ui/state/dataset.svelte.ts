/**
 * The dataset the user dropped, how its columns map to prompt and completion, and what the model will see.
 * The file goes to the worker once (it is parsed there, with or without a model); afterwards only settings
 * cross. It is stored on the device once, as soon as it parses; later only its mapping is updated.
 */
import { checkDatasetSize, decodeDatasetBytes } from '../../data/decode';
import { documentBundle, isDocumentFile } from '../../data/document-files';
import { RUN_DEFAULTS } from '../../data/defaults';
import type { Mapping } from '../../data';
import { mappingFromColumns, type ColumnGuess } from '../../data/layout';
import { saveDataset, updateDatasetMapping } from '../../store/datasets';
import type { DatasetRecord } from '../../store/datasets';
import type { EngineClient } from '../../worker/client';
import type { DatasetSettings, PreparedDataset, RunSetup } from '../../worker/protocol';
import { exampleUrl, type BuiltinExample } from '../examples';
import { engine } from './engine.svelte';

class DatasetState {
  /** The bytes stay here too: to store them once, and for a worker that started afresh. */
  file = $state<{ name: string; bytes: Uint8Array } | null>(null);
  /** Its id in IndexedDB once saved. */
  id = $state<string | null>(null);
  prepared = $state<PreparedDataset | null>(null);
  mapping = $state<Mapping | null>(null);
  /** The columns the worker guessed for this file (a two-column file whose names say nothing). */
  guess = $state<ColumnGuess | null>(null);
  /** A workbook's sheet to read (null: its first visible one), and its sheets as last read (the picker). */
  sheet = $state<string | null>(null);
  sheets = $state<string[] | null>(null);
  useChatTemplate = $state(true);
  maxLength = $state<number>(RUN_DEFAULTS.maxLength);
  valSplit = $state<number>(RUN_DEFAULTS.valSplit);
  /**
   * The run's seed: it splits and shuffles the examples and starts the adapter, so the split the page shows,
   * the one a run trains on and the one an export rebuilds are the same (as in the CLI's --seed).
   */
  seed = $state<number>(RUN_DEFAULTS.seed);
  error = $state<string | null>(null);
  busy = $state(false);
  /** Examples tokenised so far while the worker prepares them; null when it is not preparing. */
  progress = $state<{ done: number; total: number } | null>(null);
  /** The built-in example being fetched, while it is. */
  fetchingExample = $state<string | null>(null);

  /** The worker that holds the file; another one (or none) is sent the file again. */
  private openedOn: EngineClient | null = null;
  /** Answers to older requests are dropped: only the newest settings are shown. */
  private latest = 0;
  /** The stored record's id, and the mapping (with the sheet) stored with it. */
  private stored: { id: Promise<string>; mapping: string } | null = null;

  /**
   * Several files dropped or picked together: documents (.txt, .md) become one dataset, stored as one file
   * (data/document-files.ts); one file opens as itself.
   */
  async openFiles(files: File[]): Promise<void> {
    if (files.length === 1) return this.open(files[0]);
    const other = files.find((f) => !isDocumentFile(f.name));
    if (other) {
      this.error = `${files.length} files were dropped, but ${other.name} is not a document (.txt or .md). Drop one table of examples at a time, or several documents together.`;
      return;
    }
    try {
      checkDatasetSize(files.reduce((n, f) => n + f.size, 0));
      const texts = await Promise.all(
        files.map(async (f) => ({
          name: f.name,
          text: decodeDatasetBytes(new Uint8Array(await f.arrayBuffer())),
        })),
      );
      const bundle = documentBundle(texts);
      const bytes = new TextEncoder().encode(bundle.text);
      this.use({ name: bundle.fileName, bytes }, null, null);
    } catch (error) {
      this.error = (error as Error).message;
      return;
    }
    await this.refresh();
  }

  /** Tokens each window of a document repeats from the one before (documents only). */
  setOverlap(overlap: number): void {
    if (this.mapping?.kind !== 'text' || !Number.isInteger(overlap) || overlap < 1) return;
    this.mapping = { ...this.mapping, overlap };
    void this.refresh();
  }

  async open(file: File): Promise<void> {
    try {
      checkDatasetSize(file.size); // before reading: a huge file must not be loaded at all
    } catch (error) {
      this.error = (error as Error).message;
      return;
    }
    this.use({ name: file.name, bytes: new Uint8Array(await file.arrayBuffer()) }, null, null);
    await this.refresh();
  }

  /**
   * Opens one of the page's built-in examples exactly as if its file had been dropped: fetched from the site
   * itself, then stored, previewed and counted like any other file.
   */
  async openExample(example: BuiltinExample): Promise<void> {
    this.fetchingExample = example.file;
    this.error = null;
    let file: File;
    try {
      const response = await fetch(exampleUrl(example));
      if (!response.ok) throw new Error(`the site answered ${response.status}`);
      file = new File([await response.blob()], example.file, {
        type: example.file.endsWith('.csv') ? 'text/csv' : 'application/jsonl',
      });
    } catch (error) {
      this.error = `The example "${example.title}" could not be loaded (${(error as Error).message}). Reload the page and try again, or drop a file of your own.`;
      return;
    } finally {
      this.fetchingExample = null;
    }
    await this.open(file);
  }

  /** Opens a dataset stored earlier, with the mapping it was saved with. */
  async reopen(saved: DatasetRecord): Promise<void> {
    this.use({ name: saved.name, bytes: saved.bytes }, saved.id, (saved.mapping as Mapping | null) ?? null);
    this.sheet = saved.sheet ?? null;
    await this.refresh();
  }

  /** Reopens a stored dataset with the settings a saved run used. */
  async restore(saved: DatasetRecord, prepare: RunSetup['prepare']): Promise<void> {
    this.use({ name: saved.name, bytes: saved.bytes }, saved.id, prepare.mapping);
    this.sheet = prepare.sheet ?? saved.sheet ?? null;
    this.useChatTemplate = prepare.useChatTemplate;
    this.maxLength = prepare.maxLength;
    this.valSplit = prepare.valSplit;
    this.seed = prepare.seed;
    await this.refresh();
  }

  private use(file: { name: string; bytes: Uint8Array }, id: string | null, mapping: Mapping | null): void {
    this.file = file;
    this.id = id;
    this.mapping = mapping;
    this.guess = null;
    this.prepared = null;
    this.openedOn = null;
    this.sheet = null;
    this.sheets = null;
    this.stored = id === null ? null : { id: Promise.resolve(id), mapping: JSON.stringify([mapping, null]) };
  }

  /**
   * Reads another sheet of the open workbook: the worker reads the file again, and the columns are detected
   * afresh (another sheet has other columns).
   */
  async chooseSheet(sheet: string): Promise<void> {
    if (!this.file || sheet === this.sheet) return;
    this.sheet = sheet;
    this.mapping = null;
    this.guess = null;
    this.openedOn = null;
    await this.refresh();
  }

  /**
   * Shows what the current settings make of the file: sends the file the first time, then settings only.
   * Called after every change of settings and when a model has loaded (which adds the token counts).
   */
  async refresh(): Promise<void> {
    if (!this.file) return;
    const request = ++this.latest;
    this.error = null;
    this.busy = true;
    const settings: DatasetSettings = {
      mapping: this.mapping ? $state.snapshot(this.mapping) : null,
      useChatTemplate: this.useChatTemplate,
      maxLength: this.maxLength,
      valSplit: this.valSplit,
      seed: this.seed,
      ...(this.sheet !== null && { sheet: this.sheet }),
    };
    try {
      const client = engine.client ?? (await engine.start());
      const onProgress = (progress: { done: number; total: number }) => {
        if (request === this.latest) this.progress = progress;
      };
      let prepared: PreparedDataset;
      if (this.openedOn === client) {
        prepared = await client.request('configureDataset', settings, onProgress);
      } else {
        // Set before the answer, so settings changed meanwhile follow the file instead of sending it again.
        this.openedOn = client;
        prepared = await client
          .request('openDataset', { bytes: this.file.bytes, fileName: this.file.name, settings }, onProgress)
          .catch((error: unknown) => {
            this.openedOn = null;
            throw error;
          });
      }
      if (request !== this.latest) return;
      this.prepared = prepared;
      this.mapping = prepared.mapping;
      this.sheet = prepared.sheet ?? null;
      this.sheets = prepared.sheets ?? null;
      // Later answers are for the guess sent back as settings: they no longer call it one.
      if (prepared.guess) this.guess = prepared.guess;
      await this.persist(prepared);
    } catch (error) {
      if (request !== this.latest) return;
      this.prepared = null;
      this.error = (error as Error).message;
    } finally {
      if (request === this.latest) {
        this.busy = false;
        this.progress = null;
      }
    }
  }

  /** The guess, while the columns are still the guessed ones (the page says it guessed); else null. */
  get guessInUse(): ColumnGuess | null {
    const { guess, mapping } = this;
    if (!guess || mapping?.kind !== 'template') return null;
    const guessed = mappingFromColumns(guess.prompt, guess.completion);
    return mapping.promptTemplate === guessed.promptTemplate &&
      mapping.completionTemplate === guessed.completionTemplate
      ? guess
      : null;
  }

  /** Stops a long preparation; the request fails with the worker's words, which the panel shows. */
  async cancel(): Promise<void> {
    await engine.client?.request('cancelDataset', {});
  }

  /**
   * Keeps the file on the device (its bytes once) and the mapping chosen for it, so a reload can find them.
   */
  private async persist(prepared: PreparedDataset): Promise<void> {
    const file = this.file;
    if (!file) return;
    const mapping = JSON.stringify([prepared.mapping, prepared.sheet ?? null]);
    try {
      if (!this.stored) {
        const record = {
          name: file.name,
          fileName: file.name,
          bytes: file.bytes,
          mapping: prepared.mapping,
          sheet: prepared.sheet ?? null,
          rows: prepared.rows,
        };
        const stored = { id: saveDataset(record).then((summary) => summary.id), mapping };
        this.stored = stored;
        // Not saved: the next change tries again.
        stored.id.catch(() => this.stored === stored && (this.stored = null));
      } else if (this.stored.mapping !== mapping) {
        const stored = this.stored;
        await updateDatasetMapping(await stored.id, prepared.mapping, prepared.sheet ?? null);
        stored.mapping = mapping;
      }
      const id = await this.stored?.id;
      if (this.file === file && id !== undefined) this.id = id;
    } catch (error) {
      this.error = (error as Error).message;
    }
  }
}

export const dataset = new DatasetState();
