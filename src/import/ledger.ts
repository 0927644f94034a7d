/**
 * The ledger: every significant line of every input file ends up either translated or in
 * the report with a reason. Parsers and the builder mark lines; `finish()` reports any
 * line nobody marked, so a line can never be dropped silently.
 */

/** One logical line of an input file (a continued line keeps all its physical lines). */
export interface SourceLine {
  file: string;
  /** 1-based number of the first physical line. */
  line: number;
  /** Every physical line this logical line spans. */
  lines: number[];
  /** The logical line as written (continuations joined, comment removed, trimmed). */
  text: string;
  /** Leading whitespace of the first physical line, a tab counting 4 (ldirectord's blocks). */
  indent: number;
}

/**
 * `error`: the output would not do what the input did (an ambiguous, unresolvable or refused
 * line, an option not carried over that changes behaviour); the import exits non-zero
 * unless `--partial` accepts the partial result knowingly.
 */
export type EntryKind = 'untranslated' | 'adjusted' | 'note' | 'error';

export interface ReportEntry {
  file: string;
  /** 0 when the entry is about the import as a whole. */
  line: number;
  text: string;
  kind: EntryKind;
  reason: string;
}

export class Ledger {
  private readonly done = new Map<string, Set<number>>();
  private readonly significant = new Map<string, SourceLine[]>();
  readonly entries: ReportEntry[] = [];

  /** Registers the lines a file holds; each must be accounted for by `finish()`. */
  register(lines: SourceLine[]): void {
    for (const l of lines) {
      const list = this.significant.get(l.file) ?? [];
      list.push(l);
      this.significant.set(l.file, list);
    }
  }

  /** The line was carried into the config. */
  ok(src: SourceLine | undefined): void {
    if (!src) return;
    const set = this.done.get(src.file) ?? new Set<number>();
    for (const n of src.lines) set.add(n);
    this.done.set(src.file, set);
  }

  /** The line was not carried over; `reason` says why and what to do instead. */
  skip(src: SourceLine, reason: string): void {
    this.ok(src);
    this.push({ file: src.file, line: src.line, text: src.text, kind: 'untranslated', reason });
  }

  /** The line was carried over with a change the operator should know about. */
  adjust(src: SourceLine, reason: string): void {
    this.ok(src);
    this.push({ file: src.file, line: src.line, text: src.text, kind: 'adjusted', reason });
  }

  /** The line (or one option on it) cannot be carried over faithfully: the import fails unless --partial. */
  error(src: SourceLine, reason: string): void {
    this.ok(src);
    this.push({ file: src.file, line: src.line, text: src.text, kind: 'error', reason });
  }

  /** Something about the import as a whole (no line to point at). */
  note(file: string, reason: string, kind: EntryKind = 'note'): void {
    this.push({ file, line: 0, text: '', kind, reason });
  }

  /** A global setting used by several parts says the same thing once. */
  private push(e: ReportEntry): void {
    if (this.entries.some((x) => x.file === e.file && x.line === e.line && x.kind === e.kind && x.reason === e.reason)) return;
    this.entries.push(e);
  }

  isDone(src: SourceLine): boolean {
    return src.lines.every((n) => this.done.get(src.file)?.has(n) === true);
  }

  /** Reports every registered line nobody marked. */
  finish(): ReportEntry[] {
    for (const [, lines] of this.significant) {
      for (const l of lines) {
        if (!this.isDone(l)) this.skip(l, 'not used by any part of the translation');
      }
    }
    return this.entries;
  }
}

/** `file:line: kind: text — reason`, in file order. */
export function formatReport(entries: ReportEntry[]): string[] {
  const sorted = [...entries].sort((a, b) => (a.file === b.file ? a.line - b.line : a.file < b.file ? -1 : 1));
  return sorted.map((e) =>
    e.line > 0 ? `${e.file}:${e.line}: ${e.kind}: ${e.text} — ${e.reason}` : `${e.file}: ${e.kind}: ${e.reason}`,
  );
}

/**
 * Splits a file into logical lines: `comment` starts a comment anywhere on a line (when
 * set); a line ending in a backslash continues on the next (when `continuation`).
 * Blank and comment-only lines are dropped.
 */
export function splitLines(
  text: string,
  file: string,
  opts: { comment?: 'anywhere' | 'leading'; continuation?: boolean } = {},
): SourceLine[] {
  const physical = text.split(/\r?\n/);
  const out: SourceLine[] = [];
  let pending: { line: number; lines: number[]; text: string; indent: number } | undefined;
  physical.forEach((raw, i) => {
    let s = raw.replace(/\r$/, '');
    if (opts.comment === 'anywhere') {
      const h = s.indexOf('#');
      if (h >= 0) s = s.slice(0, h);
    } else if (opts.comment === 'leading' && /^\s*#/.test(s)) {
      s = '';
    }
    const cont = opts.continuation === true && /\\\s*$/.test(s);
    if (cont) s = s.replace(/\\\s*$/, ' ');
    if (pending) {
      pending.lines.push(i + 1);
      pending.text += ` ${s.trim()}`;
    } else if (s.trim() !== '' || cont) {
      pending = { line: i + 1, lines: [i + 1], text: s.trim(), indent: (/^[ \t]*/.exec(s)?.[0] ?? '').replace(/\t/g, '    ').length };
    }
    if (pending && !cont) {
      const t = pending.text.trim();
      if (t !== '') out.push({ file, line: pending.line, lines: pending.lines, text: t, indent: pending.indent });
      pending = undefined;
    }
  });
  if (pending && pending.text.trim() !== '') {
    out.push({ file, line: pending.line, lines: pending.lines, text: pending.text.trim(), indent: pending.indent });
  }
  return out;
}
