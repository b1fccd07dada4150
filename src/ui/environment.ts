/**
 * What the page reads from its address, read in one place: `?model=` (a model to load: a folder URL, or a
 * Hub id as hf:<id>) and `?hf_endpoint=` (a Hub mirror, a bare origin). Node's counterpart, read from the
 * process environment, is src/node/environment.ts.
 */
import { DEFAULT_ENDPOINT, normalizeEndpoint } from '../hub/resolve';

export interface PageEnvironment {
  /** `?model=`: what the link asks to load, or null. */
  modelLink: string | null;
  /** The Hub or the link's mirror. */
  hubEndpoint: string;
  /** Why the link's `hf_endpoint` was refused (then nothing the link names is loaded), or null. */
  endpointProblem: string | null;
}

export function readPageEnvironment(search = globalThis.location?.search ?? ''): PageEnvironment {
  const params = new URLSearchParams(search);
  const modelLink = params.get('model');
  const endpoint = params.get('hf_endpoint');
  if (endpoint === null) return { modelLink, hubEndpoint: DEFAULT_ENDPOINT, endpointProblem: null };
  try {
    return { modelLink, hubEndpoint: normalizeEndpoint(endpoint), endpointProblem: null };
  } catch (error) {
    return {
      modelLink,
      hubEndpoint: DEFAULT_ENDPOINT,
      endpointProblem: `This link's hf_endpoint was refused, so nothing it names is loaded. ${(error as Error).message}`,
    };
  }
}
