import { defineConfig } from 'vitest/config';

/**
 * Two files run alone, one after the other, after every other file:
 * - the ECMP IPVS VM test runs three directors, BIRD and clients inside one qemu TCG guest
 *   with both vCPUs busy; beside other files its daemons take minutes longer to start;
 * - the chaos test loads the machine on purpose (stress-ng, 4 hogs per core, for two
 *   minutes), so it neither starves the VM tests beside it nor measures their load
 *   instead of its own.
 */
const VM_ALONE = ['test/e2e/ecmp-ipvs-vm.test.ts'];
const ALONE = ['test/e2e/chaos-short.test.ts'];
const common = {
  testTimeout: 30_000,
  hookTimeout: 60_000,
  // network-namespace and VM tests print why they skip; keep their output visible
  silent: false,
};

export default defineConfig({
  test: {
    projects: [
      { test: { ...common, name: 'suite', include: ['test/**/*.test.ts'], exclude: [...VM_ALONE, ...ALONE], sequence: { groupOrder: 0 } } },
      { test: { ...common, name: 'vm-alone', include: VM_ALONE, sequence: { groupOrder: 1 } } },
      { test: { ...common, name: 'alone', include: ALONE, sequence: { groupOrder: 2 } } },
    ],
  },
});
