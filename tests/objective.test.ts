import { objectiveChecks } from './helpers/objective-checks';

objectiveChecks('cpu');
objectiveChecks('wasm');
