// Tenancy attack suite: a user of tenant A (acme) tries to read, write, watch or disturb
// tenant B (globex) through every door the bundled nats-server.conf leaves to a writer or
// reader, and B's data is read back (as globex's service user) after every attempt.
// Each attempt that a role may legitimately make on A's OWN data is also made there and
// must work, so a row cannot pass just because the request was malformed.
//
// How an attempt may fail (see test/support/tenancy.ts):
//   denied   the server refused the subject (permission violation)
//   refused  the server answered with an error (API error, 404, cycle …)
//   a-only   the request is allowed inside A's account and answered, but only with A's data
//            (each tenant has its own accounts: B's streams do not exist in A's)
//   harmless anything, as long as B is unchanged and B's subscribers saw nothing
import { Kvm, type KV } from '@nats-io/kv';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { nuid, type NatsConnection } from '@nats-io/nats-core';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { inboxFor, jetStreamApi } from '../../src/connection/connect.js';
import {
  createEventStore,
  PermissionDeniedError,
  TenantMismatchError,
  AuthenticationError,
  type JetStreamEventStore,
} from '../../src/index.js';
import {
  durableName,
  ensureProcessorStream,
  ensureStore,
  removeStrayConsumers,
  startProcessor,
} from '../../src/server.js';
import { eventually } from '../support/monitor.js';
import { unique, useServer, type TestServer } from '../support/nats.js';
import {
  asApi,
  batch,
  call,
  collect,
  credentials,
  failed,
  fromReplies,
  publish,
  request,
  type Attempt,
  type Outcome,
  type Reply,
  type Role,
} from '../support/tenancy.js';

const A = 'acme';
const B = 'globex';
const run = nuid.next();
const secret = (tenant: string) => `${tenant}-secret-${run}`;
const entityA = { type: 'acct', id: 'a1' };
const entityB = { type: 'acct', id: 'g1' };
const trafficId = (tenant: string) => `traffic-${tenant}-${run}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let t: TestServer;
const conns = new Map<string, NatsConnection>();
const conn = (tenant: string, role: Role) => conns.get(`${tenant}-${role}`)!;
/** An acme connection that passed connect({ tenant: 'acme' }). */
const verified = new Map<Role, Promise<NatsConnection>>();
const verifiedAs = (role: Role) => {
  if (!verified.has(role)) verified.set(role, t.connect({ ...credentials(A, role), tenant: A }));
  return verified.get(role)!;
};
let jsmA: JetStreamManager;
let jsmB: JetStreamManager;
let storeB: JetStreamEventStore;
let viewsB: KV;
let baselineB: unknown;
/** Messages B's users receive on subjects an attacker might aim a push consumer at. */
const victims: Record<string, Reply[]> = {
  [`_INBOX_${B}_writer.victim`]: [],
  [`_INBOX_${B}_service.victim`]: [],
};
const scratchStreams: string[] = [];
const counts = { crossTenant: 0, ownTenant: 0 };

/** The server's warnings and errors, shown beside a failed comparison (a cache miss, say). */
const serverWarnings = () =>
  t.server.log
    .split('\n')
    .filter((line) => / \[(WRN|ERR)\] /.test(line))
    .join('\n');

/** Everything of B that an attack could change or reveal, read by B's service user. */
async function snapshotB() {
  const events = [];
  for await (const e of storeB.read()) events.push(e);
  const state = async (stream: string) => {
    const { messages, bytes, first_seq, last_seq, last_ts, consumer_count } = (
      await jsmB.streams.info(stream)
    ).state;
    const consumers: string[] = [];
    for await (const page of jsmB.consumers.list(stream)) consumers.push(page.name);
    return { messages, bytes, first_seq, last_seq, last_ts, consumer_count, consumers: consumers.sort() };
  };
  const view = await viewsB.get(`${B}.summary`);
  const streams: string[] = [];
  for await (const name of jsmB.streams.names()) streams.push(name);
  return {
    events,
    view: view && { value: view.string(), revision: view.revision, operation: view.operation },
    events$: await state('EVENTS'),
    views$: await state('KV_views'),
    streams: streams.sort(),
  };
}

/** B's users at work: reads, a view read, and a (deduplicated, so state-neutral) append. */
async function trafficB() {
  const writer = createEventStore({ connection: conn(B, 'writer'), tenant: B });
  for await (const _ of writer.read()) void _;
  await (await views(conn(B, 'writer'))).get(`${B}.summary`);
  await storeB.append(entityB, { id: trafficId(B), type: 'Deposited', data: { amount: 0, note: secret(B) } });
}

// Readers and writers reach the bucket through their account's API prefix (JS.API).
const views = (nc: NatsConnection) =>
  new Kvm(jetstream(nc, { apiPrefix: jetStreamApi(nc) })).open('views', { allow_direct: true });

beforeAll(async () => {
  // TENANCY_CONFIG runs the suite against another config, e.g. a candidate fix or a production render.
  t = await useServer({ configFile: process.env.TENANCY_CONFIG ?? 'nats-server.conf' });
  for (const tenant of [A, B])
    for (const role of ['writer', 'reader', 'service'] as const)
      conns.set(`${tenant}-${role}`, await t.connect(credentials(tenant, role)));

  // Each tenant's service user sets up the same layout: events, a view, a durable projector.
  for (const [tenant, entity] of [
    [A, entityA],
    [B, entityB],
  ] as const) {
    const svc = conn(tenant, 'service');
    await ensureStore(svc, {});
    await ensureProcessorStream(svc, {});
    const store = createEventStore({ connection: svc, tenant });
    await store.append(
      entity,
      [
        { type: 'Opened', data: { owner: secret(tenant) } },
        { type: 'Deposited', data: { amount: 5, note: secret(tenant) } },
        { id: trafficId(tenant), type: 'Deposited', data: { amount: 0, note: secret(tenant) } },
      ],
      { expect: 'new' },
    );
    const kv = await new Kvm(svc).create('views', { allow_direct: true });
    await kv.put(`${tenant}.summary`, JSON.stringify({ balance: 5, secret: secret(tenant) }));
    const jsm = await jetstreamManager(svc, { checkAPI: false });
    await jsm.consumers.add('EVENTS', {
      durable_name: `${tenant}-projector`,
      filter_subject: `es.${tenant}.>`,
      ack_policy: 'explicit' as never,
    });
  }
  jsmA = await jetstreamManager(conn(A, 'service'), { checkAPI: false });
  jsmB = await jetstreamManager(conn(B, 'service'), { checkAPI: false });
  storeB = createEventStore({ connection: conn(B, 'service'), tenant: B });
  viewsB = await views(conn(B, 'service'));
  for (const subject of Object.keys(victims)) {
    const role = subject.includes('_writer.') ? 'writer' : 'service';
    conn(B, role).subscribe(subject, {
      callback: collect(victims[subject]!),
    });
    await conn(B, role).flush();
  }
  baselineB = await snapshotB();
});

afterEach(async () => {
  for (const name of scratchStreams.splice(0)) await jsmA.streams.delete(name).catch(() => undefined);
});

afterAll(async () => {
  const total = counts.crossTenant + counts.ownTenant;
  console.log(
    `tenancy attack suite: ${total} attack attempts, all failed ` +
      `(${counts.crossTenant} against tenant ${B}, ${counts.ownTenant} beyond the attacker's role in ${A})`,
  );
  await t?.close();
});

