// String helpers with Python's semantics, since the harness's preprocessing is Python.

/** Python's `str.isspace()` characters (JS's `\s` differs: it has U+FEFF, lacks U+001C–U+001F, U+0085). */
const WS =
  '\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const TRAILING_WS = new RegExp(`[${WS}]+$`, 'u');
const LEADING_WS = new RegExp(`^[${WS}]+`, 'u');

/** Python `s.rstrip()`. */
export const pyRstrip = (s: string): string => s.replace(TRAILING_WS, '');
/** Python `s.strip()`. */
export const pyStrip = (s: string): string => pyRstrip(s).replace(LEADING_WS, '');

/** Python `len(s)`: Unicode code points, not UTF-16 units. */
export function pyLen(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** Python `s.capitalize()`: first character upper case, the rest lower case. */
export function pyCapitalize(s: string): string {
  const [first = '', ...rest] = s;
  return first.toUpperCase() + rest.join('').toLowerCase();
}

/** UTF-8 byte length. */
export const utf8Length = (s: string): number => Buffer.byteLength(s, 'utf8');
