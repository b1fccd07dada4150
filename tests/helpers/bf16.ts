/** Test data in bfloat16, the format most Hub checkpoints ship in. */
import { strToU8 } from 'fflate';

/** A safetensors file with every tensor rounded to bfloat16 (round to nearest even), written by hand. */
export function bf16Safetensors(
  tensors: readonly (readonly [string, { shape: number[]; data: Float32Array }])[],
): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const [name, t] of tensors) {
    header[name] = { dtype: 'BF16', shape: t.shape, data_offsets: [offset, offset + t.data.length * 2] };
    offset += t.data.length * 2;
  }
  const json = strToU8(JSON.stringify(header).padEnd(Math.ceil(JSON.stringify(header).length / 8) * 8, ' '));
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  const bits = new Uint32Array(1);
  const asFloat = new Float32Array(bits.buffer);
  const view = new DataView(out.buffer, 8 + json.length);
  let at = 0;
  for (const [, t] of tensors) {
    for (const value of t.data) {
      asFloat[0] = value;
      const upper = (bits[0] + 0x7fff + ((bits[0] >>> 16) & 1)) >>> 16;
      view.setUint16(at, upper, true);
      at += 2;
    }
  }
  return out;
}
