/**
 * The closed set of errors every layer throws or returns. The shell maps `kind` once: to an HTTP status
 * in the API's error middleware and to an exit code in the CLI (see services/cli and services/serve/http).
 */
export type ErrorKind = 'validation' | 'illegal_state' | 'not_found' | 'conflict' | 'unavailable';

export interface FieldIssue {
  /** dotted path such as `events[3].data.device` */
  readonly path: string;
  readonly message: string;
}

export abstract class AppError extends Error {
  abstract readonly kind: ErrorKind;
  readonly retriable: boolean = false;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** input that does not match a schema or a setting; `issues` name each offending field */
export class ValidationError extends AppError {
  readonly kind = 'validation' as const;
  constructor(
    message: string,
    readonly issues: readonly FieldIssue[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** a request that is well formed but impossible in the current state */
export class IllegalStateError extends AppError {
  readonly kind = 'illegal_state' as const;
}

export class NotFoundError extends AppError {
  readonly kind = 'not_found' as const;
}

/** optimistic concurrency: the stream was not at the revision the caller expected */
export class ExpectedVersionConflictError extends AppError {
  readonly kind = 'conflict' as const;
  constructor(
    readonly streamName: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`stream ${streamName}: expected revision ${expected}, found ${actual}`);
  }
}

/** an engine (store, broker, analytics) cannot be reached; safe to retry */
export class UnavailableError extends AppError {
  readonly kind = 'unavailable' as const;
  override readonly retriable = true;
}

export type AppErrorUnion = ValidationError | IllegalStateError | NotFoundError | ExpectedVersionConflictError | UnavailableError;

const KINDS: ReadonlySet<string> = new Set<ErrorKind>(['validation', 'illegal_state', 'not_found', 'conflict', 'unavailable']);

/** structural guard: works across module copies, not only with instanceof */
export const isAppError = (e: unknown): e is AppErrorUnion =>
  typeof e === 'object' && e !== null && 'kind' in e && typeof e.kind === 'string' && KINDS.has(e.kind) && e instanceof Error;

export const isValidationError = (e: unknown): e is ValidationError => isAppError(e) && e.kind === 'validation';
export const isConflictError = (e: unknown): e is ExpectedVersionConflictError => isAppError(e) && e.kind === 'conflict';
export const isNotFoundError = (e: unknown): e is NotFoundError => isAppError(e) && e.kind === 'not_found';

/** expected failures inside the shell come back as a result, not a throw */
export type Result<T, E = ValidationError> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: E };
