import { errors } from '@nats-io/nats-core';
import { describe, expect, test } from 'vitest';
import { adminStep } from '../../src/connection/request-errors.js';
import { PermissionDeniedError, StoreConfigError, UnavailableError } from '../../src/index.js';

describe('adminStep', () => {
  const refused = (err: unknown) => adminStep('ensureStore (stream EVENTS)', () => Promise.reject(err));

  test('a server without JetStream says so, however nats.js reports it', async () => {
    const notEnabled = Object.assign(new Error('jetstream is not enabled'), { name: 'JetStreamNotEnabled' });
    for (const err of [notEnabled, new errors.NoRespondersError('$JS.API.STREAM.INFO.EVENTS')]) {
      const mapped = await refused(err).catch((e: unknown) => e);
      expect(mapped).toBeInstanceOf(UnavailableError);
      expect((mapped as Error).message).toMatch(/nothing answers the JetStream API.*Enable JetStream/);
    }
  });

  test('a refused subject names the step and the service role', async () => {
    const denied = new errors.PermissionViolationError(
      'Permissions Violation',
      'publish',
      '$JS.API.STREAM.INFO.EVENTS',
    );
    const mapped = await refused(denied).catch((e: unknown) => e);
    expect(mapped).toBeInstanceOf(PermissionDeniedError);
    expect((mapped as Error).message).toMatch(/ensureStore \(stream EVENTS\) is an admin step.*service role/);
  });

  test("jetsource's own errors pass through unchanged", async () => {
    const own = new StoreConfigError('EVENTS', ['deny_delete is off']);
    expect(await refused(own).catch((e: unknown) => e)).toBe(own);
  });
});
