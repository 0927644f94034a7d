/**
 * Differential test of `vigil import --ipvsadm-save` against the real ipvsadm and kernel
 * IPVS (Debian's kernel under qemu, ONE boot for the whole corpus):
 *
 * - each corpus file (test/fixtures/import/ipvsadm-corpus/) is imported here with the
 *   real CLI; the files the import must accept exit 0, the others 1 with error lines;
 * - in the VM (test/e2e/guest/import-ipvs.scenario.ts) each file is applied with the real
 *   ipvsadm and saved, the table cleared, and the real vigil daemon started with the
 *   imported config must program an identical `ipvsadm -S -n`;
 * - for refused.sh, the lines the kernel refuses must be exactly the import's error lines;
 *   for unsupported.sh, the kernel keeps options (-b, -x, -y, --pe) the import reports as
 *   errors, one line each.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { compileGuest, ROOT, runInVm, vmUnavailable, type VmRun } from './ipvs-vm.js';

const why = vmUnavailable();
if (why) console.log(`skipping the ipvsadm import differential test: ${why}`);

const CORPUS = join(ROOT, 'test/fixtures/import/ipvsadm-corpus');
/** Files whose import must fail: what they hold cannot be said in vigil, or the kernel refuses it. */
const FAILING = new Set(['refused.sh', 'unsupported.sh']);

interface Imported {
  name: string;
  rules: string;
  form: 'restore' | 'script';
  exit: number;
  report: string;
  yaml?: string;
}

describe.skipIf(why !== undefined)('vigil import of ipvsadm rules and commands = the kernel (VM)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-import-ipvs-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const cases: Imported[] = [];
  let run: VmRun;
  const record = (name: string): Record<string, unknown> => {
    const r = run.records.find((x) => x.case === name);
    if (!r) throw new Error(`case ${name} missing; VM output:\n${run.output.slice(-4000)}`);
    return r;
  };

  beforeAll(async () => {
    for (const f of readdirSync(CORPUS).sort()) {
      const rules = join(CORPUS, f);
      const yaml = join(dir, `${f}.yaml`);
      const report = join(dir, `${f}.report`);
      const r = await execa('node', [join(ROOT, 'dist/cli.js'), 'import', '--ipvsadm-save', rules, '-o', yaml, '--report', report], { reject: false });
      const c: Imported = { name: f, rules, form: f.endsWith('.rules') ? 'restore' : 'script', exit: r.exitCode ?? -1, report: readFileSync(report, 'utf8') };
      if (!FAILING.has(f)) c.yaml = yaml;
      cases.push(c);
    }
  }, 120_000);

  it('imports every faithful corpus file with exit 0 and no error line', () => {
    for (const c of cases.filter((x) => !FAILING.has(x.name))) {
      expect({ name: c.name, exit: c.exit, errors: c.report.split('\n').filter((l) => /: error: /.test(l)) }).toEqual({ name: c.name, exit: 0, errors: [] });
    }
  });

  it('boots the VM once and runs the whole corpus', async () => {
    // the daemon starts with an imported config stripped of its services and VIPs, and
    // goes back to it between cases
    const first = cases.find((c) => c.yaml !== undefined) as Imported;
    const emptyConfig = parseYaml(readFileSync(first.yaml as string, 'utf8')) as Record<string, unknown>;
    delete emptyConfig.services;
    delete emptyConfig.vips;
    const empty = join(dir, 'empty.yaml');
    writeFileSync(empty, stringifyYaml(emptyConfig));
    const manifest = join(dir, 'manifest.json');
    const list = cases.map((c) => ({ name: c.name, rules: c.rules, form: c.form, ...(c.yaml !== undefined ? { yaml: c.yaml } : {}) }));
    writeFileSync(manifest, JSON.stringify({ current: join(dir, 'current.yaml'), empty, cases: list }));
    const file = compileGuest('test/e2e/guest/import-ipvs.scenario.ts');
    run = await runInVm(`node ${file} ${manifest}`, 1200);
    console.log(`ipvsadm import corpus: ${Math.round(run.wallMs / 1000)} s in the VM\n${run.records.map((r) => JSON.stringify(r)).join('\n')}`);
    expect(run.records.find((r) => r.step === 'daemon')).toMatchObject({ running: true });
    expect(run.records.at(-1)).toEqual({ done: true });
    expect(run.code).toBe(0);
  }, 1_260_000);

  it('for every faithful file, vigil programs the table ipvsadm made', () => {
    for (const c of cases.filter((x) => !FAILING.has(x.name))) {
      const r = record(c.name);
      expect(r.refused, c.name).toEqual([]);
      expect(r.cleared, c.name).toBe(true);
      expect((r.kernel as string[]).length, c.name).toBeGreaterThan(0);
      expect({ name: c.name, table: r.vigil }).toEqual({ name: c.name, table: r.kernel });
    }
  });

  it('the lines the kernel refuses are exactly the import’s error lines, and the import fails', () => {
    const c = cases.find((x) => x.name === 'refused.sh') as Imported;
    const refusedByKernel = (record(c.name).refused as { line: number }[]).map((x) => x.line);
    const errorLines = [...new Set([...c.report.matchAll(/^[^\n]*refused\.sh:(\d+): error: /gm)].map((m) => Number(m[1])))];
    expect(refusedByKernel.length).toBeGreaterThan(5);
    expect(errorLines).toEqual(refusedByKernel);
    expect(c.exit).toBe(1);
  });

  it('options the kernel keeps but vigil cannot carry are one error line each, and the import fails', () => {
    const c = cases.find((x) => x.name === 'unsupported.sh') as Imported;
    const kernel = (record(c.name).kernel as string[]).join('\n');
    for (const opt of ['-b sh-port', '--pe sip']) expect(kernel).toContain(opt);
    // ipvsadm -S does not print thresholds; the listing shows the kernel keeps them
    expect(record(c.name).thresholds).toMatch(/10\.20\.8\.1:80\s+100\s+50/);
    const errors = c.report.split('\n').filter((l) => /: error: /.test(l));
    for (const opt of ['-b sh-port', '-x 100', '-y 50', '--pe sip', 'one forwarding method']) expect(errors.some((l) => l.includes(opt)), opt).toBe(true);
    expect(c.exit).toBe(1);
  });
});
