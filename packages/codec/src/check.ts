import { DTypeError, type HalfDtype, InvalidArgumentError } from '@edkm/core';

/** The constructor name of a typed array (realm-independent: works for arrays from workers). */
export function typedKind(x: unknown): string | undefined {
  return ArrayBuffer.isView(x)
    ? (x as unknown as Record<symbol, string>)[Symbol.toStringTag]
    : undefined;
}

export function describeValue(x: unknown): string {
  if (x === null) return 'null';
  const kind = typedKind(x);
  if (kind) return kind;
  if (Array.isArray(x)) return 'Array';
  return typeof x;
}

export function checkDtype(op: string, dtype: unknown): HalfDtype {
  if (dtype !== 'bf16' && dtype !== 'fp16') {
    throw new InvalidArgumentError(`${op}: dtype must be 'bf16' or 'fp16', got ${String(dtype)}`);
  }
  return dtype;
}

export function checkArrayLike(op: string, name: string, x: unknown): ArrayLike<number> {
  const length = (x as ArrayLike<number> | null)?.length;
  const kind = typedKind(x);
  const ok =
    typeof x === 'object' &&
    Number.isInteger(length) &&
    (length as number) >= 0 &&
    kind !== 'DataView' &&
    !kind?.startsWith('Big');
  if (!ok) {
    throw new DTypeError(
      `${op}: ${name} must be an array or typed array of numbers, got ${describeValue(x)}`,
    );
  }
  return x as ArrayLike<number>;
}

export function checkKind<T>(op: string, name: string, x: unknown, kinds: string[]): T {
  const kind = typedKind(x);
  if (!kind || !kinds.includes(kind)) {
    throw new DTypeError(`${op}: ${name} must be a ${kinds.join(' or ')}, got ${describeValue(x)}`);
  }
  return x as T;
}

/** Whether this platform stores multi-byte words little-endian (the packed format is LE). */
export const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
