/**
 * A configuration problem found while loading: a missing or unreadable file, invalid YAML, an
 * unset environment variable, an unknown worker or key, or a value of the wrong form. The message
 * is meant for a person: it names the file (or the environment variable), the key path and what
 * was expected, one problem per line. The CLI prints it as is and exits with code 2.
 */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}
