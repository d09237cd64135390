/**
 * The `.moe` grammar as a chevrotain CstParser with error recovery (LANGUAGE.md, "Shape"), so
 * one file reports several syntax errors. The CST is turned into the typed AST by
 * `grammar/cst-to-ast.ts`.
 *
 *   file        = { import | block }
 *   import      = "import" STRING
 *   block       = IDENT IDENT body                     (kind, name)
 *   body        = "{" { field | "," } "}"
 *   field       = path ( "=" expression | body )
 *   path        = IDENT { "." IDENT }
 *   expression  = term { ("+" | "-") term }
 *   term        = unary { ("*" | "/") unary }
 *   unary       = { "-" } primary
 *   primary     = NUMBER [unit] | STRING | reference | "(" expression ")" | list | body
 *   unit        = (IDENT | "µs") [ "/" "s" ]             (on the number's line)
 *   reference   = path [ body | unary ]                 (a preset with overrides; `every 2`)
 *   list        = "[" [ expression { "," expression } [","] ] "]"
 */
import { CstParser, EOF, tokenMatcher, type IToken, type TokenType } from "chevrotain";
import * as T from "./tokens.js";

function sameLine(a: IToken, b: IToken): boolean {
  return a.endLine === b.startLine;
}

/** The parser class; use the shared {@link moeParser} instance. */
export class MoeParser extends CstParser {
  constructor(config: { recoveryEnabled?: boolean; nodeLocationTracking?: "onlyOffset" | "none" } = {}) {
    super(T.allTokens, { recoveryEnabled: config.recoveryEnabled ?? true, nodeLocationTracking: config.nodeLocationTracking ?? "onlyOffset", maxLookahead: 3 });
    this.performSelfAnalysis();
  }

  // Every OR's alternatives and every gated OPTION or MANY are built once, here, rather than on
  // each call (chevrotain's performance guide): a literal `{ ALT: () => … }` allocates an
  // object and a closure per call, and under tsx (esbuild's keepNames) also renames the closure.
  private readonly fileAlts = [{ ALT: () => this.SUBRULE(this.importDecl) }, { ALT: () => this.SUBRULE(this.block) }];
  private readonly importAlts = [{ ALT: () => this.CONSUME(T.StringLiteral) }, { ALT: () => this.CONSUME(T.UnterminatedString) }];
  private readonly bodyAlts = [{ ALT: () => this.CONSUME(T.Comma) }, { ALT: () => this.SUBRULE(this.field) }];
  private readonly fieldAlts = [
    {
      ALT: () => {
        this.CONSUME(T.Equals);
        this.SUBRULE(this.expression);
      },
    },
    { ALT: () => this.SUBRULE(this.body) },
  ];
  private readonly additiveAlts = [{ ALT: () => this.CONSUME(T.Plus) }, { ALT: () => this.CONSUME(T.Minus) }];
  private readonly multiplicativeAlts = [{ ALT: () => this.CONSUME(T.Star) }, { ALT: () => this.CONSUME(T.Slash) }];
  private readonly numberUnit = { GATE: () => this.unitFollows(), DEF: () => this.SUBRULE(this.unit) };
  private readonly primaryAlts = [
    {
      ALT: () => {
        this.CONSUME(T.NumberLiteral);
        this.OPTION(this.numberUnit);
      },
    },
    { ALT: () => this.CONSUME(T.StringLiteral) },
    // Already reported by the lexer (FSM1004); it becomes an error value, so nothing after it cascades.
    { ALT: () => this.CONSUME(T.UnterminatedString) },
    { ALT: () => this.SUBRULE(this.reference) },
    {
      ALT: () => {
        this.CONSUME(T.LParen);
        this.SUBRULE(this.expression);
        this.CONSUME(T.RParen);
      },
    },
    { ALT: () => this.SUBRULE(this.list) },
    { ALT: () => this.SUBRULE(this.body) },
  ];
  private readonly unitAlts = [{ ALT: () => this.CONSUME(T.Identifier) }, { ALT: () => this.CONSUME(T.MicroSeconds) }];
  private readonly perSecond = {
    GATE: () => this.LA(2).tokenType === T.Identifier && this.LA(2).image === "s",
    DEF: () => {
      this.CONSUME(T.Slash);
      this.CONSUME2(T.Identifier, { LABEL: "per" });
    },
  };
  private readonly referenceArgument = {
    GATE: () => this.LA(1).tokenType === T.NumberLiteral && sameLine(this.LA(0), this.LA(1)),
    DEF: () => this.SUBRULE(this.unary, { LABEL: "argument" }),
  };
  private readonly listRest = {
    GATE: () => this.LA(2).tokenType !== T.RBracket,
    DEF: () => {
      this.CONSUME(T.Comma);
      this.SUBRULE2(this.expression);
    },
  };

  file = this.RULE("file", () => {
    this.MANY(() => {
      this.OR(this.fileAlts);
    });
  });

  importDecl = this.RULE("importDecl", () => {
    this.CONSUME(T.Import);
    // An unterminated string is already reported by the lexer (FSM1004); taking it here keeps
    // the parser from reporting it again as a missing string.
    this.OR(this.importAlts);
  });

