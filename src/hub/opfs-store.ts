/**
 * The page's model cache in the origin private file system (OPFS), used from the engine worker: each
 * file `<key>` beside `<key>.meta.json` ({ etag, complete }). Writes go straight to disk through a
 * sync access handle, so a download interrupted by a reload still resumes from what reached the disk.
 */
import { closedError, readRange, type WeightsSource } from '../engine/weights-source';
import type { CachedFile, FileStore, FileWriter, PartialFile } from './store';

interface Meta {
  etag: string | null;
  complete: boolean;
}

const META = '.meta.json';

type Dir = FileSystemDirectoryHandle;
type SyncHandle = {
  read(into: Uint8Array, options: { at: number }): number;
  write(data: Uint8Array, options: { at: number }): number;
  getSize(): number;
  truncate(size: number): void;
  flush(): void;
  close(): void;
};

export class OpfsStore implements FileStore {
  constructor(private readonly rootName = 'webtune-models') {}

  static available(): boolean {
    return typeof navigator !== 'undefined' && typeof navigator.storage?.getDirectory === 'function';
  }

  private async root(): Promise<Dir> {
    return (await navigator.storage.getDirectory()).getDirectoryHandle(this.rootName, { create: true });
  }

  /** The folder holding `key`'s last segment, created on the way when `create`. */
  private async folder(key: string, create: boolean): Promise<{ dir: Dir; name: string } | null> {
    const parts = key.split('/');
    const name = parts.pop()!;
    let dir = await this.root();
    try {
      for (const part of parts) dir = await dir.getDirectoryHandle(part, { create });
    } catch {
      return null;
    }
    return { dir, name };
  }

  private async meta(key: string): Promise<Meta | null> {
    const at = await this.folder(key, false);
    if (!at) return null;
    try {
      const file = await (await at.dir.getFileHandle(at.name + META)).getFile();
      return JSON.parse(await file.text()) as Meta;
    } catch {
      return null;
    }
  }

  private async writeMeta(dir: Dir, name: string, meta: Meta): Promise<void> {
    const writable = await (await dir.getFileHandle(name + META, { create: true })).createWritable();
    await writable.write(JSON.stringify(meta));
    await writable.close();
  }

  private async file(key: string): Promise<File | null> {
    const at = await this.folder(key, false);
    if (!at) return null;
    try {
      return await (await at.dir.getFileHandle(at.name)).getFile();
    } catch {
      return null;
    }
  }

  async read(key: string): Promise<Uint8Array | null> {
    if (!(await this.meta(key))?.complete) return null;
    const file = await this.file(key);
    return file ? new Uint8Array(await file.arrayBuffer()) : null;
  }

  /**
   * Opened through a sync access handle (dedicated workers only), read-only where the browser has that mode,
   * so several tabs can read one model; where it has not, the handle is exclusive and a second tab is told.
   */
  async source(key: string): Promise<WeightsSource | null> {
    if (!(await this.meta(key))?.complete) return null;
    const at = await this.folder(key, false);
    if (!at) return null;
    let handle: FileSystemFileHandle;
    try {
      handle = await at.dir.getFileHandle(at.name);
    } catch {
      return null;
    }
    let sync: SyncHandle;
    try {
      sync = await (
        handle as unknown as { createSyncAccessHandle(options: { mode: string }): Promise<SyncHandle> }
      ).createSyncAccessHandle({ mode: 'read-only' });
    } catch (error) {
      if ((error as Error).name === 'NoModificationAllowedError') throw openElsewhere(key);
      throw error;
    }
    return new OpfsSource(sync, at.name);
  }

  async size(key: string): Promise<number | null> {
    if (!(await this.meta(key))?.complete) return null;
    return (await this.file(key))?.size ?? null;
  }

  async partial(key: string): Promise<PartialFile | null> {
    const meta = await this.meta(key);
    if (!meta || meta.complete) return null;
    return { size: (await this.file(key))?.size ?? 0, etag: meta.etag };
  }

  async open(key: string, { etag, append }: { etag: string | null; append: boolean }): Promise<FileWriter> {
    const at = (await this.folder(key, true))!;
    await this.writeMeta(at.dir, at.name, { etag, complete: false });
    const handle = await at.dir.getFileHandle(at.name, { create: true });
    const sync = await (
      handle as unknown as { createSyncAccessHandle(): Promise<SyncHandle> }
    ).createSyncAccessHandle();
    if (!append) sync.truncate(0);
    let offset = sync.getSize();
    let open = true;
    const release = () => {
      if (!open) return;
      open = false;
      sync.flush();
      sync.close();
    };
    return {
      write: async (chunk) => {
        offset += sync.write(chunk, { at: offset });
      },
      finish: async () => {
        release();
        await this.writeMeta(at.dir, at.name, { etag, complete: true });
      },
      close: async () => release(),
    };
  }

  async list(): Promise<CachedFile[]> {
    const found: CachedFile[] = [];
    const walk = async (dir: Dir, prefix: string) => {
      for await (const [name, handle] of (
        dir as unknown as { entries(): AsyncIterable<[string, FileSystemHandle]> }
      ).entries()) {
        if (handle.kind === 'directory') await walk(handle as Dir, `${prefix}${name}/`);
        else if (!name.endsWith(META)) {
          const size = await this.size(prefix + name);
          if (size !== null) found.push({ key: prefix + name, size });
        }
      }
    };
    await walk(await this.root(), '');
    return found;
  }

  async remove(prefix: string): Promise<void> {
    const at = await this.folder(prefix.replace(/\/+$/, ''), false);
    if (!at) return;
    for (const name of [at.name, at.name + META])
      await at.dir.removeEntry(name, { recursive: true }).catch((error: Error) => {
        if (error.name === 'NoModificationAllowedError') throw removeRefused(prefix);
      });
  }
}

/** The model of a cache key: `<endpoint>/<owner>/<name>/...`. */
const modelOf = (key: string) => key.split('/').slice(1, 3).join('/');

/**
 * A file open elsewhere: OPFS lets a file be read or written by one tab at a time (read by several only
 * where the browser has read-only handles).
 */
export class FileInUse extends Error {
  override name = 'FileInUse';
}

const openElsewhere = (key: string) =>
  new FileInUse(
    `${key.split('/').pop()} of ${modelOf(key)} is open in another tab of webtune, which is loading, ` +
      'exporting or downloading that model. Wait until it is done there, or close that tab, then try again.',
  );

const removeRefused = (key: string) =>
  new FileInUse(
    `${modelOf(key)} cannot be deleted now: another tab of webtune is loading, exporting or downloading it. ` +
      'Wait until it is done there, or close that tab, then delete it again.',
  );

/** A stored file read a range at a time through its sync access handle; close() releases the handle. */
class OpfsSource implements WeightsSource {
  readonly byteLength: number;
  private open = true;

  constructor(
    private readonly sync: SyncHandle,
    readonly name: string,
  ) {
    this.byteLength = sync.getSize();
  }

  read(offset: number, length: number): Uint8Array {
    if (!this.open) throw closedError(this.name);
    return readRange(this, offset, length, (into, at) => this.sync.read(into, { at }));
  }

  close(): void {
    if (!this.open) return;
    this.open = false;
    this.sync.close();
  }
}
