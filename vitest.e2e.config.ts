import { defineConfig } from 'vitest/config';

// End-to-end tests: the app's Vite dev server plus Debian's Chromium (see tests/e2e/browser.ts).
export default defineConfig({
  test: {
    include: ['tests/e2e/**/*.e2e.test.ts'],
    environment: 'node',
    pool: 'forks',
    testTimeout: 300_000,
    hookTimeout: 120_000,
    // Some e2e tests also run the engine in Node (see vitest.config.ts for why tfjs is inlined).
    server: { deps: { inline: [/@tensorflow\//] } },
  },
});
