import { svelte } from '@sveltejs/vite-plugin-svelte';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The files that take minutes, started first: a clean checkout has no timings cached, so vitest would start
 * the small files first and leave one long file running alone at the end of the stage (worker-host-pairs,
 * four minutes, came last and set the stage's length).
 */
const LONGEST_FIRST = [
  'worker-host-pairs',
  'memory',
  'ui-state-interleave',
  'engine-quantized',
  'train-best',
];

class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (file: TestSpecification) => {
      const i = LONGEST_FIRST.findIndex((name) => file.moduleId.endsWith(`/tests/${name}.test.ts`));
      return i < 0 ? LONGEST_FIRST.length : i;
    };
    return (await super.sort(files)).sort((a, b) => rank(a) - rank(b));
  }
}

// tfjs-core's Node entry (CommonJS) lacks the gradient registry; inlining the @tensorflow packages makes
// vite resolve their ES module builds, so tests run the same code as the browser and the CLI bundle.
// The page's state modules (src/ui/state/*.svelte.ts) are compiled as the browser gets them, so their
// $state and $derived react in Node as they do on the page (tests/ui-state-*.test.ts).
export default defineConfig({
  plugins: [svelte({ configFile: false, dynamicCompileOptions: () => ({ generate: 'client' }) })],
  test: {
    include: ['tests/**/*.test.ts'],
    exclude: ['tests/**/*.webgpu.test.ts', 'tests/e2e/**'],
    environment: 'node',
    testTimeout: 120_000,
    // Two files at a time even on two cores: many tests wait on a child process (the CLI, the PyTorch
    // reference, llama.cpp), and the stage took 540 s with one worker against 346 s with two.
    maxWorkers: 2,
    sequence: { sequencer: LongestFirst },
    server: { deps: { inline: [/@tensorflow\//] } },
  },
});
