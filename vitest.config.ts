import { svelte } from '@sveltejs/vite-plugin-svelte';
import { defineConfig } from 'vitest/config';

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
    server: { deps: { inline: [/@tensorflow\//] } },
  },
});
