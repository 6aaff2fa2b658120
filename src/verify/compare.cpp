#include "verify/compare.h"

#include <algorithm>
#include <cstring>

#include "migrate/transform.h"
#include "mongo/bson.h"
#include "verify/findings.h"

namespace fhirshift::verify {
namespace {

std::string quote(std::string_view s) {
  std::string out = "\"";
  if (s.size() > 80) {
    out.append(s.substr(0, 80));
    out += "...";
  } else {
    out.append(s);
  }
  return out + "\"";
}

std::string short_json(const bson_t* doc) {
  std::string s = mongo::to_json(doc);
  return s.size() > 200 ? s.substr(0, 200) + "..." : s;
}

void compare_fields(const schema::Entry& s, const schema::Entry& t, Comparison& out) {
  auto field = [&](const char* name, const std::string& a, const std::string& b) {
    if (a != b)
      out.problems.push_back(std::string("field '") + name + "': source " + quote(a) + ", target " +
                             quote(b));
  };
  field("im", s.im, t.im);
  field("type", s.type, t.type);
  field("res_id", s.res_id, t.res_id);
  field("v", s.v, t.v);
  if (s.lu_ms != t.lu_ms)
    out.problems.push_back("field 'lu': source " + format_iso8601(s.lu_ms) + ", target " + format_iso8601(t.lu_ms));
  field("change", std::string(1, schema::change_code(s.change)),
        std::string(1, schema::change_code(t.change)));
  if (s.cnt != t.cnt)
    out.problems.push_back(std::string("field 'cnt': source ") + (s.cnt ? "true" : "false") +
                           ", target " + (t.cnt ? "true" : "false"));
  if (s.container.has_value() != t.container.has_value() ||
      (s.container && !bson_oid_equal(&*s.container, &*t.container)))
    out.problems.push_back("field 'container': source " +
                           (s.container ? mongo::oid_to_string(*s.container) : "absent") +
                           ", target " +
                           (t.container ? mongo::oid_to_string(*t.container) : "absent"));
  if (s.json.has_value() != t.json.has_value()) {
    out.problems.push_back(std::string("field 'json': ") +
                           (s.json ? "absent on the target" : "present on the target only"));
  } else if (s.json && *s.json != *t.json) {
    const std::string& a = *s.json;
    const std::string& b = *t.json;
    size_t at = std::mismatch(a.begin(), a.begin() + std::min(a.size(), b.size()), b.begin()).first -
                a.begin();
    out.problems.push_back("field 'json': body differs from byte " + std::to_string(at) +
                           " (source " + std::to_string(a.size()) + " bytes, target " +
                           std::to_string(b.size()) + " bytes)");
  }
  if (s.cnt && t.cnt && s.cur != t.cur) out.contained_cur_differs = true;
}

// The first search parameter whose values differ between two `idx` documents.
std::string first_idx_difference(const bson_t* stored, const bson_t* recomputed) {
  bson_iter_t a, b;
  bson_iter_init(&a, stored);
  bson_iter_init(&b, recomputed);
  while (true) {
    bool more_a = bson_iter_next(&a);
    bool more_b = bson_iter_next(&b);
    if (!more_a && !more_b) return "field 'idx': same values, different encoding";
    if (!more_a) return std::string("field 'idx': parameter '") + bson_iter_key(&b) + "' missing";
    if (!more_b)
      return std::string("field 'idx': parameter '") + bson_iter_key(&a) +
             "' present but the body yields nothing for it";
    if (std::strcmp(bson_iter_key(&a), bson_iter_key(&b)) != 0)
      return std::string("field 'idx': parameter '") +
             (std::strcmp(bson_iter_key(&a), bson_iter_key(&b)) < 0 ? bson_iter_key(&a)
                                                                      : bson_iter_key(&b)) +
             "' differs (present on one side only)";
    bson_t wa, wb;
    bson_init(&wa);
    bson_init(&wb);
    bson_append_iter(&wa, "v", 1, &a);
    bson_append_iter(&wb, "v", 1, &b);
    bool same = wa.len == wb.len && std::memcmp(bson_get_data(&wa), bson_get_data(&wb), wa.len) == 0;
    std::string message;
    if (!same)
      message = std::string("field 'idx': parameter '") + bson_iter_key(&a) + "' is " +
                short_json(&wa) + ", recomputed " + short_json(&wb);
    bson_destroy(&wa);
    bson_destroy(&wb);
    if (!same) return message;
  }
}

}  // namespace

bool is_current_schema_field(std::string_view key) {
  static constexpr std::string_view kFields[] = {"_id", "im",  "type", "res_id", "v",   "lu",
                                                 "cur", "change", "cnt", "container", "json", "idx"};
  return std::find(std::begin(kFields), std::end(kFields), key) != std::end(kFields);
}

std::string describe(const schema::Entry& e) {
  return e.im + " " + e.type + "/" + e.res_id + " v" + e.v + (e.cnt ? " (contained)" : "");
}

std::optional<int64_t> lu_of(const bson_t* doc) { return mongo::View(doc).date("lu"); }

std::string id_of(const bson_t* doc) {
  bson_iter_t it;
  if (!bson_iter_init_find(&it, doc, "_id")) return "<no _id>";
  if (BSON_ITER_HOLDS_OID(&it)) return mongo::oid_to_string(*bson_iter_oid(&it));
  bson_t wrapper;
  bson_init(&wrapper);
  bson_append_iter(&wrapper, "_id", 3, &it);
  std::string s = mongo::to_json(&wrapper);
  bson_destroy(&wrapper);
  return s;
}

std::optional<std::string> EntryComparator::check_idx(const bson_t* target_doc,
                                                      const schema::Entry& t) const {
  // Contained entries too: a current one is indexed with its own type's parameters.
  const bool expected = t.cur && !t.is_tombstone() && t.json.has_value();
  bson_iter_t it;
  const bool present = bson_iter_init_find(&it, target_doc, "idx");
  const char* kind = t.cnt ? "a contained entry" : "an entry";
  if (!expected) {
    if (!present) return std::nullopt;
    return std::string("field 'idx' present on ") +
           (t.is_tombstone() ? "a tombstone"
                             : std::string(kind) + " that is not the current version");
  }
  if (!present)
    return std::string("field 'idx' missing on the current version") +
           (t.cnt ? " (a contained entry)" : "");
  if (!BSON_ITER_HOLDS_DOCUMENT(&it)) return std::string("field 'idx' is not a document");
  uint32_t len = 0;
  const uint8_t* data = nullptr;
  bson_iter_document(&it, &len, &data);
  mongo::Bson recomputed = schema::encode_search_index(indexer_.index(t.type, *t.json));
  if (len == recomputed.size() && std::memcmp(data, recomputed.data(), len) == 0)
    return std::nullopt;
  bson_t stored;
  if (!bson_init_static(&stored, data, len)) return std::string("field 'idx' is not valid BSON");
  return first_idx_difference(&stored, recomputed.get());
}

Comparison EntryComparator::compare(const bson_t* source, const bson_t* target) const {
  Comparison out;
  try {
    out.source = migrate::read_source_entry(source);
  } catch (const migrate::TransformError& e) {
    out.source_invalid = e.reason() + ": " + e.what();
    out.problems.push_back("the source entry cannot be migrated (" + *out.source_invalid +
                           "), yet the target holds a document with its _id");
  }
  try {
    out.target = schema::decode_entry(target);
  } catch (const schema::EntryError& e) {
    out.problems.push_back(std::string("the target entry is invalid: ") + e.what());
  }
  if (!out.target) return out;
  bson_iter_t it;
  if (bson_iter_init(&it, target))
    while (bson_iter_next(&it))
      if (!is_current_schema_field(bson_iter_key(&it)))
        out.problems.push_back(std::string("field '") + bson_iter_key(&it) +
                               "' present on the target (not part of the current schema)");
  if (out.source) compare_fields(*out.source, *out.target, out);
  if (auto idx = check_idx(target, *out.target)) out.problems.push_back(*idx);
  return out;
}

std::optional<std::string> check_version_state(const std::vector<VersionFacts>& versions) {
  if (versions.empty()) return std::nullopt;
  const VersionFacts* newest = &versions.front();
  std::vector<const VersionFacts*> current;
  for (const auto& v : versions) {
    if (v.lu_ms > newest->lu_ms ||
        (v.lu_ms == newest->lu_ms && bson_oid_compare(&v.id, &newest->id) > 0))
      newest = &v;
    if (v.cur) current.push_back(&v);
  }
  const std::string newest_id = mongo::oid_to_string(newest->id);
  if (current.empty())
    return "no current version (cur: true) among " + std::to_string(versions.size()) +
           " versions; the newest is " + newest_id;
  if (current.size() > 1) {
    std::string ids;
    for (const auto* c : current) ids += (ids.empty() ? "" : ", ") + mongo::oid_to_string(c->id);
    return std::to_string(current.size()) + " current versions (" + ids +
           "); only the newest, " + newest_id + ", may be";
  }
  if (!bson_oid_equal(&current.front()->id, &newest->id))
    return "the current version is " + mongo::oid_to_string(current.front()->id) + " but " +
           newest_id + " is newer";
  return std::nullopt;
}

}  // namespace fhirshift::verify
