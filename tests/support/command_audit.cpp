#include "command_audit.h"

#include <array>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

namespace fhirshift::testing {
namespace {

using nlohmann::json;

constexpr std::array<const char*, 6> kShardKeyFields = {"type", "im", "cur", "cnt", "change", "res_id"};

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// An equality operand: a plain value, or a BSON value in extended JSON ({"$oid": ...}), but no
// query operator ({"$in": ...}) and no embedded document.
bool is_equality_value(const json& v) {
  if (v.is_primitive()) return true;
  if (!v.is_object() || v.size() != 1) return false;
  static const std::set<std::string> wrappers = {"$oid", "$date", "$numberInt", "$numberLong",
                                                 "$numberDouble", "$numberDecimal", "$binary",
                                                 "$uuid", "$timestamp"};
  return wrappers.count(v.begin().key()) > 0;
}

bool mentions_field(const json& filter, const std::string& field) {
  if (filter.is_array()) {
    for (const auto& e : filter)
      if (mentions_field(e, field)) return true;
    return false;
  }
  if (!filter.is_object()) return false;
  for (auto it = filter.begin(); it != filter.end(); ++it) {
    const std::string& k = it.key();
    if (k == field || k.rfind(field + ".", 0) == 0) return true;
    if (!k.empty() && k[0] == '$' && mentions_field(it.value(), field)) return true;
  }
  return false;
}

// The update `u` sets, unsets or replaces `cur`.
bool touches_cur(const json& u) {
  if (u.is_array()) return u.dump().find("\"cur") != std::string::npos;  // an update pipeline
  if (!u.is_object()) return false;
  bool operators = !u.empty() && u.begin().key().rfind('$', 0) == 0;
  if (!operators) return u.contains("cur");
  for (auto it = u.begin(); it != u.end(); ++it)
    if (it.value().is_object())
      for (auto f = it.value().begin(); f != it.value().end(); ++f)
        if (f.key() == "cur" || f.key().rfind("cur.", 0) == 0) return true;
  return false;
}

// What is wrong with the filter of an update that changes `cur`; empty when nothing.
std::string shard_key_problem(const json& q) {
  if (!q.is_object()) return "its filter is not a document";
  std::string missing;
  if (!q.contains("_id") || !is_equality_value(q["_id"])) missing += " _id";
  for (const char* f : kShardKeyFields)
    if (!q.contains(f) || !is_equality_value(q[f])) missing += std::string(" ") + f;
  if (missing.empty()) return "";
  return "its filter lacks an equality on" + missing + ": " + q.dump();
}

bool is_write(const std::string& name) {
  return name == "insert" || name == "update" || name == "delete" || name == "findAndModify";
}

bool is_read(const std::string& name) { return name == "find" || name == "aggregate" || name == "distinct"; }

bool is_collstats(const json& doc) {
  return doc.contains("pipeline") && doc["pipeline"].is_array() && !doc["pipeline"].empty() &&
         doc["pipeline"][0].is_object() && doc["pipeline"][0].contains("$collStats");
}

std::string w_text(const json& w) {
  if (w.is_string()) return w.get<std::string>();
  if (w.is_number_integer()) return std::to_string(w.get<int64_t>());
  if (w.is_object() && w.contains("$numberInt")) return w["$numberInt"].get<std::string>();
  return w.dump();
}

// The update statements of an `update` command, or the one of a `findAndModify`.
std::vector<json> statements(const std::string& name, const json& doc) {
  std::vector<json> out;
  if (name == "update" && doc.contains("updates") && doc["updates"].is_array()) {
    for (const auto& s : doc["updates"]) out.push_back(s);
  } else if (name == "findAndModify" && doc.contains("update")) {
    out.push_back(json{{"q", doc.value("query", json::object())}, {"u", doc["update"]}, {"multi", false}});
  }
  return out;
}

}  // namespace

CommandAudit CommandAudit::from_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read the command log " + path.string());
  CommandAudit audit;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) audit.add_line(line);
  return audit;
}

