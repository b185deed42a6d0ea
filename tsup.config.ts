import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { index: 'src/index.ts', server: 'src/server.ts', 'testing/index': 'src/testing/index.ts' },
  format: ['esm', 'cjs'],
  // Members marked @internal (the event format, the consumer-name registry) stay out of the public types.
  dts: { compilerOptions: { stripInternal: true } },
  sourcemap: true,
  clean: true,
  // CJS entries share chunks as ESM ones do: one copy of each error class across entries.
  splitting: true,
  target: 'es2022',
  // Protocol and stream libraries are the user's to dedupe, never bundled.
  external: [/^@nats-io\//, 'rxjs', /^node:/],
});
