export { FormatError, IOError, InvalidArgumentError, ShapeError } from '@edkm/core';
