export {
  AlpacaDataset,
  IGNORE_INDEX,
  loadAlpaca,
  type AlpacaBatch,
  type AlpacaExample,
  type AlpacaPosition,
  type AlpacaStats,
  type AlpacaTokenizer,
  type BatchOptions,
  type LoadOptions,
  type LoadReport,
} from './dataset';
export {
  AlpacaRowError,
  FormatError,
  IOError,
  InvalidArgumentError,
  type RowErrorReason,
  type RowSource,
} from './errors';
export {
  defaultAlpacaPath,
  parseRow,
  readAlpacaRows,
  validateRow,
  type AlpacaRecord,
  type LoadProgress,
  type ReadOptions,
} from './read';
export { RowScanner, type RowFileFormat, type RowTextHandler } from './scan';
export {
  ALPACA_PROMPT_INPUT,
  ALPACA_PROMPT_NO_INPUT,
  STANFORD_TEMPLATE,
  compileTemplate,
  renderExample,
  templateRenderer,
  type AlpacaRow,
  type AlpacaTemplate,
  type CompiledTemplate,
  type RenderedExample,
} from './template';
