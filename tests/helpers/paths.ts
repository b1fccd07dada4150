/** Where the ../shared fixtures are (a sibling of the checkout, or WEBTUNE_SHARED). */
import path from 'node:path';
import { readEnvironment } from '../../src/node/environment';

export const SHARED = readEnvironment(process.env, path.resolve(__dirname, '..', '..')).sharedDir;
export const modelDir = (name: string) => path.join(SHARED, 'models', name);
export const dataFile = (name: string) => path.join(SHARED, 'data', name);
export const referenceFile = (model: string, file: string) => path.join(SHARED, 'reference', model, file);
