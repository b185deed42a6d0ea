import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, test } from 'vitest';
import {
  accountOf,
  clientApiPrefix,
  devPassword,
  inboxPrefix,
  renderConfig,
  rolePermissions,
  roles,
  validateTenants,
  // @ts-expect-error -- plain ESM script without types
} from '../../scripts/generate-server-config.mjs';

type Tenant = {
  name: string;
  maxFile?: string;
  maxMem?: string;
  maxStreams?: number;
  maxConsumers?: number;
  maxConnections?: number;
  maxSubscriptions?: number;
  users?: Partial<Record<Role, string[]>>;
};
type Spec = { prefix: string; stream: string; viewsBucket: string; tenants: Tenant[] };
type Role = 'writer' | 'reader' | 'service';

const root = new URL('../../', import.meta.url);
const checkedIn = JSON.parse(readFileSync(new URL('config/tenants.json', root), 'utf8')) as Spec;
const spec = (...names: string[]): Spec => ({
  prefix: 'es',
  stream: 'EVENTS',
  viewsBucket: 'views',
  tenants: names.map((name) => ({ name })),
});
const validate = validateTenants as (s: unknown) => Spec;
const render = renderConfig as (s: unknown, o?: { production?: boolean }) => string;
const permissions = rolePermissions as (s: Spec, tenant: string, role: Role) => string[];
const allRoles = roles as Role[];

/** The text of one account block of a rendered config. */
function account(config: string, name: string): string {
  const start = config.indexOf(`\n  "${name}" {\n`);
  expect(start, `account ${name}`).toBeGreaterThan(0);
  const end = config.indexOf('\n  }\n', start);
  return config.slice(start, end);
}

