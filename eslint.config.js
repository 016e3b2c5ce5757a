// Lint: typescript-eslint's type-checked recommended rules, tuned to what finds bugs here, plus the house rules of
// docs STYLE ("let tools hold the habits"): only src/io.ts and the worker entry touch `process`, no floating promises,
// functions stay under ~80 lines. Type information comes from tsconfig.test.json (src and test together).
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const PROCESS_MESSAGE = 'Only src/io.ts (and the worker entry) touch `process`: take an Io, or the value you need, as a parameter.';

/** `process` in any spelling: the global, globalThis.process, and the node:process module. */
const noProcess = {
  'no-restricted-globals': ['error', { name: 'process', message: PROCESS_MESSAGE }],
  'no-restricted-properties': ['error', { object: 'globalThis', property: 'process', message: PROCESS_MESSAGE }],
  'no-restricted-imports': [
    'error',
    {
      paths: [
        { name: 'process', message: PROCESS_MESSAGE },
        { name: 'node:process', message: PROCESS_MESSAGE },
      ],
    },
  ],
};

/**
 * Allows `process.<name>` for the listed names only (a narrow exception for one file), still refusing any other use.
 * The global rule is switched off for that file and this selector takes its place.
 */
function processOnly(names, reason) {
  const allowed = names.join('|');
  return {
    'no-restricted-globals': 'off',
    'no-restricted-syntax': [
      'error',
      {
        selector:
          `Identifier[name='process']:not(MemberExpression[property.name=/^(${allowed})$/] > Identifier.object)` +
          ':not(MemberExpression[computed=false] > Identifier.property):not(Property > Identifier.key)',
        message: `${PROCESS_MESSAGE} (Here only process.${names.join('/')}: ${reason}.)`,
      },
    ],
  };
}

export default defineConfig(
  {
    ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.vitest-report.json'],
  },

  // TypeScript: sources, tests, vitest config.
  {
    files: ['**/*.ts', '**/*.tsx'],
    extends: [js.configs.recommended, ...tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: {
        project: './tsconfig.test.json',
        tsconfigRootDir: import.meta.dirname,
      },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      ...noProcess,
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false, attributes: false } }],
      // tsc's noUnusedLocals covers locals and imports; this adds parameters and catch bindings, with `_` as the opt-out.
      '@typescript-eslint/no-unused-vars': ['error', { args: 'after-used', argsIgnorePattern: '^_', caughtErrors: 'none', varsIgnorePattern: '^_' }],
      // `${n}` of numbers, booleans and null/undefined is how messages here are built (`exited with code null` says
      // "killed by a signal"); objects, arrays and never are still refused.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true, allowNullish: true }],
      // `x!` on an indexed access marks an index the code has checked; without noUncheckedIndexedAccess this rule calls
      // every one of them (190 here) unnecessary.
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
      // Numeric enums are stored in typed arrays on the swarm's hot path (State in a Uint8Array), so comparing a
      // number with an enum member is the design, not an accident.
      '@typescript-eslint/no-unsafe-enum-comparison': 'off',
      'no-empty': ['error', { allowEmptyCatch: true }],
      // async functions without await implement async interfaces (Transport.open, Broker.publish): noise.
      '@typescript-eslint/require-await': 'off',
    },
  },

  // Sources: the function-length cap (a 190-line function is a file that wants to be two).
  {
    files: ['src/**/*.ts', 'src/**/*.tsx'],
    rules: {
      'max-lines-per-function': ['error', { max: 80, skipBlankLines: true, skipComments: true, IIFEs: true }],
    },
  },

  // The process boundaries.
  { files: ['src/io.ts', 'src/swarm/worker-main.ts'], rules: { 'no-restricted-globals': 'off' } },
  {
    files: ['src/swarm/worker.ts'],
    rules: processOnly(['cpuUsage', 'memoryUsage'], "the worker's self-check samples its own process's CPU and RSS"),
  },
  {
    files: ['src/capacity/planner.ts'],
    rules: processOnly(['versions'], 'systemSources() is where the planner reads the machine (/proc, os.*, the Node version); tests pass LimitSources instead'),
  },
  {
    files: ['src/server/held-write.ts'],
    rules: processOnly(['nextTick'], 'a head is held until the tick is done, as node:http holds its own (connectionCorkNT)'),
  },
  {
    files: ['src/swarm/embedded.ts'],
    rules: processOnly(['execPath'], 'the embedded server is this same Node binary, forked'),
  },

  // Tests: the cap and the `any` discipline do not pay here (describe blocks are long; JSON bodies are `any`).
  {
    files: ['test/**/*.ts', 'vitest.config.ts'],
    rules: {
      'no-restricted-globals': 'off',
      'no-restricted-imports': 'off',
      'no-restricted-properties': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      // expect(obj.method) and spies pass methods around on purpose.
      '@typescript-eslint/unbound-method': 'off',
      // Tests strip ANSI colour codes with /\x1b\[[0-9;]*m/.
      'no-control-regex': 'off',
      // execFile's callback error is an ExecFileException, which the rule cannot see through the ternary.
      '@typescript-eslint/prefer-promise-reject-errors': 'off',
    },
  },

  // Plain JavaScript: the bin entry, benchmarks, scripts, this file. No type information.
  {
    files: ['**/*.js', '**/*.mjs'],
    extends: [js.configs.recommended],
    languageOptions: { globals: { ...globals.node } },
    rules: {
      'no-unused-vars': ['error', { argsIgnorePattern: '^_', caughtErrors: 'none' }],
      'no-empty': ['error', { allowEmptyCatch: true }],
    },
  },
);
