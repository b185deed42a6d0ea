// The main entry must run in browsers and workers: no Node built-ins, nothing a bundler
// cannot drop. Built from src with esbuild the way a user's bundler builds the package.
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { root } from '../support/dist.js';
import {
  bundleApp,
  dependencies,
  externalize,
  jetsourceAt,
  nodeGlobalMarkers,
  recordNodeBuiltins,
  srcEntry,
  type BuiltinImport,
} from '../support/bundle.js';

async function builtinsReachableFrom(entry: string): Promise<BuiltinImport[]> {
  const found: BuiltinImport[] = [];
  // Dependencies included: a Node built-in in nats.js breaks a browser just the same.
  await bundleApp(`export * from ${JSON.stringify(entry)};`, { plugins: [recordNodeBuiltins(found)] });
  return found;
}

describe('the main entry is isomorphic', () => {
  test('no Node built-in is reachable from src/index.ts, dependencies included', async () => {
    expect(await builtinsReachableFrom(srcEntry)).toEqual([]);
  });

  test('jetsource/server (projectors, processors) runs in workers too: no Node built-in', async () => {
    expect(await builtinsReachableFrom(join(root, 'src/server.ts'))).toEqual([]);
  });

  test('the check finds the built-ins of jetsource/testing', async () => {
    const found = await builtinsReachableFrom(join(root, 'src/testing/index.ts'));
    expect(found).toContainEqual({ path: 'node:child_process', importer: 'src/testing/nats-server.ts' });
  });

  test('its own code uses no Node globals', async () => {
    const own = await bundleApp(`export * from 'jetsource';`, {
      plugins: [jetsourceAt(srcEntry), externalize(dependencies)],
      define: nodeGlobalMarkers,
    });
    expect(own.match(/__NODE_GLOBAL_\w+/g) ?? []).toEqual([]);
  });
});

describe('tree-shaking', () => {
  // Names only these features have; identifiers stay unminified to find them.
  const markers = {
    views: ['ViewProjector', 'watchAll', 'KV-Operation'], // projector, view reader, view codec
    processors: ['replayDeadLetters'], // durable processor
  };
  const all = [...markers.views, ...markers.processors];
  const appendOnly = `
    import { connect, createEventStore } from 'jetsource';
    const store = createEventStore({ connection: await connect({ servers: 'ws://localhost:8080' }), tenant: 'acme' });
    await store.append({ type: 'account', id: 'a' }, { type: 'Opened', data: {} }, { expect: 'new' });`;
  const bundle = (code: string) =>
    bundleApp(code, { plugins: [jetsourceAt(srcEntry), externalize(dependencies)], minifySyntax: true });

  test('an app that only appends carries no view, projector or processor code', async () => {
    const text = await bundle(appendOnly);
    expect(text).toContain('JetStreamEventStore');
    expect(all.filter((marker) => text.includes(marker))).toEqual([]);
  });

  test('the markers are there when an app uses those features', async () => {
    const text = await bundle(`${appendOnly}
      import { openView } from 'jetsource';
import { startProjector, startProcessor } from 'jetsource/server';
      console.log(startProjector, openView, startProcessor);`);
    expect(all.filter((marker) => !text.includes(marker))).toEqual([]);
  });
});
