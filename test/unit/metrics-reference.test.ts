/**
 * The README's metrics reference stays true: every metric createMetrics() registers is
 * listed there with its type and exact labels, and nothing listed is gone.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/metrics.js';

const README = readFileSync(resolve(import.meta.dirname, '..', '..', 'README.md'), 'utf8');
const section = README.slice(README.indexOf('## Metrics reference'), README.indexOf('\n## ', README.indexOf('## Metrics reference') + 5));

/** `| \`name\` | type | \`a\`, \`b\` | meaning |` rows of the reference table. */
const rows = new Map(
  [...section.matchAll(/^\| `(vigil_[a-z0-9_]+)` \| (\w+) \| ([^|]*) \| (.+) \|$/gm)].map((m) => [
    m[1] as string,
    { type: m[2] as string, labels: [...(m[3] as string).matchAll(/`([a-z_]+)`/g)].map((x) => x[1]), meaning: (m[4] as string).trim() },
  ]),
);

const registered = Object.entries(createMetrics({ defaults: false }))
  .filter(([k]) => k !== 'registry')
  .map(([, v]) => v as unknown as { name: string; labelNames?: string[]; constructor: { name: string } });

describe('README metrics reference', () => {
  it('has the section and a table', () => {
    expect(section.startsWith('## Metrics reference')).toBe(true);
    expect(rows.size).toBeGreaterThan(40);
  });

  it.each(registered.map((m) => [m.name, m]))('lists %s with its type, labels and a meaning', (name, m) => {
    const row = rows.get(name);
    expect(row, `${name} missing from README's Metrics reference`).toBeDefined();
    expect(row?.type).toBe(m.constructor.name.toLowerCase());
    expect(row?.labels).toEqual(m.labelNames ?? []);
    expect(row?.meaning.length).toBeGreaterThan(10);
  });

  it('lists no metric that is not registered', () => {
    const names = new Set(registered.map((m) => m.name));
    expect([...rows.keys()].filter((n) => !names.has(n))).toEqual([]);
  });
});
