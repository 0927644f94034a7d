/**
 * docs/import-mon.md is generated from the data the mon import uses; this keeps the file
 * in step (VIGIL_WRITE_DOCS=1 rewrites it), and checks that the monitor table covers
 * every monitor the mapper knows.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { monDocs } from '../../src/import/mondocs.js';
import { MON_GLOBALS, MON_SERVICE_OPTIONS } from '../../src/import/monchecks.js';
import { MONITORS } from '../../src/import/monitors.js';

const FILE = join(resolve(import.meta.dirname, '../..'), 'docs/import-mon.md');

describe('docs/import-mon.md', () => {
  it('is the text generated from the mapper’s own tables', () => {
    const text = monDocs();
    if (process.env.VIGIL_WRITE_DOCS === '1') writeFileSync(FILE, text);
    expect(readFileSync(FILE, 'utf8')).toBe(text);
  });

  it('names every monitor, service option and global the mapper knows', () => {
    const text = monDocs();
    for (const m of MONITORS) expect(text).toContain(`| \`${m.name}\` |`);
    for (const k of Object.keys(MON_SERVICE_OPTIONS)) expect(text).toContain(`\`${k}\``);
    for (const k of Object.keys(MON_GLOBALS)) expect(text).toContain(`| \`${k} = ...\` |`);
    // http.monitor's accepted status codes come from the same constant the mapper uses
    expect(text).toMatch(/expect_status: \[200, 301, 302, 401\]/);
  });
});
