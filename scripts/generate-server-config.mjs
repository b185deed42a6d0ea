#!/usr/bin/env node
// Generates nats-server.conf from config/tenants.json: one NATS account per tenant
// (the unit of isolation) with writer, reader and service users, each limited to its
// tenant's subjects and its own inbox prefix.
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
    else if (/^(SYS|\$G|\$SYS|include)$/i.test(name)) problems.push(`tenants[${i}].name ${name} is reserved`);
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
  }
  if (problems.length) throw new Error(`invalid tenants file:\n  - ${problems.join('\n  - ')}`);
  return spec;
}

/** The subjects each role may publish to, inside its tenant's own account. */
export function rolePermissions({ prefix, stream, viewsBucket }, tenant, role) {
  const kv = `KV_${viewsBucket}`;
  const read = [
    // Reads: direct get by subject, and batch get with a JSON body. The body cannot be
    // scoped by permissions, which is safe only because this account holds one tenant.
    `$JS.API.DIRECT.GET.${stream}`,
    `$JS.API.DIRECT.GET.${stream}.>`,
    // Watch: a consumer whose filter is in the subject, on this tenant's events only.
    `$JS.API.CONSUMER.CREATE.${stream}.*.${prefix}.${tenant}.>`,
    // No CONSUMER.DELETE: it cannot be limited to the user's own consumers, and would let
    // a reader delete the service's durables. Watch consumers expire when unwatched.
    `$JS.FC.${stream}.>`,
    // Views: direct get and watch of this tenant's keys.
    `$JS.API.DIRECT.GET.${kv}.$KV.${viewsBucket}.${tenant}.>`,
    `$JS.API.CONSUMER.CREATE.${kv}.*.$KV.${viewsBucket}.${tenant}.>`,
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

/** The inbox prefix a role's connections must use (`inboxPrefix` in connect()). */
export const inboxPrefix = (tenant, role) => `_INBOX_${tenant}_${role}`;

/** The development password of a user; production configs reference an environment variable instead. */
export const devPassword = (tenant, role) => `dev-${tenant}-${role}`;
const envName = (tenant, role) => `JETSOURCE_${tenant}_${role}_PASSWORD`.toUpperCase().replace(/-/g, '_');

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
  const accounts = spec.tenants.map((t) => {
    const users = roles.map((role) => {
      const password = production ? `$${envName(t.name, role)}` : q(devPassword(t.name, role));
      const denials = roleDenials(spec, role);
      const deny = denials.length ? `\n            deny: ${list(denials, '            ')}` : '';
      return `      {
        user: ${q(`${t.name}-${role}`)}
        password: ${password}${production ? '' : '  # DEVELOPMENT ONLY'}
        permissions: {
          publish: {
            allow: ${list(rolePermissions(spec, t.name, role), '            ')}${deny}
          }
          subscribe: { allow: [${q(`${inboxPrefix(t.name, role)}.>`)}] }
          # Lets the client answer flow-control requests of its own consumers.
          allow_responses: true
        }
      }`;
    });
    return `  ${t.name} {
    # One tenant must not exhaust the server for the others.
    limits {
      max_connections: ${t.maxConnections ?? 1000}
      max_subscriptions: ${t.maxSubscriptions ?? 100000}
    }
    jetstream {
      max_file: ${t.maxFile ?? '1GB'}
      max_mem: ${t.maxMem ?? '64MB'}
      max_streams: ${t.maxStreams ?? 8}
      max_consumers: ${t.maxConsumers ?? 500}
    }
    users: [
${users.join('\n')}
    ]
  }`;
  });
  return `# nats-server configuration for jetsource.
# GENERATED by scripts/generate-server-config.mjs from config/tenants.json; do not edit by hand.
${production ? '# Production: passwords come from JETSOURCE_<TENANT>_<ROLE>_PASSWORD environment variables.\n' : '# DEVELOPMENT configuration: the passwords below are public. Generate with --production for real use.\n'}#
# Isolation model: one NATS account per tenant. Accounts share nothing unless they
# export it, so no subject, stream, consumer, KV bucket or inbox of one tenant is
# reachable from another. Subject permissions inside one shared account are NOT enough
# (nats-server #8274: a push consumer's deliver_subject is never checked against its
# creator's permissions; direct batch get and inboxes cannot be scoped either).
# Inside an account, users are roles: writer (append, read, watch, read views),
# reader (read, watch, read views) and service (stream/KV admin, projectors).

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
    const input = resolve(arg('--input', resolve(root, 'config/tenants.json')));
    const output = resolve(arg('--output', resolve(root, 'nats-server.conf')));
    const spec = JSON.parse(readFileSync(input, 'utf8'));
    writeFileSync(output, renderConfig(spec, { production: process.argv.includes('--production') }));
    console.error(`wrote ${output} for tenants ${spec.tenants.map((t) => t.name).join(', ')}`);
  } catch (err) {
    console.error(err.message);
    process.exit(1);
  }
}
