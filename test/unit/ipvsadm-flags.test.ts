import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { diff } from '../../src/reconcile/diff.js';
import { enableSloppy, inListOrder } from '../../src/reconcile/ipvs.js';
import { formatOperation, formatSave, parseList, parseSave } from '../../src/reconcile/ipvsadm.js';
import type { TableService } from '../../src/reconcile/table.js';

// recorded with ipvsadm v1.31 against Debian 12's kernel in ../shared/ipvs-vm, from
// `ipvsadm -A ... -s mh -b mh-port,mh-fallback` (the kernel prints the flags sorted)
const fixture = readFileSync(new URL('../fixtures/ipvsadm/save-mh-flags.txt', import.meta.url), 'utf8');

describe('scheduler flags (ipvsadm -b)', () => {
  const table = parseSave(fixture);

  it('parseSave reads -b into sorted flags; none when absent', () => {
    expect(table.map((s) => [s.key, s.scheduler, s.flags])).toEqual([
      ['tcp 10.1.1.1:80', 'mh', ['mh-fallback', 'mh-port']],
      ['tcp 10.1.1.1:81', 'mh', ['mh-port']],
      ['tcp 10.1.1.1:82', 'mh', undefined],
    ]);
    expect(parseSave('-A -t 10.1.1.1:80 -s mh --sched-flags mh-port,mh-fallback\n')[0]?.flags).toEqual(['mh-fallback', 'mh-port']);
  });

  it('formatSave writes what ipvsadm -S printed (a round trip)', () => {
    expect(formatSave(table)).toBe(fixture);
  });

  it('add and edit carry -b; the diff edits a service whose flags differ', () => {
    const want: TableService = { key: 'tcp 10.1.1.1:81', protocol: 'tcp', vip: '10.1.1.1', port: 81, scheduler: 'mh', flags: ['mh-fallback', 'mh-port'], realServers: [] };
    expect(formatOperation({ kind: 'add_service', service: want })).toBe('-A -t 10.1.1.1:81 -s mh -b mh-fallback,mh-port');
    const declared = new Set([want.key]);
    const ops = diff(table, [want], declared);
    expect(ops.map(formatOperation)).toEqual(['-E -t 10.1.1.1:81 -s mh -b mh-fallback,mh-port']);
    const none: TableService = { ...want, flags: undefined };
    delete none.flags;
    expect(diff(table, [none], declared).map(formatOperation)).toEqual(['-E -t 10.1.1.1:81 -s mh']);
    expect(diff(table, [{ ...want, flags: ['mh-port'] }], declared)).toEqual([]);
  });
});

describe('inListOrder: mh real servers in the order of ipvsadm -L -n --nosort', () => {
  it('reorders mh services by the listing, keeps the others, puts one the listing lacks last', () => {
    const save = '-A -t 10.1.1.1:80 -s mh -b mh-port\n-a -t 10.1.1.1:80 -r 10.2.0.1:80 -g -w 1\n-a -t 10.1.1.1:80 -r 10.2.0.2:80 -g -w 1\n-a -t 10.1.1.1:80 -r 10.2.0.3:80 -g -w 1\n-A -t 10.1.1.1:81 -s wrr\n-a -t 10.1.1.1:81 -r 10.2.0.1:81 -g -w 1\n-a -t 10.1.1.1:81 -r 10.2.0.2:81 -g -w 1\n';
    const list = [
      'IP Virtual Server version 1.2.1 (size=4096)',
      'Prot LocalAddress:Port Scheduler Flags',
      '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
      'TCP  10.1.1.1:80 mh (mh-port)',
      '  -> 10.2.0.3:80                  Route   1      0          0',
      '  -> 10.2.0.1:80                  Route   1      0          0',
      'TCP  10.1.1.1:81 wrr',
      '  -> 10.2.0.2:81                  Route   1      0          0',
      '  -> 10.2.0.1:81                  Route   1      0          0',
      '',
    ].join('\n');
    const t = inListOrder(parseSave(save), parseList(list));
    expect(t[0]?.realServers.map((r) => r.address)).toEqual(['10.2.0.3', '10.2.0.1', '10.2.0.2']);
    expect(t[1]?.realServers.map((r) => r.address)).toEqual(['10.2.0.1', '10.2.0.2']);
  });
});

describe('enableSloppy (cluster.mode ecmp on IPVS)', () => {
  it('writes 1 to net.ipv4.vs.sloppy_tcp and sloppy_sctp', async () => {
    const root = mkdtempSync(join(tmpdir(), 'vigil-procsys-'));
    try {
      mkdirSync(join(root, 'net/ipv4/vs'), { recursive: true });
      await enableSloppy(root);
      expect(readFileSync(join(root, 'net/ipv4/vs/sloppy_tcp'), 'utf8')).toBe('1\n');
      expect(readFileSync(join(root, 'net/ipv4/vs/sloppy_sctp'), 'utf8')).toBe('1\n');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('a failure names the setting and why ecmp needs it', async () => {
    const root = mkdtempSync(join(tmpdir(), 'vigil-procsys-'));
    try {
      await expect(enableSloppy(root)).rejects.toThrow(/^cannot set net\.ipv4\.vs\.sloppy_tcp=1 \(cluster\.mode ecmp needs it: .*\): ENOENT/);
      await expect(enableSloppy(root)).rejects.toMatchObject({ code: 'VIGIL_IPVS_SYSCTL' });
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
