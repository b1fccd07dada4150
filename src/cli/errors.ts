export { CliError } from '../node/errors';
