import { defineConfig } from 'vitest/config';

/**
 * The chaos test loads the machine on purpose (stress-ng, 4 hogs per core, for two
 * minutes): it runs alone after every other file, so it neither starves the VM tests
 * (qemu TCG) beside it nor measures their load instead of its own.
 */
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
      { test: { ...common, name: 'suite', include: ['test/**/*.test.ts'], exclude: ALONE, sequence: { groupOrder: 0 } } },
      { test: { ...common, name: 'alone', include: ALONE, sequence: { groupOrder: 1 } } },
    ],
  },
});
