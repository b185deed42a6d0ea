import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (path: string) => fileURLToPath(new URL(`./src/${path}`, import.meta.url));

export default defineConfig({
  // Examples import the package by name, as users do; tests run them against the source.
  resolve: {
    alias: [
      { find: /^jetsource\/testing$/, replacement: src('testing/index.ts') },
      { find: /^jetsource\/server$/, replacement: src('server.ts') },
      { find: /^jetsource$/, replacement: src('index.ts') },
    ],
  },
  test: {
    include: ['test/**/*.test.ts', 'e2e/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Type tests (expectTypeOf) run tsc over the project: a type error anywhere fails npm test.
    typecheck: { enabled: true, include: ['test/types/**/*.test-d.ts'] },
  },
});