/** NATS subject matching, `*` one token and `>` the rest (enough for permission checks). */
function matches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i;
    if (i >= s.length || (p[i] !== '*' && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
}

describe('validateTenants', () => {
  test('accepts the checked-in tenants file', () => {
    expect(validate(checkedIn)).toBe(checkedIn);
  });

  test.each([
    ['a dot', 'ac.me'],
    ['a * wildcard', 'ac*me'],
    ['a lone *', '*'],
    ['a > wildcard', 'acme>'],
    ['a lone >', '>'],
    ['a space', 'ac me'],
    ['a tab', 'ac\tme'],
    ['the empty string', ''],
    ['a $ (system-style name)', '$acme'],
    ['a non-ASCII letter', 'acmé'],
    ['33 characters', 'a'.repeat(33)],
  ])('rejects a tenant name with %s', (_label, name) => {
    expect(() => validate(spec('ok', name))).toThrow(/tenants\[1\]\.name/);
  });

  test.each([
    ['a missing name', { maxFile: '1GB' }],
    ['null', null],
  ])('rejects a tenant with %s', (_label, tenant) => {
    expect(() => validate({ ...spec('ok'), tenants: [{ name: 'ok' }, tenant] })).toThrow(
      /tenants\[1\]\.name/,
    );
  });

  test('rejects a numeric tenant name', () => {
    // Throws, but as a TypeError from `t.name.toLowerCase` (the regex test coerces 42 to
    // "42"), not as the "invalid tenants file" message naming the field.
    expect(() => validate({ ...spec('ok'), tenants: [{ name: 'ok' }, { name: 42 }] })).toThrow();
  });

  test.each([
    ['exact', 'acme', 'acme'],
    ['case-insensitive', 'acme', 'ACME'],
    ['mixed case', 'Globex', 'gLOBEX'],
  ])('rejects duplicate tenant names (%s)', (_label, first, second) => {
    expect(() => validate(spec(first, second))).toThrow(/tenants\[1\]\.name .* collides with another tenant/);
  });

  test.each(['SYS', 'sys', 'Sys'])('rejects the reserved name %s', (name) => {
    expect(() => validate(spec(name))).toThrow(/is reserved/);
  });

  test('rejects an empty or missing tenant list', () => {
    expect(() => validate({ ...spec(), tenants: [] })).toThrow(/tenants must be a non-empty list/);
    expect(() => validate({ prefix: 'es', stream: 'EVENTS', viewsBucket: 'views' })).toThrow(
      /non-empty list/,
    );
    expect(() => validate(undefined)).toThrow(/invalid tenants file/);
  });

  test.each(['prefix', 'stream', 'viewsBucket'] as const)('rejects a %s that is not a plain token', (key) => {
    for (const bad of ['', 'a.b', '*', '>', 'a b'])
      expect(() => validate({ ...spec('acme'), [key]: bad })).toThrow(new RegExp(`${key} must be`));
  });

  test('rejects malformed limits', () => {
    const withLimits = (limits: Partial<Tenant>) => ({ ...spec(), tenants: [{ name: 'acme', ...limits }] });
    expect(() => validate(withLimits({ maxFile: '1 GB' }))).toThrow(/maxFile/);
    expect(() => validate(withLimits({ maxMem: 'lots' }))).toThrow(/maxMem/);
    expect(() => validate(withLimits({ maxStreams: 0 }))).toThrow(/maxStreams/);
    expect(() => validate(withLimits({ maxConsumers: 1.5 }))).toThrow(/maxConsumers/);
    expect(() => validate(withLimits({ maxConnections: -1 }))).toThrow(/maxConnections/);
    expect(() => validate(withLimits({ maxSubscriptions: 0 }))).toThrow(/maxSubscriptions/);
    expect(
      validate(withLimits({ maxFile: '10GB', maxMem: '512MB', maxStreams: 2, maxConsumers: 9 })),
    ).toBeTruthy();
  });

  test('lists every problem at once', () => {
    expect(() => validate({ ...spec('a.b', 'c d'), prefix: 'x.y' })).toThrow(
      /prefix must be[\s\S]*tenants\[0\][\s\S]*tenants\[1\]/,
    );
  });

  test('renderConfig validates too', () => {
    expect(() => render(spec('ac.me'))).toThrow(/invalid tenants file/);
  });
});

describe('users of their own', () => {
  const withUsers = (users: unknown): Spec => ({
    ...spec('acme'),
    tenants: [{ name: 'acme', users } as Tenant],
  });

  test('a role may list users, each with its own name, password and inbox prefix under the role', () => {
    const config = render(withUsers({ reader: ['alice', 'bob'] }));
    const reader = account(config, 'acme/reader');
    expect([...reader.matchAll(/user: "([^"]+)"/g)].map((m) => m[1])).toEqual([
      'acme-reader-alice',
      'acme-reader-bob',
    ]);
    expect([...reader.matchAll(/password: "([^"]+)"/g)].map((m) => m[1])).toEqual([
      devPassword('acme', 'reader', 'alice'),
      devPassword('acme', 'reader', 'bob'),
    ]);
    // Neither may subscribe to the other's inbox, nor to the role's as a whole.
    expect([...reader.matchAll(/subscribe: \{ allow: \[([^\]]*)\] \}/g)].map((m) => m[1])).toEqual([
      '"_INBOX_acme_reader.alice.>"',
      '"_INBOX_acme_reader.bob.>"',
    ]);
    expect(inboxPrefix('acme', 'reader', 'alice')).toBe('_INBOX_acme_reader.alice');
    // Both answer on the inbox the account imports, and have the role's permissions.
    expect(reader).toMatch(/subject: "_INBOX_acme_reader\.>"/);
    const allow = [...reader.matchAll(/allow: \[\n([^\]]*)\]/g)].map((m) => m[1]);
    expect(allow).toHaveLength(2);
    expect(allow[0]).toBe(allow[1]);
    // A role without a list keeps its one user.
    const writer = account(config, 'acme/writer');
    expect([...writer.matchAll(/user: "([^"]+)"/g)].map((m) => m[1])).toEqual(['acme-writer']);
    const production = render(withUsers({ reader: ['alice', 'bob'] }), { production: true });
    expect([...production.matchAll(/password: (\S+)/g)].map((m) => m[1])).toEqual([
      '$JETSOURCE_ACME_SERVICE_PASSWORD',
      '$JETSOURCE_ACME_WRITER_PASSWORD',
      '$JETSOURCE_ACME_READER_ALICE_PASSWORD',
      '$JETSOURCE_ACME_READER_BOB_PASSWORD',
    ]);
  });

  test.each([
    ['a list', ['alice'], /users must be an object/],
    ['the service role', { service: ['alice'] }, /users\.service: only writer and reader/],
    ['an empty list', { reader: [] }, /users\.reader must be a non-empty list/],
    ['a name with a dot', { reader: ['a.b'] }, /users\.reader: "a\.b" must be 1-32 letters/],
    [
      'names that differ in case',
      { writer: ['Alice', 'alice'] },
      /users\.writer: alice collides with another user/,
    ],
    ["a role's name", { reader: ['Service'] }, /users\.reader: Service is a role's name/],
  ])('rejects %s', (_label, users, message) => {
    expect(() => validate(withUsers(users))).toThrow(message);
  });

  test('the checked-in tenants file keeps one shared user per client role: the demo, examples and tests log in as them', () => {
    expect(checkedIn.tenants.filter((t) => t.users !== undefined)).toEqual([]);
  });

  test("rejects a user whose name is another tenant's user's", () => {
    const both = {
      ...spec('acme'),
      tenants: [{ name: 'acme', users: { reader: ['x-writer'] } }, { name: 'acme-reader-x' }],
    };
    expect(() => validate(both)).toThrow(
      'user acme-reader-x-writer of tenants[1] writer user collides with acme-reader-x-writer of tenants[0] users.reader x-writer',
    );
  });
});

