/** one physical line of a paste, with its 1-based line number in the original text (for evidence) */
export interface PasteLine {
  readonly text: string;
  readonly line: number;
  /** the whole physical line this piece came from (a JSON record, a libvirt error with escaped newlines) */
  readonly physical: string;
}

// a JSON log record (KubeVirt virt-launcher, journald -o json) carries the interesting text in string fields
const collectStrings = (value: unknown, out: string[]): void => {
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const v of value) collectStrings(v, out);
  else if (value !== null && typeof value === 'object') for (const v of Object.values(value)) collectStrings(v, out);
};

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*[A-Za-z]/g;

/**
 * Splits a paste into lines the parsers can read: CRLF and ANSI colours removed, JSON records
 * unpacked into their string values, and literal `\n` (an escaped newline inside a quoted log message)
 * turned into real line breaks. Every piece keeps the number of the line it came from.
 */
export const toPasteLines = (text: string): PasteLine[] => {
  const out: PasteLine[] = [];
  const physical = text.replace(ANSI, '').split(/\r?\n|\r/);
  physical.forEach((raw, i) => {
    const line = i + 1;
    const trimmed = raw.trim();
    let pieces: string[] = [raw];
    if (trimmed.startsWith('{') && trimmed.endsWith('}')) {
      try {
        const strings: string[] = [];
        collectStrings(JSON.parse(trimmed), strings);
        pieces = strings.flatMap((s) => s.split(/\r?\n/));
      } catch {
        // not JSON after all: fall through to the escaped-newline split
      }
    }
    for (const piece of pieces) {
      for (const part of piece.split(/(?:\\r)?\\n/)) out.push({ text: part.replace(/\\t/g, '\t').replace(/\\"/g, '"'), line, physical: raw });
    }
  });
  return out;
};
