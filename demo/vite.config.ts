import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const src = (path: string) => fileURLToPath(new URL(`../src/${path}`, import.meta.url));

export default defineConfig({
  // The demo imports the package by name, as an app would; in development it is the source.
  resolve: {
    alias: [
      { find: /^jetsource$/, replacement: src('index.ts') },
      { find: /^jetsource\/server$/, replacement: src('server.ts') },
    ],
  },
  build: { target: 'es2022' },
});
