import { defineConfig } from 'vitest/config';

// tfjs-core's Node entry (CommonJS) lacks the gradient registry; inlining the @tensorflow packages makes
// vite resolve their ES module builds, so tests run the same code as the browser and the CLI bundle.
export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    exclude: ['tests/**/*.webgpu.test.ts', 'tests/e2e/**'],
    environment: 'node',
    testTimeout: 120_000,
    server: { deps: { inline: [/@tensorflow\//] } },
  },
});
