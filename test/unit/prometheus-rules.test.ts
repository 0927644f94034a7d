/**
 * The alert rules and their promtool tests stay complete and true to the daemon: every
 * alert has a promtool case where it fires and one where it stays quiet, every metric a
 * rule reads is registered by createMetrics(), and every input series of the promtool
 * tests has exactly the labels the daemon exports (plus job and instance from the scrape).
 * The same shapes are compared with a real scrape in test/e2e/prometheus-alerts.test.ts.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createMetrics } from '../../src/metrics.js';

const DIR = resolve(import.meta.dirname, '..', '..', 'deploy', 'prometheus');
interface Rule {
  alert?: string;
  expr: string;
  for?: string;
}
const rules = (parse(readFileSync(resolve(DIR, 'vigil-rules.yml'), 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);
interface Case {
  input_series: { series: string; values: string }[];
  alert_rule_test: { alertname: string; exp_alerts: unknown[] }[];
}
const cases = (parse(readFileSync(resolve(DIR, 'vigil-rules.test.yml'), 'utf8')) as { tests: Case[] }).tests;

/** Every family the daemon exports: its own and Node's process metrics (prefixed vigil_). */
const registered = new Map(
  createMetrics()
    .registry.getMetricsAsArray()
    .map((m) => m as unknown as { name: string; labelNames?: string[] })
    .map((m) => [m.name, m.labelNames ?? []]),
);
/** Labels a series may leave out: a refused service entry has no real server. */
const OPTIONAL: Record<string, string[]> = { vigil_reconcile_entry_failing: ['real_server'] };
/** Labels the scrape adds (prometheus.yml: job, instance relabelled to the host name). */
const SCRAPE = ['job', 'instance'];

describe('vigil-rules.yml', () => {
  const alerts = rules.map((r) => r.alert).filter((a): a is string => a !== undefined);

  it('has alerts', () => {
    expect(alerts.length).toBeGreaterThanOrEqual(19);
  });

  it.each(alerts)('%s has a promtool case where it fires and one where it is quiet', (alert) => {
    const tests = cases.flatMap((c) => c.alert_rule_test).filter((t) => t.alertname === alert);
    expect(tests.some((t) => t.exp_alerts.length > 0), `${alert} never fires in vigil-rules.test.yml`).toBe(true);
    expect(tests.some((t) => t.exp_alerts.length === 0), `${alert} is never checked quiet in vigil-rules.test.yml`).toBe(true);
  });

  it.each(rules.map((r) => [r.alert, r.expr]))('%s reads only metrics the daemon registers', (_alert, expr) => {
    const names = [...expr.matchAll(/\b(vigil_[a-z0-9_]+)/g)].map((m) => m[1] as string);
    expect(names.length > 0 || /\bup\{/.test(expr)).toBe(true);
    expect(names.filter((n) => !registered.has(n))).toEqual([]);
  });
});

describe('vigil-rules.test.yml input series', () => {
  const series = cases.flatMap((c) => c.input_series.map((s) => s.series));

  it.each(series)('%s is shaped as the daemon exports it', (s) => {
    const m = /^([a-z_:][a-z0-9_:]*)\{(.*)\}$/.exec(s);
    expect(m, `cannot parse ${s}`).not.toBeNull();
    const name = m?.[1] as string;
    const labels = [...(m?.[2] as string).matchAll(/([a-z_]+)="[^"]*"/g)].map((x) => x[1] as string);
    expect(labels.filter((l) => SCRAPE.includes(l)).sort()).toEqual(['instance', 'job']);
    if (name === 'up') {
      expect(labels.sort()).toEqual(['instance', 'job']);
      return;
    }
    const want = registered.get(name);
    expect(want, `${name} is not registered by createMetrics()`).toBeDefined();
    const own = labels.filter((l) => !SCRAPE.includes(l)).sort();
    const required = (want ?? []).filter((l) => !(OPTIONAL[name] ?? []).includes(l)).sort();
    expect(own.filter((l) => !(want ?? []).includes(l)), `${name}: labels the daemon does not export`).toEqual([]);
    expect(required.filter((l) => !own.includes(l)), `${name}: labels the daemon always exports`).toEqual([]);
  });
});
