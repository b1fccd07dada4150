/**
 * Where a checkpoint file's bytes are read from: a buffer already in memory, or a file that is read a range
 * at a time as each tensor is converted (a file descriptor in Node, an OPFS sync access handle in the
 * worker), so a 3 GB checkpoint is never held whole while the model is built. Reads are synchronous because
 * building the model is. No dependencies: the page imports this through model-files.ts.
 */

export interface WeightsSource {
  /** The file's name, for messages (`model.safetensors`, a shard's name). */
  readonly name: string;
  readonly byteLength: number;
  /**
   * Exactly `length` bytes from `offset`; throws when the file has fewer (it was truncated while open). The
   * array may be a view of the source's own buffer: read it, never write to it.
   */
  read(offset: number, length: number): Uint8Array;
  /** Releases the file (a no-op for bytes in memory); the source cannot be read afterwards. */
  close(): void;
}

/** A checkpoint file as callers give it: its bytes, or a source to read them from. */
export type WeightsFile = Uint8Array | WeightsSource;

export class WeightsReadError extends Error {
  override name = 'WeightsReadError';
}

/** The message for a read the file could not satisfy (checked by every source the same way). */
function shortReadError(name: string, offset: number, length: number, got: number, size: number) {
  return new WeightsReadError(
    `${name} could not be read: ${length} bytes were asked for at byte ${offset} but only ${got} came back ` +
      `(the file had ${size} bytes when it was opened; it changed or was truncated since). Load the model again.`,
  );
}

/** Checks a range against the file's size before it is read. */
function checkRange(source: Pick<WeightsSource, 'name' | 'byteLength'>, offset: number, length: number) {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0)
    throw new WeightsReadError(`${source.name}: cannot read ${length} bytes at byte ${offset}.`);
  if (offset + length > source.byteLength)
    throw shortReadError(
      source.name,
      offset,
      length,
      Math.max(0, source.byteLength - offset),
      source.byteLength,
    );
}

/**
 * `length` bytes from `offset` of a file read by `readAt` (which fills the start of `into` from file offset
 * `at` and says how many bytes it read, 0 at the end): checked against the size, read until complete.
 */
export function readRange(
  source: Pick<WeightsSource, 'name' | 'byteLength'>,
  offset: number,
  length: number,
  readAt: (into: Uint8Array, at: number) => number,
): Uint8Array {
  checkRange(source, offset, length);
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const got = readAt(out.subarray(done), offset + done);
    if (got === 0) throw shortReadError(source.name, offset, length, done, source.byteLength);
    done += got;
  }
  return out;
}

/** The message for reading a source after it was closed. */
export const closedError = (name: string) =>
  new WeightsReadError(`${name} was closed before it was read. Load the model again.`);

/** Bytes already in memory (a small folder, a test, files a person dropped). */
export class BytesSource implements WeightsSource {
  constructor(
    private readonly bytes: Uint8Array,
    readonly name = 'model.safetensors',
  ) {}
  get byteLength(): number {
    return this.bytes.byteLength;
  }
  read(offset: number, length: number): Uint8Array {
    checkRange(this, offset, length);
    return this.bytes.subarray(offset, offset + length);
  }
  close(): void {}
}

export const isWeightsSource = (file: WeightsFile): file is WeightsSource => !(file instanceof Uint8Array);

/**
 * Every file of `weights` as a source, in order; bytes are named `model.safetensors` (one file) or
 * `shard i of n`.
 */
export function weightsSources(weights: WeightsFile | WeightsFile[]): WeightsSource[] {
  const list = Array.isArray(weights) ? weights : [weights];
  return list.map((file, i) =>
    isWeightsSource(file)
      ? file
      : new BytesSource(file, list.length === 1 ? 'model.safetensors' : `shard ${i + 1} of ${list.length}`),
  );
}

/** Bytes of every file of `weights`. */
export const weightsByteLength = (weights: WeightsFile | WeightsFile[]): number =>
  weightsSources(weights).reduce((sum, source) => sum + source.byteLength, 0);

/** Closes every source of `weights` (files in memory need nothing); safe to call twice. */
export function closeWeights(weights: WeightsFile | WeightsFile[]): void {
  for (const source of weightsSources(weights)) source.close();
}
