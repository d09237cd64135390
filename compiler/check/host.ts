/**
 * How the checker reads files: the file system by default, or an in-memory map for tests and
 * for programs that embed the compiler. A relative import resolves against the importing file's
 * directory; an absolute one is used as it is.
 */
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, join, normalize, relative } from "node:path";

/** File access for the checker. `read` throws an Error whose message says why it failed. */
export interface CheckHost {
  read(path: string): Uint8Array | string;
  /** The path of `spec` imported from `from`. */
  resolve(from: string, spec: string): string;
}

function reason(e: unknown): string {
  const code = (e as { code?: string }).code;
  if (code === "ENOENT") return "no such file";
  if (code === "EISDIR") return "it is a directory";
  if (code === "EACCES") return "permission denied";
  return e instanceof Error ? e.message : String(e);
}

/** Reads from disk; paths are shown relative to the working directory. */
export const nodeHost: CheckHost = {
  read(path) {
    try {
      return readFileSync(path);
    } catch (e) {
      throw new Error(reason(e));
    }
  },
  resolve(from, spec) {
    // An absolute import stays absolute; a relative one is shown relative to the working directory.
    if (isAbsolute(spec)) return normalize(spec);
    const abs = join(dirname(from), spec);
    const rel = relative(process.cwd(), abs);
    return rel.startsWith("..") ? normalize(abs) : rel;
  },
};

/** A host over a fixed set of files (name → text), for tests and embedders. */
export function memoryHost(files: Readonly<Record<string, string>>): CheckHost {
  return {
    read(path) {
      const text = files[path];
      if (text === undefined) throw new Error("no such file");
      return text;
    },
    resolve(from, spec) {
      return isAbsolute(spec) ? normalize(spec) : normalize(join(dirname(from), spec));
    },
  };
}
