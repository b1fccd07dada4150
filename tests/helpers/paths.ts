/**
 * Where the tests' fixtures are, all inside the repository: fixtures/ (models, datasets, SentencePiece's
 * own ids) and reference/ (the PyTorch reference and its committed outputs). See fixtures/README.md and
 * reference/README.md.
 */
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
const FIXTURES = path.join(ROOT, 'fixtures');

export const modelDir = (name: string) => path.join(FIXTURES, 'models', name);
export const dataFile = (name: string) => path.join(FIXTURES, 'data', name);
/** reference/webtune_reference.py, the project's own PyTorch reference. */
export const REFERENCE_SCRIPT = path.join(ROOT, 'reference', 'webtune_reference.py');
/**
 * An expected value for a fixture model: the reference's committed output (reference/outputs/<model>/),
 * except tokenize.json, which is SentencePiece's own tokenisation (fixtures/sentencepiece/<model>/).
 */
export const referenceFile = (model: string, file: string) =>
  file === 'tokenize.json'
    ? path.join(FIXTURES, 'sentencepiece', model, file)
    : path.join(ROOT, 'reference', 'outputs', model, file);
