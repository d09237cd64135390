/**
 * The diagnostic catalog (STYLE.md, "A diagnostic catalog"): every code fsmoec can report, its
 * severity and its message template. `{name}` in a template is filled from the diagnostic's
 * arguments. FSM1xxx are syntax errors, FSM2xxx semantic errors, FSM3xxx layout errors.
 * spec/language.md documents each code and spec/cases holds a golden case for each.
 */

/** How bad a diagnostic is. */
export type Severity = "error" | "warning";

/** One catalog entry. */
export interface Message {
  readonly severity: Severity;
  readonly template: string;
  /** One line for the reference: when this diagnostic is reported. */
  readonly summary: string;
}

/** The catalog, keyed by code. */
export const messages = {
  // ── FSM1xxx: syntax ─────────────────────────────────────────────────────────────────────
  FSM1001: { severity: "error", template: "invalid UTF-8 {bytes}", summary: "The file is not valid UTF-8." },
  FSM1002: { severity: "error", template: "NUL character in source", summary: "The file contains a NUL (U+0000) character." },
  FSM1003: { severity: "error", template: "unexpected character '{char}'", summary: "A character that starts no token." },
  FSM1004: { severity: "error", template: "unterminated string: a string must end on its line", summary: "A string literal is not closed before the end of its line." },
  FSM1005: { severity: "error", template: "unterminated comment: '/*' has no matching '*/'", summary: "A block comment is not closed." },
  FSM1006: { severity: "error", template: "expected {expected}, found {found}", summary: "A particular token is required here (a name, a string, '{', ')', ']' or '}') and another stands in its place." },
  FSM1007: { severity: "error", template: "expected {expected}, found {found}", summary: "No construct allowed here starts at this token: a value, '=' or '{' after a field name, or a block or import at the top level." },
  FSM1008: { severity: "error", template: "nesting deeper than {limit} levels", summary: "Brackets, braces and parentheses nest deeper than the limit." },
  FSM1009: { severity: "error", template: "fields on one line must be separated by ','", summary: "Two fields share a line without a comma between them." },
  FSM1010: { severity: "error", template: "number {text} is out of range (at most {max})", summary: "A number literal too large to be finite, or too close to zero." },
  FSM1011: { severity: "error", template: "invalid escape '\\{char}' in string (allowed: \\\" \\\\ \\n \\t)", summary: "A backslash escape the language does not define." },
  FSM1012: { severity: "error", template: "file is too large ({size} bytes; the limit is {limit})", summary: "A source file larger than the front end accepts." },

  // ── FSM20xx: names and structure ────────────────────────────────────────────────────────
  FSM2001: { severity: "error", template: "unknown block kind '{kind}'{hint}", summary: "A top-level block of a kind the language does not have." },
  FSM2002: { severity: "error", template: "duplicate block '{name}'", summary: "Two top-level blocks with the same name." },
  FSM2003: { severity: "error", template: "unknown name '{name}'{hint}", summary: "A reference to a block or field that does not exist." },
  FSM2004: { severity: "error", template: "unknown field '{field}' in {where}{hint}", summary: "A field the block does not define." },
  FSM2005: { severity: "error", template: "missing required field '{field}' in {where}", summary: "A required field is not given." },
  FSM2006: { severity: "error", template: "duplicate field '{field}'", summary: "The same field twice in one block." },
  FSM2007: { severity: "error", template: "reference cycle: {cycle}", summary: "Fields or blocks that refer to each other in a loop." },
  FSM2008: { severity: "error", template: "cannot read {what}'{path}': {reason}", summary: "An imported file that does not exist or cannot be read." },
  FSM2009: { severity: "error", template: "'{name}' is a {actual}, but field '{field}' expects a {expected}", summary: "A reference to a block of the wrong kind." },
  FSM2010: { severity: "error", template: "field '{field}' is a block; write '{field} {{ … }}'", summary: "A nested block given a plain value." },
  FSM2011: { severity: "error", template: "'{field}' applies only to {applies}, not {actual}", summary: "A field that belongs to another router or variant." },
  FSM2012: { severity: "error", template: "sweep '{name}' expands to {count} jobs (the limit is {limit})", summary: "A sweep whose cartesian product is too large." },
  FSM2013: { severity: "error", template: "cannot vary '{path}': {reason}", summary: "A sweep `vary` path that names no field of the train job, its model or its cluster." },
  FSM2014: { severity: "error", template: "'vary' {detail}", summary: "A sweep `vary` entry that is not a list of values or is an empty one, or a `vary` block with no entry." },
  FSM2016: { severity: "error", template: "references nest deeper than {limit} levels", summary: "A chain of field references longer than the checker follows." },
  FSM2015: { severity: "error", template: "{name} has no field '{field}'{hint}", summary: "A dotted reference into a block that lacks the field." },

  // ── FSM21xx: values, units and expressions ──────────────────────────────────────────────
  FSM2101: { severity: "error", template: "unknown unit '{unit}'{hint}", summary: "A unit the language does not define." },
  FSM2102: { severity: "error", template: "field '{field}'{where} expects an integer, got {value}", summary: "A count that is not a whole number." },
  FSM2103: { severity: "error", template: "field '{field}'{where} expects {expected}, got {actual}", summary: "A value of the wrong sort (a number, a name, a string, a list, a block)." },
  FSM2104: { severity: "error", template: "field '{field}'{where} expects {expected}, got {actual}", summary: "A quantity of the wrong dimension (a rate where a time is needed)." },
  FSM2105: { severity: "error", template: "field '{field}'{where} must be {range}, got {value}", summary: "A value outside the field's range." },
  FSM2106: { severity: "error", template: "field '{field}'{where} expects one of {choices}, got '{value}'{hint}", summary: "A name that is not one of the field's choices." },
  FSM2107: { severity: "error", template: "division by zero", summary: "An expression divides by zero." },
  FSM2108: { severity: "error", template: "cannot {op} {left} and {right}", summary: "Adding or subtracting quantities of different dimensions." },
  FSM2109: { severity: "error", template: "value is out of range: {detail}", summary: "An expression whose result is not a finite number of reasonable size." },
  FSM2110: { severity: "error", template: "{what} cannot be used in an expression", summary: "A string, list, block or enum name used in arithmetic." },

  // ── FSM3xxx: layout ─────────────────────────────────────────────────────────────────────
  FSM3001: { severity: "error", template: "esp · ep · edp = {esp} · {ep} · {edp} = {product}, but the cluster has {world} GPUs ({nodes} nodes × {gpus})", summary: "The parallel degrees do not multiply to the number of GPUs." },
  FSM3002: { severity: "error", template: "{experts} experts do not divide over ep = {ep} ranks", summary: "The routed experts cannot be spread evenly over the expert-parallel group." },
  FSM3003: { severity: "error", template: "{what} = {value} must divide gpus_per_node = {gpus}", summary: "tp or esp does not divide the GPUs of a node." },
  FSM3004: { severity: "error", template: "{what} = {value} is not divisible by {by} = {divisor}", summary: "A dimension that must split evenly (expert_hidden over esp, heads over tp or kv_heads, micro_batch · seq_len over tp, …) does not." },
  FSM3005: { severity: "error", template: "top_k = {topk} is larger than experts = {experts}", summary: "A token would need more experts than exist." },
  FSM3006: { severity: "error", template: "moe_layers {detail}", summary: "A `moe_layers` value that names layers the model does not have." },
  FSM3007: { severity: "error", template: "edp = {world} / (esp · ep) = {world} / ({esp} · {ep}) is not a whole number", summary: "The default expert data-parallel degree does not come out whole." },
  FSM3009: { severity: "error", template: "cannot read profile '{profile}': {reason}; built-in profiles: {builtins}", summary: "A cluster's profile names neither a built-in profile nor a readable file." },
  FSM3010: { severity: "error", template: "profile '{profile}' is malformed: {detail}", summary: "A profile file that is not valid JSON or does not follow the profile format." },
  FSM3011: { severity: "error", template: "job '{job}' needs {needed} per GPU but {device} has {memory}: {breakdown}", summary: "The plan's peak memory per GPU exceeds the device's memory." },
  FSM3008: { severity: "error", template: "router groups: {detail}", summary: "Group-limited routing whose groups do not fit the experts or top_k." },
  FSM3012: { severity: "error", template: "the {router} router sends each token to {k} {experts}, but top_k = {topk}", summary: "A router that fixes the experts per token (switch: 1, gshard: 2) with another top_k." },

  // ── FSM4xxx: plan verification ──────────────────────────────────────────────────────────
  FSM4001: { severity: "error", template: "happens-before cycle{where}, the plan deadlocks: {cycle}", summary: "Program order on the streams and event waits form a cycle on one rank (e.g. a FIFO stream holding an op behind one that waits for it)." },
  FSM4002: { severity: "error", template: "data race{where} on buffer {buffer}: {first} {firstAction} and {second} {secondAction} bytes [{start}, {end}) with no program order or event between them", summary: "Two ops on different streams access overlapping bytes of a buffer, at least one writes, and nothing orders them." },
  FSM4003: { severity: "error", template: "collective order differs on communicator {comm}: collective #{index} is {first} on rank {rankA} but {second} on rank {rankB}", summary: "The members of one communicator do not issue the same sequence of collectives on it." },
  FSM4004: { severity: "error", template: "cross-rank deadlock: {cycle}", summary: "Per-rank program order, event waits and the matching of collectives across ranks form a cycle." },
  FSM4005: { severity: "error", template: "communicator {comm} of rank {rank}: member rank {member} has no program", summary: "A rank's communicator includes a rank whose op sequence is not part of the verified plan." },
  FSM4006: { severity: "error", template: "{op}{where} {action} bytes [{start}, {end}) of buffer {buffer}, which holds {size} bytes", summary: "An access outside its buffer." },
  FSM4007: { severity: "error", template: "{op}{where} moves {bytes} bytes, but its {side} cover {actual} bytes; expected {expected} ({rule})", summary: "A collective's byte count disagrees with the byte ranges it reads or writes." },
  FSM4008: { severity: "error", template: "chunks of {what}{where} differ in size: chunk {chunkA} ({opA}) moves {bytesA} bytes, chunk {chunkB} ({opB}) moves {bytesB}", summary: "The pipeline chunks of one collective are not all the same size." },
  FSM4009: { severity: "error", template: "{what}{where} moves {sum} bytes in all ({detail}), but its shape needs {total}", summary: "The chunks of a collective do not add up to the size the workload's capacity gives." },
  FSM4010: { severity: "error", template: "chunks of {what}{where} are numbered {found}; expected 0 … {last}, each once", summary: "A collective's pipeline chunks are missing, repeated, or numbered out of range." },
  FSM4011: { severity: "error", template: "malformed plan{where}: {detail}", summary: "An op refers to an op, buffer or group that does not exist, or two ops share an id." },
  FSM4012: { severity: "error", template: "group {group} (size {size}, stride {stride}) does not fit a world of {world} ranks: {detail}", summary: "A communicator whose members, by its stride and size, fall outside the world." },
  FSM4013: { severity: "error", template: "{op}{where} reads bytes [{start}, {end}) of buffer {buffer} before anything has written them", summary: "A read of a transient buffer that no write happening before it covers (a consumer issued ahead of its producer, or a missing wait)." },
} as const satisfies Record<string, Message>;

/** A diagnostic code from the catalog. */
export type Code = keyof typeof messages;

/** Fill a template's `{name}` holes (`{{` stands for a literal brace). */
export function formatMessage(code: Code, args: Readonly<Record<string, string | number>>): string {
  return messages[code].template
    .replace(/\{\{/g, "\u0000")
    .replace(/\}\}/g, "\u0001")
    .replace(/\{(\w+)\}/g, (_, key: string) => (key in args ? String(args[key]) : ""))
    .replace(/\u0000/g, "{")
    .replace(/\u0001/g, "}");
}