describe('rolePermissions', () => {
  const s = spec('acme', 'globex');
  const eventSubject = 'es.acme.account.a1.Opened';

  test("a reader may not publish to any event subject, its own tenant's included", () => {
    const reader = permissions(s, 'acme', 'reader');
    for (const subject of [eventSubject, 'es.acme.x', 'es.globex.account.g1.Opened'])
      expect(reader.filter((p) => matches(p, subject))).toEqual([]);
    expect(reader.some((p) => p.startsWith('es.'))).toBe(false);
  });

  test("a writer may publish only its own tenant's events", () => {
    const writer = permissions(s, 'acme', 'writer');
    expect(writer.filter((p) => matches(p, eventSubject))).toEqual(['es.acme.>']);
    expect(writer.filter((p) => matches(p, 'es.globex.account.g1.Opened'))).toEqual([]);
  });

  test('readers and writers may not write views; only the service may', () => {
    for (const role of ['reader', 'writer'] as const)
      expect(permissions(s, 'acme', role).filter((p) => matches(p, '$KV.views.acme.summary'))).toEqual([]);
    expect(permissions(s, 'acme', 'service').filter((p) => matches(p, '$KV.views.acme.summary'))).not.toEqual(
      [],
    );
  });

  test('readers and writers get none of the unscopable JetStream APIs, under either prefix', () => {
    const denied = [
      '$JS.API.STREAM.INFO.EVENTS',
      '$JS.API.STREAM.MSG.GET.EVENTS',
      '$JS.API.STREAM.CREATE.X',
      '$JS.API.STREAM.UPDATE.EVENTS',
      '$JS.API.STREAM.PURGE.EVENTS',
      '$JS.API.STREAM.DELETE.EVENTS',
      '$JS.API.STREAM.NAMES',
      '$JS.API.CONSUMER.CREATE.EVENTS.c',
      '$JS.API.CONSUMER.CREATE.EVENTS',
      '$JS.API.CONSUMER.CREATE.EVENTS.c.es.globex.>',
      '$JS.API.CONSUMER.DURABLE.CREATE.EVENTS.c',
      '$JS.API.CONSUMER.MSG.NEXT.EVENTS.c',
      '$JS.API.CONSUMER.INFO.EVENTS.c',
      '$JS.API.CONSUMER.LIST.EVENTS',
      '$JS.API.CONSUMER.NAMES.EVENTS',
      '$JS.API.DIRECT.GET.KV_views',
      '$JS.API.DIRECT.GET.KV_views.$KV.views.globex.summary',
      '$JS.API.INFO',
      '$JS.API.META.LEADER.STEPDOWN',
      '$SYS.REQ.SERVER.PING.CONNZ',
    ];
    for (const role of ['reader', 'writer'] as const) {
      const allowed = permissions(s, 'acme', role);
      for (const subject of denied.flatMap((d) => [d, d.replace(/^\$JS\.API/, clientApiPrefix as string)]))
        expect(
          allowed.filter((p) => matches(p, subject)),
          `${role}: ${subject}`,
        ).toEqual([]);
    }
  });

  test("no role's permissions name another tenant", () => {
    for (const tenant of ['acme', 'globex'])
      for (const role of allRoles)
        for (const p of permissions(s, tenant, role))
          expect(p.split('.'), `${tenant}-${role}: ${p}`).not.toContain(
            tenant === 'acme' ? 'globex' : 'acme',
          );
  });

  test('uses the configured prefix, stream and bucket', () => {
    const custom = { prefix: 'ev', stream: 'LOG', viewsBucket: 'proj', tenants: [{ name: 't1' }] };
    expect(permissions(custom, 't1', 'writer')).toEqual(
      expect.arrayContaining([
        'ev.t1.>',
        'JS.API.DIRECT.GET.LOG.>',
        'JS.API.CONSUMER.CREATE.LOG.*.ev.t1.>',
        'JS.API.DIRECT.GET.KV_proj.$KV.proj.t1.>',
      ]),
    );
    expect(permissions(custom, 't1', 'service')).toContain('$KV.proj.>');
  });

  test('an unknown role is an error, not an empty permission list', () => {
    expect(() => permissions(s, 'acme', 'admin' as Role)).toThrow(/unknown role/);
  });
});

