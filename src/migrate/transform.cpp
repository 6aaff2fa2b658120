#include "migrate/transform.h"

#include <simdjson.h>

#include "mongo/bson.h"

namespace fhirshift::migrate {
namespace {

std::string entry_label(const schema::Entry& e) {
  return "entry " + e.id_string() + " (" + e.type + "/" + e.res_id + " v" + e.v + ")";
}

}  // namespace

void check_body(const schema::Entry& entry, std::string_view json) {
  if (json.size() > kMaxBodyBytes)
    throw TransformError("oversized", entry_label(entry) + ": field 'json' is " +
                                          std::to_string(json.size()) + " bytes, above the limit of " +
                                          std::to_string(kMaxBodyBytes));
  // One parser per thread: parsing allocates its buffers once and reuses them.
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (auto err = parser.parse(json.data(), json.size()).get(doc))
    throw TransformError("invalid-json", entry_label(entry) + ": field 'json' is not valid JSON (" +
                                             std::string(simdjson::error_message(err)) + ")");
  simdjson::dom::object object;
  if (doc.get(object))
    throw TransformError("invalid-json", entry_label(entry) + ": field 'json' is not a JSON object");
  std::string_view resource_type;
  if (object["resourceType"].get(resource_type) || resource_type != entry.type)
    throw TransformError("type-mismatch",
                         entry_label(entry) + ": field 'json': resourceType is '" +
                             std::string(resource_type) + "', expected '" + entry.type + "'");
  std::string_view id;
  if (object["id"].get(id) || id != entry.res_id)
    throw TransformError("id-mismatch", entry_label(entry) + ": field 'json': id is '" +
                                            std::string(id) + "', expected '" + entry.res_id + "'");
}

schema::Entry read_source_entry(const bson_t* doc) {
  schema::Entry entry;
  try {
    entry = schema::decode_entry(doc);
  } catch (const schema::EntryError& e) {
    throw TransformError("bad-field", e.what());
  }
  if (entry.json) check_body(entry, *entry.json);
  return entry;
}

schema::CurrentEntry to_current(const schema::Entry& entry, bool cur, const index::Indexer& indexer,
                                index::IndexStats* stats) {
  schema::CurrentEntry out;
  static_cast<schema::Entry&>(out) = entry;
  out.cur = cur;
  if (cur && !entry.is_tombstone() && entry.json)
    out.idx = indexer.index(entry.type, *entry.json, stats);
  return out;
}

bool is_newer(const schema::Entry& a, const schema::Entry& b) {
  if (a.lu_ms != b.lu_ms) return a.lu_ms > b.lu_ms;
  return bson_oid_compare(&a.id, &b.id) > 0;
}

}  // namespace fhirshift::migrate
