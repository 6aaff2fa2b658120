#include "schema/entry.h"

#include <type_traits>

namespace fhirshift::schema {
namespace {

using mongo::View;

const char* type_name(bson_type_t t) {
  switch (t) {
    case BSON_TYPE_EOD: return "nothing (field absent)";
    case BSON_TYPE_DOUBLE: return "a double";
    case BSON_TYPE_UTF8: return "a string";
    case BSON_TYPE_DOCUMENT: return "a document";
    case BSON_TYPE_ARRAY: return "an array";
    case BSON_TYPE_BINARY: return "binary data";
    case BSON_TYPE_OID: return "an ObjectId";
    case BSON_TYPE_BOOL: return "a bool";
    case BSON_TYPE_DATE_TIME: return "a Date";
    case BSON_TYPE_NULL: return "null";
    case BSON_TYPE_INT32: return "an int32";
    case BSON_TYPE_TIMESTAMP: return "a timestamp";
    case BSON_TYPE_INT64: return "an int64";
    case BSON_TYPE_DECIMAL128: return "a decimal128";
    default: return "another BSON type";
  }
}

class Reader {
 public:
  Reader(const bson_t* doc, std::string id) : view_(doc), id_(std::move(id)) {}

  [[noreturn]] void fail(const std::string& field, const std::string& expected) const {
    throw EntryError(id_, field, "expected " + expected + ", got " + type_name(view_.type_of(field)));
  }
  std::string string(const std::string& field) const {
    auto s = view_.string(field);
    if (!s) fail(field, "a string");
    return std::string(*s);
  }
  bool boolean(const std::string& field) const {
    auto b = view_.boolean(field);
    if (!b) fail(field, "a bool");
    return *b;
  }
  const View& view() const { return view_; }
  const std::string& id() const { return id_; }

 private:
  View view_;
  std::string id_;
};

std::string describe_id(const bson_t* doc) {
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

void append_value(mongo::ArrayBuilder& arr, const index::IndexValue& value) {
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>) {
          arr.append(v);
        } else if constexpr (std::is_same_v<T, double>) {
          arr.append(v);
        } else if constexpr (std::is_same_v<T, index::Token>) {
          arr.document([&](mongo::Builder& d) {
            v.system ? d.append("s", *v.system) : d.append_null("s");
            if (v.text) {
              d.append("t", *v.text);
            } else {
              v.code ? d.append("c", *v.code) : d.append_null("c");
            }
          });
        } else if constexpr (std::is_same_v<T, index::DateRange>) {
          arr.document([&](mongo::Builder& d) { d.append_date("lo", v.lo_ms).append_date("hi", v.hi_ms); });
        } else if constexpr (std::is_same_v<T, index::Quantity>) {
          arr.document([&](mongo::Builder& d) {
            d.append("v", v.value);
            v.unit ? d.append("u", *v.unit) : d.append_null("u");
            v.system ? d.append("s", *v.system) : d.append_null("s");
          });
        }
      },
      value);
}

}  // namespace

EntryError::EntryError(std::string entry_id, std::string field, const std::string& problem)
    : std::runtime_error("entry " + entry_id + ": field '" + field + "': " + problem),
      entry_id_(std::move(entry_id)),
      field_(std::move(field)) {}

bool is_system_document(const bson_t* doc) { return !bson_has_field(doc, "type"); }

bool is_valid_fhir_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

char change_code(Change c) { return static_cast<char>(c); }

Entry decode_entry(const bson_t* doc) {
  Reader r(doc, describe_id(doc));
  const View& v = r.view();
  Entry e;
  auto id = v.oid("_id");
  if (!id) r.fail("_id", "an ObjectId");
  e.id = *id;

  e.im = r.string("im");
  if (e.im != kInfoModelR4 && e.im != kInfoModelStu3)
    throw EntryError(r.id(), "im", "expected \"Fhir4.0\" or \"Fhir3.0\", got \"" + e.im + "\"");
  e.type = r.string("type");
  if (e.type.empty() || e.type[0] < 'A' || e.type[0] > 'Z')
    throw EntryError(r.id(), "type", "expected a FHIR resource type name, got \"" + e.type + "\"");
  e.res_id = r.string("res_id");
  if (!is_valid_fhir_id(e.res_id))
    throw EntryError(r.id(), "res_id",
                     "expected a FHIR id ([A-Za-z0-9-.]{1,64}), got \"" + e.res_id + "\"");
  e.v = r.string("v");
  if (e.v.empty()) throw EntryError(r.id(), "v", "expected a non-empty version id");
  auto lu = v.date("lu");
  if (!lu) r.fail("lu", "a Date");
  e.lu_ms = *lu;
  e.cur = r.boolean("cur");

  std::string change = r.string("change");
  if (change == "c") e.change = Change::kCreated;
  else if (change == "u") e.change = Change::kUpdated;
  else if (change == "d") e.change = Change::kDeleted;
  else throw EntryError(r.id(), "change", "expected \"c\", \"u\" or \"d\", got \"" + change + "\"");

  // Some legacy writers left `cnt` out on ordinary resources; absent means "not contained".
  e.cnt = v.has("cnt") ? r.boolean("cnt") : false;
  if (e.cnt) {
    auto container = v.oid("container");
    if (!container) r.fail("container", "the container's ObjectId (the entry has cnt: true)");
    e.container = *container;
  } else if (v.has("container")) {
    throw EntryError(r.id(), "container", "present on an entry with cnt: false");
  }

  if (e.change == Change::kDeleted) {
    if (v.has("json")) throw EntryError(r.id(), "json", "present on a tombstone (change: \"d\")");
  } else {
    e.json = r.string("json");
  }
  return e;
}

namespace {
void append_common(mongo::Builder& b, const Entry& e) {
  const char change[1] = {change_code(e.change)};
  b.append("_id", e.id)
      .append("im", e.im)
      .append("type", e.type)
      .append("res_id", e.res_id)
      .append("v", e.v)
      .append_date("lu", e.lu_ms)
      .append("cur", e.cur)
      .append("change", std::string_view(change, 1))
      .append("cnt", e.cnt);
  if (e.container) b.append("container", *e.container);
  if (e.json) b.append("json", *e.json);
}
}  // namespace

mongo::Bson encode_current(const CurrentEntry& entry) {
  mongo::Builder b;
  append_common(b, entry);
  if (entry.idx) append_search_index(b, "idx", *entry.idx);
  return b.extract();
}

mongo::Bson encode_legacy(const Entry& entry) {
  mongo::Builder b;
  append_common(b, entry);
  return b.extract();
}

void append_search_index(mongo::Builder& builder, std::string_view key, const index::SearchIndex& idx) {
  builder.document(key, [&](mongo::Builder& d) {
    for (const auto& entry : idx) {
      d.array(entry.code, [&](mongo::ArrayBuilder& arr) {
        for (const auto& value : entry.values) append_value(arr, value);
      });
    }
  });
}

mongo::Bson encode_search_index(const index::SearchIndex& idx) {
  mongo::Builder b;
  for (const auto& entry : idx) {
    b.array(entry.code, [&](mongo::ArrayBuilder& arr) {
      for (const auto& value : entry.values) append_value(arr, value);
    });
  }
  return b.extract();
}

}  // namespace fhirshift::schema
