/**
 * The bounds on a config's size (src/config/limits.ts): at each limit the config is
 * accepted, one past it refused with a message that names the limit and the value found,
 * and the loader adds the file (and the line where one is known).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LineCounter } from 'yaml';
import { ConfigError, loadConfig, parseConfig } from '../../src/config/load.js';
import { CONFIG_LIMITS, checkCounts, LimitExceeded, parseYamlBounded, readConfigFile } from '../../src/config/limits.js';

const BASE = `node: a
cluster:
  nodes:
    - name: a
      links: [{ name: lo, address: 127.0.0.1 }]
`;

const problemsOf = (fn: () => unknown): string[] => {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e.message.split('\n').slice(1);
    throw e;
  }
  return [];
};

const dir = mkdtempSync(join(tmpdir(), 'vigil-limits-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('file size (stat before read)', { timeout: 120_000 }, () => {
  const L = CONFIG_LIMITS.fileBytes;
  const padded = (bytes: number): string => {
    const pad = bytes - BASE.length;
    // one comment line per KiB or so, exact total
    const lines: string[] = [];
    let left = pad;
    while (left > 0) {
      const n = Math.min(left, 1024);
      lines.push(n === 1 ? '\n' : `#${'x'.repeat(n - 2)}\n`);
      left -= n;
    }
    return BASE + lines.join('');
  };

  it('accepts a file of exactly the limit', () => {
    const f = join(dir, 'at-limit.yaml');
    writeFileSync(f, padded(L));
    expect(loadConfig(f, {}).config.node).toBe('a');
  });

  it('refuses one byte more, naming the file, the limit and the size', () => {
    const f = join(dir, 'over-limit.yaml');
    writeFileSync(f, padded(L + 1));
    expect(problemsOf(() => loadConfig(f, {}))).toEqual([`${f}: (top level): file too large: ${L + 1} bytes (limit ${L} bytes = 4 MiB)`]);
  });

  it('refuses text handed over directly the same way', () => {
    expect(problemsOf(() => parseConfig(padded(L + 1), 'given.yaml', {}))).toEqual([`given.yaml: (top level): file too large: ${L + 1} bytes (limit ${L} bytes = 4 MiB)`]);
  });

  it('refuses what is not a regular file without reading it (/dev/zero would never end)', () => {
    expect(problemsOf(() => loadConfig('/dev/zero', {}))).toEqual(['/dev/zero: (top level): is not a regular file']);
    expect(() => readConfigFile(dir)).toThrow(LimitExceeded);
  });
});

describe('YAML nodes and nesting (counted while parsing)', { timeout: 120_000 }, () => {
  const small = { ...CONFIG_LIMITS, yamlNodes: 10, yamlDepth: 3 };
  const parse = (text: string, limits = small) => parseYamlBounded(text, new LineCounter(), limits);

  it('counts scalars, sequence items and flow collections', () => {
    // a: [1, 2, 3, 4] → a, [, 1, 2, 3, 4 = 6; b: - x - y → b, -, x, -, y = 5 → 11
    expect(() => parse('a: [1, 2, 3]\nb:\n  - x\n  - y\n')).not.toThrow();
    expect(() => parse('a: [1, 2, 3, 4]\nb:\n  - x\n  - y\n')).toThrow('YAML too large: 11 nodes (limit 10)');
  });

  it('reports the whole count of an over-limit file, not where it stopped', () => {
    expect(() => parse(`x: [${Array.from({ length: 100 }, () => '0').join(', ')}]\n`)).toThrow('YAML too large: 102 nodes (limit 10)');
  });

  it('bounds nesting, block and flow, with the line', () => {
    expect(() => parse('a:\n  b:\n    c: 1\n')).not.toThrow();
    expect(() => parse('a:\n  b:\n    c:\n      d: 1\n')).toThrow(expect.objectContaining({ problem: { path: [], message: 'YAML nested too deeply: 4 levels (limit 3)', line: 4 } }));
    expect(() => parse('a: [[[1]]]\n')).toThrow('YAML nested too deeply: 4 levels (limit 3)');
  });

  it('at the real limits: 64 levels accepted, 65 refused', () => {
    const nest = (n: number): string => `node: a\nx: ${'['.repeat(n - 1)}1${']'.repeat(n - 1)}\n`;
    expect(problemsOf(() => parseConfig(nest(64), 'deep.yaml', {})).join('\n')).not.toMatch(/nested too deeply/);
    expect(problemsOf(() => parseConfig(nest(65), 'deep.yaml', {}))).toEqual(['deep.yaml: (top level): YAML nested too deeply: 65 levels (limit 64) (line 2)']);
    // a flow nesting that would overflow the composer's stack is refused, not a crash
    expect(problemsOf(() => parseConfig(`x: ${'['.repeat(100_000)}`, 'deeper.yaml', {}))).toEqual([
      'deeper.yaml: (top level): YAML nested too deeply: 65 levels (limit 64) (line 1)',
    ]);
  });

  it(`at the real limit: ${CONFIG_LIMITS.yamlNodes + 1} nodes refused with the count`, () => {
    const n = CONFIG_LIMITS.yamlNodes; // "x: [" → x and [ are 2 nodes, then n items
    const text = `x: [${'0,'.repeat(n - 2)}0]\n`;
    expect(problemsOf(() => parseConfig(text, 'many.yaml', {}))).toEqual([`many.yaml: (top level): YAML too large: ${n + 1} nodes (limit ${n})`]);
  });
});

describe('aliases (expanded size)', { timeout: 120_000 }, () => {
  it('refuses a billion laughs with the expanded count', () => {
    const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i <= 8; i++) lines.push(`a${i}: &a${i} [${Array.from({ length: 10 }, () => `*a${i - 1}`).join(', ')}]`);
    const problems = problemsOf(() => parseConfig(`${BASE}${lines.join('\n')}\n`, 'lol.yaml', {}));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^lol\.yaml: \(top level\): YAML aliases expand to \d+ nodes \(limit 500000\)$/);
    expect(Number(/expand to (\d+)/.exec(problems[0] as string)?.[1])).toBeGreaterThan(100_000_000);
  });

  it('accepts one anchored check shared by many services (yaml’s maxAliasCount of 100 would not)', () => {
    const services = Array.from({ length: 300 }, (_, i) => `  - { name: s${i}, vip: 127.0.0.1, port: ${1000 + i}, check: *chk, real_servers: [{ address: 127.0.0.2 }] }`);
    const text = `${BASE}x-check: &chk { type: tcp, interval_ms: 5000, timeout_ms: 1000 }\nvips: [{ address: 127.0.0.1, interface: lo, managed: false }]\nservices:\n${services.join('\n')}\n`;
    // x-check is an unknown key: the only problem; the aliases themselves pass
    expect(problemsOf(() => parseConfig(text, 'shared.yaml', {}))).toEqual([expect.stringMatching(/^shared\.yaml: x-check: unknown key "x-check"/)]);
  });

  it('refuses an alias inside the node it names', () => {
    expect(problemsOf(() => parseConfig(`${BASE}x: &a [1, *a]\n`, 'cycle.yaml', {}))).toEqual(['cycle.yaml: (top level): YAML alias *a refers to a node that contains it (a cycle)']);
  });
});

describe('counts of services, real servers, probes and VIPs', { timeout: 120_000 }, () => {
  const L = CONFIG_LIMITS;
  const rs = (n: number, check = false) => Array.from({ length: n }, () => (check ? { check: {} } : {}));
  const svcs = (n: number, per: number, check = false) => Array.from({ length: n }, () => ({ real_servers: rs(per, check) }));

  it.each([
    ['services', { services: svcs(L.services, 0) }, { services: svcs(L.services + 1, 0) }, `too many services: ${L.services + 1} (limit ${L.services})`, ['services']],
    [
      'real servers per service',
      { services: [{ real_servers: rs(L.realServersPerService) }] },
      { services: [{}, { real_servers: rs(L.realServersPerService + 1) }] },
      `too many real servers in one service: ${L.realServersPerService + 1} (limit ${L.realServersPerService} per service)`,
      ['services', 1, 'real_servers'],
    ],
    [
      'real servers in total',
      { services: svcs(L.realServers / 1000, 1000) },
      { services: [...svcs(L.realServers / 1000, 1000), { real_servers: rs(1) }] },
      `too many real servers in total: ${L.realServers + 1} (limit ${L.realServers})`,
      ['services'],
    ],
    [
      'probes (a service check counts for each real server, a real server check for one)',
      { services: [...svcs(L.probes / 1000 - 1, 1000, true), { check: {}, real_servers: rs(999) }, { real_servers: [{ check: {} }, {}] }] },
      { services: [...svcs(L.probes / 1000 - 1, 1000, true), { check: {}, real_servers: rs(999) }, { real_servers: [{ check: {} }, { check: {} }] }] },
      `too many health probes (real servers with a check): ${L.probes + 1} (limit ${L.probes})`,
      ['services'],
    ],
    ['VIPs', { vips: rs(L.vips) }, { vips: rs(L.vips + 1) }, `too many VIPs: ${L.vips + 1} (limit ${L.vips})`, ['vips']],
  ])('%s: at the limit accepted, one more refused', (_name, at, over, message, path) => {
    expect(checkCounts(at)).toEqual([]);
    expect(checkCounts(over)).toEqual([{ path, message }]);
  });

  it('through the loader: the file, the path, the line, the limit and the value', () => {
    const vips = (n: number) => Array.from({ length: n }, (_, i) => `  - { address: 10.0.${i >> 8}.${i & 255}, interface: lo }`).join('\n');
    expect(parseConfig(`${BASE}vips:\n${vips(L.vips)}\n`, '/etc/vigil/vigil.yaml', {}).config.vips).toHaveLength(L.vips);
    expect(problemsOf(() => parseConfig(`${BASE}vips:\n${vips(L.vips + 1)}\n`, '/etc/vigil/vigil.yaml', {}))).toEqual([
      `/etc/vigil/vigil.yaml: vips: too many VIPs: ${L.vips + 1} (limit ${L.vips}) (line 7)`,
    ]);
  });

  it('reports every count over its limit at once, before the schema runs', () => {
    const many = `${BASE}services:\n  - { name: big, vip: 127.0.0.1, port: 80, real_servers: [${'{}, '.repeat(L.realServersPerService)}{}] }\nvips: [${'{}, '.repeat(L.vips)}{}]\n`;
    expect(problemsOf(() => parseConfig(many, 'x.yaml', {}))).toEqual([
      `x.yaml: services[0].real_servers: too many real servers in one service: ${L.realServersPerService + 1} (limit ${L.realServersPerService} per service) (line 7)`,
      `x.yaml: vips: too many VIPs: ${L.vips + 1} (limit ${L.vips}) (line 8)`,
    ]);
  });
});
