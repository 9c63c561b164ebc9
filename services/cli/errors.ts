// A usage error of the `parley` command: printed without a stack trace, exit status 2.

export class CliError extends Error {
  override name = 'CliError';
}
