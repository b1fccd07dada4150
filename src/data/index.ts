/** Dataset handling without the DOM: the same code runs in Node (CLI), a Web Worker and the page. */
export {
  DatasetError,
  type ChatMessage,
  type DataMessage,
  type Dataset,
  type DatasetFormat,
  type Row,
  type SkippedRow,
} from './dataset';
export { MAX_DATASET_BYTES, checkDatasetSize, decodeDatasetBytes } from './decode';
export { datasetFormat, parseDataset } from './parse';
export {
  describeGuess,
  detectLayout,
  guessColumns,
  mappingFromColumns,
  validateMapping,
  type ColumnGuess,
  type Mapping,
} from './layout';
export {
  LAYOUTS,
  LAYOUT_NAMES,
  describeLayout,
  detectNamedLayout,
  layoutMapping,
  layoutOf,
  parseLayoutName,
  type DetectedLayout,
  type LayoutName,
} from './layouts';
export { conversationOf, renderConversation, type Conversation, type Segment } from './conversation';
export {
  chatTemplateFormat,
  plainFormat,
  promptFormatFor,
  exampleOf,
  promptCompletion,
  renderConversationPrompt,
  renderExample,
  renderPrompt,
  renderTemplate,
  templateColumns,
  unescapeTemplate,
  type ChatTemplateFormat,
  type PromptFormat,
  type RenderedExample,
} from './template';
export { renderDataset, type Example, type RenderedDataset, type SkippedExample } from './examples';
export {
  encodeExample,
  encodeExamples,
  targetCount,
  type EncodeOptions,
  type EncodedExample,
} from './encode';
export {
  createRng,
  epochOrder,
  groupByLength,
  makeBatches,
  makePairBatches,
  padTokenId,
  paddingShare,
  permutation,
  restoreRng,
  splitTrainValidation,
  type Batch,
  type EncodedPair,
  type Rng,
} from './batch';
export { datasetStats, type DatasetStats } from './stats';
export { renderPairs, type PairExample, type PairMapping, type RenderedPairs } from './pairs';
export { pairAnswer, pairHoldsMessages } from './pair-rows';
export {
  buildPairTrainingSet,
  checkObjectiveFits,
  type EncodedPairExample,
  type PairTrainingSet,
} from './pair-set';
export {
  evaluatePreferences,
  pairsScore,
  type PreferenceEvaluation,
  type PreferenceScore,
} from './evaluate-preference';
