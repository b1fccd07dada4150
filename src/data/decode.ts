/** From the bytes of a dropped or opened file to text, refusing what is too big or is not text. */
import { DatasetError } from './dataset';

/** Largest dataset webtune reads: the whole file is held in memory, several times over while parsing. */
export const MAX_DATASET_BYTES = 200 * 1024 * 1024;

const megabytes = (bytes: number) => `${Math.ceil(bytes / (1024 * 1024))} MB`;

/** Throws when a file is too large to read; call it with the size before reading the file. */
export function checkDatasetSize(bytes: number): void {
  if (bytes > MAX_DATASET_BYTES) {
    throw new DatasetError(
      `The file is ${megabytes(bytes)}, and webtune reads datasets up to ${megabytes(MAX_DATASET_BYTES)}. ` +
        'Use a sample of the rows instead: a few thousand good examples are plenty for LoRA.',
    );
  }
}

/**
 * Text of a dataset file: UTF-8 (a BOM is dropped) or UTF-16 with a BOM. Anything else is refused with
 * the line of the first byte that is not UTF-8, rather than read with replacement characters that
 * would end up in the training data.
 */
export function decodeDatasetBytes(bytes: Uint8Array): string {
  checkDatasetSize(bytes.byteLength);
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return utf8(bytes.subarray(3));
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return new TextDecoder('utf-16le').decode(bytes.subarray(2));
  if (bytes[0] === 0xfe && bytes[1] === 0xff)
    return new TextDecoder('utf-16le').decode(swapBytePairs(bytes.subarray(2)));
  if (bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04) {
    throw new DatasetError(
      'This is a compressed file (a ZIP, or an Excel .xlsx workbook), not text. ' +
        'In your spreadsheet app choose Save As / Download → "CSV UTF-8", then open that file.',
    );
  }
  return utf8(bytes);
}

function utf8(bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const at = firstInvalidUtf8(bytes);
    let line = 1;
    for (let i = 0; i < at; i++) if (bytes[i] === 0x0a) line++;
    const byte = bytes[at].toString(16).toUpperCase().padStart(2, '0');
    throw new DatasetError(
      `Line ${line} has a byte (0x${byte}) that is not UTF-8 text, so the file was saved in another encoding ` +
        '(often Windows-1252 or Latin-1 from Excel). Save it again as "CSV UTF-8" (or UTF-8 text) and open it again.',
      line,
    );
  }
}

/** Offset of the first byte that breaks UTF-8 (a stray continuation, a short or overlong sequence). */
function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    const length =
      b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    if (length === 0) return i;
    for (let k = 1; k < length; k++) {
      if (i + k >= bytes.length || (bytes[i + k] & 0xc0) !== 0x80) return i;
    }
    // Overlong three/four-byte forms, UTF-16 surrogates and code points past U+10FFFF.
    const second = bytes[i + 1];
    if ((b === 0xe0 && second < 0xa0) || (b === 0xed && second > 0x9f)) return i;
    if ((b === 0xf0 && second < 0x90) || (b === 0xf4 && second > 0x8f)) return i;
    i += length;
  }
  return bytes.length - 1;
}

function swapBytePairs(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length - (bytes.length % 2));
  for (let i = 0; i + 1 < bytes.length; i += 2) {
    out[i] = bytes[i + 1];
    out[i + 1] = bytes[i];
  }
  return out;
}
