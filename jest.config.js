/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': '@swc/jest',
    // The OTLP exporter loads node:http with import(), which jest's CJS runtime cannot run: compile it to require().
    '/@opentelemetry/otlp-exporter-base/.+\\.js$': ['@swc/jest', { jsc: { parser: { syntax: 'ecmascript' } }, module: { type: 'commonjs' } }],
  },
  transformIgnorePatterns: ['/node_modules/(?!@opentelemetry/otlp-exporter-base/)'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  // Each file starts real servers on random loopback ports; two workers match the 2 cores.
  maxWorkers: 2,
  testTimeout: 30000,
};