// ---------------------------------------------------------------------------------------
// The attack helper

type Failure = 'denied' | 'refused' | 'a-only' | 'harmless' | ((o: Outcome) => void);

interface AttackOptions {
  /** How the attempt must fail. Default `denied`. */
  fails?: Failure;
  /** The same operation on A's own data (the positive control). */
  own?: Attempt;
  /**
   * Roles that may run `own` themselves. For other roles `own` must be denied (an attempt
   * beyond the role, counted), and A's service user then shows that the request works.
   */
  allowed?: readonly Role[];
  /** Extra check of a successful `own`, e.g. {@link hasA}. */
  ownCheck?: (o: Outcome) => void;
  /** Extra check of every denial (attack and own), e.g. a typed error. */
  deniedCheck?: (o: Outcome) => void;
  /** Waits before checking B, for effects that arrive asynchronously (push deliveries). */
  settleMs?: number;
  /** Only these attacking roles try it. */
  roles?: readonly Role[];
}

const text = (o: Outcome) => o.replies.map((r) => `${r.subject} ${r.text}`).join('\n');
const isOfB = (r: Reply) =>
  r.status === 0 && (r.subject.startsWith(`es.${B}.`) || r.subject.startsWith(`$KV.views.${B}.`));

function expectFailure(o: Outcome, how: Failure) {
  if (typeof how === 'function') return how(o);
  if (how === 'harmless') return;
  if (how === 'a-only') {
    expect(o.kind, o.detail).toBe('answered');
    for (const r of o.replies.filter((r) => r.status === 0 && r.subject))
      expect(r.subject, 'only A subjects').toMatch(/^(es\.acme\.|\$KV\.views\.acme\.|_INBOX_acme_)/);
    return;
  }
  expect(o.kind, o.detail).toBe(how);
}

function expectNoLeak(o: Outcome) {
  expect(text(o)).not.toContain(secret(B));
  expect(o.replies.filter(isOfB)).toEqual([]);
}

/** The outcome carries A's data. */
const hasA = (o: Outcome) => expect(text(o)).toContain(secret(A));

function expectAnswered(o: Outcome) {
  expect(o.kind, o.detail).toBe('answered');
}

/** Registers one attack: as `acme-<role>`, `run` must fail, B must be unchanged, and `own` must work where allowed. */
function defineAttack(role: Role, name: string, run: Attempt, options: AttackOptions = {}) {
  if (options.roles && !options.roles.includes(role)) return;
  test(name, async () => {
    const nc = conn(A, role);
    // Compared per attack so a failure names the attack that changed B (the final test
    // also compares B with its state right after setup).
    const before = await snapshotB();
    for (const got of Object.values(victims)) got.length = 0;
    const outcome = await run(nc);
    counts.crossTenant++;
    expectFailure(outcome, options.fails ?? 'denied');
    if (outcome.kind === 'denied') options.deniedCheck?.(outcome);
    expectNoLeak(outcome);
    if (options.settleMs) await sleep(options.settleMs);
    for (const [subject, got] of Object.entries(victims)) expect(got, `${subject} received`).toEqual([]);
    expect(await snapshotB(), serverWarnings()).toEqual(before);

    if (!options.own) return;
    const ownCheck = options.ownCheck ?? (() => undefined);
    if (options.allowed?.includes(role)) {
      const mine = await options.own(nc);
      expectAnswered(mine);
      ownCheck(mine);
    } else {
      const beyondRole = await options.own(nc);
      counts.ownTenant++;
      expect(beyondRole.kind, `acme-${role} on A's own data: ${beyondRole.detail}`).toBe('denied');
      options.deniedCheck?.(beyondRole);
      const asService = await options.own(conn(A, 'service'));
      expectAnswered(asService);
      ownCheck(asService);
    }
    expect(await snapshotB(), serverWarnings()).toEqual(before);
  });
}

// ---------------------------------------------------------------------------------------
// Attempt builders

/**
 * JetStream consumer create (`UPDATE`: the same request, changing an existing consumer);
 * the filter goes in the subject when `filterInSubject` is given.
 */
function createConsumer(
  stream: string,
  filterInSubject: string | undefined,
  config: Record<string, unknown> = {},
  api: 'CREATE' | 'UPDATE' | 'DURABLE.CREATE' | 'LEGACY' = 'CREATE',
): Attempt {
  return (nc) => {
    const name = typeof config.name === 'string' ? config.name : unique('c');
    const subject =
      api === 'LEGACY'
        ? `$JS.API.CONSUMER.CREATE.${stream}`
        : api === 'DURABLE.CREATE'
          ? `$JS.API.CONSUMER.DURABLE.CREATE.${stream}.${name}`
          : `$JS.API.CONSUMER.CREATE.${stream}.${name}${filterInSubject ? `.${filterInSubject}` : ''}`;
    const body = {
      stream_name: stream,
      config: {
        ...(api === 'LEGACY' ? {} : api === 'DURABLE.CREATE' ? { durable_name: name } : { name }),
        ack_policy: 'none',
        inactive_threshold: 5_000_000_000,
        ...(filterInSubject ? { filter_subject: filterInSubject } : {}),
        ...config,
      },
      ...(api === 'UPDATE' ? { action: 'update' } : {}),
    };
    return request(subject, body)(nc);
  };
}

/** A push consumer on A's events delivering to the caller's own inbox: the first message arrives. */
const pushToOwnInbox: Attempt = async (nc) => {
  const inbox = inboxFor(nc);
  const received: Reply[] = [];
  const sub = nc.subscribe(inbox, { callback: collect(received) });
  try {
    const created = await createConsumer('EVENTS', `es.${A}.>`, { deliver_subject: inbox })(nc);
    if (created.kind !== 'answered') return created;
    for (let i = 0; i < 50 && received.length === 0; i++) await sleep(20);
    return fromReplies(received.slice(0, 1));
  } finally {
    sub.unsubscribe();
  }
};

/** Subscribes, lets B's users work, and reports the subscription's fate and what it received. */
function subscribeTo(subject: string, queue?: string): Attempt {
  return async (nc) => {
    const received: Reply[] = [];
    let closedWith: unknown;
    const sub = nc.subscribe(subject, {
      queue,
      callback: collect(received),
    });
    void sub.closed.then((err) => (closedWith = err));
    await nc.flush();
    await trafficB();
    await sleep(100);
    if (!sub.isClosed()) sub.unsubscribe();
    return closedWith
      ? { ...failed(closedWith), replies: received }
      : { kind: 'answered', replies: received, detail: `subscribed, ${received.length} received` };
  };
}

