import type { NatsConnection } from '@nats-io/nats-core';
import { describe, expect, test } from 'vitest';
import { assertSupportedServer, supportsAtomicAppends } from '../../src/connection/server-version.js';
import { createEventStore, UnsupportedServerError } from '../../src/index.js';
import { thrown } from '../support/thrown.js';

/** A connection that only reports which server it is on: the gate must not need more. */
/** A connection's shape, on a server of that version; refused before any request is made. */
const onServer = (version?: string) =>
  ({
    info: version === undefined ? undefined : { version },
    request: () => Promise.reject(new Error('no I/O here')),
    status: () => [][Symbol.iterator](),
  }) as unknown as NatsConnection;

describe('supportsAtomicAppends', () => {
  test.each(['2.9.10', '2.11.8', '1.4.1', '2.12.0', '2.12.13', '2.13.0', '2.14.0', '2.14.3'])(
    '%s cannot keep atomic appends',
    (version) => {
      expect(supportsAtomicAppends(version)).toBe(false);
    },
  );

  test.each(['2.12.14', '2.12.20', '2.14.4', '2.14.5', '2.15.1', '2.15.0-RC.2', '2.20.0', '3.0.0'])(
    '%s keeps them',
    (version) => {
      expect(supportsAtomicAppends(version)).toBe(true);
    },
  );
});

describe('assertSupportedServer', () => {
  test('refuses a store on a server too old for atomic appends, before any I/O', () => {
    const err = thrown(() => createEventStore({ connection: onServer('2.10.22'), tenant: 't' }));
    expect(err).toBeInstanceOf(UnsupportedServerError);
    expect((err as UnsupportedServerError).version).toBe('2.10.22');
  });

  test('passes a supported server, and one whose version is not known yet', () => {
    expect(() => assertSupportedServer(onServer('2.15.1'))).not.toThrow();
    expect(() => assertSupportedServer(onServer())).not.toThrow();
  });

  test('approving one server does not approve the next one', () => {
    assertSupportedServer(onServer('2.14.4'));
    expect(thrown(() => assertSupportedServer(onServer('2.14.3')))).toBeInstanceOf(UnsupportedServerError);
  });
});
