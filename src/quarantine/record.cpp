#include "quarantine/record.h"

namespace fhirshift::quarantine {

std::string Record::resource() const {
  if (!key) return file ? *file + (line ? " line " + std::to_string(*line) : std::string()) : "?";
  std::string out = key->im.empty() ? std::string() : key->im + " ";
  out += (key->type.empty() ? "?" : key->type) + "/" + (key->res_id.empty() ? "?" : key->res_id);
  if (!key->v.empty()) out += " v" + key->v;
  if (key->cnt) out += " (contained)";
  return out;
}

std::optional<Record> decode_record(const bson_t* doc) {
  mongo::View v(doc);
  auto id = v.oid("_id");
  if (!id) return std::nullopt;
  Record r;
  r.id = *id;
  r.reason = std::string(v.string("reason").value_or(""));
  r.message = std::string(v.string("message").value_or(""));
  r.at_ms = v.date("at");
  if (auto f = v.string("file")) r.file = std::string(*f);
  r.line = v.integer("line");
  if (!r.file) r.source_id = *id;
  if (auto entry = v.document("entry")) {
    if (entry->has("_id") && !entry->oid("_id")) r.source_id.reset();
    EntryKey k;
    k.im = std::string(entry->string("im").value_or(""));
    k.type = std::string(entry->string("type").value_or(""));
    k.res_id = std::string(entry->string("res_id").value_or(""));
    k.v = std::string(entry->string("v").value_or(""));
    k.lu_ms = entry->date("lu");
    k.cnt = entry->boolean("cnt").value_or(false);
    if (!k.im.empty() || !k.type.empty() || !k.res_id.empty()) r.key = std::move(k);
  }
  if (auto a = v.document(kAcceptedField)) {
    r.accepted = Acceptance{std::string(a->string("by").value_or("")), a->date("at").value_or(0),
                            std::string(a->string("reason").value_or(""))};
  }
  if (auto by = v.oid(kSupersededByField))
    r.superseded = Supersession{*by, v.date(kSupersededAtField).value_or(0)};
  r.document = mongo::Bson::copy_of(doc);
  return r;
}

}  // namespace fhirshift::quarantine
