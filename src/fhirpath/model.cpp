#include "fhirpath/model.h"

#include <map>
#include <stdexcept>

namespace fhirshift::fhirpath {
namespace detail {
extern const std::string_view kR4ModelText;
}

namespace {

struct Line {
  char kind;
  std::string_view a, b;
};

std::vector<Line> split_lines(std::string_view text) {
  std::vector<Line> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    size_t t1 = line.find('\t');
    size_t t2 = line.find('\t', t1 + 1);
    if (line.size() < 3 || t1 != 1 || t2 == std::string_view::npos)
      throw std::logic_error("corrupt FHIR model line: " + std::string(line));
    out.push_back({line[0], line.substr(2, t2 - 2), line.substr(t2 + 1)});
  }
  return out;
}

std::pair<std::string_view, std::string_view> split_last(std::string_view path) {
  size_t dot = path.rfind('.');
  if (dot == std::string_view::npos) return {{}, path};
  return {path.substr(0, dot), path.substr(dot + 1)};
}

}  // namespace

const Model& Model::r4() {
  static const Model kModel;
  return kModel;
}

CtxId Model::intern(std::string_view name) {
  auto it = ids_.find(name);
  if (it != ids_.end()) return it->second;
  CtxId id = static_cast<CtxId>(contexts_.size());
  Context c;
  c.name = std::string(name);
  c.type = id;
  contexts_.push_back(std::move(c));
  members_.emplace_back();
  ids_.emplace(std::string(name), id);
  return id;
}

Model::Model() {
  std::vector<Line> lines = split_lines(detail::kR4ModelText);
  std::map<std::string_view, std::string_view> parents, elsewhere;
  for (const auto& l : lines) {
    if (l.kind == 'T') parents[l.a] = l.b;
    if (l.kind == 'E') elsewhere[l.a] = l.b;
  }
  auto defining = [&](std::string_view path) {
    auto it = elsewhere.find(path);
    return it == elsewhere.end() ? path : it->second;
  };
  // The context of a value of type `type` at `path`: a path context for inline elements.
  auto value_ctx = [&](std::string_view path, std::string_view type) {
    if ((type == "BackboneElement" || type == "Element") &&
        path.find('.') != std::string_view::npos) {
      CtxId c = intern(defining(path));
      CtxId t = intern(type);
      contexts_[static_cast<size_t>(c)].type = t;
      contexts_[static_cast<size_t>(c)].parent = t;
      return c;
    }
    return intern(type);
  };
  for (const auto& l : lines) {
    if (l.kind == 'P') {
      auto [owner, name] = split_last(l.a);
      if (owner.empty()) continue;
      CtxId o = intern(owner);
      CtxId v = value_ctx(l.a, l.b);
      Member m;
      m.variants.push_back({std::string(name), v});
      members_[static_cast<size_t>(o)].insert_or_assign(std::string(name), std::move(m));
    } else if (l.kind == 'C') {
      auto [owner, name] = split_last(l.a);
      CtxId o = intern(owner);
      Member m;
      m.choice = true;
      std::string_view rest = l.b;
      while (!rest.empty()) {
        size_t comma = rest.find(',');
        std::string_view suffix = rest.substr(0, comma);
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
        std::string lower(suffix);
        lower[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(lower[0])));
        std::string type = parents.count(lower) ? lower : std::string(suffix);
        m.variants.push_back({std::string(name) + std::string(suffix), intern(type)});
      }
      members_[static_cast<size_t>(o)].insert_or_assign(std::string(name), std::move(m));
    }
  }
  for (const auto& [type, parent] : parents) {
    CtxId t = intern(type);
    contexts_[static_cast<size_t>(t)].parent = intern(parent);
  }
  CtxId resource = intern("Resource");
  CtxId domain = intern("DomainResource");
  for (size_t i = 0; i < contexts_.size(); ++i) {
    Context& c = contexts_[i];
    char first = c.name.empty() ? 'x' : c.name[0];
    bool path = c.name.find('.') != std::string::npos && c.name.rfind("System.", 0) != 0;
    c.primitive = !path && (std::islower(static_cast<unsigned char>(first)) ||
                            c.name.rfind("System.", 0) == 0);
    c.resource = is_a(static_cast<CtxId>(i), resource);
    c.abstract_resource = static_cast<CtxId>(i) == resource || static_cast<CtxId>(i) == domain;
    if (c.resource && !c.abstract_resource) resource_types_.push_back(c.name);
  }
}

CtxId Model::type(std::string_view name) const {
  if (name.rfind("FHIR.", 0) == 0) name.remove_prefix(5);
  auto it = ids_.find(name);
  return it == ids_.end() ? kUnknownCtx : it->second;
}

const Member* Model::member(CtxId owner, std::string_view name) const {
  if (owner < 0) return nullptr;
  // A resource's members are looked up along its base types (Patient -> DomainResource ->
  // Resource), as are a datatype's (Age -> Quantity -> Element).
  for (CtxId c = owner; c >= 0; c = contexts_[static_cast<size_t>(c)].parent) {
    const Map& m = members_[static_cast<size_t>(c)];
    auto it = m.find(name);
    if (it != m.end()) return &it->second;
  }
  return nullptr;
}

bool Model::is_a(CtxId ctx, CtxId type) const {
  for (CtxId c = ctx; c >= 0; c = contexts_[static_cast<size_t>(c)].parent)
    if (c == type) return true;
  return false;
}

}  // namespace fhirshift::fhirpath
