// One collection, its cursors and its bulk writes.
#pragma once

#include <mongoc/mongoc.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mongo/bson.h"

namespace fhirshift::mongo {

// Iterates query results; throws MongoError (naming the collection) when the server or the network
// fails mid-iteration. Documents returned by next() are valid until the following call.
class Cursor {
 public:
  Cursor(mongoc_cursor_t* cursor, std::string ns) : cursor_(cursor), ns_(std::move(ns)) {}
  Cursor(Cursor&& other) noexcept;
  Cursor& operator=(Cursor&&) = delete;
  ~Cursor();

  const bson_t* next();

 private:
  mongoc_cursor_t* cursor_;
  std::string ns_;
};

struct WriteError {
  uint32_t index;  // position of the operation in the bulk
  int32_t code;
  std::string message;
};

struct BulkResult {
  int64_t inserted = 0;
  int64_t matched = 0;
  int64_t modified = 0;
  int64_t upserted = 0;
  int64_t deleted = 0;
  std::vector<WriteError> write_errors;
  std::string write_concern_error;  // empty when none
  bool ok() const { return write_errors.empty() && write_concern_error.empty(); }
};

// Collects writes and sends them in one batch (the driver splits by the server's limits).
// Unordered by default: one failed document does not stop the others, and each failure is reported
// with the index of its operation.
//
// Operations other than inserts go at most kMaxStatementsPerCommand to one command: FerretDB 1.24
// holds one backend connection per statement of an update command until the whole command is
// done, so a command with more statements than its connection pool has free (PostgreSQL backend
// 50, SQLite 100, shared by all clients and their concurrent commands) waits forever; measured,
// 60 updates by `_id` in one command on the PostgreSQL backend and 120 on SQLite. Inserts are
// not limited. On MongoDB the cost is a few more round trips.
class BulkWriter {
 public:
  static constexpr size_t kMaxStatementsPerCommand = 8;

  BulkWriter(mongoc_collection_t* collection, std::string ns, bool ordered);
  BulkWriter(BulkWriter&& other) noexcept;
  BulkWriter& operator=(BulkWriter&&) = delete;
  ~BulkWriter();

  void insert(const bson_t* doc);
  void update_one(const bson_t* filter, const bson_t* update, bool upsert);
  void replace_one(const bson_t* filter, const bson_t* replacement, bool upsert);
  void delete_one(const bson_t* filter);
  size_t size() const { return count_; }

  // Sends the batch. Per-document failures come back in `write_errors` (indexes count all
  // operations of this writer); a failure of the whole batch (network, authentication, server
  // selection) throws MongoError. Ordered: stops after the first part with a failure. A writer
  // runs once.
  BulkResult execute();

 private:
  // One driver bulk operation: a run of operations with at most kMaxStatementsPerCommand
  // statements that are not inserts.
  struct Part {
    mongoc_bulk_operation_t* bulk = nullptr;
    size_t first = 0;       // index of its first operation in the writer
    size_t statements = 0;  // non-insert operations
  };
  mongoc_bulk_operation_t* part_for(bool statement);
  void check_appended(bool ok, const bson_error_t& error, const char* what);
  mongoc_collection_t* collection_;  // an owned copy of the handle
  std::string ns_;
  bool ordered_;
  std::vector<Part> parts_;
  size_t count_ = 0;
  bool executed_ = false;
};

class Collection {
 public:
  Collection(mongoc_collection_t* collection, std::string ns);
  Collection(Collection&& other) noexcept;
  Collection& operator=(Collection&&) = delete;
  ~Collection();

  const std::string& ns() const { return ns_; }
  mongoc_collection_t* get() { return collection_; }

  // `opts` as for the find command: sort, projection, limit, batchSize, hint, ...
  Cursor find(const bson_t* filter, const bson_t* opts = nullptr);
  std::optional<Bson> find_one(const bson_t* filter, const bson_t* opts = nullptr);
  // The exact number of documents matching `filter` (the driver's countDocuments: an aggregation
  // with $match and $group, which on a sharded cluster never counts orphaned documents; never the
  // `count` command).
  int64_t count(const bson_t* filter);
  // An ESTIMATE for progress bars and ETAs only, never for a correctness check: the document count
  // of the collection's statistics (`$collStats: {count: {}}`, summed over the shards of a sharded
  // collection; metadata, so it may include orphans during chunk migrations): no scan on MongoDB
  // nor on FerretDB (which counts the rows of its table). Read with read concern "local", the only
  // one $collStats takes.
  int64_t stats_count();
  void insert_one(const bson_t* doc);
  BulkWriter bulk(bool ordered = false);
  // Runs an aggregation pipeline (a BSON array).
  Cursor aggregate(const bson_t* pipeline, const bson_t* opts = nullptr);
  std::vector<Bson> list_indexes();
  // `indexes`: an array of index specs as for the createIndexes command.
  void create_indexes(const bson_t* indexes);
  void drop();

 private:
  mongoc_collection_t* collection_;
  std::string ns_;
};

}  // namespace fhirshift::mongo
