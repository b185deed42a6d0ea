#!/usr/bin/env node
// Generates nats-server.conf from config/tenants.json. Each tenant gets a data account
// (its streams, buckets and service user) and one account per client role (writer,
// reader) that imports only what that role needs; every user is limited to its tenant's
// subjects and its own inbox prefix. A client role has one shared user, or the users a
// tenant lists for it (`"users": { "reader": ["alice"] }`), each with an inbox of its own.
//   node scripts/generate-server-config.mjs [--production] [--input file] [--output file]
// --production swaps the marked development passwords for $ENV references.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const plain = /^[A-Za-z0-9_-]{1,32}$/;
const size = /^\d+(KB|MB|GB|TB)?$/;

const normalized = (name) => name.toUpperCase().replace(/-/g, '_');

/** Throws a message naming the bad field when the tenants file is not usable. */
export function validateTenants(spec) {
  const problems = [];
  for (const key of ['prefix', 'stream', 'viewsBucket']) {
    if (!plain.test(spec?.[key] ?? '')) problems.push(`${key} must be 1-32 letters, digits, "_" or "-"`);
  }
  if (!Array.isArray(spec?.tenants) || spec.tenants.length === 0)
    problems.push('tenants must be a non-empty list');
  const seen = new Set();
  for (const [i, t] of (spec?.tenants ?? []).entries()) {
    // Tenant names become subject tokens, account names and inbox prefixes: no dots,
    // wildcards or spaces, and nothing that collides with NATS's own accounts.
    const name = t?.name;
    if (typeof name !== 'string' || !plain.test(name))
      problems.push(`tenants[${i}].name ${JSON.stringify(name)} must be 1-32 letters, digits, "_" or "-"`);
    else if (/^(SYS|\$G|\$SYS)$/i.test(name)) problems.push(`tenants[${i}].name ${name} is reserved`);
    // Names that differ only in case or "-" vs "_" would share a password variable.
    else if (seen.has(normalized(name)))
      problems.push(`tenants[${i}].name ${name} collides with another tenant (case or "-"/"_")`);
    if (typeof name === 'string') seen.add(normalized(name));
    for (const key of ['maxFile', 'maxMem'])
      if (t?.[key] !== undefined && !size.test(t[key]))
        problems.push(`tenants[${i}].${key} must look like 1GB`);
    for (const key of ['maxStreams', 'maxConsumers', 'maxConnections', 'maxSubscriptions'])
      if (t?.[key] !== undefined && !(Number.isInteger(t[key]) && t[key] > 0))
        problems.push(`tenants[${i}].${key} must be a positive integer`);
    problems.push(...userProblems(t?.users, `tenants[${i}].users`));
  }
  if (problems.length === 0) problems.push(...userCollisions(spec.tenants));
  if (problems.length) throw new Error(`invalid tenants file:\n  - ${problems.join('\n  - ')}`);
  return spec;
}

/**
 * Problems with a tenant's `users`: for each client role, the names of its users (each with
 * its own password and inbox prefix) in place of the one shared `<tenant>-<role>` user.
 */
function userProblems(users, where) {
  if (users === undefined) return [];
  if (typeof users !== 'object' || users === null || Array.isArray(users))
    return [`${where} must be an object like { "reader": ["alice", "bob"] }`];
  const problems = [];
  for (const [role, names] of Object.entries(users)) {
    if (!clientRoles.includes(role)) {
      problems.push(`${where}.${role}: only ${clientRoles.join(' and ')} can have users of their own`);
      continue;
    }
    if (!Array.isArray(names) || names.length === 0) {
      problems.push(`${where}.${role} must be a non-empty list of user names`);
      continue;
    }
    const seen = new Set();
    for (const name of names) {
      if (typeof name !== 'string' || !plain.test(name))
        problems.push(`${where}.${role}: ${JSON.stringify(name)} must be 1-32 letters, digits, "_" or "-"`);
      // `<tenant>-reader-service` would read like another tenant's role user.
      else if (roles.includes(name.toLowerCase()))
        problems.push(`${where}.${role}: ${name} is a role's name; pick another`);
      // Names that differ only in case or "-" vs "_" would share a password variable.
      else if (seen.has(normalized(name)))
        problems.push(`${where}.${role}: ${name} collides with another user (case or "-"/"_")`);
      if (typeof name === 'string') seen.add(normalized(name));
    }
  }
  return problems;
}

