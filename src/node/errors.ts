/** An error whose message is meant for the person at the terminal, printed as one line. */
export class CliError extends Error {
  override name = 'CliError';
}