describe('renderConfig', () => {
  test('the checked-in nats-server.conf is exactly renderConfig(config/tenants.json)', () => {
    expect(readFileSync(new URL('nats-server.conf', root), 'utf8')).toBe(render(checkedIn));
  });

  test('a data account per tenant with its service user, and an account per client role with its user', () => {
    const config = render(spec('acme', 'globex', 'initech'));
    for (const tenant of ['acme', 'globex', 'initech']) {
      for (const role of allRoles) {
        const block = account(config, accountOf(tenant, role) as string);
        const users = [...block.matchAll(/user: "([^"]+)"/g)].map((m) => m[1]);
        expect(users).toEqual([`${tenant}-${role}`]);
        const subscribe = [...block.matchAll(/subscribe: \{ allow: \[([^\]]*)\] \}/g)].map((m) => m[1]);
        expect(subscribe).toEqual([`"${inboxPrefix(tenant, role)}.>"`]);
      }
      // Only the data account has JetStream; client accounts only import from it.
      const data = account(config, tenant);
      expect(data).toMatch(/jetstream \{/);
      for (const role of ['writer', 'reader'] as const) {
        const client = account(config, accountOf(tenant, role) as string);
        expect(client).not.toMatch(/jetstream|exports/);
        const from = [...client.matchAll(/account: "([^"]+)"/g)].map((m) => m[1]);
        expect(new Set(from)).toEqual(new Set([tenant]));
      }
      // The data account exports only to its own tenant's client accounts.
      const to = [...data.matchAll(/accounts: \[([^\]]*)\]/g)].flatMap((m) => m[1]!.split(', '));
      expect(new Set(to)).toEqual(new Set([`"${tenant}/writer"`, `"${tenant}/reader"`]));
    }
  });

  test('a client account imports exactly what its role may publish, the JetStream API under JS.API, and its inbox', () => {
    const config = render(spec('acme'));
    for (const role of ['writer', 'reader'] as const) {
      const client = account(config, `acme/${role}`);
      const imported = [
        ...client.matchAll(/\{ service: \{ account: "acme", subject: "([^"]+)" \}(?:, to: "([^"]+)")? \}/g),
      ].map((m) => m[2] ?? m[1]);
      expect(imported).toEqual(permissions(spec('acme'), 'acme', role).filter((p) => !p.startsWith('$SYS.')));
      for (const [, exported, local] of client.matchAll(/subject: "([^"]+)" \}, to: "([^"]+)"/g))
        expect(exported).toBe(local!.replace(/^JS\.API/, '$JS.API'));
      expect(client).toContain(`{ stream: { account: "acme", subject: "${inboxPrefix('acme', role)}.>" } }`);
    }
  });

  test('development mode marks its public passwords', () => {
    const config = render(checkedIn);
    for (const { name } of checkedIn.tenants)
      for (const role of allRoles)
        expect(config).toContain(`password: "${devPassword(name, role)}"  # DEVELOPMENT ONLY`);
  });

  test('production mode has no development passwords and references an environment variable per user', () => {
    const config = render(checkedIn, { production: true });
    expect(config).not.toMatch(/dev-|DEVELOPMENT ONLY|DEVELOPMENT configuration/);
    const refs = [...config.matchAll(/password: (.*)/g)].map((m) => m[1]);
    expect(refs).toEqual(
      checkedIn.tenants.flatMap(({ name }) =>
        // The data account's service user, then the writer's and reader's accounts.
        ['service', 'writer', 'reader'].map(
          (role) => `$JETSOURCE_${name.toUpperCase()}_${role.toUpperCase()}_PASSWORD`,
        ),
      ),
    );
    // The accounts and permissions are the same as in development; only listeners and secrets differ.
    const accounts = (text: string) => text.slice(text.indexOf('accounts {')).replace(/^.*password.*$/gm, '');
    expect(accounts(config)).toBe(accounts(render(checkedIn)));
    expect(config).not.toMatch(/^http:/m);
    expect(config).toMatch(/allowed_origins/);
  });

  // The variable name upper-cases the tenant and maps "-" to "_": "a-b" and "a_b" would share
  // JETSOURCE_A_B_<ROLE>_PASSWORD, so validateTenants rejects such pairs.
  test('production mode never gives two users the same password variable', () => {
    expect(() => render(spec('a-b', 'a_b'), { production: true })).toThrow(/collides with another tenant/);
    let config: string;
    try {
      config = render(spec('a-b', 'a_b'), { production: true });
    } catch {
      return; // rejected as colliding: fine
    }
    const refs = [...config.matchAll(/password: (\S+)/g)].map((m) => m[1]);
    expect(new Set(refs).size).toBe(refs.length);
  });

  test('the service user may not delete, update or purge the streams it administers', () => {
    const config = render(spec('acme'));
    const service = config.slice(config.indexOf('user: "acme-service"'));
    for (const stream of ['EVENTS', 'EVENTS_WORK', 'KV_views', 'KV_deadletters'])
      for (const api of ['DELETE', 'UPDATE', 'PURGE', 'MSG.DELETE'])
        expect(service).toContain(`"$JS.API.STREAM.${api}.${stream}"`);
    expect(config.slice(0, config.indexOf('user: "acme-service"'))).not.toContain('deny:');
  });

  test('applies the tenant limits, with defaults', () => {
    const config = render({
      ...spec(),
      tenants: [
        {
          name: 'big',
          maxFile: '10GB',
          maxMem: '1GB',
          maxStreams: 3,
          maxConsumers: 42,
          maxConnections: 7,
          maxSubscriptions: 70,
        },
        { name: 'small' },
      ],
    });
    expect(account(config, 'big')).toMatch(/limits \{\s+max_connections: 7\s+max_subscriptions: 70\s+\}/);
    expect(account(config, 'small')).toMatch(
      /limits \{\s+max_connections: 1000\s+max_subscriptions: 100000\s+\}/,
    );
    expect(account(config, 'big')).toMatch(
      /max_file: 10GB\s+max_mem: 1GB\s+max_streams: 3\s+max_consumers: 42/,
    );
    expect(account(config, 'small')).toMatch(
      /max_file: 1GB\s+max_mem: 64MB\s+max_streams: 8\s+max_consumers: 500/,
    );
  });

  const bin = process.env.NATS_SERVER_BIN;
  test('nats-server accepts the development and production configs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'jetsource-conf-'));
    try {
      // Production terminates TLS itself: give it a throwaway self-signed certificate.
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'rsa:2048',
          '-nodes',
          '-subj',
          '/CN=localhost',
          '-days',
          '1',
          '-keyout',
          join(dir, 'tls.key'),
          '-out',
          join(dir, 'tls.crt'),
        ],
        { stdio: 'ignore' },
      );
      for (const production of [false, true]) {
        const file = join(dir, `${production}.conf`);
        writeFileSync(file, render(checkedIn, { production }));
        const env = { ...process.env };
        for (const m of render(checkedIn, { production }).matchAll(/password: \$(\w+)/g))
          env[m[1]!] = 'secret';
        Object.assign(env, {
          JETSOURCE_TLS_CERT: join(dir, 'tls.crt'),
          JETSOURCE_TLS_KEY: join(dir, 'tls.key'),
          JETSOURCE_ALLOWED_ORIGIN: 'https://app.example.com',
        });
        const out = execFileSync(resolve(bin!), ['-t', '-c', file], {
          cwd: dir,
          env,
          encoding: 'utf8',
          stdio: 'pipe',
        });
        expect(out + '').not.toMatch(/error/i);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
