/**
 * Where a training step's time goes: tf.profile's kernels grouped by kernel name and by kernel name
 * with input shapes, so an optimisation can start from a measurement.
 */
import { tf } from '../engine/tf';

export interface KernelTime {
  /** Kernel name, with the input shapes of its costliest call site. */
  kernel: string;
  calls: number;
  ms: number;
  /** Share of the step's kernel time. */
  share: number;
  /** The costliest call sites (kernel + input shapes) of this kernel, at most three. */
  sites: { shapes: string; calls: number; ms: number }[];
}

export type Kernel = Awaited<ReturnType<typeof tf.profile>>['kernels'][number];

const shapesOf = (k: Kernel) =>
  k.inputShapes.map((s: number[] | null) => (s ? `[${s.join(',')}]` : '-')).join(' ');

/**
 * Time per kernel, costliest first. tf.profile also lists customGrad's "forward" scopes (whose time
 * includes the kernels inside them, listed too); only kernels the backend registers are counted.
 */
export function summarizeKernels(all: Kernel[]): KernelTime[] {
  const backend = tf.getBackend();
  const kernels = all.filter((k) => tf.getKernel(k.name, backend) !== undefined);
  const total = kernels.reduce((t, k) => t + Number(k.kernelTimeMs), 0) || 1;
  const byName = new Map<string, Kernel[]>();
  for (const k of kernels) byName.set(k.name, [...(byName.get(k.name) ?? []), k]);
  const rows = [...byName].map(([name, calls]) => {
    const sites = new Map<string, { calls: number; ms: number }>();
    for (const k of calls) {
      const site = sites.get(shapesOf(k)) ?? { calls: 0, ms: 0 };
      site.calls++;
      site.ms += Number(k.kernelTimeMs);
      sites.set(shapesOf(k), site);
    }
    const ms = calls.reduce((t, k) => t + Number(k.kernelTimeMs), 0);
    const top = [...sites]
      .sort((a, b) => b[1].ms - a[1].ms)
      .slice(0, 3)
      .map(([shapes, s]) => ({ shapes, calls: s.calls, ms: round(s.ms) }));
    return { kernel: name, calls: calls.length, ms: round(ms), share: round(ms / total, 3), sites: top };
  });
  return rows.sort((a, b) => b.ms - a.ms);
}

const round = (x: number, places = 1) => Math.round(x * 10 ** places) / 10 ** places;

/** The breakdown as a text table: one line per kernel, its costliest call sites indented below. */
export function formatProfile(rows: KernelTime[], limit = 15): string {
  const total = rows.reduce((t, r) => t + r.ms, 0);
  const lines = [`kernel time of one step: ${(total / 1000).toFixed(2)} s`, 'share      ms  calls  kernel'];
  for (const r of rows.slice(0, limit)) {
    lines.push(
      `${(r.share * 100).toFixed(1).padStart(5)}% ${r.ms.toFixed(0).padStart(7)} ${String(r.calls).padStart(6)}  ${r.kernel}`,
    );
    for (const s of r.sites)
      lines.push(
        `${''.padStart(14)}${s.ms.toFixed(0).padStart(7)} ${String(s.calls).padStart(6)}    ${s.shapes}`,
      );
  }
  const rest = rows.slice(limit);
  if (rest.length)
    lines.push(
      `${''.padStart(6)}${rest
        .reduce((t, r) => t + r.ms, 0)
        .toFixed(0)
        .padStart(8)}         ${rest.length} other kernels`,
    );
  return lines.join('\n');
}
