/**
 * Where downloaded model files are kept on the device: finished files, and unfinished ones with the
 * ETag they were downloaded under, so a dropped download resumes (HTTP Range) instead of starting over.
 * The page keeps them in the origin private file system (opfs-store.ts), the CLI in ~/.cache/webtune.
 */
import { BytesSource, type WeightsSource } from '../engine/weights-source';

export interface PartialFile {
  /** Bytes already written. */
  size: number;
  /** The ETag of the file those bytes came from (a resumed download must match it). */
  etag: string | null;
}

export interface FileWriter {
  write(chunk: Uint8Array): Promise<void>;
  /** The file is complete: it becomes readable with `read`. */
  finish(): Promise<void>;
  /** Keeps what was written as a partial file to resume from later. */
  close(): Promise<void>;
}

export interface CachedFile {
  /** `<model key>/<file>` */
  key: string;
  size: number;
}

export interface FileStore {
  /** The complete file, or null when it is not (fully) cached. */
  read(key: string): Promise<Uint8Array | null>;
  /**
   * The complete file opened to be read a range at a time (a model's weights: never whole in memory), or
   * null when it is not (fully) cached. The caller closes it.
   */
  source(key: string): Promise<WeightsSource | null>;
  /** Size of a complete file, or null. */
  size(key: string): Promise<number | null>;
  partial(key: string): Promise<PartialFile | null>;
  /** Starts writing `key`: appended to its partial file when `append`, else from scratch. */
  open(key: string, options: { etag: string | null; append: boolean }): Promise<FileWriter>;
  /** Every complete file, for showing the cache's size per model. */
  list(): Promise<CachedFile[]>;
  /** Deletes every file (complete or partial) whose key starts with `prefix`. */
  remove(prefix: string): Promise<void>;
}

/**
 * A store in memory: for tests, and where no persistent storage exists (the page then downloads every time).
 */
export class MemoryStore implements FileStore {
  readonly files = new Map<string, Uint8Array>();
  readonly partials = new Map<string, { chunks: Uint8Array[]; etag: string | null }>();

  async read(key: string) {
    return this.files.get(key) ?? null;
  }
  async source(key: string) {
    const bytes = this.files.get(key);
    return bytes ? new BytesSource(bytes, key.split('/').pop()) : null;
  }
  async size(key: string) {
    return this.files.get(key)?.byteLength ?? null;
  }
  async partial(key: string) {
    const p = this.partials.get(key);
    return p ? { size: p.chunks.reduce((n, c) => n + c.byteLength, 0), etag: p.etag } : null;
  }
  async open(key: string, { etag, append }: { etag: string | null; append: boolean }): Promise<FileWriter> {
    const existing = append ? this.partials.get(key) : undefined;
    const entry = { chunks: existing ? existing.chunks : [], etag };
    this.partials.set(key, entry);
    return {
      write: async (chunk) => void entry.chunks.push(chunk.slice()),
      finish: async () => {
        this.partials.delete(key);
        this.files.set(key, concat(entry.chunks));
      },
      close: async () => {},
    };
  }
  async list() {
    return [...this.files].map(([key, bytes]) => ({ key, size: bytes.byteLength }));
  }
  async remove(prefix: string) {
    for (const map of [this.files, this.partials])
      for (const key of [...map.keys()]) if (key.startsWith(prefix)) map.delete(key);
  }
}

export function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}
