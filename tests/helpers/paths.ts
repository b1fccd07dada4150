/** Where the ../shared fixtures are (a sibling of the checkout, or WEBTUNE_SHARED). No other imports. */
import path from 'node:path';

export const SHARED = process.env.WEBTUNE_SHARED ?? path.resolve(__dirname, '..', '..', '..', 'shared');
export const modelDir = (name: string) => path.join(SHARED, 'models', name);
export const dataFile = (name: string) => path.join(SHARED, 'data', name);
export const referenceFile = (model: string, file: string) => path.join(SHARED, 'reference', model, file);
