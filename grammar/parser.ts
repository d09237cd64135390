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
import { CstParser, EOF, type IToken, type TokenType } from "chevrotain";
import * as T from "./tokens.js";

function sameLine(a: IToken, b: IToken): boolean {
  return a.endLine === b.startLine;
}

/** The parser class; use the shared {@link moeParser} instance. */
export class MoeParser extends CstParser {
  constructor() {
    super(T.allTokens, { recoveryEnabled: true, nodeLocationTracking: "full", maxLookahead: 3 });
    this.performSelfAnalysis();
  }

  file = this.RULE("file", () => {
    this.MANY(() => {
      this.OR([{ ALT: () => this.SUBRULE(this.importDecl) }, { ALT: () => this.SUBRULE(this.block) }]);
    });
  });

  importDecl = this.RULE("importDecl", () => {
    this.CONSUME(T.Import);
    this.CONSUME(T.StringLiteral);
  });

  block = this.RULE("block", () => {
    this.CONSUME(T.Identifier, { LABEL: "kind" });
    this.CONSUME2(T.Identifier, { LABEL: "name" });
    this.SUBRULE(this.body);
  });

  body = this.RULE("body", () => {
    this.CONSUME(T.LCurly);
    this.MANY(() => {
      this.OR([{ ALT: () => this.CONSUME(T.Comma) }, { ALT: () => this.SUBRULE(this.field) }]);
    });
    this.CONSUME(T.RCurly);
  });

  field = this.RULE("field", () => {
    this.SUBRULE(this.path);
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.Equals);
          this.SUBRULE(this.expression);
        },
      },
      { ALT: () => this.SUBRULE(this.body) },
    ]);
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
      this.OR([{ ALT: () => this.CONSUME(T.Plus) }, { ALT: () => this.CONSUME(T.Minus) }]);
      this.SUBRULE2(this.term);
    });
  });

  term = this.RULE("term", () => {
    this.SUBRULE(this.unary);
    this.MANY(() => {
      this.OR([{ ALT: () => this.CONSUME(T.Star) }, { ALT: () => this.CONSUME(T.Slash) }]);
      this.SUBRULE2(this.unary);
    });
  });

  unary = this.RULE("unary", () => {
    this.MANY(() => this.CONSUME(T.Minus));
    this.SUBRULE(this.primary);
  });

  primary = this.RULE("primary", () => {
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.NumberLiteral);
          this.OPTION({ GATE: () => this.unitFollows(), DEF: () => this.SUBRULE(this.unit) });
        },
      },
      { ALT: () => this.CONSUME(T.StringLiteral) },
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
    ]);
  });

  unit = this.RULE("unit", () => {
    this.OR([{ ALT: () => this.CONSUME(T.Identifier) }, { ALT: () => this.CONSUME(T.MicroSeconds) }]);
    this.OPTION({
      GATE: () => this.LA(2).tokenType === T.Identifier && this.LA(2).image === "s",
      DEF: () => {
        this.CONSUME(T.Slash);
        this.CONSUME2(T.Identifier, { LABEL: "per" });
      },
    });
  });

  reference = this.RULE("reference", () => {
    this.SUBRULE(this.path);
    this.OPTION(() => this.SUBRULE(this.body));
    this.OPTION2({
      GATE: () => this.LA(1).tokenType === T.NumberLiteral && sameLine(this.LA(0), this.LA(1)),
      DEF: () => this.SUBRULE(this.unary, { LABEL: "argument" }),
    });
  });

  list = this.RULE("list", () => {
    this.CONSUME(T.LBracket);
    this.OPTION(() => {
      this.SUBRULE(this.expression);
      this.MANY({
        GATE: () => this.LA(2).tokenType !== T.RBracket,
        DEF: () => {
          this.CONSUME(T.Comma);
          this.SUBRULE2(this.expression);
        },
      });
      this.OPTION2(() => this.CONSUME2(T.Comma));
    });
    this.CONSUME(T.RBracket);
  });

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
