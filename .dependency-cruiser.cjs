/**
 * toko's module boundaries, checked in CI (`npm run check:boundaries`).
 * Fix a violation by widening a contract, never by silencing a rule.
 * @type {import('dependency-cruiser').IConfiguration}
 */
module.exports = {
  forbidden: [
    {
      name: 'module-only-through-contract',
      comment: 'A module may use another module only through that module\'s contract.ts.',
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
      name: 'modules-use-only-the-kernel-kit',
      comment: 'From the kernel, modules may use src/kit (public helpers) and nothing else.',
      severity: 'error',
      from: { path: '^modules/' },
      to: { path: '^src/', pathNot: '^src/kit/' },
    },
    {
      name: 'adapters-use-contracts-and-kit-only',
      comment: 'Adapters know contracts and the kernel kit, never module internals or the rest of the kernel.',
      severity: 'error',
      from: { path: '^adapters/' },
      to: { path: ['^modules/[^/]+/(?!contract\\.ts$)', '^src/(?!kit/)'] },
    },
    {
      name: 'kit-stands-alone',
      comment: 'src/kit is imported by modules and adapters, so it imports none of them nor the rest of the kernel.',
      severity: 'error',
      from: { path: '^src/kit/' },
      to: { path: ['^modules/', '^adapters/', '^src/(?!kit/)'] },
    },
    {
      name: 'kernel-reaches-modules-through-their-front-door',
      comment: 'The kernel (src/) uses a module only through its index.ts (the definition) and contract.ts (its port, events and errors).',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^modules/[^/]+/', pathNot: '^modules/[^/]+/(index|contract)\\.ts$' },
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
    exclude: { path: ['\\.test\\.ts$', '^test/'] },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.mjs', '.js', '.json'] },
  },
};