void CommandAudit::add_line(const std::string& line) {
  ++lines_;
  json j = json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("event")) {
    format_errors_.push_back({lines_, "log-format", "not a JSON line of the command log: " + line.substr(0, 200)});
    return;
  }
  if (j["event"] == "pool")
    pools_.push_back({lines_, line});
  else
    commands_.push_back({lines_, line});
}

std::vector<AuditViolation> CommandAudit::check(const AuditExpectations& expect) const {
  std::vector<AuditViolation> out = format_errors_;
  for (const auto& [number, text] : pools_) {
    json p = json::parse(text);
    if (p.value("retryWrites", true) == false)
      out.push_back({number, "retryable-writes",
                     "pool " + p.value("pool", std::string()) + " has retryWrites=false: `cur` flips on a "
                                                                 "sharded cluster must be retryable writes"});
  }
  for (const auto& [number, text] : commands_) {
    json c = json::parse(text);
    const std::string name = c.value("command", std::string());
    const std::string pool = c.value("pool", std::string());
    const json doc = c.value("doc", json::object());
    const std::string where = " (" + pool + ", " + c.value("db", std::string()) + "." + c.value("collection", std::string()) + ")";
    if (name == "count")
      out.push_back({number, "no-count",
                     "the `count` command counts orphaned documents on a sharded cluster: use "
                     "countDocuments (an aggregation)" + where});
    for (const json& s : statements(name, doc)) {
      const json q = s.value("q", json::object());
      const bool multi = s.value("multi", false);
      if (touches_cur(s.value("u", json::object()))) {
        if (multi)
          out.push_back({number, "shard-key-update", "a multi-document update changes `cur`" + where + ": " + s.dump()});
        if (std::string problem = shard_key_problem(q); !problem.empty())
          out.push_back({number, "shard-key-update", "an update that changes `cur`: " + problem + where});
      }
      if (multi)
        for (const char* f : kShardKeyFields)
          if (mentions_field(q, f)) {
            out.push_back({number, "multi-update",
                           std::string("a multi-document update filters on the shard-key field ") + f + where +
                               ": " + q.dump()});
            break;
          }
    }
    if (is_write(name)) {
      const json wc = doc.value("writeConcern", json::object());
      std::string w = wc.contains("w") ? w_text(wc["w"]) : "(none)";
      bool j = wc.value("j", false);
      if (w != expect.write_concern_w || j != expect.journal)
        out.push_back({number, "write-concern",
                       name + " carries writeConcern " + wc.dump() + ", expected {w: " + expect.write_concern_w +
                           ", j: " + (expect.journal ? "true" : "false") + "}" + where});
    }
    if (is_read(name) && ends_with(pool, "-source")) {
      const json rc = doc.value("readConcern", json::object());
      std::string level = rc.value("level", std::string("(none)"));
      std::string wanted = name == "aggregate" && is_collstats(doc) ? "local" : expect.read_concern;
      if (level != wanted)
        out.push_back({number, "read-concern",
                       "a source " + name + " reads with level " + level + ", expected " + wanted + where});
    }
  }
  return out;
}

size_t CommandAudit::count(const std::string& command_name) const {
  size_t n = 0;
  for (const auto& l : commands_)
    if (json::parse(l.text).value("command", std::string()) == command_name) ++n;
  return n;
}

size_t CommandAudit::cur_updates() const {
  size_t n = 0;
  for (const auto& l : commands_) {
    json c = json::parse(l.text);
    for (const json& s : statements(c.value("command", std::string()), c.value("doc", json::object())))
      if (touches_cur(s.value("u", json::object()))) ++n;
  }
  return n;
}

size_t CommandAudit::commands_of(const std::string& pool_prefix) const {
  size_t n = 0;
  for (const auto& l : commands_)
    if (json::parse(l.text).value("pool", std::string()).rfind(pool_prefix, 0) == 0) ++n;
  return n;
}

std::string describe(const std::vector<AuditViolation>& violations, size_t at_most) {
  std::string out;
  for (size_t i = 0; i < violations.size() && i < at_most; ++i)
    out += violations[i].rule + " (line " + std::to_string(violations[i].line) + "): " + violations[i].message + "\n";
  if (violations.size() > at_most) out += "... and " + std::to_string(violations.size() - at_most) + " more\n";
  return out;
}

}  // namespace fhirshift::testing