/** Users of different tenants or roles whose names (and so password variables) would be the same. */
function userCollisions(tenants) {
  const owners = new Map();
  const problems = [];
  for (const [i, t] of tenants.entries())
    for (const role of ['service', ...clientRoles])
      for (const user of t.users?.[role] ?? [undefined]) {
        const name = userName(t.name, role, user);
        const where = `tenants[${i}] ${user === undefined ? `${role} user` : `users.${role} ${user}`}`;
        const other = owners.get(normalized(name));
        if (other) problems.push(`user ${name} of ${where} collides with ${other} (case or "-"/"_")`);
        else owners.set(normalized(name), `${name} of ${where}`);
      }
  return problems;
}

/**
 * Where client accounts import their data account's JetStream API (`apiPrefix` in
 * connect()). Not `$JS.API`: every account answers that itself, if only to say it has no
 * JetStream, and that answer would race the imported one.
 */
export const clientApiPrefix = 'JS.API';

/** The subjects each role may publish to, in its own account. */
export function rolePermissions({ prefix, stream, viewsBucket }, tenant, role) {
  const kv = `KV_${viewsBucket}`;
  const api = role === 'service' ? '$JS.API' : clientApiPrefix;
  const read = [
    // Reads: direct get by subject, and batch get with a JSON body. The body cannot be
    // scoped by permissions, which is safe only because the data account holds one tenant.
    `${api}.DIRECT.GET.${stream}`,
    `${api}.DIRECT.GET.${stream}.>`,
    // Watch: a consumer whose filter is in the subject, on this tenant's events only.
    `${api}.CONSUMER.CREATE.${stream}.*.${prefix}.${tenant}.>`,
    // No CONSUMER.DELETE: it cannot be limited to the user's own consumers, and would let
    // a reader delete the service's durables. Watch consumers expire when unwatched.
    `$JS.FC.${stream}.>`,
    // Views: direct get and watch of this tenant's keys.
    `${api}.DIRECT.GET.${kv}.$KV.${viewsBucket}.${tenant}.>`,
    `${api}.CONSUMER.CREATE.${kv}.*.$KV.${viewsBucket}.${tenant}.>`,
    `$JS.FC.${kv}.>`,
    // Lets the client confirm which account (tenant) its credentials belong to.
    '$SYS.REQ.USER.INFO',
  ];
  switch (role) {
    case 'reader':
      return read;
    case 'writer':
      return [`${prefix}.${tenant}.>`, ...read];
    case 'service':
      // The tenant's own backend: stream and KV admin, projectors, durable processors.
      return [
        `${prefix}.${tenant}.>`,
        '$JS.API.>',
        '$JS.ACK.>',
        '$JS.FC.>',
        `$KV.${viewsBucket}.>`,
        '$KV.deadletters.>',
        '$SYS.REQ.USER.INFO',
      ];
    default:
      throw new Error(`unknown role ${role}`);
  }
}

/**
 * What a role may not publish even though its allow list covers it: the service user
 * administers streams and buckets, but never needs to delete, rewrite or purge them, and
 * its credentials live in long-running processes. (Shrinking limits such as
 * max_msgs_per_subject would delete events despite deny_delete.)
 */
export function roleDenials({ stream, viewsBucket }, role) {
  if (role !== 'service') return [];
  const streams = [stream, `${stream}_WORK`, `KV_${viewsBucket}`, 'KV_deadletters'];
  return streams.flatMap((s) =>
    ['DELETE', 'UPDATE', 'PURGE', 'MSG.DELETE'].map((api) => `$JS.API.STREAM.${api}.${s}`),
  );
}

export const roles = ['writer', 'reader', 'service'];

/** Roles whose users live outside the data account (see the isolation model in the output). */
export const clientRoles = ['writer', 'reader'];

/** The account of a tenant's role: the data account for the service, `<tenant>/<role>` for clients. */
export const accountOf = (tenant, role) => (clientRoles.includes(role) ? `${tenant}/${role}` : tenant);

/**
 * What a client role's account imports from its tenant's data account: the subjects it may
 * publish (each a service, direct gets answering with a stream of messages) and its inbox,
 * where its consumers deliver.
 */
