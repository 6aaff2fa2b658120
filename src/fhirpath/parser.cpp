// A precedence-climbing parser for the FHIRPath grammar (N1, section "Grammar").
#include <cctype>
#include <cstdint>

#include "common/utf8.h"
#include "fhirpath/ast.h"

namespace fhirshift::fhirpath {
namespace {

struct Token {
  enum class Kind { kEnd, kIdent, kString, kNumber, kDateTime, kOp, kExternal, kDollar } kind;
  std::string text;
  size_t begin = 0, end = 0;
  bool delimited = false;  // `identifier`
};

class Lexer {
 public:
  explicit Lexer(std::string_view s) : s_(s) {}

  Token next() {
    while (pos_ < s_.size()) {
      if (std::isspace(static_cast<unsigned char>(s_[pos_]))) {
        ++pos_;
      } else if (s_.substr(pos_, 2) == "//") {
        while (pos_ < s_.size() && s_[pos_] != '\n') ++pos_;
      } else if (s_.substr(pos_, 2) == "/*") {
        size_t e = s_.find("*/", pos_ + 2);
        if (e == std::string_view::npos) fail(pos_, "unterminated comment");
        pos_ = e + 2;
      } else {
        break;
      }
    }
    Token t{Token::Kind::kEnd, {}, pos_, pos_};
    if (pos_ >= s_.size()) return t;
    char c = s_[pos_];
    size_t start = pos_;
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      while (pos_ < s_.size() &&
             (std::isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '_'))
        ++pos_;
      t.kind = Token::Kind::kIdent;
      t.text = std::string(s_.substr(start, pos_ - start));
    } else if (c == '`') {
      size_t e = s_.find('`', pos_ + 1);
      if (e == std::string_view::npos) fail(pos_, "unterminated `identifier`");
      t.kind = Token::Kind::kIdent;
      t.text = std::string(s_.substr(pos_ + 1, e - pos_ - 1));
      t.delimited = true;
      pos_ = e + 1;
    } else if (c == '\'') {
      t.kind = Token::Kind::kString;
      t.text = string_literal();
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) ++pos_;
      if (pos_ + 1 < s_.size() && s_[pos_] == '.' &&
          std::isdigit(static_cast<unsigned char>(s_[pos_ + 1]))) {
        ++pos_;
        while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) ++pos_;
      }
      t.kind = Token::Kind::kNumber;
      t.text = std::string(s_.substr(start, pos_ - start));
    } else if (c == '@') {
      ++pos_;
      while (pos_ < s_.size() &&
             (std::isalnum(static_cast<unsigned char>(s_[pos_])) ||
              std::string_view("-:.+TZ").find(s_[pos_]) != std::string_view::npos))
        ++pos_;
      t.kind = Token::Kind::kDateTime;
      t.text = std::string(s_.substr(start + 1, pos_ - start - 1));
    } else if (c == '%') {
      ++pos_;
      Token name = next();
      if (name.kind != Token::Kind::kIdent && name.kind != Token::Kind::kString)
        fail(start, "expected a name after %");
      t.kind = Token::Kind::kExternal;
      t.text = name.text;
    } else if (c == '$') {
      ++pos_;
      while (pos_ < s_.size() && std::isalpha(static_cast<unsigned char>(s_[pos_]))) ++pos_;
      t.kind = Token::Kind::kDollar;
      t.text = std::string(s_.substr(start, pos_ - start));
    } else {
      static const char* kOps[] = {"<=", ">=", "!=", "!~", "=", "~", "<", ">", "|", "&", "+",
                                   "-",  "*",  "/",  "(",  ")", "[", "]", "{", "}", ".", ","};
      for (const char* op : kOps) {
        std::string_view o(op);
        if (s_.substr(pos_, o.size()) == o) {
          t.kind = Token::Kind::kOp;
          t.text = std::string(o);
          pos_ += o.size();
          break;
        }
      }
      if (t.kind != Token::Kind::kOp) fail(pos_, std::string("unexpected character '") + c + "'");
    }
    t.begin = start;
    t.end = pos_;
    return t;
  }

  [[noreturn]] void fail(size_t at, const std::string& what) const {
    throw CompileError("FHIRPath syntax error at position " + std::to_string(at) + " of '" +
                       std::string(s_) + "': " + what);
  }

 private:
  std::string string_literal() {
    std::string out;
    ++pos_;
    while (true) {
      if (pos_ >= s_.size()) fail(pos_, "unterminated string");
      char c = s_[pos_++];
      if (c == '\'') break;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= s_.size()) fail(pos_, "unterminated string");
      char e = s_[pos_++];
      switch (e) {
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'f':
          out += '\f';
          break;
        case 'u': {
          uint32_t cp = hex4();
          // A UTF-16 surrogate pair (\uD83D\uDE00) is one code point; a lone surrogate is none.
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (s_.substr(pos_, 2) != "\\u") fail(pos_, "\\u escape of a lone UTF-16 surrogate");
            pos_ += 2;
            uint32_t low = hex4();
            if (low < 0xDC00 || low > 0xDFFF) fail(pos_ - 4, "\\u escape of a lone UTF-16 surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            fail(pos_ - 4, "\\u escape of a lone UTF-16 surrogate");
          }
          append_utf8(out, cp);
          break;
        }
        default:
          out += e;
          break;  // \' \" \` \\ \/
      }
    }
    return out;
  }

  // The four hexadecimal digits of a \u escape (std::stoul would take "-1", " 12" or "12zz").
  uint32_t hex4() {
    if (pos_ + 4 > s_.size()) fail(pos_, "bad \\u escape: expected 4 hexadecimal digits");
    uint32_t cp = 0;
    for (size_t i = 0; i < 4; ++i) {
      char h = s_[pos_ + i];
      int digit = h >= '0' && h <= '9' ? h - '0'
                  : h >= 'a' && h <= 'f' ? h - 'a' + 10
                  : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                         : -1;
      if (digit < 0) fail(pos_, "bad \\u escape: expected 4 hexadecimal digits");
      cp = cp * 16 + static_cast<uint32_t>(digit);
    }
    pos_ += 4;
    return cp;
  }

  std::string_view s_;
  size_t pos_ = 0;
};

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text), lex_(text) { advance(); }

  std::unique_ptr<Ast> parse_all() {
    auto e = expression(0);
    if (tok_.kind != Token::Kind::kEnd) lex_.fail(tok_.begin, "unexpected '" + tok_.text + "'");
    return e;
  }

 private:
  // Binding strength of a binary operator (higher binds tighter), 0 if `t` is not one.
  static int precedence(const Token& t) {
    if (t.kind == Token::Kind::kIdent && !t.delimited) {
      if (t.text == "implies") return 1;
      if (t.text == "or" || t.text == "xor") return 2;
      if (t.text == "and") return 3;
      if (t.text == "in" || t.text == "contains") return 4;
      if (t.text == "is" || t.text == "as") return 8;
      if (t.text == "div" || t.text == "mod") return 10;
      return 0;
    }
    if (t.kind != Token::Kind::kOp) return 0;
    const std::string& o = t.text;
    if (o == "=" || o == "~" || o == "!=" || o == "!~") return 5;
    if (o == "<" || o == ">" || o == "<=" || o == ">=") return 6;
    if (o == "|") return 7;
    if (o == "+" || o == "-" || o == "&") return 9;
    if (o == "*" || o == "/") return 10;
    return 0;
  }

  std::unique_ptr<Ast> node(Ast::Kind k, std::string name, size_t begin) {
    auto a = std::make_unique<Ast>();
    a->kind = k;
    a->name = std::move(name);
    a->begin = begin;
    a->end = prev_end_;
    return a;
  }

  std::unique_ptr<Ast> expression(int min_prec) {
    auto lhs = unary();
    while (true) {
      int p = precedence(tok_);
      if (p == 0 || p <= min_prec) break;
      Token op = tok_;
      advance();
      size_t begin = lhs->begin;
      if (p == 8) {  // is / as TypeSpecifier
        std::string type = qualified_identifier();
        auto n = node(Ast::Kind::kTypeOp, op.text + " " + type, begin);
        n->kids.push_back(std::move(lhs));
        lhs = std::move(n);
        continue;
      }
      auto rhs = expression(p);
      auto n = node(Ast::Kind::kBinary, op.text, begin);
      n->kids.push_back(std::move(lhs));
      n->kids.push_back(std::move(rhs));
      lhs = std::move(n);
    }
    return lhs;
  }

  std::unique_ptr<Ast> unary() {
    if (tok_.kind == Token::Kind::kOp && (tok_.text == "+" || tok_.text == "-")) {
      size_t begin = tok_.begin;
      std::string op = tok_.text;
      advance();
      auto operand = unary();
      auto n = node(Ast::Kind::kUnary, op, begin);
      n->kids.push_back(std::move(operand));
      return n;
    }
    return postfix(term());
  }

  std::unique_ptr<Ast> postfix(std::unique_ptr<Ast> e) {
    while (tok_.kind == Token::Kind::kOp && (tok_.text == "." || tok_.text == "[")) {
      size_t begin = e->begin;
      if (tok_.text == "[") {
        advance();
        auto idx = expression(0);
        expect("]");
        auto n = node(Ast::Kind::kIndex, "", begin);
        n->kids.push_back(std::move(e));
        n->kids.push_back(std::move(idx));
        e = std::move(n);
        continue;
      }
      advance();
      if (tok_.kind != Token::Kind::kIdent) lex_.fail(tok_.begin, "expected a name after '.'");
      std::string name = tok_.text;
      advance();
      if (is_op("(")) {
        auto f = function(name, begin);
        f->kids[0] = std::move(e);
        e = std::move(f);
      } else {
        auto n = node(Ast::Kind::kMember, name, begin);
        n->kids.push_back(std::move(e));
        e = std::move(n);
      }
    }
    return e;
  }

  // name( args ) with the opening parenthesis current; kids[0] is left null for the caller.
  std::unique_ptr<Ast> function(const std::string& name, size_t begin) {
    expect("(");
    std::vector<std::unique_ptr<Ast>> args;
    if (!is_op(")")) {
      args.push_back(expression(0));
      while (is_op(",")) {
        advance();
        args.push_back(expression(0));
      }
    }
    expect(")");
    auto f = node(Ast::Kind::kFunction, name, begin);
    f->kids.push_back(nullptr);
    for (auto& a : args) f->kids.push_back(std::move(a));
    return f;
  }

  std::unique_ptr<Ast> term() {
    size_t begin = tok_.begin;
    Token t = tok_;
    switch (t.kind) {
      case Token::Kind::kEnd:
        lex_.fail(t.begin, "unexpected end of expression");
      case Token::Kind::kString:
        advance();
        return node(Ast::Kind::kString, t.text, begin);
      case Token::Kind::kNumber:
        advance();
        return node(Ast::Kind::kNumber, t.text, begin);
      case Token::Kind::kDateTime:
        advance();
        return node(Ast::Kind::kDateTime, t.text, begin);
      case Token::Kind::kExternal:
        advance();
        return node(Ast::Kind::kExternal, t.text, begin);
      case Token::Kind::kDollar:
        advance();
        if (t.text == "$this") return node(Ast::Kind::kThis, t.text, begin);
        if (t.text == "$index") return node(Ast::Kind::kIndexVar, t.text, begin);
        lex_.fail(t.begin, "unsupported variable " + t.text);
      case Token::Kind::kIdent:
        advance();
        if (!t.delimited && (t.text == "true" || t.text == "false"))
          return node(Ast::Kind::kBoolean, t.text, begin);
        if (is_op("(")) return function(t.text, begin);
        return node(Ast::Kind::kIdentifier, t.text, begin);
      case Token::Kind::kOp:
        if (t.text == "(") {
          advance();
          auto e = expression(0);
          expect(")");
          e->begin = begin;
          e->end = prev_end_;
          return e;
        }
        if (t.text == "{") {
          advance();
          expect("}");
          return node(Ast::Kind::kEmpty, "{}", begin);
        }
        break;
    }
    lex_.fail(t.begin, "unexpected '" + t.text + "'");
  }

  std::string qualified_identifier() {
    if (tok_.kind != Token::Kind::kIdent) lex_.fail(tok_.begin, "expected a type name");
    std::string name = tok_.text;
    advance();
    while (is_op(".")) {
      advance();
      if (tok_.kind != Token::Kind::kIdent) lex_.fail(tok_.begin, "expected a type name");
      name += "." + tok_.text;
      advance();
    }
    return name;
  }

  bool is_op(const char* op) const { return tok_.kind == Token::Kind::kOp && tok_.text == op; }
  void expect(const char* op) {
    if (!is_op(op)) lex_.fail(tok_.begin, std::string("expected '") + op + "'");
    advance();
  }
  void advance() {
    prev_end_ = tok_.end;
    tok_ = lex_.next();
  }

  std::string_view text_;
  Lexer lex_;
  Token tok_{};
  size_t prev_end_ = 0;
};

}  // namespace

std::unique_ptr<Ast> parse(std::string_view text) {
  return Parser(text).parse_all();
}

}  // namespace fhirshift::fhirpath
