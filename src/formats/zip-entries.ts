/**
 * Reading a zip without trusting it: the central directory (a few hundred bytes for an adapter) is
 * parsed first, so names, sizes and counts can be checked before anything is inflated, and an entry is
 * then inflated in small steps that stop as soon as the output passes what the entry declared. A zip
 * bomb (a few KB that inflate to gigabytes, or a directory that claims 4 GiB) costs a few KB of memory.
 */
import { Inflate } from 'fflate';

export class ZipError extends Error {
  override name = 'ZipError';
}

export interface ZipEntry {
  name: string;
  /** 0 = stored, 8 = deflate; anything else is not read. */
  compression: number;
  /** Bytes in the zip (compressed). */
  size: number;
  /** What the central directory says the entry unpacks to; not trusted when inflating. */
  originalSize: number;
  encrypted: boolean;
  /** Offset of the entry's local header. */
  localOffset: number;
}

const u16 = (b: Uint8Array, at: number) => b[at] | (b[at + 1] << 8);
const u32 = (b: Uint8Array, at: number) =>
  (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
/** A 64-bit field as a number: exact up to 2^53, and a huge value stays huge. */
const u64 = (b: Uint8Array, at: number) => u32(b, at) + u32(b, at + 4) * 2 ** 32;

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

/** Every entry of the zip's central directory; throws ZipError when the bytes are not a readable zip. */
export function zipEntries(bytes: Uint8Array): ZipEntry[] {
  const fail = (problem: string) => new ZipError(problem);
  let end = bytes.length - 22;
  // The end record sits at the very end, after a comment of at most 65535 bytes.
  for (; end >= 0 && u32(bytes, end) !== EOCD; end--) {
    if (bytes.length - end > 22 + 65535) {
      end = -1;
      break;
    }
  }
  if (end < 0) throw fail('no end of central directory record');
  let count = u16(bytes, end + 10);
  let offset = u32(bytes, end + 16);
  if (end >= 20 && u32(bytes, end - 20) === ZIP64_LOCATOR) {
    const at = u64(bytes, end - 12);
    if (at + 56 > bytes.length || u32(bytes, at) !== ZIP64_EOCD) throw fail('a broken zip64 end record');
    count = u64(bytes, at + 32);
    offset = u64(bytes, at + 48);
  }
  const entries: ZipEntry[] = [];
  const decoder = new TextDecoder();
  for (let i = 0; i < count; i++) {
    if (offset + 46 > bytes.length || u32(bytes, offset) !== CENTRAL)
      throw fail(`entry ${i + 1} of ${count} is missing from the central directory`);
    const flags = u16(bytes, offset + 8);
    const nameLength = u16(bytes, offset + 28);
    const extraLength = u16(bytes, offset + 30);
    const commentLength = u16(bytes, offset + 32);
    const next = offset + 46 + nameLength + extraLength + commentLength;
    if (next > bytes.length) throw fail('the central directory runs past the end of the file');
    const entry: ZipEntry = {
      name: decoder.decode(bytes.subarray(offset + 46, offset + 46 + nameLength)),
      compression: u16(bytes, offset + 10),
      size: u32(bytes, offset + 20),
      originalSize: u32(bytes, offset + 24),
      encrypted: (flags & 1) !== 0,
      localOffset: u32(bytes, offset + 42),
    };
    // Zip64: a field of all ones is given again, 64 bits wide, in extra field 0x0001 (in this order).
    const wide = ['originalSize', 'size', 'localOffset'] as const;
    if (wide.some((key) => entry[key] === 0xffffffff)) {
      let at = offset + 46 + nameLength;
      const extraEnd = at + extraLength;
      while (at + 4 <= extraEnd && u16(bytes, at) !== 1) at += 4 + u16(bytes, at + 2);
      if (at + 4 > extraEnd)
        throw fail(`'${entry.name}' has 32-bit sizes set to "see zip64" but no zip64 field`);
      let field = at + 4;
      for (const key of wide) {
        if (entry[key] !== 0xffffffff) continue;
        if (field + 8 > extraEnd) throw fail(`'${entry.name}' has a short zip64 field`);
        entry[key] = u64(bytes, field);
        field += 8;
      }
    }
    entries.push(entry);
    offset = next;
  }
  return entries;
}

/** The entry's compressed bytes, found through its local header. */
function entryData(bytes: Uint8Array, entry: ZipEntry): Uint8Array {
  const at = entry.localOffset;
  if (at + 30 > bytes.length || u32(bytes, at) !== LOCAL)
    throw new ZipError(`'${entry.name}' has no local header where the central directory says`);
  const start = at + 30 + u16(bytes, at + 26) + u16(bytes, at + 28);
  if (start + entry.size > bytes.length)
    throw new ZipError(`'${entry.name}' is cut short: the zip ends before its data does`);
  return bytes.subarray(start, start + entry.size);
}

/**
 * Compressed bytes fed to the inflater at a time: deflate expands at most ~1032×, so one step yields ≤ ~16
 * MiB.
 */
const STEP = 16 * 1024;

/**
 * The entry's contents, after the caller has checked `entry.originalSize`. Output is never allowed past
 * that declared size: the data is inflated a step at a time and refused the moment it passes it, so a
 * directory that lies costs no more memory than it declared.
 */
export function inflateEntry(bytes: Uint8Array, entry: ZipEntry): Uint8Array {
  if (entry.encrypted) throw new ZipError(`'${entry.name}' is encrypted`);
  const data = entryData(bytes, entry);
  const declared = entry.originalSize;
  const tooBig = () =>
    new ZipError(`'${entry.name}' unpacks to more than the ${declared} bytes the zip declares`);
  if (entry.compression === 0) {
    if (data.length > declared) throw tooBig();
    if (data.length < declared)
      throw new ZipError(
        `'${entry.name}' is stored as ${data.length} bytes, not the ${declared} the zip declares`,
      );
    return data.slice();
  }
  if (entry.compression !== 8)
    throw new ZipError(
      `'${entry.name}' uses compression method ${entry.compression}; only deflate and stored entries are read`,
    );
  const out = new Uint8Array(declared);
  let filled = 0;
  let done = false;
  const inflater = new Inflate((chunk, final) => {
    if (filled + chunk.length > declared) throw tooBig();
    out.set(chunk, filled);
    filled += chunk.length;
    if (final) done = true;
  });
  try {
    for (let at = 0; at < data.length; at += STEP)
      inflater.push(data.subarray(at, at + STEP), at + STEP >= data.length);
    if (data.length === 0) inflater.push(new Uint8Array(0), true);
  } catch (error) {
    if (error instanceof ZipError) throw error;
    throw new ZipError(`'${entry.name}' is not valid deflate data (${(error as Error).message})`);
  }
  if (!done || filled !== declared)
    throw new ZipError(`'${entry.name}' unpacks to ${filled} bytes, not the ${declared} the zip declares`);
  return out;
}
