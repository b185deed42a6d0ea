import { JetsourceError } from '../errors.js';

/**
 * A processor cannot run: its policy is invalid, it has no handler, its store is not one
 * from `createEventStore()` on a NATS connection, its durable consumer already exists with
 * a config that cannot be changed without skipping or replaying events, or it was deleted.
 */
export class ProcessorConfigError extends JetsourceError {
  constructor(
    readonly processor: string,
    readonly problems: string[],
    options?: { cause?: unknown },
  ) {
    super('PROCESSOR_CONFIG', `processor "${processor}": ${problems.join('; ')}.`, options);
    this.name = 'ProcessorConfigError';
  }
}

/** There is nothing to replay: no such dead letter, or its event is no longer in the stream. */
export class DeadLetterNotFoundError extends JetsourceError {
  constructor(
    readonly processor: string,
    readonly sequence: number,
    detail: string,
  ) {
    super(
      'DEAD_LETTER_NOT_FOUND',
      `cannot replay dead letter #${sequence} of processor "${processor}": ${detail}. ` +
        'List the current ones with deadLetters() on the processor or projector.',
    );
    this.name = 'DeadLetterNotFoundError';
  }
}

/**
 * A view's `evolve` (after `maxAttempts` tries) or `key` threw on an event, and the
 * projector has no dead letters to set the event aside: it stops there, and a restart
 * resumes at its checkpoint. `cause` is what was thrown.
 */
export class FoldError extends JetsourceError {
  constructor(
    /** `<view> v<version>`. */
    readonly view: string,
    /** The event's stream sequence. */
    readonly sequence: number,
    /** The event's subject. */
    readonly subject: string,
    options: { cause: unknown },
  ) {
    const reason = options.cause instanceof Error ? options.cause.message : String(options.cause);
    super(
      'FOLD_FAILED',
      `view ${view} cannot fold event #${sequence} on ${subject}: ${reason}. Fix evolve (or key) and ` +
        'start the projector again (it resumes at its checkpoint), or pass deadLetters to set such events aside.',
      options,
    );
    this.name = 'FoldError';
  }
}