/** Subscribing to one's own inbox works, and replies arrive there. */
const ownInbox: Attempt = async (nc) => {
  const inbox = inboxFor(nc);
  const received: Reply[] = [];
  const sub = nc.subscribe(inbox, { callback: collect(received) });
  nc.publish(asApi(nc, `$JS.API.DIRECT.GET.EVENTS.es.${A}.acct.a1.*`), '', { reply: inbox });
  await nc.flush();
  for (let i = 0; i < 50 && received.length === 0; i++) await sleep(20);
  sub.unsubscribe();
  return fromReplies(received);
};

/** A KV operation on the `views` bucket, opened as the `allow_direct` browser client does. */
const kv = (op: (bucket: KV) => Promise<unknown>): Attempt => call(async (nc) => op(await views(nc)));
const entry = (e: { key: string; string(): string; revision: number } | null) =>
  e && { key: e.key, value: e.string(), revision: e.revision };

/** The first entry a KV watch yields, or a timeout. */
const firstWatched = (key: string) =>
  kv(async (bucket) => {
    const watch = await bucket.watch({ key });
    try {
      const next = watch[Symbol.asyncIterator]().next();
      const first = await Promise.race([next, sleep(1000).then(() => 'timeout' as const)]);
      if (first === 'timeout' || first.done) throw new Error('the watch delivered nothing');
      return entry(first.value);
    } finally {
      watch.stop();
    }
  });

/** A jetsource store of `tenant` on the attacker's (unverified) connection. */
const storeOf = (nc: NatsConnection, tenant: string) =>
  createEventStore({ connection: nc, tenant, retries: 0, timeoutMs: 1000 });
const readAll = (tenant: string, entity: { type: string; id: string }) =>
  call(async (nc) => {
    const events = [];
    for await (const e of storeOf(nc, tenant).read(entity)) events.push({ subject: e.subject, data: e.data });
    return events;
  });
const firstWatchedEvent = (tenant: string, entity: { type: string; id: string }) =>
  call(
    (nc) =>
      new Promise((resolve, reject) => {
        const sub = storeOf(nc, tenant)
          .watch(entity)
          .subscribe({
            next: (m) => {
              if (m.kind !== 'event') return;
              sub.unsubscribe();
              resolve({ subject: m.event.subject, data: m.event.data });
            },
            error: reject,
          });
        setTimeout(() => {
          sub.unsubscribe();
          reject(new Error('the watch delivered nothing'));
        }, 2000);
      }),
  );

/** A stream of A's made by A's service user for a destructive positive control, removed after the test. */
const onScratch =
  (make: (name: string) => Attempt, create = true): Attempt =>
  async (nc) => {
    const name = unique('SCRATCH');
    scratchStreams.push(name);
    if (create) await jsmA.streams.add({ name, subjects: [`scratch.${name}.>`], storage: 'memory' as never });
    return make(name)(nc);
  };

/** Timed, so "fails fast" can be asserted. */
const timed =
  (run: Attempt): Attempt =>
  async (nc) => {
    const started = Date.now();
    const o = await run(nc);
    return { ...o, detail: `${o.detail} after ${Date.now() - started} ms` };
  };
const fast = (o: Outcome) => expect(Number(/after (\d+) ms/.exec(o.detail)?.[1])).toBeLessThan(3000);

const deniedWith = (subject: RegExp) => (o: Outcome) => {
  expect(o.error).toBeInstanceOf(PermissionDeniedError);
  expect((o.error as PermissionDeniedError).subject).toMatch(subject);
};
const refusedWith = (type: new (...args: never[]) => Error) => (o: Outcome) => {
  expect(o.kind, o.detail).toBe('refused');
  expect(o.error).toBeInstanceOf(type);
  fast(o);
};
const apiError = (code: number) => (o: Outcome) => {
  expect(o.kind, o.detail).toBe('refused');
  expect(o.replies[0]?.error?.err_code, o.detail).toBe(code);
};

const ALL: readonly Role[] = ['writer', 'reader'];
const event = (note: string) => ({ type: 'Probe', data: { note } });

// ---------------------------------------------------------------------------------------
// The attacks, for acme-writer and acme-reader alike

