import { defineConfig } from 'vitest/config';

// End-to-end tests: the production build (made once per run in global-setup.ts) under `vite preview`, plus
// Debian's Chromium (see tests/e2e/browser.ts).
export default defineConfig({
  test: {
    include: ['tests/e2e/**/*.e2e.test.ts'],
    globalSetup: ['tests/e2e/global-setup.ts'],
    environment: 'node',
    pool: 'forks',
    testTimeout: 300_000,
    hookTimeout: 120_000,
    // Some e2e tests also run the engine in Node (see vitest.config.ts for why tfjs is inlined).
    server: { deps: { inline: [/@tensorflow\//] } },
  },
});
