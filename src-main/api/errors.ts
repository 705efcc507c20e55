/**
 * Named errors of the service API. Every failure that crosses a transport is an `ApiErrorShape`
 * `{code, message, path?}` with a stable code; this module is browser-safe (the renderer uses it too).
 */

export const ERROR_CODES = [
  /** The call's input failed validation; `path` names the field. */
  'INVALID_INPUT',
  /** A transport frame was not a well-formed request (not JSON, no method, ...). */
  'INVALID_MESSAGE',
  /** The method name is not part of the contract. */
  'UNKNOWN_METHOD',
  /** The test transport's token was missing or wrong. */
  'UNAUTHORIZED',
  /** An IPC message came from a frame that is not the studio's renderer. */
  'FORBIDDEN_SENDER',
  'NOT_FOUND',
  'CONFLICT',
  /** The run queue is full. */
  'BUSY',
  /** No inference engine is available in this process. */
  'ENGINE_UNAVAILABLE',
  'BUNDLE_INVALID',
  'UNSUPPORTED_KEYWORD',
  /** A file handed to recipes.import could not be read as an export of this studio. */
  'IMPORT_FAILED',
  'IO_ERROR',
  /** The database was written by a newer version of the studio. */
  'SCHEMA_TOO_NEW',
  'INTERNAL',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export interface ApiErrorShape {
  code: ErrorCode;
  message: string;
  /** The offending field, e.g. `body.constraints[2].tags[0]`. */
  path?: string;
}

export class ApiError extends Error implements ApiErrorShape {
  constructor(readonly code: ErrorCode, message: string, readonly path?: string) {
    super(message);
    this.name = 'ApiError';
  }

  toJSON(): ApiErrorShape {
    return this.path === undefined ? { code: this.code, message: this.message } : { code: this.code, message: this.message, path: this.path };
  }
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && (ERROR_CODES as readonly string[]).includes(value);
}

/** Accepts anything that looks like an ApiErrorShape (e.g. after JSON or structured clone). */
export function isApiErrorShape(value: unknown): value is ApiErrorShape {
  if (!value || typeof value !== 'object') return false;
  const v = value as Record<string, unknown>;
  return isErrorCode(v.code) && typeof v.message === 'string' && (v.path === undefined || typeof v.path === 'string');
}

/** Turn any thrown value into a named error; unknown failures become INTERNAL with their message. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (isApiErrorShape(err)) return new ApiError(err.code, err.message, err.path);
  if (err && typeof err === 'object') {
    const e = err as { code?: unknown; message?: unknown; issues?: unknown };
    const message = typeof e.message === 'string' ? e.message : String(err);
    if (isErrorCode(e.code)) return new ApiError(e.code, message);
    // ConstraintSetError from src-main/constraints/set.ts
    if (e.code === 'INVALID_CONSTRAINT_SET') {
      const issues = Array.isArray(e.issues) ? (e.issues as { path?: unknown }[]) : [];
      const first = issues[0] && typeof issues[0].path === 'string' ? issues[0].path : undefined;
      return new ApiError('INVALID_INPUT', message, first);
    }
    if (typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code)) return new ApiError('IO_ERROR', message);
    return new ApiError('INTERNAL', message);
  }
  return new ApiError('INTERNAL', String(err));
}

/** Envelope every transport uses for call results. */
export type Envelope<T> = { ok: true; result: T } | { ok: false; error: ApiErrorShape };
