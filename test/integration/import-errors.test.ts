/**
 * `vigil import` exits non-zero when the output would not do what the input did (an
 * "error" report line), even when the output validates; `--partial` accepts it.
 * The built CLI, as an operator runs it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'cli.js');
const dir = mkdtempSync(join(tmpdir(), 'vigil-import-errors-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const vigil = (...args: string[]) => execa('node', [CLI, ...args], { reject: false, cwd: dir });
const write = (name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

describe('error lines and --partial', () => {
  it('the manual’s command sequence imports as the kernel holds it (wrr 3/1), exit 0', async () => {
    const rules = write('manual.sh', 'ipvsadm -A -t 10.0.0.1:80 -s rr\nipvsadm -a -t 10.0.0.1:80 -r 10.0.1.1:80 -g\nipvsadm -a -t 10.0.0.1:80 -r 10.0.1.2:80 -g\nipvsadm -E -t 10.0.0.1:80 -s wrr\nipvsadm -e -t 10.0.0.1:80 -r 10.0.1.1:80 -g -w 3\n');
    const r = await vigil('import', '--ipvsadm-save', rules, '-o', join(dir, 'manual.yaml'));
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/vigil import: 0 errors, /);
  }, 60_000);

  it('a valid output with error lines exits 1; --partial exits 0; both say how many errors', async () => {
    const rules = write('bad.sh', 'ipvsadm -A -t 10.0.0.1:80 -s rr\nipvsadm -a -t 10.0.0.1:80 -r 10.0.1.1:80 -g -w 2 -x 100 -y 50\nipvsadm -E -t 10.0.0.1:81 -s wrr\n');
    const strict = await vigil('import', '--ipvsadm-save', rules, '-o', join(dir, 'bad.yaml'));
    expect(strict.exitCode).toBe(1);
    expect(strict.stderr).toMatch(/bad\.sh:2: error: .* — -x 100: upper connection thresholds/);
    expect(strict.stderr).toMatch(/bad\.sh:2: error: .* — -y 50: lower connection thresholds/);
    expect(strict.stderr).toMatch(/bad\.sh:3: error: .*No such service/);
    expect(strict.stderr).toMatch(/vigil import: 3 errors, .*the output validates/);
    const partial = await vigil('import', '--ipvsadm-save', rules, '-o', join(dir, 'bad.yaml'), '--partial');
    expect(partial.exitCode).toBe(0);
    expect(partial.stderr).toMatch(/vigil import: 3 errors, /);
  }, 60_000);

  it('a haresources group for a node not in ha.cf fails the import', async () => {
    const ha = write('ha.cf', 'ucast eth1 10.0.0.2\nnode lvs1 lvs2\n');
    const res = write('haresources', 'S_hostname IPaddr::172.16.81.141/24/eth1 LvsScript\n');
    const keys = write('authkeys', 'auth 1\n1 sha1 a-long-enough-shared-key\n');
    const r = await vigil('import', '--ha-cf', ha, '--haresources', res, '--authkeys', keys, '--node', 'lvs1', '--address', 'eth1=10.0.0.1', '-o', join(dir, 'ha.yaml'));
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/haresources:1: error: .*node "S_hostname" is not one of the nodes in ha\.cf/);
  }, 60_000);
});