describe.each(['writer', 'reader'] as const)(`acme-%s against ${B}`, (role) => {
  const attack = (name: string, run: Attempt, options?: AttackOptions) =>
    defineAttack(role, name, run, options);

  describe("publish to B's event subjects", () => {
    attack(`request to es.${B}.acct.g1.Probe`, request(`es.${B}.acct.g1.Probe`, {}), {
      own: request(`es.${A}.probe.p1.Probe`, {}),
      allowed: ['writer'],
    });
    attack(
      `plain publish to es.${B}.acct.g1.Probe (permission error status)`,
      publish(`es.${B}.acct.g1.Probe`, {}),
      {
        own: publish(`es.${A}.probe.p1.Probe`, {}),
        allowed: ['writer'],
      },
    );
    for (const subject of ['es.*.acct.g1.Probe', 'es.*.*.*.*', 'es.*.>', 'es.>', `es.${B}.>`, '>'])
      attack(`literal wildcard subject ${subject}`, request(subject, {}));
    attack(
      'an atomic batch to B',
      request(
        `es.${B}.acct.g1.Probe`,
        {},
        { 'Nats-Batch-Id': nuid.next(), 'Nats-Batch-Sequence': '1', 'Nats-Batch-Commit': '1' },
      ),
    );
  });

  describe('consumers', () => {
    attack('unfiltered (name only in the subject)', createConsumer('EVENTS', undefined), {
      own: createConsumer('EVENTS', undefined),
    });
    attack('unfiltered, legacy CONSUMER.CREATE.<stream>', createConsumer('EVENTS', undefined, {}, 'LEGACY'), {
      own: createConsumer('EVENTS', undefined, {}, 'LEGACY'),
    });
    attack(`filtered to es.${B}.>`, createConsumer('EVENTS', `es.${B}.>`), {
      own: createConsumer('EVENTS', `es.${A}.>`),
      allowed: ALL,
    });
    attack(`filtered to one of B's entities`, createConsumer('EVENTS', `es.${B}.acct.g1.*`), {
      own: createConsumer('EVENTS', `es.${A}.acct.a1.*`),
      allowed: ALL,
    });
    attack(
      `A's filter in the subject, B's in the body`,
      createConsumer('EVENTS', `es.${A}.>`, { filter_subject: `es.${B}.>` }),
      { fails: apiError(10131), own: createConsumer('EVENTS', `es.${A}.>`), allowed: ALL },
    );
    attack(
      `filter_subjects [A, B] under A's subject filter`,
      createConsumer('EVENTS', `es.${A}.>`, {
        filter_subject: undefined,
        filter_subjects: [`es.${A}.>`, `es.${B}.>`],
      }),
      { fails: apiError(10137) },
    );
    attack(
      'filter_subjects [A, B] with no filter in the subject',
      createConsumer('EVENTS', undefined, { filter_subjects: [`es.${A}.>`, `es.${B}.>`] }),
      {
        own: createConsumer('EVENTS', undefined, { filter_subjects: [`es.${A}.acct.>`, `es.${A}.probe.>`] }),
      },
    );
    // A literal wildcard in the filter token must not satisfy A's rule `...CREATE.EVENTS.*.es.acme.>`.
    for (const filter of ['es.*.>', 'es.>', '>', 'es.*.acct.g1.*', `es.${A}`])
      attack(
        `filter ${filter} in the subject (CONSUMER.CREATE.EVENTS.<name>.${filter})`,
        createConsumer('EVENTS', filter),
      );
    attack(
      `durable (CONSUMER.DURABLE.CREATE) on es.${B}.>`,
      createConsumer('EVENTS', undefined, { filter_subject: `es.${B}.>` }, 'DURABLE.CREATE'),
      { own: createConsumer('EVENTS', undefined, { filter_subject: `es.${A}.>` }, 'DURABLE.CREATE') },
    );
    attack(
      `durable through CONSUMER.CREATE on es.${B}.>`,
      createConsumer('EVENTS', `es.${B}.>`, {
        durable_name: 'stolen',
        name: 'stolen',
        inactive_threshold: undefined,
      }),
    );
    attack(
      `pull next from B's projector`,
      batch(`$JS.API.CONSUMER.MSG.NEXT.EVENTS.${B}-projector`, { batch: 1, no_wait: true }, 1),
      {
        own: batch(`$JS.API.CONSUMER.MSG.NEXT.EVENTS.${A}-projector`, { batch: 1, no_wait: true }, 1),
        ownCheck: (o) => expect(o.replies[0]?.subject).toMatch(/^es\.acme\./),
      },
    );
    attack(`info of B's projector`, request(`$JS.API.CONSUMER.INFO.EVENTS.${B}-projector`), {
      own: request(`$JS.API.CONSUMER.INFO.EVENTS.${A}-projector`),
      ownCheck: (o) => expect(text(o)).toContain(`${A}-projector`),
    });
    for (const api of ['LIST', 'NAMES'])
      attack(`consumer ${api.toLowerCase()}`, request(`$JS.API.CONSUMER.${api}.EVENTS`, {}), {
        own: request(`$JS.API.CONSUMER.${api}.EVENTS`, {}),
        ownCheck: (o) => expect(text(o)).toContain(`${A}-projector`),
      });
    attack(`delete B's projector`, request(`$JS.API.CONSUMER.DELETE.EVENTS.${B}-projector`));
    attack(`views consumer filtered to $KV.views.${B}.>`, createConsumer('KV_views', `$KV.views.${B}.>`), {
      own: createConsumer('KV_views', `$KV.views.${A}.>`),
      allowed: ALL,
    });
    attack('views consumer, unfiltered', createConsumer('KV_views', undefined), {
      own: createConsumer('KV_views', undefined),
    });

    // nats-server #8274: deliver_subject is not checked against the creator's permissions,
    // so creating these may succeed. It must not matter: the consumer lives in A's account.
    for (const target of [
      `_INBOX_${B}_writer.victim`,
      `_INBOX_${B}_service.victim`,
      '_INBOX.victim',
      `es.${B}.acct.g1.Injected`,
      `$KV.views.${B}.summary`,
    ])
      attack(
        `push consumer delivering A's events to ${target}`,
        createConsumer('EVENTS', `es.${A}.>`, { deliver_subject: target }),
        {
          fails: 'harmless',
          settleMs: 500,
          own: pushToOwnInbox,
          allowed: ALL,
          ownCheck: hasA,
        },
      );
  });

  describe('direct get', () => {
    attack(`by B's subject es.${B}.acct.g1.*`, request(`$JS.API.DIRECT.GET.EVENTS.es.${B}.acct.g1.*`), {
      fails: 'refused',
      own: request(`$JS.API.DIRECT.GET.EVENTS.es.${A}.acct.a1.*`),
      allowed: ALL,
      ownCheck: hasA,
    });
    attack(`by a literal wildcard tenant es.*.>`, request('$JS.API.DIRECT.GET.EVENTS.es.*.>'), {
      fails: 'a-only',
    });
    attack(
      `body last_by_subj es.${B}.acct.g1.Opened`,
      request('$JS.API.DIRECT.GET.EVENTS', { last_by_subj: `es.${B}.acct.g1.Opened` }),
      {
        fails: 'refused',
        own: request('$JS.API.DIRECT.GET.EVENTS', { last_by_subj: `es.${A}.acct.a1.Opened` }),
        allowed: ALL,
        ownCheck: hasA,
      },
    );
    attack(
      "body by sequence (B's first event's sequence)",
      request('$JS.API.DIRECT.GET.EVENTS', { seq: 1 }),
      {
        fails: 'a-only',
      },
    );
    attack(
      `batch next_by_subj es.${B}.>`,
      batch('$JS.API.DIRECT.GET.EVENTS', { seq: 1, next_by_subj: `es.${B}.>`, batch: 100 }),
      {
        fails: 'refused',
        own: batch('$JS.API.DIRECT.GET.EVENTS', { seq: 1, next_by_subj: `es.${A}.>`, batch: 100 }),
        allowed: ALL,
        ownCheck: hasA,
      },
    );
    attack(
      'batch next_by_subj es.> (the whole account)',
      batch('$JS.API.DIRECT.GET.EVENTS', { seq: 1, next_by_subj: 'es.>', batch: 100 }),
      {
        fails: 'a-only',
      },
    );
    attack(
      `multi_last es.${B}.>`,
      batch('$JS.API.DIRECT.GET.EVENTS', { multi_last: [`es.${B}.>`], batch: 100 }),
      {
        fails: 'refused',
        own: batch('$JS.API.DIRECT.GET.EVENTS', { multi_last: [`es.${A}.>`], batch: 100 }),
        allowed: ALL,
        ownCheck: hasA,
      },
    );
    attack(
      'multi_last es.> (the whole account)',
      batch('$JS.API.DIRECT.GET.EVENTS', { multi_last: ['es.>'], batch: 100 }),
      {
        fails: 'a-only',
      },
    );
  });

  describe('stream API', () => {
    attack(
      `STREAM.MSG.GET last_by_subj es.${B}.acct.g1.Opened`,
      request('$JS.API.STREAM.MSG.GET.EVENTS', { last_by_subj: `es.${B}.acct.g1.Opened` }),
      {
        own: request('$JS.API.STREAM.MSG.GET.EVENTS', { last_by_subj: `es.${A}.acct.a1.Opened` }),
        ownCheck: hasA,
      },
    );
    attack('STREAM.MSG.GET by sequence', request('$JS.API.STREAM.MSG.GET.EVENTS', { seq: 1 }));
    attack(
      `STREAM.MSG.GET of B's view`,
      request('$JS.API.STREAM.MSG.GET.KV_views', { last_by_subj: `$KV.views.${B}.summary` }),
      {
        own: request('$JS.API.STREAM.MSG.GET.KV_views', { last_by_subj: `$KV.views.${A}.summary` }),
        ownCheck: hasA,
      },
    );
    attack(
      `STREAM.INFO with subjects_filter es.${B}.>`,
      request('$JS.API.STREAM.INFO.EVENTS', { subjects_filter: `es.${B}.>` }),
      {
        own: request('$JS.API.STREAM.INFO.EVENTS', { subjects_filter: `es.${A}.>` }),
        ownCheck: (o) => expect(text(o)).toContain(`es.${A}.acct.a1.Opened`),
      },
    );
    attack(
      `STREAM.INFO of the views with subjects_filter $KV.views.${B}.>`,
      request('$JS.API.STREAM.INFO.KV_views', { subjects_filter: `$KV.views.${B}.>` }),
    );
    attack(
      `stream create sourcing es.${B}.>`,
      request('$JS.API.STREAM.CREATE.STOLEN', {
        name: 'STOLEN',
        sources: [{ name: 'EVENTS', filter_subject: `es.${B}.>` }],
      }),
      {
        own: onScratch(
          (name) =>
            request(`$JS.API.STREAM.CREATE.${name}`, {
              name,
              subjects: [`scratch.${name}.>`],
              storage: 'memory',
            }),
          false,
        ),
      },
    );
    attack(
      'stream update adding a source',
      request('$JS.API.STREAM.UPDATE.EVENTS', {
        name: 'EVENTS',
        subjects: ['es.>'],
        sources: [{ name: 'KV_views' }],
      }),
      {
        own: onScratch((name) =>
          request(`$JS.API.STREAM.UPDATE.${name}`, {
            name,
            subjects: [`scratch.${name}.>`, `more.${name}.>`],
            storage: 'memory',
          }),
        ),
      },
    );
    attack(`stream purge of es.${B}.>`, request('$JS.API.STREAM.PURGE.EVENTS', { filter: `es.${B}.>` }), {
      own: onScratch((name) => request(`$JS.API.STREAM.PURGE.${name}`, {})),
    });
    for (const stream of ['EVENTS', 'KV_views'])
      attack(`stream delete ${stream}`, request(`$JS.API.STREAM.DELETE.${stream}`), {
        own: onScratch((name) => request(`$JS.API.STREAM.DELETE.${name}`)),
      });
    attack('stream message delete', request('$JS.API.STREAM.MSG.DELETE.EVENTS', { seq: 1 }));
    for (const api of ['NAMES', 'LIST'])
      attack(`stream ${api.toLowerCase()}`, request(`$JS.API.STREAM.${api}`, {}), {
        own: request(`$JS.API.STREAM.${api}`, {}),
        ownCheck: (o) => expect(text(o)).toContain('KV_views'),
      });
    attack(`B's API through a domain-style prefix $JS.${B}.API`, request(`$JS.${B}.API.STREAM.INFO.EVENTS`));
    attack('account info ($JS.API.INFO)', request('$JS.API.INFO'), {
      own: request('$JS.API.INFO'),
      ownCheck: (o) => expect(text(o)).toContain('account_info'),
    });
    for (const subject of [
      `$SYS.REQ.ACCOUNT.${B}.CONNZ`,
      '$SYS.REQ.SERVER.PING.CONNZ',
      '$SYS.REQ.ACCOUNT.PING.STATZ',
    ])
      attack(`system request ${subject}`, request(subject, {}));
  });

  describe('views (KV)', () => {
    attack(
      `get ${B}.summary`,
      kv(async (b) => entry(await b.get(`${B}.summary`))),
      {
        own: kv(async (b) => entry(await b.get(`${A}.summary`))),
        allowed: ALL,
        ownCheck: hasA,
      },
    );
    attack(
      `direct get $KV.views.${B}.summary`,
      request(`$JS.API.DIRECT.GET.KV_views.$KV.views.${B}.summary`),
      {
        own: request(`$JS.API.DIRECT.GET.KV_views.$KV.views.${A}.summary`),
        allowed: ALL,
        ownCheck: hasA,
      },
    );
    for (const key of ['*.summary', '>', `${B}.>`])
      attack(
        `direct get with a literal wildcard key $KV.views.${key}`,
        request(`$JS.API.DIRECT.GET.KV_views.$KV.views.${key}`),
      );
    attack(
      `get ${B}.summary by revision (direct get with a body)`,
      kv(async (b) => entry(await b.get(`${B}.summary`, { revision: 1 }))),
      {
        // Views keep one revision per key: ask for the current one.
        own: kv(async (b) =>
          entry(await b.get(`${A}.summary`, { revision: (await b.get(`${A}.summary`))!.revision })),
        ),
        ownCheck: hasA,
      },
    );
    attack(`watch ${B}.summary`, firstWatched(`${B}.summary`), {
      own: firstWatched(`${A}.summary`),
      allowed: ALL,
      ownCheck: hasA,
    });
    attack('watch every key', firstWatched('>'), {
      own: firstWatched('>'),
      ownCheck: (o) => expect(text(o)).toContain(`"key":"${A}.`),
    });
    const listKeys = kv(async (b) => {
      const keys = [];
      for await (const k of await b.keys()) keys.push(k);
      return keys;
    });
    attack('list keys', listKeys, {
      own: listKeys,
      ownCheck: (o) => expect(text(o)).toContain(`${A}.summary`),
    });
    const value = (tenant: string) => JSON.stringify({ balance: 5, secret: secret(tenant) });
    attack(
      `put ${B}.summary`,
      kv((b) => b.put(`${B}.summary`, 'pwned')),
      {
        own: kv((b) => b.put(`${A}.summary`, value(A))),
      },
    );
    attack(
      `create ${B}.new`,
      kv((b) => b.create(`${B}.new`, 'pwned')),
      {
        own: kv((b) => b.create(`${A}.new-${nuid.next()}`, value(A))),
      },
    );
    for (const op of ['delete', 'purge'] as const)
      attack(
        `${op} ${B}.summary`,
        kv((b) => b[op](`${B}.summary`)),
        {
          own: kv((b) => b[op](`${A}.scratch`)),
        },
      );
    attack(`raw publish to $KV.views.${B}.summary`, request(`$KV.views.${B}.summary`, 'pwned'));
  });

  describe('subscriptions', () => {
    const otherRole = role === 'writer' ? 'reader' : 'writer';
    for (const subject of [
      '_INBOX.>',
      '>',
      '$JS.>',
      '$JS.API.>',
      `es.${B}.>`,
      `$KV.views.${B}.>`,
      `_INBOX_${A}_service.>`,
      `_INBOX_${A}_${otherRole}.>`,
      `_INBOX_${B}_writer.>`,
      `_INBOX_${B}_service.>`,
    ])
      attack(`subscribe ${subject}`, subscribeTo(subject), {
        fails: (o) => {
          expect(o.kind, o.detail).toBe('denied');
          expect(o.replies).toEqual([]);
        },
        own: ownInbox,
        allowed: ALL,
        ownCheck: hasA,
      });
    attack(`queue-subscribe _INBOX_${B}_writer.>`, subscribeTo(`_INBOX_${B}_writer.>`, 'q'));
  });

  describe('the jetsource API', () => {
    attack(
      `append as tenant ${B} on an unverified connection`,
      call((nc) => storeOf(nc, B).append(entityB, event('pwned'))),
      {
        deniedCheck: deniedWith(/^es\.(acme|globex)\.(acct\.g1|probe\.p1)\.Probe$/),
        own: call((nc) => storeOf(nc, A).append({ type: 'probe', id: 'p1' }, event('mine'))),
        allowed: ['writer'],
      },
    );
    attack(`read tenant ${B}: nothing of B exists in A's account`, readAll(B, entityB), {
      fails: (o) => {
        expect(o.kind, o.detail).toBe('answered');
        expect(o.replies[0]?.text).toBe('[]');
      },
      own: readAll(A, entityA),
      allowed: ALL,
      ownCheck: hasA,
    });
    attack(`watch tenant ${B}`, firstWatchedEvent(B, entityB), {
      // Readers and writers create consumers through their JS.API import.
      deniedCheck: deniedWith(/^JS\.API\.CONSUMER\.CREATE\.EVENTS\.\w+\.es\.globex\.acct\.g1\.\*$/),
      own: firstWatchedEvent(A, entityA),
      allowed: ALL,
      ownCheck: hasA,
    });
  });

  describe('identity', () => {
    attack(
      `connect({ tenant: '${B}' }) with acme-${role}'s credentials`,
      timed(call(() => t.connect({ ...credentials(A, role), tenant: B }).then(() => 'connected'))),
      {
        fails: refusedWith(TenantMismatchError),
        own: call(() => t.connect({ ...credentials(A, role), tenant: A }).then(() => 'connected')),
        allowed: ALL,
      },
    );
    attack(
      `createEventStore({ tenant: '${B}' }) on a connection verified as ${A}`,
      timed(call(async () => void createEventStore({ connection: await verifiedAs(role), tenant: B }))),
      {
        fails: refusedWith(TenantMismatchError),
        own: call(async () => void createEventStore({ connection: await verifiedAs(role), tenant: A })),
        allowed: ALL,
      },
    );
    for (const [label, pass] of [
      ['a wrong password', 'wrong'],
      [`${B}-${role}'s password`, `dev-${B}-${role}`],
      ['an empty password', ''],
    ] as const)
      attack(
        `connect as acme-${role} with ${label}`,
        timed(call(() => t.connect({ ...credentials(A, role), pass }).then(() => 'connected'))),
        {
          fails: refusedWith(AuthenticationError),
          own: call(() => t.connect(credentials(A, role)).then(() => 'connected')),
          allowed: ALL,
        },
      );
    attack('connect without credentials', timed(call(() => t.connect({}).then(() => 'connected'))), {
      fails: refusedWith(AuthenticationError),
      roles: ['writer'],
    });
  });
});

