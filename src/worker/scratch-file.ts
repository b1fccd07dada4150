/**
 * A file in the origin private file system that a large download is written to as it arrives and then read a
 * tensor at a time (the `?model=URL` path: a folder on a server, not a Hub model the cache keeps). One sync
 * access handle writes and then reads it, so no other tab can remove it in between; closing the source
 * deletes it. Files a closed or crashed tab left behind are removed when the next one is made.
 */
import { closedError, readRange, type WeightsSource } from '../engine/weights-source';

const ROOT = 'webtune-scratch';

type SyncHandle = {
  read(into: Uint8Array, options: { at: number }): number;
  write(data: Uint8Array, options: { at: number }): number;
  flush(): void;
  close(): void;
};

export interface ScratchFile {
  write(chunk: Uint8Array): void;
  /** What was written, to be read back; closing it deletes the file. */
  finish(name: string): WeightsSource;
  /** Deletes the file (a download that failed). */
  discard(): Promise<void>;
}

export const scratchAvailable = () =>
  typeof navigator !== 'undefined' && typeof navigator.storage?.getDirectory === 'function';

export async function createScratchFile(): Promise<ScratchFile> {
  const root = await (await navigator.storage.getDirectory()).getDirectoryHandle(ROOT, { create: true });
  // Leftovers: a file still open in another tab cannot be removed, and stays.
  for await (const name of (root as unknown as { keys(): AsyncIterable<string> }).keys())
    await root.removeEntry(name).catch(() => {});
  const fileName = `${crypto.randomUUID()}.safetensors`;
  const handle = await root.getFileHandle(fileName, { create: true });
  const sync = await (
    handle as unknown as { createSyncAccessHandle(): Promise<SyncHandle> }
  ).createSyncAccessHandle();
  let size = 0;
  let open = true;
  const remove = async () => {
    if (open) sync.close();
    open = false;
    await root.removeEntry(fileName).catch(() => {});
  };
  return {
    write(chunk) {
      let done = 0;
      while (done < chunk.byteLength) done += sync.write(chunk.subarray(done), { at: size + done });
      size += chunk.byteLength;
    },
    finish(name) {
      sync.flush();
      const source: WeightsSource = {
        name,
        byteLength: size,
        read(offset, length) {
          if (!open) throw closedError(name);
          return readRange(source, offset, length, (into, at) => sync.read(into, { at }));
        },
        close: () => void remove(),
      };
      return source;
    },
    discard: remove,
  };
}
