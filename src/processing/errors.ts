import { JetsourceError } from '../errors.js';

/**
 * A processor cannot start: its policy is invalid, or its durable consumer already exists
 * with a config that cannot be changed without skipping or replaying events.
 */
export class ProcessorConfigError extends JetsourceError {
  constructor(
    readonly processor: string,
    readonly problems: string[],
    options?: { cause?: unknown },
  ) {
    super('PROCESSOR_CONFIG', `processor "${processor}" cannot start: ${problems.join('; ')}.`, options);
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
        'List the current ones with processor.deadLetters().',
    );
    this.name = 'DeadLetterNotFoundError';
  }
}
