/**
 * The exit codes of `iii-cluster`, the ones a script can rely on (documented in `--help` and
 * README "Operator CLI").
 */
export const ExitCode = {
  /** Done: the command's answer is on stdout. */
  ok: 0,
  /**
   * The function answered an error (its code and message are on stderr); for a running engine
   * node, it failed to start or to stop.
   */
  failed: 1,
  /** A bad command line, payload or configuration. */
  usage: 2,
  /** No answer: the engine cannot be reached, refused the token, or the deadline passed. */
  unreachable: 3,
} as const;
