import type { EventFormat, StoredMessage } from '../codec/event-format.js';
import { MalformedEventError } from '../errors.js';
import type { AppendOptions, EnvelopeOf } from '../store/types.js';
import { isHandlerOutcome, type HandlerOutcome } from './outcome.js';
import { retryDelay, type ResolvedPolicy } from './policy.js';

/** Metadata to pass on to events a handler appends, so they join the same flow and trace. */
export type Propagation = Required<Pick<AppendOptions, 'correlationId' | 'causationId'>> &
  Pick<AppendOptions, 'traceparent'>;

/** What a handler gets besides the event. */
export interface ProcessContext {
  /** The processor's name. */
  readonly processor: string;
  /** 1 on first delivery; counts deliveries, so an interrupted attempt counts too. */
  readonly attempt: number;
  /** True when a failure now dead-letters the event instead of retrying it. */
  readonly lastAttempt: boolean;
  /**
   * `{ correlationId, causationId, traceparent }` derived from the event: spread it into
   * `store.append(..., { ...context.propagation })` so follow-up events stay correlated.
   */
  readonly propagation: Propagation;
  /** Aborts when the attempt's ack wait runs out (the event may be redelivered) or `stop()` gives up. */
  readonly signal: AbortSignal;
}

/**
 * Handles one event. Return nothing to acknowledge it; return or throw {@link retry} or
 * {@link reject} to ask for a later retry or give up; throw anything else to retry with backoff.
 */
export type ProcessorHandler<E extends object> = (
  event: EnvelopeOf<E>,
  context: ProcessContext,
) => void | HandlerOutcome | Promise<void | HandlerOutcome>;

/** An error as stored in a dead letter. */
export interface ErrorSummary {
  readonly name: string;
  readonly message: string;
}

/** How one attempt ended. */
export type AttemptResult =
  | { readonly kind: 'processed' }
  | { readonly kind: 'retry'; readonly delayMs: number }
  | { readonly kind: 'rejected'; readonly reason: string }
  /** `final`: retrying cannot help (an undecodable event). */
  | { readonly kind: 'failed'; readonly error: unknown; readonly final: boolean };

/** What to tell the server about a delivery. */
export type Settlement =
  | { readonly action: 'ack' }
  /** `error`: why the attempt failed, absent when the handler asked for the retry. */
  | { readonly action: 'nak'; readonly delayMs: number; readonly error?: ErrorSummary }
  | { readonly action: 'dead-letter'; readonly error: ErrorSummary };

/** Derives the propagation metadata of follow-up events from the event being handled. Pure. */
export function propagationOf(event: {
  id: string;
  correlationId?: string;
  traceparent?: string;
}): Propagation {
  return {
    correlationId: event.correlationId ?? event.id,
    causationId: event.id,
    ...(event.traceparent === undefined ? {} : { traceparent: event.traceparent }),
  };
}

/** Decodes the stored event and runs the handler on it; never throws. */
export async function runAttempt<E extends object>(
  format: EventFormat<E>,
  handler: ProcessorHandler<E>,
  stored: StoredMessage,
  context: (event: EnvelopeOf<E>) => ProcessContext,
): Promise<AttemptResult> {
  let event: EnvelopeOf<E>;
  try {
    event = await format.decode(stored);
  } catch (error) {
    return { kind: 'failed', error, final: error instanceof MalformedEventError };
  }
  try {
    return fromOutcome(await handler(event, context(event)));
  } catch (error) {
    return isHandlerOutcome(error) ? fromOutcome(error) : { kind: 'failed', error, final: false };
  }
}

function fromOutcome(outcome: void | HandlerOutcome): AttemptResult {
  if (!isHandlerOutcome(outcome)) return { kind: 'processed' };
  return outcome.kind === 'retry'
    ? { kind: 'retry', delayMs: outcome.delayMs }
    : { kind: 'rejected', reason: outcome.reason };
}

/**
 * Decides what attempt `attempt` (1-based) of an event leads to. A failure on the last
 * attempt dead-letters instead of a last nak, which the server would silently drop. Pure.
 */
export function settle(result: AttemptResult, attempt: number, policy: ResolvedPolicy): Settlement {
  const last = attempt >= policy.maxDeliver;
  switch (result.kind) {
    case 'processed':
      return { action: 'ack' };
    case 'rejected':
      return { action: 'dead-letter', error: { name: 'Rejected', message: result.reason } };
    case 'retry':
      return last
        ? { action: 'dead-letter', error: retriesExhausted(attempt) }
        : { action: 'nak', delayMs: result.delayMs };
    case 'failed':
      return last || result.final
        ? { action: 'dead-letter', error: summarize(result.error) }
        : { action: 'nak', delayMs: retryDelay(policy, attempt), error: summarize(result.error) };
  }
}

/** The dead-letter error of an event delivered once more than its attempts allow. */
export function deliveriesExhausted(maxDeliver: number): ErrorSummary {
  return {
    name: 'DeliveriesExhausted',
    message:
      `no outcome after ${maxDeliver} attempts: the last one did not settle ` +
      '(the handler outlived ackWait, or its process stopped or crashed)',
  };
}

function retriesExhausted(attempt: number): ErrorSummary {
  return {
    name: 'RetriesExhausted',
    message: `the handler asked for a retry on its last attempt (${attempt})`,
  };
}

/** A name and message for any thrown value. */
export function summarize(error: unknown): ErrorSummary {
  if (error instanceof Error) return { name: error.name, message: error.message };
  if (typeof error === 'string') return { name: 'Error', message: error };
  try {
    return { name: 'Error', message: JSON.stringify(error) ?? String(error) };
  } catch {
    return { name: 'Error', message: Object.prototype.toString.call(error) };
  }
}
