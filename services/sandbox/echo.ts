// Caller-supplied strings shown back in errors are cut to a bounded length: a gRPC status message and
// field travel in trailers, and one that echoed a 128 KiB session id never reached its caller (and
// held up the other calls on its connection).

/** The most characters an echoed string keeps, its length note included. */
export const ECHO_MAX_CHARS = 200;

/**
 * `s` itself when it has at most ECHO_MAX_CHARS characters; else its start followed by `... (N chars)`,
 * ECHO_MAX_CHARS characters in all. Never splits a surrogate pair.
 */
export function echo(s: string): string {
  if (s.length <= ECHO_MAX_CHARS) return s;
  const note = `... (${s.length} chars)`;
  let head = s.slice(0, ECHO_MAX_CHARS - note.length);
  const last = head.charCodeAt(head.length - 1);
  if (last >= 0xd800 && last <= 0xdbff) head = head.slice(0, -1);
  return head + note;
}

/**
 * echo() for a value that travels as gRPC metadata (an error's field), which must be printable ASCII:
 * other characters are written as \uXXXX first (grpc-js refuses to send the status otherwise, and the
 * call is never answered).
 */
export function echoAscii(s: string): string {
  return echo(s.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}
