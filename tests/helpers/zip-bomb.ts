/** Hostile zips for tests, written byte by byte: DEFLATE bombs and central directories that say anything. */
import { strToU8 } from 'fflate';

/**
 * A raw DEFLATE stream (one dynamic-Huffman block) that inflates to 1 + 258 × reps zero bytes, at 2 bits per
 * 258 bytes.
 */
export function zeroBomb(reps: number): Uint8Array {
  const bits: number[] = [];
  const put = (value: number, count: number) => {
    for (let i = 0; i < count; i++) bits.push((value >> i) & 1);
  };
  const code = (value: number, length: number) => {
    for (let i = length - 1; i >= 0; i--) bits.push((value >> i) & 1);
  };
  put(1, 1);
  put(2, 2); // last block, dynamic Huffman
  put(29, 5);
  put(0, 5);
  put(14, 4); // 286 literal/length codes, 1 distance code, 18 code-length codes
  const codeLengths: Record<number, number> = { 18: 1, 1: 2, 2: 2 };
  for (const symbol of [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1])
    put(codeLengths[symbol] ?? 0, 3);
  // Code-length codes: 18 = "0", 1 = "10", 2 = "11". Literal 0 and end-of-block get 2 bits, length 258 gets
  // 1; distance 1 gets 1.
  const length2 = () => code(0b11, 2);
  const length1 = () => code(0b10, 2);
  const zeros = (n: number) => {
    code(0, 1);
    put(n - 11, 7);
  };
  length2();
  zeros(138);
  zeros(117);
  length2();
  zeros(28);
  length1();
  length1();
  // Literal/length codes: 285 = "0", 0 = "10", 256 = "11"; the distance code is "0".
  code(0b10, 2); // one literal zero, then reps × (length 258, distance 1), each "0" "0": all zero bits
  const total = bits.length + 2 * reps + 2;
  const out = new Uint8Array(Math.ceil(total / 8));
  bits.forEach((bit, i) => {
    out[i >> 3] |= bit << (i & 7);
  });
  for (const i of [total - 2, total - 1]) out[i >> 3] |= 1 << (i & 7); // end of block "11"
  return out;
}

export interface RawEntry {
  name: string;
  data: Uint8Array;
  method?: 0 | 8;
  declared: number;
}

/**
 * A zip written by hand, so its central directory can say anything; a declared size of 4 GiB or more goes in
 * a zip64 field.
 */
export function handZip(entries: RawEntry[]): Uint8Array {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const { name, data, method = 8, declared } of entries) {
    const nameBytes = strToU8(name);
    const local = new Uint8Array(30 + nameBytes.length);
    const l = new DataView(local.buffer);
    l.setUint32(0, 0x04034b50, true);
    l.setUint16(4, 20, true);
    l.setUint16(8, method, true);
    l.setUint32(18, data.length, true);
    l.setUint32(22, Math.min(declared, 0xffffffff), true);
    l.setUint16(26, nameBytes.length, true);
    local.set(nameBytes, 30);
    const wide = declared >= 0xffffffff;
    const head = new Uint8Array(46 + nameBytes.length + (wide ? 12 : 0));
    const c = new DataView(head.buffer);
    c.setUint32(0, 0x02014b50, true);
    c.setUint16(4, 45, true);
    c.setUint16(6, 45, true);
    c.setUint16(10, method, true);
    c.setUint32(20, data.length, true);
    c.setUint32(24, wide ? 0xffffffff : declared, true);
    c.setUint16(28, nameBytes.length, true);
    c.setUint16(30, wide ? 12 : 0, true);
    c.setUint32(42, offset, true);
    head.set(nameBytes, 46);
    if (wide) {
      const at = 46 + nameBytes.length;
      c.setUint16(at, 1, true);
      c.setUint16(at + 2, 8, true);
      c.setUint32(at + 4, declared % 2 ** 32, true);
      c.setUint32(at + 8, Math.floor(declared / 2 ** 32), true);
    }
    parts.push(local, data);
    central.push(head);
    offset += local.length + data.length;
  }
  const centralSize = central.reduce((sum, part) => sum + part.length, 0);
  const end = new Uint8Array(22);
  const e = new DataView(end.buffer);
  e.setUint32(0, 0x06054b50, true);
  e.setUint16(8, entries.length, true);
  e.setUint16(10, entries.length, true);
  e.setUint32(12, centralSize, true);
  e.setUint32(16, offset, true);
  const all = [...parts, ...central, end];
  const out = new Uint8Array(all.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of all) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
