// The source's layers point one way — engine ← data ← formats/hub/store ← worker/cli/node ← ui (and the
// bench, a tool beside the page) — and no module imports itself round a cycle. Read from the files as written
// (type imports included: a cycle of types is still a knot), so a new upward import fails here.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(__dirname, '..', 'src');
const LAYER: Record<string, number> = {
  engine: 0,
  data: 1,
  formats: 2,
  hub: 2,
  store: 2,
  worker: 3,
  cli: 3,
  node: 3,
  ui: 4,
  bench: 4,
};

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name);
    return entry.isDirectory() ? sources(file) : /\.(ts|svelte)$/.test(entry.name) ? [file] : [];
  });
}

/** The project files a source imports (relative specifiers only), resolved as the bundler does. */
function imports(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const found = [
    ...text.matchAll(
      /(?:import|export)\s[^'"`;]*?from\s+['"](\.{1,2}\/[^'"]+)['"]|import\s+['"](\.{1,2}\/[^'"]+)['"]/g,
    ),
  ].map((m) => m[1] ?? m[2]);
  return found.map((spec) => {
    const base = path.resolve(path.dirname(file), spec);
    const match = [base, `${base}.ts`, `${base}.svelte`, path.join(base, 'index.ts')].find(
      (f) => fs.existsSync(f) && fs.statSync(f).isFile(),
    );
    if (!match) throw new Error(`${path.relative(SRC, file)} imports ${spec}, which is not a file`);
    return match;
  });
}

const layerOf = (file: string) => path.relative(SRC, file).split(path.sep)[0];
const graph = new Map(sources(SRC).map((file) => [file, imports(file)]));

describe('the source layers', () => {
  it('reads a real graph (the walker finds the imports it should)', () => {
    expect(graph.size).toBeGreaterThan(150);
    expect(graph.get(path.join(SRC, 'engine', 'lora.ts'))).toContain(
      path.join(SRC, 'engine', 'adapter-weights.ts'),
    );
  });

  it('has no import from a lower layer to a higher one', () => {
    const upward: string[] = [];
    for (const [file, targets] of graph) {
      const from = LAYER[layerOf(file)];
      for (const target of targets) {
        const to = LAYER[layerOf(target)];
        if (from !== undefined && to !== undefined && to > from)
          upward.push(`${path.relative(SRC, file)} → ${path.relative(SRC, target)}`);
      }
    }
    expect(upward).toEqual([]);
  });

  it('has no import cycle', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const stack: string[] = [];
    const visit = (file: string) => {
      state.set(file, 'open');
      stack.push(file);
      for (const next of graph.get(file) ?? []) {
        if (state.get(next) === 'open')
          cycles.push(
            [...stack.slice(stack.indexOf(next)), next].map((f) => path.relative(SRC, f)).join(' → '),
          );
        else if (!state.has(next)) visit(next);
      }
      stack.pop();
      state.set(file, 'done');
    };
    for (const file of graph.keys()) if (!state.has(file)) visit(file);
    expect(cycles).toEqual([]);
  });
});