// ---------------------------------------------------------------------------------------
// A's service user administers A's account, and still cannot reach B

describe(`acme-service against ${B}`, () => {
  const attack = (name: string, run: Attempt, options?: AttackOptions) =>
    defineAttack('service', name, run, options);
  attack(`publish to es.${B}.acct.g1.Probe`, request(`es.${B}.acct.g1.Probe`, {}));
  attack(`B's API through a domain-style prefix $JS.${B}.API`, request(`$JS.${B}.API.STREAM.INFO.EVENTS`));
  attack(
    `a stream sourcing ${B}'s EVENTS through an external API prefix receives nothing`,
    call(async () => {
      const name = unique('STOLEN');
      scratchStreams.push(name);
      await jsmA.streams.add({
        name,
        storage: 'memory' as never,
        sources: [{ name: 'EVENTS', external: { api: `$JS.${B}.API`, deliver: '' } }],
      });
      await sleep(500);
      return (await jsmA.streams.info(name)).state.messages;
    }),
    { fails: (o) => expect(o.kind === 'refused' || o.replies[0]?.text === '0', o.detail).toBe(true) },
  );
  attack(
    `STREAM.INFO subjects_filter es.${B}.> lists nothing of B`,
    request('$JS.API.STREAM.INFO.EVENTS', { subjects_filter: `es.${B}.>` }),
    { fails: (o) => expect(o.kind === 'answered' && !text(o).includes(`es.${B}.`), o.detail).toBe(true) },
  );
  attack(
    `a put to ${B}.summary lands in A's own bucket only`,
    kv((b) => b.put(`${B}.summary`, 'pwned')),
    { fails: 'harmless' },
  );
  for (const subject of ['_INBOX.>', `_INBOX_${B}_service.>`, '>'])
    attack(`subscribe ${subject}`, subscribeTo(subject), {
      fails: (o) => {
        expect(o.kind, o.detail).toBe('denied');
        expect(o.replies).toEqual([]);
      },
    });
  attack(`system request $SYS.REQ.ACCOUNT.${B}.CONNZ`, request(`$SYS.REQ.ACCOUNT.${B}.CONNZ`, {}));
});

