import { errors } from '@nats-io/nats-core';
import { JetStreamApiError } from '@nats-io/jetstream';
import {
  isJetsourceError,
  PermissionDeniedError,
  ServerError,
  StoreNotFoundError,
  UnavailableError,
} from '../errors.js';

/** What to do when the user may not subscribe to the connection's reply inbox. */
export const inboxRemedy =
  "Connect with the user's own inboxPrefix (the bundled config uses _INBOX_<tenant>_<role>, or _INBOX_<tenant>_<role>.<name> for a user of its own).";

/** What to say when the user may not use `$JS.API`: its account may have the API elsewhere. */
export const apiRemedy =
  "Check the user's role and tenant, and pass apiPrefix if its account imports the API (bundled config: 'JS.API').";

/** A closed nats.js connection never reconnects. */
export const closedRemedy = 'Connect again: a closed connection does not come back.';

/** What to say, per kind of refusal, when the caller knows better than the defaults. */
export interface RequestRemedies {
  /** The reply inbox was refused (default {@link inboxRemedy}). */
  inbox?: string;
  /** The request subject was refused (default: check role and tenant). */
  denied?: string;
}

/**
 * Maps what nats.js throws for a request into jetsource's errors, so callers see a
 * permission problem, a missing store or an outage, never a bare protocol error.
 * `stream` is the JetStream stream the request was for: no responders means it is missing.
 */
export function fromRequestError(
  err: unknown,
  stream: string,
  subject: string,
  remedies: RequestRemedies = {},
): unknown {
  const cause = causeOf(err);
  if (cause instanceof errors.PermissionViolationError) {
    const denied = cause.subject || subject;
    // Replies come to the connection's inbox: the request was sent but its answer cannot
    // arrive. That is the inbox prefix, not the role.
    const remedy = isInbox(denied)
      ? (remedies.inbox ?? inboxRemedy)
      : (remedies.denied ?? apiRemedyFor(denied, stream));
    return new PermissionDeniedError(denied, cause.operation === 'subscription' ? 'subscribe' : 'publish', {
      cause,
      remedy,
    });
  }
  if (cause instanceof errors.NoRespondersError) return new StoreNotFoundError(stream, { cause });
  if (cause instanceof errors.TimeoutError)
    return new UnavailableError(`no answer from the server on ${subject}`, { cause });
  if (
    cause instanceof errors.ClosedConnectionError ||
    cause instanceof errors.DrainingConnectionError ||
    closedWhileWaiting(err)
  ) {
    return new UnavailableError('the connection is closed', { cause, remedy: closedRemedy });
  }
  return err;
}

const isInbox = (subject: string) => /^_INBOX[._]/.test(subject);

/**
 * What to check when a JetStream API subject was refused; one that names the stream may
 * name the wrong one (a tenant user may use only its own stream's API).
 */
function apiRemedyFor(denied: string, stream: string): string | undefined {
  if (!/(^|\.)API\./.test(denied)) return undefined;
  if (stream === '' || !denied.includes(`.${stream}`)) return apiRemedy;
  return `Check the user's role and tenant, that the store's stream option ("${stream}") names the stream the user may use, and apiPrefix if its account imports the API (bundled config: 'JS.API').`;
}

/**
 * Whether the connection closed while a request waited for its answer: the request was
 * sent, and what it did is unknown. nats.js says so only in a bare RequestError's words.
 */
export function closedWhileWaiting(err: unknown): boolean {
  const cause = causeOf(err);
  return cause instanceof errors.RequestError && cause.message === 'connection closed';
}

/** What nats.js wrapped in a RequestError, or the error itself. */
export const causeOf = (err: unknown) => (err instanceof errors.RequestError && err.cause ? err.cause : err);

/** What to say when a user may not run an admin step. */
export const adminRemedy = (step: string): string =>
  `${step} is an admin step: run it as a user allowed the JetStream API, such as the bundled config's service role.`;

/** What to change when the server refuses an admin step's options, by JetStream API error code. */
const refusedOptionRemedies: Readonly<Record<number, string>> = {
  // replicas > 1 not supported in non-clustered mode
  10074: 'Use replicas: 1 on a server that is not clustered.',
  // no suitable peers for placement
  10005: 'Use at most as many replicas as the cluster has servers with JetStream.',
  // insufficient (storage, memory) resources
  10023: "Ask for less (maxBytes), or give JetStream more storage (the server's or account's limits).",
  10028: "Ask for less (maxBytes), or give JetStream more memory (the server's or account's limits).",
  10047: "Ask for less (maxBytes), or give JetStream more storage (the server's or account's limits).",
};

/**
 * Runs an admin step (creating or verifying a stream, bucket or durable), so that a user
 * without the JetStream API, or a server without JetStream, is told so in those words,
 * and a refusal of the step's options is a {@link ServerError} that says what to change.
 */
export async function adminStep<T>(step: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (isJetsourceError(err)) throw err;
    const cause = causeOf(err);
    // nats.js reports no responders on the JetStream API as JetStreamNotEnabled (a name, no class).
    if (
      cause instanceof errors.NoRespondersError ||
      (cause instanceof Error && cause.name === 'JetStreamNotEnabled')
    )
      throw new UnavailableError(`${step}: nothing answers the JetStream API`, {
        cause: err,
        remedy: "Enable JetStream on the server (a jetstream block) and in the user's account.",
      });
    if (cause instanceof JetStreamApiError) {
      const { err_code, description } = cause.apiError();
      throw new ServerError(err_code, `${step}: ${description}`, {
        cause: err,
        remedy:
          refusedOptionRemedies[err_code] ??
          "Change what the server names in the step's options or in its JetStream limits, or report it if jetsource should handle it.",
      });
    }
    throw fromRequestError(err, '', step, { denied: adminRemedy(step) });
  }
}
