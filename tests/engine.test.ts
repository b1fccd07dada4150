import { engineChecks } from './helpers/engine-checks';

engineChecks('cpu');
engineChecks('wasm');
