/** The two files of a PEFT adapter, and the error a file that is not one raises. */
export class AdapterFormatError extends Error {
  override name = 'AdapterFormatError';
}

export const CONFIG_FILE = 'adapter_config.json';
export const WEIGHTS_FILE = 'adapter_model.safetensors';
/** What to do about a zip that is not an adapter. */
export const ZIP_ADVICE = 'This is not a webtune or PEFT adapter; export it again.';
