import { errors } from '@nats-io/nats-core';
import { JetStreamApiError } from '@nats-io/jetstream';
import { describe, expect, test } from 'vitest';
import { adminStep, closedWhileWaiting, fromRequestError } from '../../src/connection/request-errors.js';
import { PermissionDeniedError, ServerError, StoreConfigError, UnavailableError } from '../../src/index.js';

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

  test('a refusal of the options is a ServerError with the code, the step, the cause and what to change', async () => {
    const apiError = (err_code: number, description: string) =>
      new JetStreamApiError({ code: 500, err_code, description });
    const notClustered = apiError(10074, 'replicas > 1 not supported in non-clustered mode');
    const mapped = await refused(notClustered).catch((e: unknown) => e);
    expect(mapped).toBeInstanceOf(ServerError);
    expect(mapped).toMatchObject({ errCode: 10074, cause: notClustered });
    expect((mapped as Error).message).toBe(
      'nats-server refused (10074): ensureStore (stream EVENTS): replicas > 1 not supported in non-clustered mode. ' +
        'Use replicas: 1 on a server that is not clustered.',
    );
    const other = await refused(apiError(10133, 'replicas count cannot be negative')).catch(
      (e: unknown) => e,
    );
    expect(other).toBeInstanceOf(ServerError);
    expect((other as Error).message).toMatch(/cannot be negative\. Change what the server names/);
  });

  test("jetsource's own errors pass through unchanged", async () => {
    const own = new StoreConfigError('EVENTS', ['deny_delete is off']);
    expect(await refused(own).catch((e: unknown) => e)).toBe(own);
  });
});

describe('fromRequestError', () => {
  test('a request whose connection closed while it waited is UnavailableError, however nats.js wraps it', () => {
    const bare = new errors.RequestError('connection closed');
    const wrapped = new errors.RequestError('connection closed', { cause: bare });
    for (const err of [bare, wrapped]) {
      expect(closedWhileWaiting(err)).toBe(true);
      const mapped = fromRequestError(err, 'EVENTS', 'es.t.a.1.E');
      expect(mapped).toBeInstanceOf(UnavailableError);
      expect((mapped as Error).message).toMatch(/connection is closed.*Connect again/);
    }
    expect(closedWhileWaiting(new errors.RequestError('connection disconnected'))).toBe(false);
  });
});

describe('fromRequestError', () => {
  const denied = (subject: string) =>
    new errors.PermissionViolationError('Permissions Violation', 'publish', subject);

  test("a refused API subject that names the store's stream says to check the stream option too", () => {
    for (const api of ['$JS.API', 'JS.API']) {
      const mapped = fromRequestError(denied(`${api}.DIRECT.GET.NOPE`), 'NOPE', `${api}.DIRECT.GET.NOPE`);
      expect(mapped).toBeInstanceOf(PermissionDeniedError);
      expect((mapped as Error).message).toMatch(/stream option \("NOPE"\) names the stream the user may use/);
    }
    const other = fromRequestError(
      denied('$JS.API.STREAM.INFO.OTHER'),
      'EVENTS',
      '$JS.API.STREAM.INFO.OTHER',
    );
    expect((other as Error).message).toMatch(/pass apiPrefix/);
    expect((other as Error).message).not.toMatch(/stream option/);
    // Not the JetStream API: the role's default advice.
    const append = fromRequestError(denied('es.acme.a.1.E'), 'EVENTS', 'es.acme.a.1.E');
    expect((append as Error).message).toMatch(/readers cannot append/);
  });
});
