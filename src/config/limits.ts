/**
 * Bounds on the size of a config, so that reading, parsing and validating the largest
 * accepted file takes bounded time and memory (a 56 MB file once ran a daemon out of
 * memory in the middle of a reload). Each bound is checked as early as it can be: the
 * file's size from stat() before it is read; YAML nodes and nesting while the lexer
 * feeds the parser (so a pathological file is refused before its document exists); the
 * node count with every alias expanded before the YAML becomes JS; the counts of
 * services, real servers, probes and VIPs before the schema runs.
 *
 * Every refusal is a Problem whose message names the limit and the value found
 * ("too many services: 5001 (limit 5000)"); the loader adds the file and line.
 */
import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { Composer, isAlias, isCollection, isPair, isScalar, Lexer, Parser, YAMLParseError, type CST, type Document, type LineCounter, type Node } from 'yaml';
import type { Problem } from './validate.js';

export const CONFIG_LIMITS = {
  /** Bytes of the file, checked with stat() before it is read. */
  fileBytes: 4 * 1024 * 1024,
  /** Scalars, block-sequence items, explicit keys and flow collections, counted by the lexer. */
  yamlNodes: 500_000,
  /** Open collections at once (the deepest real path, services[].real_servers[].check.expect_status[], is 7). */
  yamlDepth: 64,
  /** Nodes once every alias is expanded (a YAML "billion laughs" is refused here). */
  yamlExpandedNodes: 500_000,
  services: 5_000,
  realServers: 20_000,
  realServersPerService: 5_000,
  /** Real servers with a health check (their own or their service's). */
  probes: 10_000,
  vips: 256,
} as const;

export type ConfigLimits = { readonly [K in keyof typeof CONFIG_LIMITS]: number };

/** A bound was exceeded; `line` when the place in the file is known. */
export class LimitExceeded extends Error {
  constructor(
    readonly problem: Problem & { line?: number },
  ) {
    super(problem.message);
    this.name = 'LimitExceeded';
  }
}

/**
 * Reads a config file, refusing what is not a regular file or is larger than the limit
 * before reading it (stat first; the read itself stops one byte past the limit in case
 * the file grew in between).
 */
export function readConfigFile(file: string, limits: ConfigLimits = CONFIG_LIMITS): string {
  const st = statSync(file); // ENOENT etc. go to the caller as "cannot read"
  if (!st.isFile()) throw new LimitExceeded({ path: [], message: 'is not a regular file' });
  if (st.size > limits.fileBytes) throw new LimitExceeded({ path: [], message: tooLarge(st.size, limits) });
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size > limits.fileBytes) throw new LimitExceeded({ path: [], message: tooLarge(size, limits) });
    const buf = Buffer.alloc(limits.fileBytes + 1);
    let n = 0;
    for (;;) {
      const r = readSync(fd, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
      if (n > limits.fileBytes) throw new LimitExceeded({ path: [], message: tooLarge(n, limits, 'at least ') });
    }
    return buf.toString('utf8', 0, n);
  } finally {
    closeSync(fd);
  }
}

/** The same bound for text handed over directly (`vigil import`, tests). */
export function checkTextSize(text: string, limits: ConfigLimits = CONFIG_LIMITS): void {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > limits.fileBytes) throw new LimitExceeded({ path: [], message: tooLarge(bytes, limits) });
}

function tooLarge(bytes: number, limits: ConfigLimits, qualifier = ''): string {
  return `file too large: ${qualifier}${bytes} bytes (limit ${limits.fileBytes} bytes = ${(limits.fileBytes / 1024 / 1024).toFixed(limits.fileBytes % (1024 * 1024) === 0 ? 0 : 1)} MiB)`;
}

const SCALAR = '\u001f'; // the lexer's marker before a scalar's source

/**
 * `parseDocument` with bounds: the lexer's tokens go to the parser one by one, counted on
 * the way, and the parse stops at the first token past the node or depth limit. For an
 * over-limit file the remaining tokens are only counted (no document is built), so the
 * error can state the value found.
 */
