/**
 * A FolderSink that writes a zip as it goes (stored, not deflated: model weights barely compress and
 * deflating gigabytes in a tab would take minutes), so a multi-file export becomes one download without
 * the archive ever being held in memory. Every file sits in one top-level folder named after the export.
 */
import { Zip, ZipPassThrough } from 'fflate';
import type { ByteSink, FolderSink } from './sink';

/** A zip entry's size field is 32 bits (fflate writes no Zip64). */
export const MAX_ZIP_ENTRY_BYTES = 2 ** 32 - 1;

export function zipFolder(sink: ByteSink, folderName: string): FolderSink & { end(): Promise<void> } {
  const pending: Uint8Array[] = [];
  let failure: Error | null = null;
  const zip = new Zip((error, chunk) => {
    if (error) failure = error;
    else pending.push(chunk);
  });
  const flush = async () => {
    while (pending.length) await sink.write(pending.shift()!);
    if (failure) throw failure;
  };
  return {
    file(name) {
      const entry = new ZipPassThrough(`${folderName}/${name}`);
      zip.add(entry);
      let size = 0;
      return {
        async write(chunk) {
          size += chunk.byteLength;
          if (size > MAX_ZIP_ENTRY_BYTES)
            throw new Error(
              `${name} passes 4 GB, more than a zip entry holds; export it from the command line (webtune export), which writes a folder.`,
            );
          entry.push(chunk);
          await flush();
        },
        async close() {
          entry.push(new Uint8Array(0), true);
          await flush();
        },
      };
    },
    async end() {
      zip.end();
      await flush();
    },
  };
}
