/**
 * UTF-8 decoding that reports where the input is not UTF-8 (LANGUAGE.md: "Source is UTF-8; an
 * invalid byte … is a syntax error at its line and column").
 */

/**
 * A decoded text and where it was not UTF-8: for each maximal invalid subpart, the UTF-16
 * offset of the U+FFFD that replaced it and its bytes.
 */
export interface Decoded {
  readonly text: string;
  readonly invalid: readonly { offset: number; bytes: readonly number[] }[];
}

const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Decode bytes; every maximal invalid subpart becomes one U+FFFD and one entry in `invalid`
 * (the Unicode standard's "U+FFFD substitution of maximal subparts", which the WHATWG decoder
 * and TextDecoder follow). A maximal subpart is a lead byte and the continuation bytes that
 * could still have completed it (`E2 82` cut short is one), or else one byte (`C0`, `80`, `FF`).
 */
export function decodeUtf8(bytes: Uint8Array): Decoded {
  try {
    return { text: strict.decode(bytes), invalid: [] };
  } catch {
    return decodeSlow(bytes);
  }
}

function decodeSlow(bytes: Uint8Array): Decoded {
  const parts: string[] = [];
  const invalid: { offset: number; bytes: number[] }[] = [];
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
    const n = sequenceLength(bytes, i);
    if (n > 0) {
      i += n;
      continue;
    }
    flush(i);
    const width = -n;
    invalid.push({ offset: length, bytes: [...bytes.subarray(i, i + width)] });
    parts.push("\ufffd");
    length += 1;
    i += width;
    runStart = i;
  }
  flush(bytes.length);
  return { text: parts.join(""), invalid };
}

/**
 * The length of the valid UTF-8 sequence starting at `i`, or minus the length of the maximal
 * invalid subpart starting there (at least 1).
 */
function sequenceLength(b: Uint8Array, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  // The number of continuation bytes and the range of the first one (Unicode Table 3-7).
  let need: number;
  let lo = 0x80;
  let hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) need = 1;
  else if (c === 0xe0) [need, lo] = [2, 0xa0];
  else if ((c >= 0xe1 && c <= 0xec) || c === 0xee || c === 0xef) need = 2;
  else if (c === 0xed) [need, hi] = [2, 0x9f];
  else if (c === 0xf0) [need, lo] = [3, 0x90];
  else if (c >= 0xf1 && c <= 0xf3) need = 3;
  else if (c === 0xf4) [need, hi] = [3, 0x8f];
  else return -1;
  for (let k = 1; k <= need; k++) {
    const x = b[i + k];
    const ok = x !== undefined && (k === 1 ? x >= lo && x <= hi : x >= 0x80 && x <= 0xbf);
    if (!ok) return -k;
  }
  return need + 1;
}
