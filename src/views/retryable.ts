import { errors, type NatsConnection } from '@nats-io/nats-core';
import { JetStreamApiError } from '@nats-io/jetstream';
import { StoreNotFoundError, UnavailableError } from '../errors.js';

/** Tries before "no responders" counts as a missing stream rather than a restarting server. */
const NO_RESPONDERS_TRIES = 10;

/**
 * Failures a projector rides out by starting again from its checkpoint: the server
 * restarting or electing a leader, a timeout, a dropped connection that nats.js is
 * restoring. A closed connection, a refusal (permissions, a missing store, a bad view or
 * event) or an error of the view's own code is final. A store that does not answer is
 * missing, or not back yet: that is retried a few times.
 */
export function retryable(err: unknown, nc: NatsConnection, failures: number): boolean {
  if (nc.isClosed()) return false;
  // JetStream's own "stream not found" is final; silence (no responders) is not, yet.
  if (err instanceof StoreNotFoundError)
    return !(err.cause instanceof JetStreamApiError) && failures < NO_RESPONDERS_TRIES;
  const cause = err instanceof errors.RequestError && err.cause ? err.cause : err;
  return (
    cause instanceof UnavailableError ||
    cause instanceof errors.TimeoutError ||
    cause instanceof errors.NoRespondersError ||
    cause instanceof errors.ConnectionError ||
    // nats.js does not export this class; it names it.
    (cause instanceof Error && cause.name === 'JetStreamNotEnabled') ||
    // "JetStream temporarily unavailable": the HTTP-like status, not the 10xxx error code.
    (cause instanceof JetStreamApiError && cause.status === 503)
  );
}
