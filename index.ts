/**
 * fsmoe as a library (STYLE.md: "The CLI is a thin shell over a library API"). Programs that
 * embed the compiler call {@link parse} and {@link check} and get values, never printed text.
 */
export { parse, type ParseResult } from "./grammar/parse.js";
export type * as Ast from "./grammar/ast.js";
export { check, checkLoaded, load, type CheckResult, type Loaded } from "./compiler/check/check.js";
export { memoryHost, nodeHost, type CheckHost } from "./compiler/check/host.js";
export type * from "./compiler/check/program.js";
export { format } from "./grammar/print.js";
export { stages, frontEnd } from "./compiler/index.js";
export { diagnostic, hasErrors, type Diagnostic } from "./compiler/diagnostics/diagnostic.js";
export { messages, type Code } from "./compiler/diagnostics/messages.js";
export { renderText, toJson } from "./compiler/diagnostics/render.js";
export { SourceFile, type Span } from "./compiler/diagnostics/span.js";
