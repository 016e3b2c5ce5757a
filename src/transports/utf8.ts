/**
 * Where a chunk of a UTF-8 byte stream may be cut into a string. A chunk that ends inside a multi-byte character
 * must keep those bytes for the next chunk; checking the last bytes is cheaper than a StringDecoder or
 * TextDecoder per connection, and the common case (chunk ends on ASCII) costs one comparison.
 */

/** Length of the longest prefix of `buf` (of its first `n` bytes) that does not end inside a UTF-8 sequence. */
export function completeLength(buf: Uint8Array, n = buf.length): number {
  if (n === 0 || buf[n - 1]! < 0x80) return n;
  // Walk back over at most 3 continuation bytes to the lead byte of the last sequence.
  let i = n - 1;
  while (i > n - 4 && i > 0 && (buf[i]! & 0xc0) === 0x80) i--;
  const lead = buf[i]!;
  const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return n - i >= need ? n : i;
}
