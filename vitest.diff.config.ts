import { defineConfig } from 'vitest/config';

// Differential runs that do not pass yet and so are not part of `npm test`:
// `npm run diff:ldirectord` (the real ldirectord and vigil in the IPVS VM, issue 13).
export default defineConfig({
  test: {
    include: ['test/e2e/*.diff.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    silent: false,
  },
});
