// Every function and class the engine exports is used by the program: one that only tests call is dead code
// that the tests keep alive (a test should then compute its expectation itself, not borrow it from src).
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(__dirname, '..', 'src');

function sourceFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) =>
      entry.isDirectory()
        ? sourceFiles(path.join(dir, entry.name))
        : /\.(ts|svelte)$/.test(entry.name)
          ? [path.join(dir, entry.name)]
          : [],
    );
}

describe('the engine exports', () => {
  it('only functions and classes that something in src uses', () => {
    const files = new Map(sourceFiles(SRC).map((file) => [file, fs.readFileSync(file, 'utf8')]));
    const unused: string[] = [];
    for (const [file, text] of files) {
      if (!file.startsWith(path.join(SRC, 'engine') + path.sep)) continue;
      for (const [, name] of text.matchAll(/^export (?:async )?(?:function|class) (\w+)/gm)) {
        const usedHere = (text.match(new RegExp(`\\b${name}\\b`, 'g')) ?? []).length > 1;
        const mention = new RegExp(`\\b${name}\\b`);
        const usedElsewhere = [...files].some(([other, body]) => other !== file && mention.test(body));
        if (!usedHere && !usedElsewhere) unused.push(`${path.relative(SRC, file)}: ${name}`);
      }
    }
    expect(unused).toEqual([]);
  });
});
