/**
 * UTF-8 decoding that reports where the input is not UTF-8 (LANGUAGE.md: "Source is UTF-8; an
 * invalid byte … is a syntax error at its line and column").
 */

/** A decoded text and the UTF-16 offsets at which invalid bytes were replaced by U+FFFD. */
export interface Decoded {
  readonly text: string;
  readonly invalid: readonly { offset: number; byte: number }[];
}

const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Decode bytes; every maximal invalid sequence becomes one U+FFFD and one entry in `invalid`. */
export function decodeUtf8(bytes: Uint8Array): Decoded {
  try {
    return { text: strict.decode(bytes), invalid: [] };
  } catch {
    return decodeSlow(bytes);
  }
}

function decodeSlow(bytes: Uint8Array): Decoded {
  const parts: string[] = [];
  const invalid: { offset: number; byte: number }[] = [];
  let length = 0;
  let i = 0;
  let runStart = 0;
  const flush = (end: number) => {
    if (end > runStart) {
      const s = strict.decode(bytes.subarray(runStart, end));
      parts.push(s);
      length += s.length;
    }
  };
  while (i < bytes.length) {
    const n = validSequenceLength(bytes, i);
    if (n > 0) {
      i += n;
      continue;
    }
    flush(i);
    invalid.push({ offset: length, byte: bytes[i]! });
    parts.push("\ufffd");
    length += 1;
    i += 1;
    runStart = i;
  }
  flush(bytes.length);
  return { text: parts.join(""), invalid };
}

/** The length of the valid UTF-8 sequence starting at `i`, or 0 when it is invalid. */
function validSequenceLength(b: Uint8Array, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf) => {
    const x = b[i + k];
    return x !== undefined && x >= lo && x <= hi;
  };
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c === 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
  if ((c >= 0xe1 && c <= 0xec) || c === 0xee || c === 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (c === 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0;
  if (c === 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xf1 && c <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c === 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}
