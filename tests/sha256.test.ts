// The piecewise SHA-256 that checks a download read back from storage equals Node's (OpenSSL's) digest on
// lengths around the 64-byte block and its 56-byte padding edge, fed in pieces of every awkward size.
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Sha256 } from '../src/hub/sha256';

describe('Sha256', () => {
  it("equals OpenSSL's digest of the same bytes, however they are cut into pieces", () => {
    for (const length of [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000, 100_003]) {
      const bytes = randomBytes(length);
      const expected = createHash('sha256').update(bytes).digest('hex');
      for (const piece of [1, 7, 64, 65, 4096]) {
        const hash = new Sha256();
        for (let at = 0; at < length; at += piece) hash.update(bytes.subarray(at, at + piece));
        expect(hash.hex(), `${length} bytes in pieces of ${piece}`).toBe(expected);
      }
    }
  });

  it('gives the published digest of "abc" (FIPS 180-4, appendix B.1)', () => {
    expect(new Sha256().update(new TextEncoder().encode('abc')).hex()).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });
});
