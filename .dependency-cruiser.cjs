/**
 * toko's module boundaries, checked in CI (`npm run check:boundaries`).
 * Fix a violation by widening a contract, never by silencing a rule.
 * @type {import('dependency-cruiser').IConfiguration}
 */
module.exports = {
  forbidden: [
    {
      name: 'module-only-through-contract',
      comment: "A module may use another module only through that module's contract.ts.",
      severity: 'error',
      from: { path: '^modules/([^/]+)/' },
      to: { path: '^modules/[^/]+/', pathNot: ['^modules/$1/', '^modules/[^/]+/contract\\.ts$'] },
    },
    {
      name: 'modules-never-import-adapters',
      comment: 'Modules know ports, not transports.',
      severity: 'error',
      from: { path: '^modules/' },
      to: { path: '^adapters/' },
    },
    {
      name: 'modules-never-import-the-kernel',
      comment:
        "Modules build with the kit (kit/) and other modules' contracts; the kernel (src/) wires them and is never imported by them.",
      severity: 'error',
      from: { path: '^modules/' },
      to: { path: '^src/' },
    },
    {
      name: 'adapters-use-contracts-and-kit-only',
      comment: 'Adapters know contracts and the kit, never module internals or the kernel.',
      severity: 'error',
      from: { path: '^adapters/' },
      to: { path: ['^modules/[^/]+/(?!contract\\.ts$)', '^src/'] },
    },
    {
      name: 'kit-stands-alone',
      comment: 'The kit is the bottom layer: modules, adapters and the kernel import it, and it imports none of them.',
      severity: 'error',
      from: { path: '^kit/' },
      to: { path: ['^modules/', '^adapters/', '^src/'] },
    },
    {
      name: 'kernel-names-no-module',
      comment:
        'The kernel (src/) knows modules only through the registry: it reads what their definitions declare (routes, capabilities such as identity, demo data), never a module file.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/registry\\.ts$' },
      to: { path: '^modules/' },
    },
    {
      name: 'registry-imports-definitions-only',
      comment:
        "src/registry.ts, the one list of modules, imports each module's index.ts (its definition) and nothing else of it.",
      severity: 'error',
      from: { path: '^src/registry\\.ts$' },
      to: { path: '^modules/', pathNot: '^modules/[^/]+/index\\.ts$' },
    },
    {
      name: 'nobody-imports-main',
      severity: 'error',
      from: {},
      to: { path: '^src/main\\.ts$' },
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Tests are not cruised, except those under modules/: they too build with the kit and contracts only, and reach
    // the kernel through test/helpers (not cruised, so a module test's import of a helper is no edge here).
    exclude: { path: ['^(?!modules/).*\\.test\\.ts$', '^test/'] },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.mjs', '.js', '.json'] },
  },
};
