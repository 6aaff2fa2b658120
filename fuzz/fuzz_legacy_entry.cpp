// libFuzzer target: the legacy-entry decoder, the migrator's way from a source document to the
// target's: read_source_entry -> to_current (with the search index) -> encode_current.
//
// Input: one source document as BSON bytes, or, when it starts with '{', as MongoDB Extended JSON
// (the seeds are, so that the fuzzer mutates readable entries). A document that is not well-formed
// BSON is skipped: the server never returns one, every other document is a possible source entry.
// The only accepted outcome of a bad entry is a TransformError (the migrator quarantines it).
#include <bson/bson.h>

#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <exception>
#include <memory>

#include "index/indexer.h"
#include "migrate/transform.h"
#include "schema/entry.h"

namespace {
std::shared_ptr<const fhirshift::index::Indexer> indexer;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  try {
    indexer = fhirshift::index::Indexer::load(fhirshift::index::Indexer::default_definitions_path());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_legacy_entry: %s\n", e.what());
    std::abort();
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fhirshift;
  bson_t* doc = nullptr;
  bson_t fixed;
  if (size > 0 && data[0] == '{') {
    bson_error_t error;
    doc = bson_new_from_json(data, static_cast<ssize_t>(size), &error);
    if (!doc) return 0;
  } else {
    if (!bson_init_static(&fixed, data, size)) return 0;
    size_t offset = 0;
    if (!bson_validate(&fixed, BSON_VALIDATE_NONE, &offset)) return 0;
    doc = &fixed;
  }
  if (!schema::is_system_document(doc)) {
    try {
      schema::Entry entry = migrate::read_source_entry(doc);
      index::IndexStats stats;
      schema::CurrentEntry current = migrate::to_current(entry, !entry.is_tombstone(), *indexer, &stats);
      mongo::Bson encoded = schema::encode_current(current);
      // The target document must be one that libmongoc's insert accepts (its default checks, below),
      // or the whole batch would fail instead of this entry being quarantined.
      constexpr auto kInsertChecks = static_cast<bson_validate_flags_t>(
          BSON_VALIDATE_UTF8 | BSON_VALIDATE_UTF8_ALLOW_NULL | BSON_VALIDATE_EMPTY_KEYS |
          BSON_VALIDATE_DOT_KEYS | BSON_VALIDATE_DOLLAR_KEYS);
      size_t offset = 0;
      if (!bson_validate(encoded.get(), kInsertChecks, &offset)) {
        std::fprintf(stderr, "fuzz_legacy_entry: an accepted entry encodes to a document libmongoc refuses to "
                             "insert (byte %zu)\n", offset);
        std::abort();
      }
    } catch (const migrate::TransformError&) {
      // A bad entry: quarantined by the migrator.
    }
  }
  if (doc != &fixed) bson_destroy(doc);
  return 0;
}
