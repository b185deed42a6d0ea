// Checks the built package as users load it, through its own exports map, in both module
// systems: each entry must see the same error classes, or `instanceof` fails across entries.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const loaders = {
  esm: (entry) => import(entry),
  cjs: async (entry) => require(entry),
};

for (const [system, load] of Object.entries(loaders)) {
  const main = await load('jetsource');
  const server = await load('jetsource/server');
  const testing = await load('jetsource/testing');

  const store = testing.createMemoryEventStore({ tenant: 't' });
  const conflict = await store.append({ type: 'a', id: '1' }, { type: 'E', data: {} }, { expect: 5 }).then(
    () => assert.fail(`${system}: a stale expectation was accepted`),
    (error) => error,
  );
  assert.ok(
    conflict instanceof main.ConcurrencyError,
    `${system}: jetsource/testing's ConcurrencyError is not jetsource's`,
  );

  const refused = await server.ensureStore({}, { stream: 'a.b' }).then(
    () => assert.fail(`${system}: an illegal stream name was accepted`),
    (error) => error,
  );
  assert.ok(
    refused instanceof main.JetsourceError,
    `${system}: jetsource/server's errors are not jetsource's`,
  );

  // The launcher's Node part is a chunk loaded on call: it must be there in both systems.
  const launch = await testing.startNatsServer({ bin: '/nonexistent/nats-server' }).then(
    () => assert.fail(`${system}: a missing nats-server binary started`),
    (error) => error,
  );
  assert.match(
    launch.message,
    /^cannot run \/nonexistent\/nats-server/,
    `${system}: the launcher chunk did not load`,
  );
}
console.log('dist: esm and cjs entries share one set of error classes, and the launcher loads on call');
