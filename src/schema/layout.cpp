#include "schema/layout.h"

namespace fhirshift::schema {
namespace {

IndexSpec make(const std::string& name, mongo::Builder&& keys, bool unique = false) {
  return IndexSpec{name, keys.extract(), unique};
}

mongo::Builder ascending(std::initializer_list<const char*> fields) {
  mongo::Builder b;
  for (const char* f : fields) b.append(f, int32_t{1});
  return b;
}

}  // namespace

std::vector<IndexSpec> current_schema_indexes(bool for_sharded_cluster) {
  std::vector<IndexSpec> specs;
  specs.push_back(make("im_type_res_id_v_container", ascending({"im", "type", "res_id", "v", "container"}),
                       !for_sharded_cluster));
  specs.push_back(make("im_type_res_id_cur", ascending({"im", "type", "res_id", "cur"})));
  specs.push_back(make("type_cur_lu", ascending({"type", "cur", "lu"})));
  for (const char* param : {"identifier", "subject", "patient", "code", "name", "date"}) {
    std::string field = std::string("idx.") + param;
    specs.push_back(make(field, ascending({field.c_str()})));
  }
  return specs;
}

mongo::Bson shard_key() {
  mongo::Builder b = ascending({"type", "im", "cur", "cnt", "change"});
  b.append("res_id", "hashed");
  return b.extract();
}

mongo::Bson current_system_document(int64_t provisioned_at_ms, const mongo::Bson& migrated_from) {
  mongo::Builder b;
  b.append("_id", kSystemDocumentId)
      .append("schemaVersion", int32_t{kCurrentSchemaVersion})
      .append_date("provisionedAt", provisioned_at_ms)
      .append_document("migratedFrom", migrated_from.get());
  return b.extract();
}

mongo::Bson legacy_system_document() {
  mongo::Builder b;
  b.append("_id", kSystemDocumentId).append("schemaVersion", int32_t{kLegacySchemaVersion});
  return b.extract();
}

std::string quarantine_collection(const std::string& collection) { return collection + "_quarantine"; }

}  // namespace fhirshift::schema
