#include "fhirpath/expression.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <optional>
#include <regex>

namespace fhirshift::fhirpath {

using Coll = std::vector<Value>;

namespace {

const Model& model() {
  return Model::r4();
}

struct Env {
  EvalState& state;
  const Value& root;
};

// A primitive view of a singleton item, for operators and string functions.
struct Prim {
  enum class Kind { kNone, kBool, kNumber, kString } kind = Kind::kNone;
  bool b = false;
  double n = 0;
  std::string_view s;
};

Prim prim(const Value& v) {
  Prim p;
  switch (v.kind) {
    case Value::Kind::kBool:
      p.kind = Prim::Kind::kBool;
      p.b = v.boolean;
      return p;
    case Value::Kind::kNumber:
      p.kind = Prim::Kind::kNumber;
      p.n = v.number;
      return p;
    case Value::Kind::kString:
      p.kind = Prim::Kind::kString;
      p.s = v.text;
      return p;
    case Value::Kind::kStub:
      return p;
    case Value::Kind::kJson:
      break;
  }
  switch (v.json.type()) {
    case simdjson::dom::element_type::STRING:
      p.kind = Prim::Kind::kString;
      p.s = std::string_view(v.json);
      break;
    case simdjson::dom::element_type::BOOL:
      p.kind = Prim::Kind::kBool;
      p.b = bool(v.json);
      break;
    case simdjson::dom::element_type::INT64:
      p.kind = Prim::Kind::kNumber;
      p.n = static_cast<double>(int64_t(v.json));
      break;
    case simdjson::dom::element_type::UINT64:
      p.kind = Prim::Kind::kNumber;
      p.n = static_cast<double>(uint64_t(v.json));
      break;
    case simdjson::dom::element_type::DOUBLE:
      p.kind = Prim::Kind::kNumber;
      p.n = double(v.json);
      break;
    default:
      break;
  }
  return p;
}

// Contexts used on every evaluation, looked up once.
struct Known {
  CtxId boolean = model().type("boolean");
  CtxId decimal = model().type("decimal");
  CtxId string = model().type("string");
  CtxId resource = model().type("Resource");
};
const Known& known() {
  static const Known kKnown;
  return kKnown;
}

Value make_bool(bool b) {
  Value v;
  v.kind = Value::Kind::kBool;
  v.boolean = b;
  v.ctx = known().boolean;
  return v;
}
Value make_number(double n) {
  Value v;
  v.kind = Value::Kind::kNumber;
  v.number = n;
  v.ctx = known().decimal;
  return v;
}
Value make_string(std::string_view s, CtxId ctx = known().string) {
  Value v;
  v.kind = Value::Kind::kString;
  v.text = s;
  v.ctx = ctx;
  return v;
}
Value make_string(Env& env, std::string s) {
  env.state.strings.push_back(std::move(s));
  return make_string(env.state.strings.back());
}

bool json_equal(simdjson::dom::element a, simdjson::dom::element b);

// FHIRPath equality of two items (=): primitives by value, complex items by deep equality.
bool item_equal(const Value& a, const Value& b) {
  Prim pa = prim(a), pb = prim(b);
  if (pa.kind != Prim::Kind::kNone || pb.kind != Prim::Kind::kNone) {
    if (pa.kind != pb.kind) return false;
    switch (pa.kind) {
      case Prim::Kind::kBool:
        return pa.b == pb.b;
      case Prim::Kind::kNumber:
        return pa.n == pb.n;
      case Prim::Kind::kString:
        return pa.s == pb.s;
      case Prim::Kind::kNone:
        return false;
    }
  }
  if (a.kind == Value::Kind::kStub || b.kind == Value::Kind::kStub)
    return a.kind == b.kind && a.text == b.text;
  return json_equal(a.json, b.json);
}

bool json_equal(simdjson::dom::element a, simdjson::dom::element b) {
  using T = simdjson::dom::element_type;
  T ta = a.type(), tb = b.type();
  bool na = ta == T::INT64 || ta == T::UINT64 || ta == T::DOUBLE;
  bool nb = tb == T::INT64 || tb == T::UINT64 || tb == T::DOUBLE;
  if (na && nb) {
    Value va, vb;
    va.json = a;
    vb.json = b;
    return prim(va).n == prim(vb).n;
  }
  if (ta != tb) return false;
  switch (ta) {
    case T::STRING:
      return std::string_view(a) == std::string_view(b);
    case T::BOOL:
      return bool(a) == bool(b);
    case T::NULL_VALUE:
      return true;
    case T::ARRAY: {
      simdjson::dom::array x = a, y = b;
      if (x.size() != y.size()) return false;
      auto i = x.begin(), j = y.begin();
      for (; i != x.end(); ++i, ++j)
        if (!json_equal(*i, *j)) return false;
      return true;
    }
    case T::OBJECT: {
      simdjson::dom::object x = a, y = b;
      if (x.size() != y.size()) return false;
      for (auto field : x) {
        simdjson::dom::element other;
        if (y.at_key(field.key).get(other)) return false;
        if (!json_equal(field.value, other)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

// The boolean value of a collection (singleton evaluation): empty -> nullopt.
std::optional<bool> to_bool(const Coll& c, std::string_view what) {
  if (c.empty()) return std::nullopt;
  if (c.size() > 1)
    throw EvaluationError(std::string(what) + ": expected one item, got " +
                          std::to_string(c.size()));
  Prim p = prim(c[0]);
  if (p.kind == Prim::Kind::kBool) return p.b;
  return true;
}

void append_unique(Coll& out, const Value& v) {
  for (const auto& e : out)
    if (item_equal(e, v)) return;
  out.push_back(v);
}

}  // namespace

std::string_view Value::type_name() const {
  if (ctx < 0) return {};
  const Context& c = model().ctx(ctx);
  return model().ctx(c.type).name;
}

// ---------------------------------------------------------------------------------------------
// The compiled plan

struct Expression::Op {
  virtual ~Op() = default;
  // Appends the result of this operation on `focus` to `out`.
  virtual void eval(const Coll& focus, Env& env, Coll& out) const = 0;
  // Adds the keys of the root object without which this operation (evaluated on the root) yields
  // nothing; false when it may yield something regardless (exists(), literals, operators).
  virtual bool root_keys(std::vector<std::string>&) const { return false; }
  // True for the focus itself or a type filter on it (the root, at the top of an expression).
  virtual bool is_focus() const { return false; }
  CtxId static_ctx = kUnknownCtx;  // the type of the results when known at compile time
};

namespace {

using Op = Expression::Op;
using OpPtr = std::unique_ptr<Op>;

struct ThisOp final : Op {
  bool is_focus() const override { return true; }
  void eval(const Coll& focus, Env&, Coll& out) const override {
    out.insert(out.end(), focus.begin(), focus.end());
  }
};

struct EmptyOp final : Op {
  void eval(const Coll&, Env&, Coll&) const override {}
};

struct LiteralOp final : Op {
  std::string text;  // storage for a string literal
  Value value;
  void eval(const Coll&, Env&, Coll& out) const override { out.push_back(value); }
};

struct RootOp final : Op {  // %resource, %context, %rootResource
  void eval(const Coll&, Env& env, Coll& out) const override { out.push_back(env.root); }
};

// A type name at the start of a path ("Patient" in Patient.name): the focus items of that type.
struct TypeFilterOp final : Op {
  CtxId type = kUnknownCtx;
  bool is_focus() const override { return true; }
  void eval(const Coll& focus, Env&, Coll& out) const override {
    for (const auto& v : focus)
      if (model().is_a(v.ctx, type)) out.push_back(v);
  }
};

// Appends `e` (a member's JSON value) with its context, checking it against the model and
// resolving the real type of resources.
void push_item(simdjson::dom::element e, CtxId ctx, std::string_view name, Coll& out) {
  using T = simdjson::dom::element_type;
  T t = e.type();
  if (t == T::NULL_VALUE) return;
  if (ctx >= 0) {
    const Context& c = model().ctx(ctx);
    if (c.primitive == (t == T::OBJECT)) {
      throw EvaluationError("element '" + std::string(name) + "' of type " + c.name +
                            (c.primitive ? " holds an object, expected a primitive value"
                                         : " holds a primitive value, expected an object"));
    }
    if (c.resource) {
      std::string_view rt;
      if (!e["resourceType"].get(rt)) {
        CtxId real = model().type(rt);
        if (real >= 0 && model().ctx(real).resource) ctx = real;
      }
    }
  }
  Value v;
  v.json = e;
  v.ctx = ctx;
  out.push_back(v);
}

void push_member(simdjson::dom::element e, CtxId ctx, std::string_view name, Coll& out) {
  if (e.type() == simdjson::dom::element_type::ARRAY) {
    for (auto item : simdjson::dom::array(e)) {
      if (item.type() == simdjson::dom::element_type::ARRAY)
        throw EvaluationError("element '" + std::string(name) + "' holds nested arrays");
      push_item(item, ctx, name, out);
    }
  } else {
    push_item(e, ctx, name, out);
  }
}

// Member navigation (focus.name) for every item, with choice types resolved by the model.
void navigate(const Value& in, std::string_view name, const Member* m, Coll& out) {
  if (in.kind != Value::Kind::kJson) return;
  simdjson::dom::object obj;
  if (in.json.get(obj)) return;  // primitives have no members here
  if (m == nullptr) {
    simdjson::dom::element e;
    if (!obj.at_key(name).get(e)) push_member(e, kUnknownCtx, name, out);
    return;
  }
  if (!m->choice) {
    simdjson::dom::element e;
    if (!obj.at_key(m->variants[0].key).get(e)) push_member(e, m->variants[0].ctx, name, out);
    return;
  }
  // A valid resource has one variant; if there are several, the first in the model's order wins
  // (as in fhirpath.js).
  size_t best = m->variants.size();
  simdjson::dom::element best_value;
  for (auto field : obj) {
    std::string_view key = field.key;
    if (key.size() <= name.size() || key.compare(0, name.size(), name) != 0) continue;
    for (size_t i = 0; i < best; ++i) {
      if (m->variants[i].key == key) {
        best = i;
        best_value = field.value;
        break;
      }
    }
  }
  if (best < m->variants.size())
    push_member(best_value, m->variants[best].ctx, m->variants[best].key, out);
}

struct MemberOp final : Op {
  OpPtr src;  // null: the focus
  std::string name;
  CtxId static_owner = kUnknownCtx;
  const Member* static_member = nullptr;

  bool root_keys(std::vector<std::string>& keys) const override {
    if (src && !src->is_focus()) return src->root_keys(keys);
    if (!static_member) {
      keys.push_back(name);
    } else {
      for (const auto& v : static_member->variants) keys.push_back(v.key);
    }
    return true;
  }
  const Member* member_for(CtxId ctx) const {
    return ctx == static_owner ? static_member : model().member(ctx, name);
  }
  void eval(const Coll& focus, Env& env, Coll& out) const override {
    if (!src) {
      for (const auto& v : focus) navigate(v, name, member_for(v.ctx), out);
      return;
    }
    Coll in;
    src->eval(focus, env, in);
    for (const auto& v : in) navigate(v, name, member_for(v.ctx), out);
  }
};

struct IndexOp final : Op {
  OpPtr src, index;
  bool root_keys(std::vector<std::string>& keys) const override { return src->root_keys(keys); }
  void eval(const Coll& focus, Env& env, Coll& out) const override {
    Coll in, idx;
    src->eval(focus, env, in);
    index->eval(focus, env, idx);
    if (idx.size() != 1 || prim(idx[0]).kind != Prim::Kind::kNumber)
      throw EvaluationError("indexer: expected one integer");
    double i = prim(idx[0]).n;
    if (i >= 0 && i < static_cast<double>(in.size())) out.push_back(in[static_cast<size_t>(i)]);
  }
};

// ---- functions ----

enum class Fn {
  kEmpty,
  kExists,
  kNot,
  kWhere,
  kSelect,
  kFirst,
  kLast,
  kTail,
  kSkip,
  kTake,
  kSingle,
  kCount,
  kOfType,
  kIs,
  kAs,
  kResolve,
  kExtension,
  kHasValue,
  kDistinct,
  kUnion,
  kCombine,
  kIif,
  kAll,
  kAllTrue,
  kAnyTrue,
  kAllFalse,
  kAnyFalse,
  kStartsWith,
  kEndsWith,
  kContains,
  kMatches,
  kLower,
  kUpper,
  kLength,
  kSubstring,
  kIndexOf,
  kToString,
  kTrace,
  kIsDistinct,
  kToInteger,
  kToDecimal,
};

struct FnSpec {
  const char* name;
  Fn fn;
  int min_args, max_args;
  bool lambda;  // arguments evaluated per input item
};

const FnSpec kFunctions[] = {
    {"empty", Fn::kEmpty, 0, 0, false},
    {"exists", Fn::kExists, 0, 1, true},
    {"not", Fn::kNot, 0, 0, false},
    {"where", Fn::kWhere, 1, 1, true},
    {"select", Fn::kSelect, 1, 1, true},
    {"first", Fn::kFirst, 0, 0, false},
    {"last", Fn::kLast, 0, 0, false},
    {"tail", Fn::kTail, 0, 0, false},
    {"skip", Fn::kSkip, 1, 1, false},
    {"take", Fn::kTake, 1, 1, false},
    {"single", Fn::kSingle, 0, 0, false},
    {"count", Fn::kCount, 0, 0, false},
    {"ofType", Fn::kOfType, 1, 1, false},
    {"is", Fn::kIs, 1, 1, false},
    {"as", Fn::kAs, 1, 1, false},
    {"resolve", Fn::kResolve, 0, 0, false},
    {"extension", Fn::kExtension, 1, 1, false},
    {"hasValue", Fn::kHasValue, 0, 0, false},
    {"distinct", Fn::kDistinct, 0, 0, false},
    {"union", Fn::kUnion, 1, 1, false},
    {"combine", Fn::kCombine, 1, 1, false},
    {"iif", Fn::kIif, 2, 3, false},
    {"all", Fn::kAll, 1, 1, true},
    {"allTrue", Fn::kAllTrue, 0, 0, false},
    {"anyTrue", Fn::kAnyTrue, 0, 0, false},
    {"allFalse", Fn::kAllFalse, 0, 0, false},
    {"anyFalse", Fn::kAnyFalse, 0, 0, false},
    {"startsWith", Fn::kStartsWith, 1, 1, false},
    {"endsWith", Fn::kEndsWith, 1, 1, false},
    {"contains", Fn::kContains, 1, 1, false},
    {"matches", Fn::kMatches, 1, 1, false},
    {"lower", Fn::kLower, 0, 0, false},
    {"upper", Fn::kUpper, 0, 0, false},
    {"length", Fn::kLength, 0, 0, false},
    {"substring", Fn::kSubstring, 1, 2, false},
    {"indexOf", Fn::kIndexOf, 1, 1, false},
    {"toString", Fn::kToString, 0, 0, false},
    {"trace", Fn::kTrace, 1, 2, false},
    {"isDistinct", Fn::kIsDistinct, 0, 0, false},
    {"toInteger", Fn::kToInteger, 0, 0, false},
    {"toDecimal", Fn::kToDecimal, 0, 0, false},
};

std::string number_text(double n) {
  char buf[32];
  if (std::floor(n) == n && std::fabs(n) < 1e15)
    std::snprintf(buf, sizeof buf, "%.0f", n);
  else
    std::snprintf(buf, sizeof buf, "%.15g", n);
  return buf;
}

// resolve(): see expression.h.
void resolve_reference(const Value& v, Env& env, Coll& out) {
  if (v.kind != Value::Kind::kJson) return;
  std::string_view ref;
  if (v.json["reference"].get(ref)) return;
  if (!ref.empty() && ref[0] == '#') {
    simdjson::dom::array contained;
    if (env.state.root["contained"].get(contained)) return;
    for (auto c : contained) {
      std::string_view id;
      if (!c["id"].get(id) && id == ref.substr(1)) {
        push_item(c, known().resource, "contained", out);
        return;
      }
    }
    return;
  }
  if (size_t h = ref.find("/_history/"); h != std::string_view::npos) ref = ref.substr(0, h);
  size_t slash = ref.rfind('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == ref.size()) return;
  std::string_view type = ref.substr(0, slash);
  if (size_t s = type.rfind('/'); s != std::string_view::npos) type = type.substr(s + 1);
  CtxId t = model().type(type);
  if (t < 0 || !model().ctx(t).resource || model().ctx(t).abstract_resource) return;
  if (type.find('.') != std::string_view::npos) return;
  Value stub;
  stub.kind = Value::Kind::kStub;
  stub.ctx = t;
  stub.text = model().ctx(t).name;
  out.push_back(stub);
}

std::string lower_ascii(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

struct FunctionOp final : Op {
  const FnSpec* spec = nullptr;
  OpPtr target;  // the input collection
  std::vector<OpPtr> args;
  CtxId type_arg = kUnknownCtx;     // ofType/is/as
  std::string string_arg;           // extension(url)
  std::optional<std::regex> regex;  // matches('literal')

  bool root_keys(std::vector<std::string>& keys) const override {
    switch (spec->fn) {
      case Fn::kExtension:
        if (target->is_focus()) {
          keys.push_back("extension");
          return true;
        }
        return target->root_keys(keys);
      case Fn::kWhere:
      case Fn::kSelect:
      case Fn::kFirst:
      case Fn::kLast:
      case Fn::kTail:
      case Fn::kSkip:
      case Fn::kTake:
      case Fn::kSingle:
      case Fn::kOfType:
      case Fn::kAs:
      case Fn::kResolve:
      case Fn::kDistinct:
      case Fn::kTrace:
        return !target->is_focus() && target->root_keys(keys);
      default:
        return false;
    }
  }

  std::optional<Prim> single_prim(const Coll& c) const {
    if (c.empty()) return std::nullopt;
    if (c.size() > 1)
      throw EvaluationError(std::string(spec->name) + "(): expected one item, got " +
                            std::to_string(c.size()));
    return prim(c[0]);
  }
  Coll arg(size_t i, const Coll& focus, Env& env) const {
    Coll r;
    args[i]->eval(focus, env, r);
    return r;
  }
  std::optional<std::string_view> string_of(const Coll& c) const {
    auto p = single_prim(c);
    if (!p || p->kind != Prim::Kind::kString) return std::nullopt;
    return p->s;
  }
  int64_t int_arg(size_t i, const Coll& focus, Env& env) const {
    Coll a = arg(i, focus, env);
    auto p = single_prim(a);
    if (!p || p->kind != Prim::Kind::kNumber)
      throw EvaluationError(std::string(spec->name) + "(): expected an integer argument");
    return static_cast<int64_t>(p->n);
  }

  void eval(const Coll& focus, Env& env, Coll& out) const override {
    Coll in;
    target->eval(focus, env, in);
    switch (spec->fn) {
      case Fn::kEmpty:
        out.push_back(make_bool(in.empty()));
        return;
      case Fn::kExists:
        if (args.empty()) {
          out.push_back(make_bool(!in.empty()));
        } else {
          bool any = false;
          for (const auto& v : in)
            if (to_bool(arg(0, Coll{v}, env), "exists()").value_or(false)) {
              any = true;
              break;
            }
          out.push_back(make_bool(any));
        }
        return;
      case Fn::kNot: {
        auto b = to_bool(in, "not()");
        if (b) out.push_back(make_bool(!*b));
        return;
      }
      case Fn::kWhere:
        for (const auto& v : in)
          if (to_bool(arg(0, Coll{v}, env), "where()").value_or(false)) out.push_back(v);
        return;
      case Fn::kSelect:
        for (const auto& v : in) args[0]->eval(Coll{v}, env, out);
        return;
      case Fn::kAll: {
        bool all = true;
        for (const auto& v : in)
          if (!to_bool(arg(0, Coll{v}, env), "all()").value_or(false)) {
            all = false;
            break;
          }
        out.push_back(make_bool(all));
        return;
      }
      case Fn::kFirst:
        if (!in.empty()) out.push_back(in.front());
        return;
      case Fn::kLast:
        if (!in.empty()) out.push_back(in.back());
        return;
      case Fn::kTail:
        if (in.size() > 1) out.insert(out.end(), in.begin() + 1, in.end());
        return;
      case Fn::kSkip: {
        int64_t n = std::max<int64_t>(0, int_arg(0, focus, env));
        if (n < static_cast<int64_t>(in.size())) out.insert(out.end(), in.begin() + n, in.end());
        return;
      }
      case Fn::kTake: {
        int64_t n = std::min<int64_t>(int_arg(0, focus, env), static_cast<int64_t>(in.size()));
        if (n > 0) out.insert(out.end(), in.begin(), in.begin() + n);
        return;
      }
      case Fn::kSingle:
        if (in.size() > 1) throw EvaluationError("single(): more than one item");
        out.insert(out.end(), in.begin(), in.end());
        return;
      case Fn::kCount:
        out.push_back(make_number(static_cast<double>(in.size())));
        return;
      case Fn::kOfType:
        for (const auto& v : in)
          if (model().is_a(v.ctx, type_arg)) out.push_back(v);
        return;
      case Fn::kIs:
        if (in.size() > 1) throw EvaluationError("is(): more than one item");
        if (!in.empty()) out.push_back(make_bool(model().is_a(in[0].ctx, type_arg)));
        return;
      case Fn::kAs:
        for (const auto& v : in)
          if (model().is_a(v.ctx, type_arg)) out.push_back(v);
        return;
      case Fn::kResolve:
        for (const auto& v : in) resolve_reference(v, env, out);
        return;
      case Fn::kExtension: {
        Coll ext;
        for (const auto& v : in) navigate(v, "extension", model().member(v.ctx, "extension"), ext);
        for (const auto& e : ext) {
          std::string_view url;
          if (e.kind == Value::Kind::kJson && !e.json["url"].get(url) && url == string_arg)
            out.push_back(e);
        }
        return;
      }
      case Fn::kHasValue:
        out.push_back(make_bool(in.size() == 1 && prim(in[0]).kind != Prim::Kind::kNone));
        return;
      case Fn::kDistinct:
        for (const auto& v : in) append_unique(out, v);
        return;
      case Fn::kIsDistinct: {
        Coll d;
        for (const auto& v : in) append_unique(d, v);
        out.push_back(make_bool(d.size() == in.size()));
        return;
      }
      case Fn::kUnion: {
        Coll r;
        for (const auto& v : in) append_unique(r, v);
        for (const auto& v : arg(0, focus, env)) append_unique(r, v);
        out.insert(out.end(), r.begin(), r.end());
        return;
      }
      case Fn::kCombine: {
        out.insert(out.end(), in.begin(), in.end());
        args[0]->eval(focus, env, out);
        return;
      }
      case Fn::kIif: {
        auto c = to_bool(arg(0, in, env), "iif()");
        if (c.value_or(false))
          args[1]->eval(in, env, out);
        else if (args.size() > 2)
          args[2]->eval(in, env, out);
        return;
      }
      case Fn::kAllTrue:
      case Fn::kAnyTrue:
      case Fn::kAllFalse:
      case Fn::kAnyFalse: {
        bool want = spec->fn == Fn::kAllTrue || spec->fn == Fn::kAnyTrue;
        bool all = spec->fn == Fn::kAllTrue || spec->fn == Fn::kAllFalse;
        bool result = all;
        for (const auto& v : in) {
          Prim p = prim(v);
          bool match = p.kind == Prim::Kind::kBool && p.b == want;
          if (all && !match) result = false;
          if (!all && match) result = true;
        }
        out.push_back(make_bool(result));
        return;
      }
      case Fn::kStartsWith:
      case Fn::kEndsWith:
      case Fn::kContains:
      case Fn::kIndexOf: {
        auto s = string_of(in);
        auto a = string_of(arg(0, focus, env));
        if (!s || !a) return;
        if (spec->fn == Fn::kStartsWith)
          out.push_back(make_bool(s->substr(0, a->size()) == *a));
        else if (spec->fn == Fn::kEndsWith)
          out.push_back(
              make_bool(s->size() >= a->size() && s->substr(s->size() - a->size()) == *a));
        else if (spec->fn == Fn::kContains)
          out.push_back(make_bool(s->find(*a) != std::string_view::npos));
        else
          out.push_back(make_number(
              s->find(*a) == std::string_view::npos ? -1 : static_cast<double>(s->find(*a))));
        return;
      }
      case Fn::kMatches: {
        auto s = string_of(in);
        if (!s) return;
        if (regex) {
          out.push_back(make_bool(std::regex_search(s->begin(), s->end(), *regex)));
        } else {
          auto a = string_of(arg(0, focus, env));
          if (!a) return;
          std::regex computed;
          try {
            computed.assign(std::string(*a));
          } catch (const std::regex_error& e) {
            throw EvaluationError("matches(): '" + std::string(*a) + "' is not a regular expression (" +
                                  e.what() + ")");
          }
          out.push_back(make_bool(std::regex_search(s->begin(), s->end(), computed)));
        }
        return;
      }
      case Fn::kLower:
      case Fn::kUpper: {
        auto s = string_of(in);
        if (!s) return;
        std::string r(*s);
        for (char& c : r)
          c = static_cast<char>(spec->fn == Fn::kLower
                                    ? std::tolower(static_cast<unsigned char>(c))
                                    : std::toupper(static_cast<unsigned char>(c)));
        out.push_back(make_string(env, std::move(r)));
        return;
      }
      case Fn::kLength: {
        auto s = string_of(in);
        if (s) out.push_back(make_number(static_cast<double>(s->size())));
        return;
      }
      case Fn::kSubstring: {
        auto s = string_of(in);
        if (!s) return;
        int64_t start = int_arg(0, focus, env);
        if (start < 0 || start >= static_cast<int64_t>(s->size())) return;
        size_t len = args.size() > 1
                         ? static_cast<size_t>(std::max<int64_t>(0, int_arg(1, focus, env)))
                         : std::string_view::npos;
        out.push_back(make_string(s->substr(static_cast<size_t>(start), len)));
        return;
      }
      case Fn::kToString: {
        auto p = single_prim(in);
        if (!p) return;
        if (p->kind == Prim::Kind::kString) out.push_back(make_string(p->s));
        if (p->kind == Prim::Kind::kBool) out.push_back(make_string(p->b ? "true" : "false"));
        if (p->kind == Prim::Kind::kNumber) out.push_back(make_string(env, number_text(p->n)));
        return;
      }
      case Fn::kToInteger:
      case Fn::kToDecimal: {
        auto p = single_prim(in);
        if (!p) return;
        if (p->kind == Prim::Kind::kNumber) {
          out.push_back(make_number(spec->fn == Fn::kToInteger ? std::trunc(p->n) : p->n));
        } else if (p->kind == Prim::Kind::kBool) {
          out.push_back(make_number(p->b ? 1 : 0));
        } else if (p->kind == Prim::Kind::kString) {
          std::string s(p->s);
          char* end = nullptr;
          double d = std::strtod(s.c_str(), &end);
          if (end && *end == '\0' && !s.empty()) out.push_back(make_number(d));
        }
        return;
      }
      case Fn::kTrace:
        out.insert(out.end(), in.begin(), in.end());
        return;
    }
  }
};

// ---- operators ----

struct TypeOp final : Op {  // `x is T`, `x as T`
  OpPtr src;
  bool is = true;
  CtxId type = kUnknownCtx;
  bool root_keys(std::vector<std::string>& keys) const override {
    return !is && !src->is_focus() && src->root_keys(keys);
  }
  void eval(const Coll& focus, Env& env, Coll& out) const override {
    Coll in;
    src->eval(focus, env, in);
    if (in.size() > 1)
      throw EvaluationError(std::string(is ? "is" : "as") + ": expected one item, got " +
                            std::to_string(in.size()));
    if (in.empty()) return;
    bool match = model().is_a(in[0].ctx, type);
    if (is)
      out.push_back(make_bool(match));
    else if (match)
      out.push_back(in[0]);
  }
};

enum class Bin {
  kUnion,
  kEq,
  kNe,
  kEquiv,
  kNotEquiv,
  kLt,
  kGt,
  kLe,
  kGe,
  kAnd,
  kOr,
  kXor,
  kImplies,
  kIn,
  kContains,
  kAdd,
  kSub,
  kMul,
  kDiv,
  kIntDiv,
  kMod,
  kConcat,
};

struct BinaryOp final : Op {
  Bin op;
  OpPtr lhs, rhs;

  bool root_keys(std::vector<std::string>& keys) const override {
    return op == Bin::kUnion && lhs->root_keys(keys) && rhs->root_keys(keys);
  }

  static bool equivalent(const Value& a, const Value& b) {
    Prim pa = prim(a), pb = prim(b);
    if (pa.kind == Prim::Kind::kString && pb.kind == Prim::Kind::kString)
      return lower_ascii(pa.s) == lower_ascii(pb.s);
    return item_equal(a, b);
  }
  static std::optional<bool> collections_equal(const Coll& l, const Coll& r, bool equiv) {
    if (!equiv && (l.empty() || r.empty())) return std::nullopt;
    if (l.size() != r.size()) return false;
    for (size_t i = 0; i < l.size(); ++i)
      if (!(equiv ? equivalent(l[i], r[i]) : item_equal(l[i], r[i]))) return false;
    return true;
  }

  void eval(const Coll& focus, Env& env, Coll& out) const override {
    Coll l, r;
    lhs->eval(focus, env, l);
    // Short-circuit logic: the right side is not needed when the left decides.
    if (op == Bin::kAnd || op == Bin::kOr || op == Bin::kImplies) {
      auto a = to_bool(l, "logical operator");
      if (op == Bin::kAnd && a == false) return out.push_back(make_bool(false));
      if (op == Bin::kOr && a == true) return out.push_back(make_bool(true));
      if (op == Bin::kImplies && a == false) return out.push_back(make_bool(true));
      rhs->eval(focus, env, r);
      auto b = to_bool(r, "logical operator");
      if (op == Bin::kAnd) {
        if (b == false) return out.push_back(make_bool(false));
        if (a && b) out.push_back(make_bool(true));
      } else if (op == Bin::kOr) {
        if (b == true) return out.push_back(make_bool(true));
        if (a && b) out.push_back(make_bool(false));
      } else {
        if (b == true) return out.push_back(make_bool(true));
        if (a && b) out.push_back(make_bool(false));
      }
      return;
    }
    rhs->eval(focus, env, r);
    switch (op) {
      case Bin::kUnion: {
        Coll u;
        for (const auto& v : l) append_unique(u, v);
        for (const auto& v : r) append_unique(u, v);
        out.insert(out.end(), u.begin(), u.end());
        return;
      }
      case Bin::kEq:
      case Bin::kNe: {
        auto e = collections_equal(l, r, false);
        if (e) out.push_back(make_bool(op == Bin::kEq ? *e : !*e));
        return;
      }
      case Bin::kEquiv:
      case Bin::kNotEquiv: {
        bool e = *collections_equal(l, r, true);
        out.push_back(make_bool(op == Bin::kEquiv ? e : !e));
        return;
      }
      case Bin::kXor: {
        auto a = to_bool(l, "xor"), b = to_bool(r, "xor");
        if (a && b) out.push_back(make_bool(*a != *b));
        return;
      }
      case Bin::kIn:
      case Bin::kContains: {
        const Coll& item = op == Bin::kIn ? l : r;
        const Coll& coll = op == Bin::kIn ? r : l;
        if (item.empty()) return;
        if (item.size() > 1) throw EvaluationError("in/contains: expected one item");
        bool found = false;
        for (const auto& v : coll) found = found || item_equal(v, item[0]);
        out.push_back(make_bool(found));
        return;
      }
      default:
        break;
    }
    // Arithmetic and ordering on singletons.
    if (l.empty() || r.empty()) {
      if (op == Bin::kConcat) {
        auto s = [&](const Coll& c) { return c.empty() ? std::string_view{} : prim(c[0]).s; };
        out.push_back(make_string(env, std::string(s(l)) + std::string(s(r))));
      }
      return;
    }
    if (l.size() > 1 || r.size() > 1) throw EvaluationError("operator: expected one item per side");
    Prim a = prim(l[0]), b = prim(r[0]);
    if (op == Bin::kConcat || (op == Bin::kAdd && a.kind == Prim::Kind::kString)) {
      out.push_back(make_string(env, std::string(a.s) + std::string(b.s)));
      return;
    }
    if (a.kind != b.kind || a.kind == Prim::Kind::kNone || a.kind == Prim::Kind::kBool)
      throw EvaluationError("operator: incompatible operands");
    if (a.kind == Prim::Kind::kString) {
      int c = a.s.compare(b.s);
      switch (op) {
        case Bin::kLt:
          out.push_back(make_bool(c < 0));
          return;
        case Bin::kGt:
          out.push_back(make_bool(c > 0));
          return;
        case Bin::kLe:
          out.push_back(make_bool(c <= 0));
          return;
        case Bin::kGe:
          out.push_back(make_bool(c >= 0));
          return;
        default:
          throw EvaluationError("operator: not defined on strings");
      }
    }
    double x = a.n, y = b.n;
    switch (op) {
      case Bin::kLt:
        out.push_back(make_bool(x < y));
        return;
      case Bin::kGt:
        out.push_back(make_bool(x > y));
        return;
      case Bin::kLe:
        out.push_back(make_bool(x <= y));
        return;
      case Bin::kGe:
        out.push_back(make_bool(x >= y));
        return;
      case Bin::kAdd:
        out.push_back(make_number(x + y));
        return;
      case Bin::kSub:
        out.push_back(make_number(x - y));
        return;
      case Bin::kMul:
        out.push_back(make_number(x * y));
        return;
      case Bin::kDiv:
        if (y != 0) out.push_back(make_number(x / y));
        return;
      case Bin::kIntDiv:
        if (y != 0) out.push_back(make_number(std::trunc(x / y)));
        return;
      case Bin::kMod:
        if (y != 0) out.push_back(make_number(std::fmod(x, y)));
        return;
      default:
        return;
    }
  }
};

struct NegateOp final : Op {
  OpPtr src;
  void eval(const Coll& focus, Env& env, Coll& out) const override {
    Coll in;
    src->eval(focus, env, in);
    if (in.empty()) return;
    Prim p = prim(in[0]);
    if (in.size() > 1 || p.kind != Prim::Kind::kNumber)
      throw EvaluationError("unary -: expected a number");
    out.push_back(make_number(-p.n));
  }
};

// ---------------------------------------------------------------------------------------------
// The compiler

class Compiler {
 public:
  explicit Compiler(std::string_view text) : text_(text) {}

  OpPtr compile(const Ast& a, CtxId focus) {
    switch (a.kind) {
      case Ast::Kind::kIdentifier: {
        CtxId t = model().type(a.name);
        if (t >= 0 && std::isupper(static_cast<unsigned char>(a.name[0]))) {
          auto op = std::make_unique<TypeFilterOp>();
          op->type = t;
          op->static_ctx = t;
          if (focus >= 0 && model().is_a(focus, t)) op->static_ctx = focus;
          return op;
        }
        return member(nullptr, a.name, focus);
      }
      case Ast::Kind::kMember: {
        OpPtr src = compile(*a.kids[0], focus);
        CtxId owner = src->static_ctx;
        return member(std::move(src), a.name, owner);
      }
      case Ast::Kind::kFunction:
        return function(a, focus);
      case Ast::Kind::kIndex: {
        auto op = std::make_unique<IndexOp>();
        op->src = compile(*a.kids[0], focus);
        op->index = compile(*a.kids[1], focus);
        op->static_ctx = op->src->static_ctx;
        return op;
      }
      case Ast::Kind::kBinary:
        return binary(a, focus);
      case Ast::Kind::kUnary: {
        OpPtr src = compile(*a.kids[0], focus);
        if (a.name == "+") return src;
        auto op = std::make_unique<NegateOp>();
        op->src = std::move(src);
        return op;
      }
      case Ast::Kind::kTypeOp: {
        auto op = std::make_unique<TypeOp>();
        op->src = compile(*a.kids[0], focus);
        op->is = a.name.rfind("is ", 0) == 0;
        op->type = type_named(a.name.substr(3), a);
        op->static_ctx = op->is ? model().type("boolean") : op->type;
        return op;
      }
      case Ast::Kind::kString: {
        auto op = std::make_unique<LiteralOp>();
        op->text = a.name;
        op->value = make_string(op->text);
        op->static_ctx = op->value.ctx;
        return op;
      }
      case Ast::Kind::kNumber: {
        auto op = std::make_unique<LiteralOp>();
        // Not std::stod: it throws std::out_of_range for a literal beyond a double ("1" and 400
        // zeros), which is not a CompileError.
        double number = 0;
        auto [end, ec] = std::from_chars(a.name.data(), a.name.data() + a.name.size(), number);
        if (ec != std::errc() || end != a.name.data() + a.name.size())
          fail(a, "the number " + a.name.substr(0, 40) + (a.name.size() > 40 ? "..." : "") +
                      " is out of the range of a decimal");
        op->value = make_number(number);
        if (a.name.find('.') == std::string::npos) op->value.ctx = model().type("integer");
        return op;
      }
      case Ast::Kind::kBoolean: {
        auto op = std::make_unique<LiteralOp>();
        op->value = make_bool(a.name == "true");
        return op;
      }
      case Ast::Kind::kDateTime: {
        auto op = std::make_unique<LiteralOp>();
        op->text = a.name;
        if (!op->text.empty() && op->text[0] == 'T') op->text.erase(0, 1);  // @T10:00 time
        op->value = make_string(
            op->text, model().type(a.name.find('T') == std::string::npos ? "date" : "dateTime"));
        return op;
      }
      case Ast::Kind::kEmpty:
        return std::make_unique<EmptyOp>();
      case Ast::Kind::kThis: {
        auto op = std::make_unique<ThisOp>();
        op->static_ctx = focus;
        return op;
      }
      case Ast::Kind::kIndexVar:
        fail(a, "$index is not supported");
      case Ast::Kind::kExternal: {
        if (a.name == "resource" || a.name == "rootResource" || a.name == "context") {
          auto op = std::make_unique<RootOp>();
          op->static_ctx = root_;
          return op;
        }
        static const std::pair<const char*, const char*> kConstants[] = {
            {"ucum", "http://unitsofmeasure.org"},
            {"sct", "http://snomed.info/sct"},
            {"loinc", "http://loinc.org"}};
        for (const auto& [name, value] : kConstants) {
          if (a.name == name) {
            auto op = std::make_unique<LiteralOp>();
            op->text = value;
            op->value = make_string(op->text);
            return op;
          }
        }
        fail(a, "unknown constant %" + a.name);
      }
    }
    fail(a, "unsupported construct");
  }

  CtxId root_ = kUnknownCtx;

 private:
  [[noreturn]] void fail(const Ast& a, const std::string& what) const {
    throw CompileError("FHIRPath '" + std::string(text_) + "': " + what + " (at '" +
                       std::string(text_.substr(a.begin, a.end - a.begin)) + "')");
  }

  CtxId type_named(std::string_view name, const Ast& at) const {
    if (name.rfind("System.", 0) == 0) {
      // System types map onto the FHIR primitives they hold.
      static const std::pair<const char*, const char*> kSystem[] = {
          {"System.String", "string"},   {"System.Boolean", "boolean"},
          {"System.Integer", "integer"}, {"System.Decimal", "decimal"},
          {"System.Date", "date"},       {"System.DateTime", "dateTime"},
          {"System.Time", "time"},       {"System.Quantity", "Quantity"}};
      for (const auto& [sys, fhir] : kSystem)
        if (name == sys) return model().type(fhir);
    }
    CtxId t = model().type(name);
    if (t < 0) fail(at, "unknown type '" + std::string(name) + "'");
    return t;
  }

  OpPtr member(OpPtr src, const std::string& name, CtxId owner) {
    auto op = std::make_unique<MemberOp>();
    op->src = std::move(src);
    op->name = name;
    op->static_owner = owner;
    op->static_member = model().member(owner, name);
    if (op->static_member && !op->static_member->choice)
      op->static_ctx = op->static_member->variants[0].ctx;
    return op;
  }

  OpPtr function(const Ast& a, CtxId focus) {
    const FnSpec* spec = nullptr;
    for (const auto& f : kFunctions)
      if (a.name == f.name) spec = &f;
    if (!spec) fail(a, "unsupported function " + a.name + "()");
    int nargs = static_cast<int>(a.kids.size()) - 1;
    if (nargs < spec->min_args || nargs > spec->max_args)
      fail(a, a.name + "() takes " + std::to_string(spec->min_args) + ".." +
                  std::to_string(spec->max_args) + " arguments");
    auto op = std::make_unique<FunctionOp>();
    op->spec = spec;
    if (a.kids[0]) {
      op->target = compile(*a.kids[0], focus);
    } else {
      auto self = std::make_unique<ThisOp>();
      self->static_ctx = focus;
      op->target = std::move(self);
    }
    CtxId in = op->target->static_ctx;
    if (spec->fn == Fn::kOfType || spec->fn == Fn::kIs || spec->fn == Fn::kAs) {
      const Ast& t = *a.kids[1];
      if (t.kind != Ast::Kind::kIdentifier && t.kind != Ast::Kind::kMember)
        fail(a, a.name + "() expects a type name");
      op->type_arg = type_named(text_.substr(t.begin, t.end - t.begin), t);
      op->static_ctx = spec->fn == Fn::kIs ? model().type("boolean") : op->type_arg;
      return op;
    }
    if (spec->fn == Fn::kExtension) {
      if (a.kids[1]->kind != Ast::Kind::kString) fail(a, "extension() expects a string literal");
      op->string_arg = a.kids[1]->name;
      op->static_ctx = model().type("Extension");
      return op;
    }
    for (size_t i = 1; i < a.kids.size(); ++i)
      op->args.push_back(compile(*a.kids[i], spec->lambda ? in : focus));
    if (spec->fn == Fn::kMatches && a.kids[1]->kind == Ast::Kind::kString) {
      try {
        op->regex.emplace(a.kids[1]->name);
      } catch (const std::regex_error& e) {
        fail(a, std::string("bad regular expression: ") + e.what());
      }
    }
    switch (spec->fn) {
      case Fn::kWhere:
      case Fn::kFirst:
      case Fn::kLast:
      case Fn::kTail:
      case Fn::kSkip:
      case Fn::kTake:
      case Fn::kSingle:
      case Fn::kDistinct:
      case Fn::kTrace:
        op->static_ctx = in;
        break;
      case Fn::kSelect:
        op->static_ctx = op->args[0]->static_ctx;
        break;
      default:
        break;
    }
    return op;
  }

  OpPtr binary(const Ast& a, CtxId focus) {
    static const std::pair<const char*, Bin> kOps[] = {{"|", Bin::kUnion},
                                                       {"=", Bin::kEq},
                                                       {"!=", Bin::kNe},
                                                       {"~", Bin::kEquiv},
                                                       {"!~", Bin::kNotEquiv},
                                                       {"<", Bin::kLt},
                                                       {">", Bin::kGt},
                                                       {"<=", Bin::kLe},
                                                       {">=", Bin::kGe},
                                                       {"and", Bin::kAnd},
                                                       {"or", Bin::kOr},
                                                       {"xor", Bin::kXor},
                                                       {"implies", Bin::kImplies},
                                                       {"in", Bin::kIn},
                                                       {"contains", Bin::kContains},
                                                       {"+", Bin::kAdd},
                                                       {"-", Bin::kSub},
                                                       {"*", Bin::kMul},
                                                       {"/", Bin::kDiv},
                                                       {"div", Bin::kIntDiv},
                                                       {"mod", Bin::kMod},
                                                       {"&", Bin::kConcat}};
    auto op = std::make_unique<BinaryOp>();
    bool found = false;
    for (const auto& [name, bin] : kOps)
      if (a.name == name) {
        op->op = bin;
        found = true;
      }
    if (!found) fail(a, "unsupported operator " + a.name);
    op->lhs = compile(*a.kids[0], focus);
    op->rhs = compile(*a.kids[1], focus);
    if (op->op == Bin::kUnion && op->lhs->static_ctx == op->rhs->static_ctx)
      op->static_ctx = op->lhs->static_ctx;
    return op;
  }

  std::string_view text_;
};

void collect_union(const Ast& a, std::string_view text, std::vector<std::string>& out) {
  if (a.kind == Ast::Kind::kBinary && a.name == "|") {
    collect_union(*a.kids[0], text, out);
    collect_union(*a.kids[1], text, out);
    return;
  }
  out.emplace_back(text.substr(a.begin, a.end - a.begin));
}

}  // namespace

Expression::~Expression() = default;

std::shared_ptr<const Expression> Expression::compile(std::string_view text,
                                                      std::string_view root_type) {
  auto ast = parse(text);
  std::shared_ptr<Expression> e(new Expression());
  e->text_ = std::string(text);
  e->root_ctx_ = model().type(root_type);
  if (e->root_ctx_ < 0)
    throw CompileError("FHIRPath '" + std::string(text) + "': unknown resource type '" +
                       std::string(root_type) + "'");
  Compiler c(text);
  c.root_ = e->root_ctx_;
  e->root_ = c.compile(*ast, e->root_ctx_);
  std::vector<std::string> keys;
  if (e->root_->root_keys(keys)) e->root_keys_ = std::move(keys);
  return e;
}

void Expression::evaluate(simdjson::dom::element resource, EvalState& state, Coll& out) const {
  state.root = resource;
  Value root;
  root.json = resource;
  root.ctx = root_ctx_;
  std::string_view rt;
  if (!resource["resourceType"].get(rt) && rt != model().ctx(root_ctx_).name) {
    CtxId real = model().type(rt);
    if (real >= 0) root.ctx = real;
  }
  Env env{state, root};
  Coll focus{root};
  root_->eval(focus, env, out);
}

std::vector<std::string> union_parts(std::string_view text) {
  auto ast = parse(text);
  std::vector<std::string> out;
  collect_union(*ast, text, out);
  return out;
}

std::string root_type_name(std::string_view text) {
  auto ast = parse(text);
  const Ast* a = ast.get();
  while (true) {
    if (a->kind == Ast::Kind::kIdentifier) return a->name;
    if ((a->kind == Ast::Kind::kMember || a->kind == Ast::Kind::kIndex ||
         a->kind == Ast::Kind::kTypeOp || a->kind == Ast::Kind::kBinary) &&
        !a->kids.empty() && a->kids[0]) {
      a = a->kids[0].get();
    } else if (a->kind == Ast::Kind::kFunction && a->kids[0]) {
      a = a->kids[0].get();
    } else {
      return {};
    }
  }
}

std::string to_json(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kJson:
      return simdjson::minify(v.json);
    case Value::Kind::kBool:
      return v.boolean ? "true" : "false";
    case Value::Kind::kNumber:
      return number_text(v.number);
    case Value::Kind::kStub:
      return "{\"resourceType\":\"" + std::string(v.text) + "\"}";
    case Value::Kind::kString: {
      std::string out = "\"";
      for (char c : v.text) {
        if (c == '"' || c == '\\') {
          out += '\\';
          out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
      }
      return out + "\"";
    }
  }
  return "null";
}

}  // namespace fhirshift::fhirpath
