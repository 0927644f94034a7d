/**
 * `vigil import` exits non-zero when some input is an error (ambiguous or unresolvable:
 * the output would not do what the old setup did), even though the output validates;
 * `--partial` accepts that result knowingly. The built CLI, as an operator runs it.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';

const CLI = join(resolve(import.meta.dirname, '..', '..'), 'dist', 'cli.js');
const dir = mkdtempSync(join(tmpdir(), 'vigil-import-partial-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const vigil = (...args: string[]) => execa('node', [CLI, ...args], { reject: false, cwd: dir });

describe('vigil import: error lines and --partial', () => {
  const rules = join(dir, 'rules');
  const monCf = join(dir, 'mon.cf');
  writeFileSync(rules, '-A -t 10.0.0.1:80 -s wlc\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -g -w 1\n-A -t 10.0.0.1:21 -s wlc\n-a -t 10.0.0.1:21 -r 10.0.1.1:21 -g -w 1\n');
  // http.monitor → :80; a custom monitor on the same host: which service it probes cannot be told
  writeFileSync(monCf, 'hostgroup rs 10.0.1.1\n\nwatch rs\n  service web\n    interval 5s\n    monitor http.monitor -t 2\n  service deep\n    interval 10s\n    monitor my-app.monitor --deep\n');

  it('an ambiguous monitor is an error line and exit 1, although the output validates', async () => {
    const out = join(dir, 'a.yaml');
    const r = await vigil('import', '--mon-cf', monCf, '--ipvsadm-save', rules, '-o', out);
    expect(r.stderr).toMatch(/mon\.cf:9: error: monitor my-app\.monitor --deep — cannot tell which service this monitor probes/);
    expect(r.stderr).toMatch(/vigil import: 1 errors, .*the output validates/);
    expect(r.stderr).toMatch(/vigil import: 1 errors: .*rerun with --partial/);
    expect(r.exitCode).toBe(1);
    expect((await vigil('validate', out)).exitCode).toBe(0);
  });

  it('--partial accepts the result without the ambiguous part', async () => {
    const out = join(dir, 'b.yaml');
    const r = await vigil('import', '--mon-cf', monCf, '--ipvsadm-save', rules, '--partial', '-o', out);
    expect(r.stderr).toMatch(/1 errors accepted with --partial/);
    expect(r.exitCode).toBe(0);
    const cfg = parseYaml(readFileSync(out, 'utf8'));
    expect(cfg.services.map((s: { port: number; check?: { type: string } }) => [s.port, s.check?.type])).toEqual([[80, 'http'], [21, undefined]]);
  });
});
