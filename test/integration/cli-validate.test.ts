import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { CLI, ROOT, tmpDir, writeFile } from '../helpers/daemon.js';

const run = async (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, ...args], { env: { ...process.env, VIGIL_NODE: '' } });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
};

describe('vigil validate', () => {
  const examples = readdirSync(join(ROOT, 'config', 'examples')).map((f) => join(ROOT, 'config', 'examples', f));

  it('accepts the bundled config and every example (exit 0)', async () => {
    expect(examples.length).toBeGreaterThanOrEqual(3);
    // the examples name /etc/vigil/authkey, which exists on a director, not here
    const r = await run(['validate', '--schema-only', join(ROOT, 'config', 'vigil.yaml'), ...examples]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(examples.length + 1);
  });

  it('prints one located line per problem and exits 1', async () => {
    const dir = tmpDir();
    const file = writeFile(
      dir,
      'three.yaml',
      `node: lvs1
cluster:
  nodes:
    - name: lvs1
      links: [{ name: hb, address: 10.0.0.1 }]
vips:
  - { address: 10.0.0.100, interface: eth0 }
services:
  - name: web
    vip: 10.0.0.100
    port: 80
    schedular: wlc
    check: { type: tcp, interval_ms: 1000, timeout_ms: 1500 }
    real_servers:
      - { address: 10.0.0.5, port: 0 }
`,
    );
    const r = await run(['validate', file]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([
      `${file}: services[0].schedular: unknown key "schedular" (did you mean "scheduler"?) (line 12)`,
      `${file}: services[0].check.timeout_ms: timeout_ms (1500) must be less than interval_ms (1000) so a probe never overlaps itself (line 13)`,
      `${file}: services[0].real_servers[0].port: must be between 1 and 65535 (line 15)`,
    ]);
  });

  it('reports an unreadable file', async () => {
    const r = await run(['validate', '/nonexistent/vigil.yaml']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('/nonexistent/vigil.yaml: (top level): cannot read: ENOENT');
  });

  it('has --help for every command and for itself', async () => {
    const top = await run(['--help']);
    expect(top.code).toBe(0);
    const names = [...top.stdout.matchAll(/^ {2}(\S+) {2,}/gm)].map((m) => m[1] as string);
    expect(names).toContain('run');
    expect(names).toContain('validate');
    for (const n of names) {
      const h = await run([n, '--help']);
      expect(h.code, n).toBe(0);
      expect(h.stdout, n).toMatch(new RegExp(`^Usage: vigil ${n}`));
    }
  });

  it('rejects an unknown command with usage (exit 2)', async () => {
    const r = await run(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown command "frobnicate"');
  });
});
