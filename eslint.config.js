// ESLint: the recommended JavaScript, TypeScript and Svelte rules; layout is Prettier's job
// (eslint-config-prettier turns off the rules it owns). `npm run check` runs both.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import svelte from 'eslint-plugin-svelte';
import globals from 'globals';
import ts from 'typescript-eslint';

export default ts.config(
  {
    ignores: ['node_modules/', 'dist/', 'dist-cli/', 'test-results/', 'tools/llama/', 'docs/', 'public/'],
  },
  js.configs.recommended,
  ...ts.configs.recommended,
  ...svelte.configs['flat/recommended'],
  prettier,
  ...svelte.configs['flat/prettier'],
  {
    languageOptions: { globals: { ...globals.browser, ...globals.node } },
  },
  {
    // The line limit: Prettier wraps code at 110 columns; this catches what it cannot wrap (comments,
    // long conditions in markup) while letting a long message string or URL stay whole and greppable.
    rules: {
      'max-len': [
        'error',
        {
          code: 110,
          ignoreUrls: true,
          ignoreStrings: true,
          ignoreTemplateLiterals: true,
          ignoreRegExpLiterals: true,
        },
      ],
    },
  },
  {
    // Prettier's fill of markup prose overshoots its width by a few columns around {expressions}.
    files: ['**/*.svelte'],
    rules: {
      'max-len': [
        'error',
        { code: 120, ignoreUrls: true, ignoreStrings: true, ignoreTemplateLiterals: true },
      ],
    },
  },
  {
    rules: {
      // `const { omitted: _, ...rest } = x` is how to drop a field.
      '@typescript-eslint/no-unused-vars': ['error', { ignoreRestSiblings: true }],
    },
  },
  {
    // Files stay small and named for what they do.
    files: ['src/**'],
    rules: { 'max-lines': ['error', { max: 400, skipBlankLines: true, skipComments: true }] },
  },
  {
    files: ['**/*.svelte', '**/*.svelte.ts'],
    languageOptions: { parserOptions: { parser: ts.parser, extraFileExtensions: ['.svelte'] } },
  },
);
