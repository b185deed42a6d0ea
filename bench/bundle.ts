// Bundle budget: what jetsource costs a browser app, minified and gzipped. No server needed.
import { dirname, join } from 'node:path';
import {
  bundleApp,
  dependencies,
  externalize,
  gzipKb,
  jetsourceAt,
  srcEntry,
} from '../test/support/bundle.js';
import { log, metric, type Metric } from './lib.js';

/**
 * Targets in KB min+gz: jetsource's own code stays a small fraction of nats.js's 65 KB.
 * Own code was 15 until typed connect/admin errors, stored-retry search and load reporting
 * took it to 15.06, and 16 until role accounts (an API prefix on every JetStream request)
 * and the header, codec and batch-limit checks took it to 16.5, and 17 until watch
 * backpressure for async validators, riding out max_consumers after a reconnect, the
 * stream check on appends and link tracking for connectionState took it to 17.1, and 17.5
 * until up-front checks of every store and connect option, a wsFactory that fails, schema
 * validators that throw and errors that name the event field took it to 18.04, and view
 * readers' checks of stored values and the exact single-event payload check to 18.25, and 18.5
 * until typed errors for plain JavaScript callers' wrong shapes, the wsFactory connect
 * timeout, header-safe tenant and event type tokens, ConcurrencyError's entityRef and a
 * StoreConfigError for a stream's consumer idle limit took it to 19.06, and 19.5 until
 * replicated streams (reading its own writes from any replica, riding out a leader
 * change, settling refusals that a lagging replica cannot place yet) took it to 20.18 and
 * the browser app to 85.71, and 20.5 / 86 until reads, appends and view writes that wait
 * for a dropped connection and are sent again after the reconnect (nats.js loses both
 * their answers and what is sent while it reconnects), with stale connections counted as
 * dropped and appends cut by a close reported as maybe stored, took them to 21.0 / 86.52,
 * and 21.5 / 87 until filter reads that read their own writes on replicated streams, a
 * read's errors naming the code that iterated it and handed-in connections followed from
 * when a store is opened took them to 21.64 / 87.12 (and a user's-eye review's fixes, such
 * as refusing a connect() not awaited and watches' errors naming their caller, to 21.98 / 87.4),
 * and 22 / 87.5 until retries recognised by their bytes, 'new' watches that resume exactly,
 * and watches that wait for their store's own appends on a follower took them to 22.25 /
 * 87.77, and to 22.66 / 88.09 with watches that refuse what another user of their role
 * can aim at them (other consumers' deliveries and flow control, their own consumer
 * widened or stripped to headers, its next name taken), to 23.26 / 88.74 with the
 * reply mux that replaced nats.js's requests (single appends from 0.85–0.92x raw to
 * 0.99–1.15x), and to 23.70 /
 * 89.19 with entity listings that wait out a replica part-way through an atomic append.
 * Raise it only for a feature worth the bytes; the browser app's total is what users pay.
 */
export const budgets = { ownCode: 24, browserApp: 89.5 } as const;

/** The service entry (`jetsource/server`), beside the client entry. */
const serverEntry = join(dirname(srcEntry), 'server.ts');

// A live app: connect, append, watch with a fold, read a view.
const browserApp = `
  import { connect, createEventStore, foldState, openView } from 'jetsource';
  const nc = await connect({ servers: 'ws://localhost:8080' });
  const store = createEventStore({ connection: nc, tenant: 'acme' });
  await store.append({ type: 'account', id: 'a' }, { type: 'Deposited', data: { amount: 1 } }, { expect: 'new' });
  store.watch({ entityType: 'account' }).pipe(foldState({ initial: 0, evolve: (n) => n + 1 })).subscribe(console.log);
  console.log(await openView(store, { name: 'balances', version: 1 }).get('a'));`;

// The same connection and publish with nats.js alone: the floor any JetStream browser app pays.
const rawApp = `
  import { wsconnect } from '@nats-io/nats-core';
  import { jetstream } from '@nats-io/jetstream';
  import { Kvm } from '@nats-io/kv';
  const nc = await wsconnect({ servers: 'ws://localhost:8080' });
  await jetstream(nc).publish('es.acme.account.a.Deposited', '{"amount":1}');
  console.log(await (await new Kvm(nc).open('views')).get('a'));`;

const appendOnlyApp = `
  import { connect, createEventStore } from 'jetsource';
  const store = createEventStore({ connection: await connect({ servers: 'ws://localhost:8080' }), tenant: 'acme' });
  await store.append({ type: 'account', id: 'a' }, { type: 'Deposited', data: { amount: 1 } }, { expect: 'new' });`;

const minified = (code: string, external = false) =>
  bundleApp(code, {
    minify: true,
    plugins: [jetsourceAt(srcEntry), ...(external ? [externalize(dependencies)] : [])],
  }).then(gzipKb);

/** Sizes in KB min+gz; budgets are in the metric names, the raw baseline is nats.js alone. */
export async function bundleBenchmarks(): Promise<Metric[]> {
  log('bundling for the bundle budget');
  const own = await minified(`export * from 'jetsource';`, true);
  const server = await minified(`export * from ${JSON.stringify(serverEntry)};`, true);
  const app = await minified(browserApp);
  const raw = await minified(rawApp);
  const appendOnly = await minified(appendOnlyApp);
  const appendOnlyOwn = await minified(appendOnlyApp, true);
  const over = [
    own > budgets.ownCode && `own code ${own.toFixed(1)} KB > ${budgets.ownCode} KB`,
    app > budgets.browserApp && `browser app ${app.toFixed(1)} KB > ${budgets.browserApp} KB`,
  ].filter(Boolean);
  if (over.length > 0) log(`OVER BUDGET: ${over.join('; ')}`);
  return [
    metric(
      `bundle: jetsource own code (main entry), deps external (target ≤ ${budgets.ownCode} KB)`,
      own,
      'KB gz',
    ),
    metric('bundle: jetsource/server entry own code, deps external', server, 'KB gz'),
    metric(
      `bundle: browser app append+watch+view, deps included (target ≤ ${budgets.browserApp} KB)`,
      app,
      'KB gz',
      raw,
      true,
    ),
    metric('bundle: append-only app, deps included', appendOnly, 'KB gz', raw, true),
    metric('bundle: append-only app, jetsource code only', appendOnlyOwn, 'KB gz'),
  ];
}
