import { describe, expect, it } from 'vitest';
import { clusterStartTimeoutMs, DEFAULT_CLUSTER_START_TIMEOUT_MS } from '../../src/cluster/supervisor.js';

describe('$VIGIL_CLUSTER_START_TIMEOUT_MS', () => {
  it('defaults to 90 s when unset or empty', () => {
    expect(DEFAULT_CLUSTER_START_TIMEOUT_MS).toBe(90_000);
    expect(clusterStartTimeoutMs({})).toBe(90_000);
    expect(clusterStartTimeoutMs({ VIGIL_CLUSTER_START_TIMEOUT_MS: '' })).toBe(90_000);
  });

  it('takes a positive integer of milliseconds', () => {
    expect(clusterStartTimeoutMs({ VIGIL_CLUSTER_START_TIMEOUT_MS: '240000' })).toBe(240_000);
    expect(clusterStartTimeoutMs({ VIGIL_CLUSTER_START_TIMEOUT_MS: '1' })).toBe(1);
  });

  it('refuses anything else, naming the variable and the value', () => {
    for (const bad of ['0', '-5', '1.5', '90s', 'abc', '1e5', '99999999999999999999']) {
      expect(() => clusterStartTimeoutMs({ VIGIL_CLUSTER_START_TIMEOUT_MS: bad }), bad).toThrow(
        `$VIGIL_CLUSTER_START_TIMEOUT_MS: "${bad}" is not a positive integer of milliseconds (default 90000)`,
      );
    }
  });
});
