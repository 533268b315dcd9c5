import { EdkmError } from '@edkm/core';

/** A file that cannot be opened or read. */
export class IOError extends EdkmError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('IO', message, options);
  }
}
export { FormatError, InvalidArgumentError, ShapeError } from '@edkm/core';
