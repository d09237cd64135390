/**
 * The tokens of the `.moe` language (LANGUAGE.md, "Shape" and "Values, units and expressions").
 * Block kinds, field names, enum values and units are all identifiers: the grammar is small
 * and the checker gives them meaning, so a misspelt kind gets a "did you mean" instead of a
 * bare syntax error.
 */
import { createToken, Lexer, type TokenType } from "chevrotain";

/** Spaces, tabs and line breaks; fields are separated by line breaks, which the parser sees through positions. */
export const WhiteSpace = createToken({ name: "WhiteSpace", pattern: /[ \t\r\n\f\v]+/, group: Lexer.SKIPPED, line_breaks: true });
/** `// …` to the end of the line; kept in the `comments` group for the formatter. */
export const LineComment = createToken({ name: "LineComment", pattern: /\/\/[^\n]*/, group: "comments" });
/** `/* … *\/`, possibly over several lines. */
export const BlockComment = createToken({ name: "BlockComment", pattern: /\/\*[\s\S]*?\*\//, group: "comments", line_breaks: true });
/** A `/*` that never closes: lexed as a whole so it is reported once (FSM1005). */
export const UnterminatedComment = createToken({ name: "UnterminatedComment", pattern: /\/\*[\s\S]*/, group: "errors", line_breaks: true });
/** A double-quoted string that ends on its line; escapes \" \\ \n \t. */
export const StringLiteral = createToken({ name: "StringLiteral", pattern: /"(?:[^"\\\n\r]|\\[^\n\r])*"/ });
/**
 * A string whose closing quote is missing on its line (FSM1004). It stays in the token stream,
 * where the parser takes it as an error value, so the rest of its line does not cascade.
 */
export const UnterminatedString = createToken({ name: "UnterminatedString", pattern: /"(?:[^"\\\n\r]|\\[^\n\r])*\\?/ });
/** `4096`, `1.2`, `1e-3`, `16_384`. */
export const NumberLiteral = createToken({ name: "NumberLiteral", pattern: /\d+(?:_\d+)*(?:\.\d+(?:_\d+)*)?(?:[eE][+-]?\d+)?/ });
/** `[A-Za-z_][A-Za-z0-9_]*`. */
export const Identifier = createToken({ name: "Identifier", pattern: /[A-Za-z_][A-Za-z0-9_]*/ });
/** `µs` (micro sign or Greek mu), the one unit that is not an ASCII identifier. */
export const MicroSeconds = createToken({ name: "MicroSeconds", pattern: /[\u00b5\u03bc]s(?![A-Za-z0-9_])/ });
/** The `import` keyword. */
export const Import = createToken({ name: "Import", pattern: /import(?![A-Za-z0-9_])/, longer_alt: Identifier });

export const LCurly = createToken({ name: "LCurly", pattern: "{", label: "'{'" });
export const RCurly = createToken({ name: "RCurly", pattern: "}", label: "'}'" });
export const LBracket = createToken({ name: "LBracket", pattern: "[", label: "'['" });
export const RBracket = createToken({ name: "RBracket", pattern: "]", label: "']'" });
export const LParen = createToken({ name: "LParen", pattern: "(", label: "'('" });
export const RParen = createToken({ name: "RParen", pattern: ")", label: "')'" });
export const Equals = createToken({ name: "Equals", pattern: "=", label: "'='" });
export const Comma = createToken({ name: "Comma", pattern: ",", label: "','" });
export const Dot = createToken({ name: "Dot", pattern: ".", label: "'.'" });
export const Plus = createToken({ name: "Plus", pattern: "+", label: "'+'" });
export const Minus = createToken({ name: "Minus", pattern: "-", label: "'-'" });
export const Star = createToken({ name: "Star", pattern: "*", label: "'*'" });
export const Slash = createToken({ name: "Slash", pattern: "/", label: "'/'" });

/** Every token, in the order the lexer tries them. */
export const allTokens: TokenType[] = [
  WhiteSpace,
  LineComment,
  BlockComment,
  UnterminatedComment,
  StringLiteral,
  UnterminatedString,
  NumberLiteral,
  Import,
  Identifier,
  MicroSeconds,
  LCurly,
  RCurly,
  LBracket,
  RBracket,
  LParen,
  RParen,
  Equals,
  Comma,
  Dot,
  Plus,
  Minus,
  Star,
  Slash,
];

/** The one lexer instance (chevrotain's advice: build once, reuse). */
export const moeLexer = new Lexer(allTokens, { positionTracking: "full", ensureOptimizations: true, recoveryEnabled: true });
