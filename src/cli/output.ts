/** With --json, stdout carries exactly one JSON object; everything else (progress, notes) goes to stderr. */
export interface Output {
  json: boolean;
  /** A progress or status line, always on stderr. */
  progress(line: string): void;
  /** The command's result: JSON on stdout with --json, otherwise the human text. */
  result(value: object, human: () => string): void;
  help(text: string): void;
}

export function createOutput(json: boolean): Output {
  return {
    json,
    progress: (line) => process.stderr.write(line + '\n'),
    result: (value, human) => process.stdout.write((json ? JSON.stringify(value) : human()) + '\n'),
    help: (text) => process.stdout.write(text + '\n'),
  };
}
