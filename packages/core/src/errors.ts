/** Every error the eDKM packages throw on purpose is an EdkmError with a stable `code`. */
export type EdkmErrorCode =
  | 'INVALID_ARGUMENT'
  | 'SHAPE_MISMATCH'
  | 'DTYPE_MISMATCH'
  | 'NON_FINITE'
  | 'BACKEND_UNAVAILABLE'
  | 'KERNEL_MISSING'
  | 'DEVICE_LIMIT'
  | 'BAD_FORMAT'
  | 'IO'
  | 'STATE';

export class EdkmError extends Error {
  readonly code: EdkmErrorCode;
  constructor(code: EdkmErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A value outside its allowed range or set (bits = 9, shards = 0, ...). */
export class InvalidArgumentError extends EdkmError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INVALID_ARGUMENT', message, options);
  }
}

/** Shapes or lengths that do not fit together. */
export class ShapeError extends EdkmError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SHAPE_MISMATCH', message, options);
  }
}

/** A tensor or array of the wrong element type. */
export class DTypeError extends EdkmError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DTYPE_MISMATCH', message, options);
  }
}

/** NaN (or, where not allowed, ±Inf) in numeric input. */
export class NonFiniteError extends EdkmError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NON_FINITE', message, options);
  }
}

/** A backend that cannot be initialised, a kernel it does not implement, or a device limit exceeded. */
export class BackendError extends EdkmError {
  constructor(
    message: string,
    code: 'BACKEND_UNAVAILABLE' | 'KERNEL_MISSING' | 'DEVICE_LIMIT' = 'BACKEND_UNAVAILABLE',
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

/**
 * A limit of the device exceeded (a tensor larger than one storage binding, more workgroups than a
 * dispatch dimension takes, more centroids than one workgroup holds...): code DEVICE_LIMIT. A
 * BackendError, so `instanceof BackendError` catches it too.
 */
export class DeviceLimitError extends BackendError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'DEVICE_LIMIT', options);
  }
}

/** A file or buffer whose contents do not follow its format (truncated, hostile, malformed). */
export class FormatError extends EdkmError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BAD_FORMAT', message, options);
  }
}

/** A file that cannot be opened, read or written (missing, unreadable, a full disk...). */
export class IOError extends EdkmError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('IO', message, options);
  }
}

/** An operation that is not valid in the object's current state (use after release, ...). */
export class StateError extends EdkmError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('STATE', message, options);
  }
}

/** Throws InvalidArgumentError unless `value` is an integer in [min, max]. */
export function assertIntInRange(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(
      `${name} must be an integer in [${min}, ${max}], got ${String(value)}`,
    );
  }
  return value;
}