export function parseYamlBounded(text: string, lines: LineCounter, limits: ConfigLimits = CONFIG_LIMITS): Document.Parsed {
  const lexer = new Lexer();
  const parser = new Parser(lines.addNewLine);
  const composer = new Composer({ uniqueKeys: true, prettyErrors: false });
  let offset = 0;
  function* tokens(): Generator<CST.Token> {
    lines.addNewLine(0);
    let nodes = 0;
    const lexemes = lexer.lex(text, false);
    for (const lexeme of lexemes) {
      if (isNodeToken(lexeme)) nodes += 1;
      if (nodes > limits.yamlNodes) {
        for (const rest of lexemes) if (isNodeToken(rest)) nodes += 1;
        throw new LimitExceeded({ path: [], message: `YAML too large: ${nodes} nodes (limit ${limits.yamlNodes})` });
      }
      yield* parser.next(lexeme);
      offset += lexeme.length;
      // the parser's stack holds the document, every collection still open and maybe the
      // current scalar: count the collections only when the stack is long enough to matter
      if (parser.stack.length > limits.yamlDepth) {
        const depth = parser.stack.filter((t) => COLLECTIONS.has(t.type)).length;
        if (depth > limits.yamlDepth) {
          throw new LimitExceeded({
            path: [],
            message: `YAML nested too deeply: ${depth} levels (limit ${limits.yamlDepth})`,
            line: lines.linePos(Math.min(offset, text.length)).line,
          });
        }
      }
    }
    yield* parser.end();
  }
  let doc: Document.Parsed | undefined;
  for (const d of composer.compose(tokens(), true, text.length)) {
    if (!doc) doc = d;
    else {
      doc.errors.push(new YAMLParseError(d.range.slice(0, 2) as [number, number], 'MULTIPLE_DOCS', 'Source contains multiple documents; a config is one document'));
      break;
    }
  }
  return doc as Document.Parsed;
}

const COLLECTIONS = new Set(['block-map', 'block-seq', 'flow-collection']);

function isNodeToken(lexeme: string): boolean {
  return lexeme === SCALAR || lexeme === '-' || lexeme === '?' || lexeme === '[' || lexeme === '{';
}

/**
 * Nodes of the document with every alias counted as the nodes it stands for: the work
 * the JS value costs whoever walks it (the schema does). An alias inside the node it
 * refers to is a cycle, refused too.
 */
export function checkExpandedSize(doc: Document, limits: ConfigLimits = CONFIG_LIMITS): void {
  const anchors = new Map<string, Node>();
  const sizes = new Map<Node, number>();
  const open = new Set<Node>();
  const size = (n: unknown): number => {
    if (n === null || n === undefined) return 0;
    if (isAlias(n)) {
      const target = anchors.get(n.source);
      if (target === undefined) return 1; // an unresolved alias is the parser's error
      if (open.has(target)) throw new LimitExceeded({ path: [], message: `YAML alias *${n.source} refers to a node that contains it (a cycle)` });
      return sizes.get(target) ?? 1;
    }
    if (isPair(n)) return size(n.key) + size(n.value);
    let s = 1;
    const node = n as Node;
    if (!isCollection(node) && !isScalar(node)) return 1;
    if (node.anchor) anchors.set(node.anchor, node); // before the items: an alias among them is a cycle
    if (isCollection(node)) {
      open.add(node);
      for (const item of node.items) s += size(item);
      open.delete(node);
    }
    if (node.anchor) sizes.set(node, s);
    return s;
  };
  const total = size(doc.contents);
  if (total > limits.yamlExpandedNodes) {
    throw new LimitExceeded({ path: [], message: `YAML aliases expand to ${total} nodes (limit ${limits.yamlExpandedNodes})` });
  }
}

type Loose = Record<string, unknown>;
const obj = (v: unknown): Loose | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Loose) : undefined);

/** Counts of services, real servers, probes and VIPs, on the raw YAML value (before the schema). */
export function checkCounts(raw: unknown, limits: ConfigLimits = CONFIG_LIMITS): Problem[] {
  const root = obj(raw);
  if (!root) return [];
  const problems: Problem[] = [];
  const services = Array.isArray(root.services) ? (root.services as unknown[]) : [];
  if (services.length > limits.services) problems.push({ path: ['services'], message: `too many services: ${services.length} (limit ${limits.services})` });
  let realServers = 0;
  let probes = 0;
  services.forEach((s, i) => {
    const svc = obj(s);
    const rss = Array.isArray(svc?.real_servers) ? (svc?.real_servers as unknown[]) : [];
    if (rss.length > limits.realServersPerService) {
      problems.push({ path: ['services', i, 'real_servers'], message: `too many real servers in one service: ${rss.length} (limit ${limits.realServersPerService} per service)` });
    }
    realServers += rss.length;
    if (svc?.check !== undefined && svc.check !== null) probes += rss.length;
    else for (const r of rss) if (obj(r)?.check !== undefined && obj(r)?.check !== null) probes += 1;
  });
  if (realServers > limits.realServers) problems.push({ path: ['services'], message: `too many real servers in total: ${realServers} (limit ${limits.realServers})` });
  if (probes > limits.probes) problems.push({ path: ['services'], message: `too many health probes (real servers with a check): ${probes} (limit ${limits.probes})` });
  const vips = Array.isArray(root.vips) ? root.vips.length : 0;
  if (vips > limits.vips) problems.push({ path: ['vips'], message: `too many VIPs: ${vips} (limit ${limits.vips})` });
  return problems;
}
