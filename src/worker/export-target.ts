/**
 * Where the worker writes an export: a file in the origin private file system, written through a sync
 * access handle as the bytes are made, then handed to the page as a File that lives on disk — so the page
 * downloads gigabytes without either side holding them in memory. Without OPFS (old browsers, Node
 * tests) the bytes collect in a Blob instead.
 */
import type { ByteSink } from '../formats/sink';

export interface ExportFile extends ByteSink {
  /** Ends the file and returns it for the download. */
  finish(): Promise<Blob>;
  /** Drops a file that failed half way. */
  discard(): Promise<void>;
}

export type ExportTarget = (fileName: string) => Promise<ExportFile>;

const FOLDER = 'webtune-exports';

type SyncHandle = { write(data: Uint8Array, options: { at: number }): number; flush(): void; close(): void };

export function opfsAvailable(): boolean {
  return (
    typeof navigator !== 'undefined' &&
    typeof navigator.storage?.getDirectory === 'function' &&
    typeof FileSystemFileHandle !== 'undefined' &&
    'createSyncAccessHandle' in FileSystemFileHandle.prototype
  );
}

const folder = async () =>
  (await navigator.storage.getDirectory()).getDirectoryHandle(FOLDER, { create: true });

/**
 * Removes earlier exports: their downloads were started long ago (a File read for a download must stay
 * until the browser has copied it, so each export stays until the next one, or the next page load).
 */
export async function clearExports(): Promise<void> {
  if (!opfsAvailable()) return;
  const dir = await folder();
  for await (const name of (dir as unknown as { keys(): AsyncIterable<string> }).keys()) {
    // Another tab's export in progress holds a lock on its file: leave it.
    await dir.removeEntry(name).catch(() => undefined);
  }
}

const storageFull = (error: unknown) => error instanceof DOMException && error.name === 'QuotaExceededError';

export const opfsTarget: ExportTarget = async (fileName) => {
  const dir = await folder();
  const name = `${crypto.randomUUID()}-${fileName}`;
  const handle = await dir.getFileHandle(name, { create: true });
  const access = await (
    handle as unknown as { createSyncAccessHandle(): Promise<SyncHandle> }
  ).createSyncAccessHandle();
  let at = 0;
  let open = true;
  const close = () => {
    if (open) access.close();
    open = false;
  };
  return {
    write(chunk) {
      try {
        const written = access.write(chunk, { at });
        if (written !== chunk.byteLength) throw new DOMException('short write', 'QuotaExceededError');
        at += written;
      } catch (error) {
        if (storageFull(error))
          throw new Error(
            `The device's storage is full after ${(at / 1e6).toFixed(0)} MB of the export. Free some disk space (or delete cached models in step 1) and export again.`,
            { cause: error },
          );
        throw error;
      }
    },
    async finish() {
      access.flush();
      close();
      return handle.getFile();
    },
    async discard() {
      close();
      await dir.removeEntry(name).catch(() => undefined);
    },
  };
};

export const memoryTarget: ExportTarget = async () => {
  const parts: Blob[] = [];
  return {
    write(chunk) {
      // Blobs may live outside the JS heap (browsers page large ones to disk).
      parts.push(new Blob([chunk.slice()]));
    },
    async finish() {
      return new Blob(parts);
    },
    async discard() {
      parts.length = 0;
    },
  };
};
