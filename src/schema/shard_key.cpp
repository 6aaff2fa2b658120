#include "schema/shard_key.h"

#include <cstdlib>
#include <string_view>

#include "mongo/client.h"

namespace fhirshift::schema {

ShardKey ShardKey::of(const Entry& e) {
  ShardKey k;
  k.id = e.id;
  k.type = e.type;
  k.im = e.im;
  k.cur = e.cur;
  k.cnt = e.cnt;
  k.change = e.change;
  k.res_id = e.res_id;
  return k;
}

std::optional<ShardKey> ShardKey::read(const bson_t* doc) {
  mongo::View v(doc);
  auto id = v.oid("_id");
  auto type = v.string("type");
  auto im = v.string("im");
  auto cur = v.boolean("cur");
  auto change = v.string("change");
  auto res_id = v.string("res_id");
  if (!id || !type || !im || !cur || !change || change->size() != 1 || !res_id) return std::nullopt;
  ShardKey k;
  k.id = *id;
  k.type = std::string(*type);
  k.im = std::string(*im);
  k.cur = *cur;
  switch ((*change)[0]) {
    case 'c': k.change = Change::kCreated; break;
    case 'u': k.change = Change::kUpdated; break;
    case 'd': k.change = Change::kDeleted; break;
    default: return std::nullopt;
  }
  switch (v.type_of("cnt")) {
    case BSON_TYPE_EOD:
    case BSON_TYPE_NULL: k.cnt = std::nullopt; break;
    case BSON_TYPE_BOOL: k.cnt = *v.boolean("cnt"); break;
    default: return std::nullopt;
  }
  k.res_id = std::string(*res_id);
  return k;
}

void ShardKey::project(mongo::Builder& projection) {
  projection.append("_id", int32_t{1});
  for (const char* f : kFields) projection.append(f, int32_t{1});
}

void ShardKey::append_filter(mongo::Builder& f, KeyFilter shape) const {
  f.append("_id", id);
  if (shape == KeyFilter::kIdOnly) return;
  const char change_text[1] = {change_code(change)};
  f.append("type", type).append("im", im).append("cur", cur);
  if (cnt)
    f.append("cnt", *cnt);
  else
    f.append_null("cnt");
  f.append("change", std::string_view(change_text, 1)).append("res_id", res_id);
}

mongo::Bson ShardKey::filter(KeyFilter shape) const {
  mongo::Builder f;
  append_filter(f, shape);
  return f.extract();
}

KeyFilter key_filter_for(bool ferretdb) {
  const char* forced = std::getenv("FHIRSHIFT_SHARD_KEY_FILTER");
  if (forced && std::string_view(forced) == "full") return KeyFilter::kFullKey;
  return ferretdb ? KeyFilter::kIdOnly : KeyFilter::kFullKey;
}

KeyFilter key_filter_for(mongo::Client& client) { return key_filter_for(mongo::is_ferretdb(client)); }

}  // namespace fhirshift::schema