test(`after every attack, ${B}'s events, view, streams and consumers are exactly as ${B}'s service user left them`, async () => {
  expect(await snapshotB()).toEqual(baselineB);
  expect(JSON.stringify(baselineB)).toContain(secret(B));
});

// ---------------------------------------------------------------------------------------
// Role boundaries INSIDE tenant A. Readers and writers live in accounts of their own, so
// answers they aim elsewhere land there. They may not delete consumers at all.
// Consumer create on EVENTS is create-or-update and matches any name (permissions cannot
// see the body), so a durable on EVENTS itself could be reconfigured by a reader: that is
// why processors run on the EVENTS_WORK mirror, where readers and writers have no rights.

describe('known holes inside tenant A (role boundaries)', () => {
  const durable = async () => {
    const name = unique('projector');
    await jsmA.consumers.add('EVENTS_WORK', {
      durable_name: name,
      filter_subject: `es.${A}.>`,
      ack_policy: 'explicit' as never,
      max_deliver: -1,
    });
    return name;
  };

  test('the service user cannot delete, rewrite or purge the event history', async () => {
    const before = (await jsmA.streams.info('EVENTS')).state.messages;
    const attempts: Array<[string, unknown]> = [
      ['$JS.API.STREAM.DELETE.EVENTS', undefined],
      ['$JS.API.STREAM.PURGE.EVENTS', {}],
      ['$JS.API.STREAM.MSG.DELETE.EVENTS', { seq: 1 }],
      // Shrinking a limit deletes events even with deny_delete and deny_purge on.
      ['$JS.API.STREAM.UPDATE.EVENTS', { name: 'EVENTS', subjects: ['es.>'], max_msgs_per_subject: 1 }],
      ['$JS.API.STREAM.DELETE.EVENTS_WORK', undefined],
      ['$JS.API.STREAM.DELETE.KV_views', undefined],
    ];
    for (const [subject, body] of attempts) {
      const o = await request(subject, body)(conn(A, 'service'));
      expect(o.kind, `${subject}: ${o.detail}`).toBe('denied');
    }
    expect((await jsmA.streams.info('EVENTS')).state.messages).toBe(before);
  });

  // nats-server publishes a request's answer to whatever reply subject the requester
  // names, unchecked. Readers and writers live in their own accounts, so the answer lands
  // there, where no stream, bucket or JetStream API lives.
  test.each(['reader', 'writer'] as const)(
    'answers a %s aims at the JetStream API, events or views land in its own account and change nothing',
    async (role) => {
      const nc = conn(A, role);
      const service = createEventStore({ connection: conn(A, 'service'), tenant: A });
      // An event with an empty body is an empty request: a delete needs nothing more.
      const empty = { type: 'acct', id: unique('empty') };
      await service.append(empty, { type: 'Closed', data: {} });
      const onEvents = await durable();
      await jsmA.consumers.add('EVENTS', { durable_name: onEvents, ack_policy: 'explicit' as never });
      const forged = { type: 'acct', id: unique('forged') };
      const viewsA = await views(conn(A, 'service'));
      const viewBefore = (await viewsA.get(`${A}.summary`))?.string();
      const before = (await jsmA.streams.info('EVENTS')).state.messages;
      const targets = [
        '$JS.API.STREAM.DELETE.EVENTS',
        '$JS.API.STREAM.PURGE.KV_views',
        '$JS.API.STREAM.DELETE.EVENTS_WORK',
        `$JS.API.CONSUMER.DELETE.EVENTS.${onEvents}`,
        `$JS.API.CONSUMER.DELETE.EVENTS_WORK.${await durable()}`,
        `$KV.views.${A}.summary`,
        `es.${A}.acct.${forged.id}.Deposited`,
        // The same, through what the role's own account imports.
        asApi(nc, `$JS.API.CONSUMER.CREATE.EVENTS.x.es.${A}.>`),
        asApi(nc, `$JS.API.DIRECT.GET.EVENTS.es.${A}.acct.${forged.id}.Deposited`),
      ];
      for (const reply of targets) {
        nc.publish(asApi(nc, `$JS.API.DIRECT.GET.EVENTS.es.${A}.acct.${empty.id}.Closed`), '', { reply });
        nc.publish(asApi(nc, `$JS.API.DIRECT.GET.KV_views.$KV.views.${A}.summary`), '', { reply });
      }
      await nc.flush();
      await sleep(300);
      expect((await jsmA.streams.info('EVENTS')).state.messages).toBe(before);
      expect((await jsmA.streams.info('EVENTS_WORK')).config.name).toBe('EVENTS_WORK');
      expect((await jsmA.consumers.info('EVENTS', onEvents)).name).toBe(onEvents);
      expect((await jsmA.consumers.list('EVENTS_WORK').next()).length).toBeGreaterThan(0);
      expect((await viewsA.get(`${A}.summary`))?.string()).toBe(viewBefore);
      expect(await service.version(forged)).toBe(0);
    },
  );

  // Deliveries land only on subscriptions with that exact subject: streams, buckets and
  // the JetStream API listen on wildcards, so a consumer aimed at them delivers nothing.
  test.each(['reader', 'writer'] as const)(
    "a %s's consumer aimed at the API, a view or an event subject of its own tenant changes nothing",
    async (role) => {
      const viewsA = await views(conn(A, 'service'));
      const viewBefore = (await viewsA.get(`${A}.summary`))?.string();
      const forged = { type: 'acct', id: unique('delivered') };
      const service = createEventStore({ connection: conn(A, 'service'), tenant: A });
      for (const deliver_subject of [
        '$JS.API.STREAM.DELETE.EVENTS_WORK',
        '$JS.API.STREAM.PURGE.KV_views',
        `$KV.views.${A}.summary`,
      ]) {
        const aimed = await createConsumer('EVENTS', `es.${A}.>`, { deliver_subject, deliver_policy: 'all' })(
          conn(A, role),
        );
        expect(aimed.kind, aimed.detail).toBe('answered');
      }
      const fromViews = await createConsumer('KV_views', `$KV.views.${A}.>`, {
        deliver_subject: `es.${A}.acct.${forged.id}.Deposited`,
        deliver_policy: 'all',
      })(conn(A, role));
      expect(['answered', 'refused']).toContain(fromViews.kind);
      await sleep(300);
      expect((await jsmA.streams.info('EVENTS_WORK')).config.name).toBe('EVENTS_WORK');
      expect((await viewsA.get(`${A}.summary`))?.string()).toBe(viewBefore);
      expect(await service.version(forged)).toBe(0);
    },
  );

  // A consumer a client creates lives in the data account, and its deliver_subject may be
  // any subject there: aimed at a durable's pull (MSG.NEXT) or reset subject, each event it
  // delivers would steal or rewind that durable's work. Processors' consumer names carry a
  // secret suffix, so a client knowing the processor's name has nothing to aim at.
  test.each(['reader', 'writer'] as const)(
    "a %s aiming deliveries at a processor's pull and reset subjects, by its name, changes nothing",
    async (role) => {
      const store = createEventStore({ connection: conn(A, 'service'), tenant: A });
      const name = unique('mailer');
      const seen: number[] = [];
      const processor = await startProcessor({
        store,
        name,
        consumerStream: 'EVENTS_WORK',
        handler: (e) => void seen.push(e.sequence),
      });
      try {
        const guessed = durableName(A, name);
        for (const api of ['MSG.NEXT', 'RESET']) {
          // Explicit acks: without them the pulls' replies have no listener and do nothing.
          const aimed = await createConsumer('EVENTS', `es.${A}.>`, {
            deliver_subject: `$JS.API.CONSUMER.${api}.EVENTS_WORK.${guessed}`,
            deliver_policy: 'all',
            ack_policy: 'explicit',
            headers_only: true,
          })(conn(A, role));
          expect(aimed.kind, aimed.detail).toBe('answered');
        }
        const { sequences } = await store.append(
          { type: 'acct', id: unique('p') },
          { type: 'Deposited', data: { amount: 1 } },
        );
        expect(await eventually(() => Promise.resolve(seen.includes(sequences[0]!)), Boolean)).toBe(true);
        // The handler sees the event a moment before the server has its ack.
        const info = await eventually(
          () => jsmA.consumers.info('EVENTS_WORK', processor.consumer),
          (i) => i.num_pending + i.num_ack_pending === 0,
        );
        expect(info.num_redelivered).toBe(0);
        expect(info.num_pending + info.num_ack_pending).toBe(0);
      } finally {
        await processor.stop();
      }
    },
  );

  test.each(['EVENTS', 'KV_views'])(
    'consumers a reader aims into the JetStream API on %s, which would never go idle, are removed by removeStrayConsumers',
    async (stream) => {
      const filter = stream === 'EVENTS' ? `es.${A}.>` : `$KV.views.${A}.>`;
      const name = unique('stray');
      // Delivering to its own pull subject, or to a $SYS service, keeps a consumer "active"
      // with no client at all.
      const stray = await createConsumer(stream, filter, {
        name,
        deliver_subject: `$JS.API.CONSUMER.MSG.NEXT.${stream}.${name}`,
      })(conn(A, 'reader'));
      expect(stray.kind, stray.detail).toBe('answered');
      const system = unique('stray');
      const toSystem = await createConsumer(stream, filter, {
        name: system,
        deliver_subject: '$SYS.REQ.USER.INFO',
      })(conn(A, 'reader'));
      expect(toSystem.kind, toSystem.detail).toBe('answered');
      const watcher = unique('watcher');
      const watching = await createConsumer(stream, filter, {
        name: watcher,
        deliver_subject: `${credentials(A, 'reader').inboxPrefix}.${unique('w')}`,
        inactive_threshold: 60_000_000_000,
      })(conn(A, 'reader'));
      expect(watching.kind, watching.detail).toBe('answered');
      // Earlier attacks in this file left such consumers too (those not yet expired).
      const before = await jsmA.consumers.list(stream).next();
      const aimed = before.filter((c) => c.config.deliver_subject?.startsWith('$')).map((c) => c.name);
      expect(aimed).toEqual(expect.arrayContaining([name, system]));
      const removed = await removeStrayConsumers(conn(A, 'service'), stream);
      expect(removed).toEqual(expect.arrayContaining([name, system]));
      expect(removed.every((n) => aimed.includes(n))).toBe(true);
      const left = (await jsmA.consumers.list(stream).next()).map((c) => c.name);
      expect(left.filter((n) => aimed.includes(n))).toEqual([]);
      // A client's watch consumer and the service's durable stay.
      expect(left).toContain(watcher);
      if (stream === 'EVENTS') expect(left).toContain(`${A}-projector`);
    },
  );

  test("a reader cannot delete the service's durable projector", async () => {
    const name = await durable();
    for (const stream of ['EVENTS', 'EVENTS_WORK']) {
      const o = await request(`$JS.API.CONSUMER.DELETE.${stream}.${name}`)(conn(A, 'reader'));
      expect(o.kind, o.detail).toBe('denied');
    }
    expect((await jsmA.consumers.info('EVENTS_WORK', name)).name).toBe(name);
  });

  test("a reader cannot reconfigure the service's durable projector on the mirror (max_deliver 1)", async () => {
    const name = await durable();
    const attempt = await request(`$JS.API.CONSUMER.CREATE.EVENTS_WORK.${name}.es.${A}.>`, {
      stream_name: 'EVENTS_WORK',
      config: {
        durable_name: name,
        name,
        filter_subject: `es.${A}.>`,
        ack_policy: 'explicit',
        max_deliver: 1,
      },
    })(conn(A, 'reader'));
    expect(attempt.kind, attempt.detail).toBe('denied');
    expect((await jsmA.consumers.info('EVENTS_WORK', name)).config.max_deliver).toBe(-1);
  });
});