  block = this.RULE("block", () => {
    this.CONSUME(T.Identifier, { LABEL: "kind" });
    this.CONSUME2(T.Identifier, { LABEL: "name" });
    this.SUBRULE(this.body);
  });

  body = this.RULE("body", () => {
    this.CONSUME(T.LCurly);
    this.MANY(() => {
      this.OR(this.bodyAlts);
    });
    this.CONSUME(T.RCurly);
  });

  field = this.RULE("field", () => {
    this.SUBRULE(this.path);
    this.OR(this.fieldAlts);
  });

  path = this.RULE("path", () => {
    this.CONSUME(T.Identifier);
    this.MANY(() => {
      this.CONSUME(T.Dot);
      this.CONSUME2(T.Identifier);
    });
  });

  expression = this.RULE("expression", () => {
    this.SUBRULE(this.term);
    this.MANY(() => {
      this.OR(this.additiveAlts);
      this.SUBRULE2(this.term);
    });
  });

  term = this.RULE("term", () => {
    this.SUBRULE(this.unary);
    this.MANY(() => {
      this.OR(this.multiplicativeAlts);
      this.SUBRULE2(this.unary);
    });
  });

  unary = this.RULE("unary", () => {
    this.MANY(() => this.CONSUME(T.Minus));
    this.SUBRULE(this.primary);
  });

  primary = this.RULE("primary", () => {
    this.OR(this.primaryAlts);
  });

  unit = this.RULE("unit", () => {
    this.OR(this.unitAlts);
    this.OPTION(this.perSecond);
  });

  reference = this.RULE("reference", () => {
    this.SUBRULE(this.path);
    this.OPTION(() => this.SUBRULE(this.body));
    this.OPTION2(this.referenceArgument);
  });

  list = this.RULE("list", () => {
    this.CONSUME(T.LBracket);
    this.OPTION(() => {
      this.SUBRULE(this.expression);
      this.MANY(this.listRest);
      this.OPTION2(() => this.CONSUME2(T.Comma));
    });
    this.CONSUME(T.RBracket);
  });

  /** The token that {@link findReSyncTokenType} chose, consumed up to by {@link reSyncTo}. */
  private resyncTarget: IToken | undefined;

  /**
   * Where to resume after a syntax error (chevrotain's "between rules" recovery, made aware of
   * lines). Chevrotain resumes at the first token that may follow any rule being parsed, so in
   * `bandwidth 10 GB/s` it would read `GB` and `s` as fields. Fields are separated by line
   * breaks and commas, so here a name may resume parsing only as the first token of its line;
   * a comma, a closing bracket or the end of the file may resume it anywhere. Brackets opened
   * in the skipped text are skipped to their end, so a garbage `{ … }` never closes the block.
   */
  findReSyncTokenType(): TokenType {
    const follows = (this as unknown as { flattenFollowSet(): TokenType[] }).flattenFollowSet();
    let depth = 0;
    for (let k = 1; ; k++) {
      const t = this.LA(k);
      if (t.tokenType === EOF) {
        this.resyncTarget = t;
        return EOF;
      }
      const closer = t.tokenType === T.RCurly || t.tokenType === T.RBracket || t.tokenType === T.RParen;
      if (depth === 0) {
        const boundary = closer || t.tokenType === T.Comma || !sameLine(this.LA(k - 1), t);
        const match = boundary ? follows.find((f) => tokenMatcher(t, f)) : undefined;
        if (match !== undefined) {
          this.resyncTarget = t;
          return match;
        }
      }
      if (t.tokenType === T.LCurly || t.tokenType === T.LBracket || t.tokenType === T.LParen) depth++;
      else if (closer && depth > 0) depth--;
    }
  }

  /** Skip to the token {@link findReSyncTokenType} chose. */
  reSyncTo(tokType: TokenType): IToken[] {
    const target = this.resyncTarget;
    this.resyncTarget = undefined;
    const skipped: IToken[] = [];
    const self = this as unknown as { SKIP_TOKEN(): IToken };
    if (target === undefined || !tokenMatcher(target, tokType)) {
      while (this.LA(1).tokenType !== EOF && !tokenMatcher(this.LA(1), tokType)) skipped.push(self.SKIP_TOKEN());
      return skipped;
    }
    while (this.LA(1) !== target && this.LA(1).tokenType !== EOF) skipped.push(self.SKIP_TOKEN());
    return skipped;
  }

  /** A unit directly follows a number on its line, and is not the start of the next field. */
  private unitFollows(): boolean {
    const next = this.LA(1);
    if (next.tokenType !== T.Identifier && next.tokenType !== T.MicroSeconds) return false;
    if (!sameLine(this.LA(0), next)) return false;
    const after: TokenType = this.LA(2).tokenType;
    return after !== T.Equals && after !== T.Dot && after !== T.LCurly && after !== EOF;
  }
}

/** The one parser instance, reused for every file (chevrotain's performance advice). */
export const moeParser = new MoeParser();