export function roleImports(spec, tenant, role) {
  const services = rolePermissions(spec, tenant, role)
    .filter((subject) => !subject.startsWith('$SYS.'))
    .map((local) => ({
      local,
      // The data account's own name for it: its JetStream API is under $JS.API.
      service: local.startsWith(`${clientApiPrefix}.`)
        ? `$JS.API${local.slice(clientApiPrefix.length)}`
        : local,
      stream: local.startsWith(`${clientApiPrefix}.DIRECT.GET.`),
    }));
  return { services, inbox: `${inboxPrefix(tenant, role)}.>` };
}

/**
 * The inbox prefix a user's connections must use (`inboxPrefix` in connect()): the role's,
 * or for a named user of the role, one under it that only that user may subscribe to.
 */
export const inboxPrefix = (tenant, role, user) => `_INBOX_${tenant}_${role}${user ? `.${user}` : ''}`;

/** A user's name: `<tenant>-<role>`, or `<tenant>-<role>-<user>` for a named user. */
export const userName = (tenant, role, user) => `${tenant}-${role}${user ? `-${user}` : ''}`;

/** The development password of a user; production configs reference an environment variable instead. */
export const devPassword = (tenant, role, user) => `dev-${userName(tenant, role, user)}`;
const envName = (tenant, role, user) =>
  `JETSOURCE_${userName(tenant, role, user)}_PASSWORD`.toUpperCase().replace(/-/g, '_');

const q = (s) => JSON.stringify(s);
const list = (items, indent) => `[\n${items.map((s) => `${indent}  ${q(s)}`).join('\n')}\n${indent}]`;

const DEVELOPMENT_LISTENERS = `listen: "127.0.0.1:4222"
# Monitoring lists every account's users and streams: keep it on loopback.
http: "127.0.0.1:8222"
max_payload: 1MB

websocket {
  listen: "127.0.0.1:8080"
  # Plain ws:// on localhost for development only; the --production config terminates TLS
  # here and pins the web origins that may connect.
  no_tls: true
  # Pings find sockets that proxies dropped silently (needs nats-server >= 2.12.3).
  ping_interval: "20s"
  compression: true
}
`;

const PRODUCTION_LISTENERS = `listen: "0.0.0.0:4222"
tls { cert_file: $JETSOURCE_TLS_CERT, key_file: $JETSOURCE_TLS_KEY }
# No monitoring listener: it would list every account's users and streams.
max_payload: 1MB

websocket {
  listen: "0.0.0.0:443"
  tls { cert_file: $JETSOURCE_TLS_CERT, key_file: $JETSOURCE_TLS_KEY }
  # Only your web app's origin may open a browser connection.
  allowed_origins: [$JETSOURCE_ALLOWED_ORIGIN]
  ping_interval: "20s"
  compression: true
}
`;