// All readers of a tenant are one user of the bundled config, with one inbox prefix: each
// sees the others' API answers, and so their watches' deliver subjects and consumer names.
// What a watch can still do is refuse what its own consumer would not deliver.
describe('a reader against another reader of its tenant', () => {
  /**
   * A reader's watch of an entity with one event (read by its catch-up, so its consumer
   * has delivered nothing yet), and another reader who has snooped its consumer's create.
   */
  async function snoopedWatch() {
    const [victimConn, attacker] = await Promise.all([
      t.connect(credentials(A, 'reader')),
      t.connect(credentials(A, 'reader')),
    ]);
    const service = createEventStore({ connection: conn(A, 'service'), tenant: A });
    const watched = { type: 'acct', id: unique('watched') };
    const other = { type: 'acct', id: unique('other') };
    await service.append(other, { type: 'Opened', data: {} });
    const creates: Array<{ name: string; config: Record<string, unknown> }> = [];
    attacker.subscribe(`_INBOX_${A}_reader.>`, {
      callback: (_, msg) => {
        if (!msg.string().includes('"io.nats.jetstream.api.v1.consumer_create_response"')) return;
        creates.push(msg.json<{ name: string; config: Record<string, unknown> }>());
      },
    });
    await attacker.flush();
    /** Appends one event to the watched entity; returns how the watch shows it. */
    let appended = 0;
    const appendWatched = async () => {
      const n = ++appended;
      const { version } = await service.append(watched, { type: 'Opened', data: { n } });
      return `${watched.id} #${version} {"n":${n}}`;
    };
    const history = await appendWatched();
    /** What the watch emitted: each event as `<entity id> #<sequence> <data>`, else its kind. */
    const seen: string[] = [];
    const watch = createEventStore({ connection: victimConn, tenant: A })
      .watch(watched)
      .subscribe((m) =>
        seen.push(
          m.kind === 'event'
            ? `${m.event.entity.id} #${m.event.sequence} ${JSON.stringify(m.event.data)}`
            : m.kind,
        ),
      );
    const filter = `es.${A}.acct.${watched.id}.*`;
    const made = await eventually(
      async () => creates.filter((c) => c.config.filter_subject === filter),
      (found) => found.length > 0 && seen.includes('caught-up'),
    );
    // The attacks below aim at this consumer: the watch has made no other.
    expect(made).toHaveLength(1);
    const victim = made[0]!;
    /** A consumer create or update as the attacker, with the filter `config` names. */
    const create = (config: Record<string, unknown>, api?: 'UPDATE') =>
      createConsumer('EVENTS', String(config.filter_subject), config, api)(attacker);
    /** Appends one more event to the watched entity and waits until the watch shows it. */
    const appendSeen = async () => {
      const line = await appendWatched();
      await eventually(
        async () => seen.slice(),
        (s) => s.includes(line),
        10_000,
      );
      return line;
    };
    const close = async () => {
      watch.unsubscribe();
      await Promise.all([victimConn.close(), attacker.close()]);
    };
    return { service, other, filter, history, seen, victim, create, appendSeen, close };
  }

  test("a consumer aimed at a watch's inbox, or the watch's own consumer widened, puts nothing into the watch twice or off its filter", async () => {
    const { service, other, filter, history, seen, victim, create, appendSeen, close } = await snoopedWatch();
    // One: the attacker's own consumer on the same entity, delivering its history to the watch's inbox.
    const aimed = await create({
      name: unique('aimed'),
      filter_subject: filter,
      deliver_subject: victim.config.deliver_subject,
      deliver_policy: 'all',
    });
    // Two: the watch's own consumer, updated to the whole tenant; new events off its filter follow.
    const tenant = `es.${A}.>`;
    const widened = await create({ ...victim.config, filter_subject: tenant }, 'UPDATE');
    await service.append(other, { type: 'Closed', data: {} });
    const live = await appendSeen();
    await close();
    expect([aimed.kind, widened.kind], `${aimed.detail}; ${widened.detail}`).toEqual([
      'answered',
      'answered',
    ]);
    expect(JSON.parse(widened.replies[0]!.text).config.filter_subject).toBe(tenant);
    expect(seen).toEqual([history, 'caught-up', live]);
  });

  test("a watch whose consumer is turned to headers only makes it again and gets each event's data", async () => {
    const { history, seen, victim, create, appendSeen, close } = await snoopedWatch();
    const stripped = await create({ ...victim.config, headers_only: true }, 'UPDATE');
    const live = await appendSeen();
    await close();
    expect(stripped.kind, stripped.detail).toBe('answered');
    expect(JSON.parse(stripped.replies[0]!.text).config.headers_only).toBe(true);
    expect(seen).toEqual([history, 'caught-up', live]);
  });
});

// Last in the file: vitest runs a file's tests in order, so every attack above has run.
test('the suite made over 200 attack attempts, as the README says', () => {
  expect(counts.crossTenant + counts.ownTenant).toBeGreaterThan(200);
});
