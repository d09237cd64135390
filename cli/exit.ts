/** Exit codes (ARCHITECTURE.md, "The CLI"): what each outcome of a command means. */
export const Exit = {
  /** Everything checked or ran clean. */
  ok: 0,
  /** The input has errors (diagnostics were printed). */
  inputErrors: 1,
  /** The command line is wrong (unknown option, missing argument). */
  usage: 2,
  /** Something failed at run time (a file could not be written, a backend failed). */
  runtime: 3,
} as const;
