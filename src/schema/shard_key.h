// The shard key of an entry as an update filter. On a sharded cluster the key is
// {type, im, cur, cnt, change, res_id: "hashed"} (docs/schema.md), and `cur` is in it: an update that
// changes `cur` moves the entry to another chunk, which MongoDB allows only for a single-document
// retryable write whose filter names the entry's whole current shard key (older versions demand it;
// newer ones route it exactly). Every update that changes `cur` builds its filter here.
#pragma once

#include <bson/bson.h>

#include <array>
#include <optional>
#include <string>

#include "mongo/bson.h"
#include "schema/entry.h"

namespace fhirshift::mongo {
class Client;
}

namespace fhirshift::schema {

// What a filter for a `cur`-changing update holds.
enum class KeyFilter {
  kFullKey,  // {_id, type, im, cur, cnt, change, res_id}: what a sharded cluster needs
  kIdOnly,   // {_id}: FerretDB, which cannot shard and serves from its index only a filter of `_id`
             // alone (any other field makes it decode the whole collection for every update)
};

struct ShardKey {
  // The shard-key fields, in the filter's order.
  static constexpr std::array<const char*, 6> kFields = {"type", "im", "cur", "cnt", "change", "res_id"};

  bson_oid_t id{};
  std::string type;
  std::string im;
  bool cur = false;
  // nullopt: the document has no `cnt` (some legacy writers left it out); matched as null, which is
  // how a sharded cluster files a document that lacks a shard-key field.
  std::optional<bool> cnt = false;
  Change change = Change::kCreated;
  std::string res_id;

  // The key of an entry as fhirshift writes it (every field present).
  static ShardKey of(const Entry& e);
  // The key of a stored document that holds at least `_id` and the key fields (see project());
  // nullopt when one is missing or of another type (not an entry).
  static std::optional<ShardKey> read(const bson_t* doc);
  // Appends `field: 1` for `_id` and each key field to a projection.
  static void project(mongo::Builder& projection);

  // The filter of a single-document update of this entry: the entry as it is now (so `cur` is its
  // value before the update; an entry already changed by another writer is not matched).
  mongo::Bson filter(KeyFilter shape) const;
  // `filter(shape)` appended to a filter being built.
  void append_filter(mongo::Builder& filter, KeyFilter shape) const;
  std::string id_string() const { return mongo::oid_to_string(id); }
};

// kIdOnly on FerretDB, else kFullKey. The environment variable FHIRSHIFT_SHARD_KEY_FILTER=full asks
// for the full key everywhere, FerretDB too (the command audit test runs so; on a large FerretDB
// store every flip then decodes the whole collection).
KeyFilter key_filter_for(bool ferretdb);
// The same for the deployment `client` is connected to (one buildInfo command).
KeyFilter key_filter_for(mongo::Client& client);

}  // namespace fhirshift::schema
