/** Errors of the constraint compiler. Every one names what it refuses and where (a JSON pointer into the schema). */

export type CompileErrorCode =
  | 'UNSUPPORTED_KEYWORD'
  | 'SCHEMA_TOO_LARGE'
  | 'INVALID_SCHEMA'
  | 'INVALID_PATTERN'
  | 'UNSATISFIABLE'
  | 'SEGMENT_MISSING'
  | 'HELD_TOO_LONG';

export class ConstraintCompileError extends Error {
  constructor(
    readonly code: CompileErrorCode,
    message: string,
    /** The schema keyword (or constraint field) at fault, when there is one. */
    readonly keyword?: string,
    /** JSON pointer of the schema location at fault ('' is the root). */
    readonly pointer?: string,
  ) {
    super(message);
    this.name = 'ConstraintCompileError';
  }

  toJSON(): { code: string; message: string; keyword?: string; pointer?: string } {
    return { code: this.code, message: this.message, keyword: this.keyword, pointer: this.pointer };
  }
}

export class UnsupportedKeywordError extends ConstraintCompileError {
  constructor(keyword: string, pointer: string, why?: string) {
    super(
      'UNSUPPORTED_KEYWORD',
      `unsupported keyword "${keyword}" at ${pointer === '' ? '#' : `#${pointer}`}${why ? `: ${why}` : ''}`,
      keyword,
      pointer,
    );
    this.name = 'UnsupportedKeywordError';
  }
}

export class SchemaTooLargeError extends ConstraintCompileError {
  constructor(pointer: string, what: string) {
    super('SCHEMA_TOO_LARGE', `schema part at ${pointer === '' ? '#' : `#${pointer}`} is too large: ${what}`, undefined, pointer);
    this.name = 'SchemaTooLargeError';
  }
}

/** Escape one reference token of a JSON pointer (RFC 6901). */
export function ptrJoin(pointer: string, token: string | number): string {
  return `${pointer}/${String(token).replace(/~/g, '~0').replace(/\//g, '~1')}`;
}
