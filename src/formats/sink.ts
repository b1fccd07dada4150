/**
 * Where an export's bytes go, one file after another: a folder on disk (the CLI), a zip streamed into the
 * page's private storage (the worker). Writers hand over chunks as they make them, so an export never
 * holds a whole model file in memory.
 */
export interface ByteSink {
  write(chunk: Uint8Array): void | Promise<void>;
}

export interface FileSink extends ByteSink {
  /** Ends the file; nothing may be written after. */
  close(): void | Promise<void>;
}

export interface FolderSink {
  /** Starts the next file (a plain name, or `dir/name`). Files are written one at a time, in order. */
  file(name: string): FileSink | Promise<FileSink>;
}

/** Writes a whole text file. */
export async function writeText(folder: FolderSink, name: string, text: string): Promise<void> {
  const file = await folder.file(name);
  await file.write(new TextEncoder().encode(text));
  await file.close();
}

/** Collects everything written in memory: for tests and small files. */
export function memoryFolder(): FolderSink & { files: Map<string, Uint8Array> } {
  const files = new Map<string, Uint8Array>();
  return {
    files,
    file(name) {
      const chunks: Uint8Array[] = [];
      return {
        write(chunk) {
          chunks.push(chunk.slice());
        },
        close() {
          const size = chunks.reduce((sum, c) => sum + c.byteLength, 0);
          const out = new Uint8Array(size);
          let at = 0;
          for (const c of chunks) {
            out.set(c, at);
            at += c.byteLength;
          }
          files.set(name, out);
        },
      };
    },
  };
}