export function renderConfig(spec, { production = false } = {}) {
  validateTenants(spec);
  const user = (t, role, name) => {
    const password = production ? `$${envName(t.name, role, name)}` : q(devPassword(t.name, role, name));
    const denials = roleDenials(spec, role);
    const deny = denials.length ? `\n            deny: ${list(denials, '            ')}` : '';
    return `      {
        user: ${q(userName(t.name, role, name))}
        password: ${password}${production ? '' : '  # DEVELOPMENT ONLY'}
        permissions: {
          publish: {
            allow: ${list(rolePermissions(spec, t.name, role), '            ')}${deny}
          }
          subscribe: { allow: [${q(`${inboxPrefix(t.name, role, name)}.>`)}] }
          # Lets the client answer flow-control requests of its own consumers.
          allow_responses: true
        }
      }`;
  };
  // One tenant must not exhaust the server for the others.
  const limits = (t) => `    limits {
      max_connections: ${t.maxConnections ?? 1000}
      max_subscriptions: ${t.maxSubscriptions ?? 100000}
    }`;
  const accounts = spec.tenants.flatMap((t) => {
    // Each subject once, with every client account that may import it.
    const exported = new Map();
    for (const role of clientRoles) {
      const { services, inbox } = roleImports(spec, t.name, role);
      for (const { service, stream } of services) {
        const entry = exported.get(service) ?? { kind: stream ? 'service-stream' : 'service', to: [] };
        exported.set(service, { ...entry, to: [...entry.to, accountOf(t.name, role)] });
      }
      exported.set(inbox, { kind: 'stream', to: [accountOf(t.name, role)] });
    }
    const exports = [...exported].map(([subject, { kind, to }]) => {
      const accounts = `accounts: [${to.map(q).join(', ')}]`;
      if (kind === 'stream') return `      { stream: ${q(subject)}, ${accounts} }`;
      const response = kind === 'service-stream' ? 'response_type: stream, ' : '';
      return `      { service: ${q(subject)}, ${response}${accounts} }`;
    });
    const data = `  ${q(t.name)} {
${limits(t)}
    jetstream {
      max_file: ${t.maxFile ?? '1GB'}
      max_mem: ${t.maxMem ?? '64MB'}
      max_streams: ${t.maxStreams ?? 8}
      max_consumers: ${t.maxConsumers ?? 500}
    }
    users: [
${user(t, 'service')}
    ]
    exports: [
${exports.join('\n')}
    ]
  }`;
    const clients = clientRoles.map((role) => {
      const { services, inbox } = roleImports(spec, t.name, role);
      const from = `account: ${q(t.name)}`;
      const imports = [
        ...services.map(
          ({ service, local }) =>
            `      { service: { ${from}, subject: ${q(service)} }${local === service ? '' : `, to: ${q(local)}`} }`,
        ),
        `      { stream: { ${from}, subject: ${q(inbox)} } }`,
      ];
      return `  ${q(accountOf(t.name, role))} {
${limits(t)}
    users: [
${(t.users?.[role] ?? [undefined]).map((name) => user(t, role, name)).join('\n')}
    ]
    imports: [
${imports.join('\n')}
    ]
  }`;
    });
    return [data, ...clients];
  });
  return `# nats-server configuration for jetsource.
# GENERATED by scripts/generate-server-config.mjs from config/tenants.json; do not edit by hand.
${production ? '# Production: passwords come from JETSOURCE_<TENANT>_<ROLE>[_<NAME>]_PASSWORD environment variables.\n' : '# DEVELOPMENT configuration: the passwords below are public. Generate with --production for real use.\n'}#
# Isolation model: accounts share nothing unless they export it. Each tenant has a data
# account holding its streams and KV buckets and its service user (stream/KV admin,
# projectors), and an account per client role: <tenant>/writer (append, read, watch,
# read views) and <tenant>/reader (read, watch, read views). A client account imports
# from its data account only the subjects its role may publish, and its own inbox.
# Subject permissions inside one shared account are NOT enough: nats-server publishes a
# request's answer (a direct get's stored message, an API reply) to whatever reply
# subject the requester names, unchecked, so a user sharing an account with the streams
# could aim it at $JS.API.STREAM.DELETE or at event and KV subjects. From a client account
# answers come back into that account, where no stream or API lives. (Also nats-server
# #8274: a push consumer's deliver_subject is not checked against its creator's rights.)

${production ? PRODUCTION_LISTENERS : DEVELOPMENT_LISTENERS}
jetstream {
  store_dir: ".data/nats"
  # Events are the source of truth: fsync every write. The default (every 2 min) can
  # lose acknowledged writes on power loss (Jepsen, NATS 2.12.1).
  sync_interval: always
  max_memory_store: 256MB
  max_file_store: 10GB
}

accounts {
${accounts.join('\n')}
}
`;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const arg = (name, fallback) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : fallback;
  };
  try {
    const production = process.argv.includes('--production');
    // The checked-in nats-server.conf is the development config every script and test uses.
    if (production && !process.argv.includes('--output'))
      throw new Error('--production needs --output <file>: nats-server.conf is the development config');
    const input = resolve(arg('--input', resolve(root, 'config/tenants.json')));
    const output = resolve(arg('--output', resolve(root, 'nats-server.conf')));
    const spec = JSON.parse(readFileSync(input, 'utf8'));
    writeFileSync(output, renderConfig(spec, { production }));
    console.error(`wrote ${output} for tenants ${spec.tenants.map((t) => t.name).join(', ')}`);
  } catch (err) {
    console.error(err.message);
    process.exit(1);
  }
}
