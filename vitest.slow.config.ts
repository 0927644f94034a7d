import { defineConfig } from 'vitest/config';

// Tests too slow or not yet passing within the CI budget, run on demand: `npm run test:slow`.
// test/e2e/ecmp-ipvs-vm.slow.ts: three IPVS directors, BIRD and a client inside one TCG
// VM; at host load 25–38 the daemons alone took 6–12 minutes to start there (issue 16).
export default defineConfig({
  test: {
    include: ['test/**/*.slow.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    silent: false,
  },
});
