import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const cluster = 'test/integration/cluster.test.ts';
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
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'main',
          include: ['test/**/*.test.ts', 'e2e/**/*.test.ts'],
          exclude: [cluster],
          sequence: { groupOrder: 0 },
          // Type tests (expectTypeOf) run tsc over the project: a type error anywhere fails npm test.
          typecheck: { enabled: true, include: ['test/types/**/*.test-d.ts'] },
        },
      },
      // Three servers and floods of appends take both cores: alone, after the rest, so
      // the timing of other files' tests does not depend on them.
      { extends: true, test: { name: 'cluster', include: [cluster], sequence: { groupOrder: 1 } } },
    ],
  },
});
