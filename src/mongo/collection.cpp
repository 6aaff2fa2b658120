#include "mongo/collection.h"

#include <stdexcept>
#include <utility>

#include "mongo/error.h"

namespace fhirshift::mongo {

Cursor::Cursor(Cursor&& other) noexcept
    : cursor_(std::exchange(other.cursor_, nullptr)), ns_(std::move(other.ns_)) {}

Cursor::~Cursor() {
  if (cursor_) mongoc_cursor_destroy(cursor_);
}

const bson_t* Cursor::next() {
  const bson_t* doc = nullptr;
  if (mongoc_cursor_next(cursor_, &doc)) return doc;
  bson_error_t error;
  if (mongoc_cursor_error(cursor_, &error)) throw MongoError("reading " + ns_, error);
  return nullptr;
}

// Its own copy of the collection handle: a writer may outlive the Collection it came from
// (`client.collection(db, name).bulk()`), and it opens driver bulk operations as it fills.
BulkWriter::BulkWriter(mongoc_collection_t* collection, std::string ns, bool ordered)
    : collection_(mongoc_collection_copy(collection)), ns_(std::move(ns)), ordered_(ordered) {}

BulkWriter::BulkWriter(BulkWriter&& other) noexcept
    : collection_(std::exchange(other.collection_, nullptr)),
      ns_(std::move(other.ns_)),
      ordered_(other.ordered_),
      parts_(std::exchange(other.parts_, {})),
      count_(other.count_),
      executed_(other.executed_) {}

BulkWriter::~BulkWriter() {
  for (Part& p : parts_) mongoc_bulk_operation_destroy(p.bulk);
  if (collection_) mongoc_collection_destroy(collection_);
}

mongoc_bulk_operation_t* BulkWriter::part_for(bool statement) {
  if (parts_.empty() || (statement && parts_.back().statements >= kMaxStatementsPerCommand)) {
    bson_t opts;
    bson_init(&opts);
    BSON_APPEND_BOOL(&opts, "ordered", ordered_);
    parts_.push_back({mongoc_collection_create_bulk_operation_with_opts(collection_, &opts), count_, 0});
    bson_destroy(&opts);
  }
  if (statement) parts_.back().statements++;
  return parts_.back().bulk;
}

void BulkWriter::check_appended(bool ok, const bson_error_t& error, const char* what) {
  if (!ok) throw MongoError(std::string("adding ") + what + " to a bulk write on " + ns_, error);
  ++count_;
}

void BulkWriter::insert(const bson_t* doc) {
  bson_error_t error;
  check_appended(mongoc_bulk_operation_insert_with_opts(part_for(false), doc, nullptr, &error), error,
                 "an insert");
}

void BulkWriter::update_one(const bson_t* filter, const bson_t* update, bool upsert) {
  bson_t opts;
  bson_init(&opts);
  BSON_APPEND_BOOL(&opts, "upsert", upsert);
  bson_error_t error;
  bool ok = mongoc_bulk_operation_update_one_with_opts(part_for(true), filter, update, &opts, &error);
  bson_destroy(&opts);
  check_appended(ok, error, "an update");
}

void BulkWriter::replace_one(const bson_t* filter, const bson_t* replacement, bool upsert) {
  bson_t opts;
  bson_init(&opts);
  BSON_APPEND_BOOL(&opts, "upsert", upsert);
  bson_error_t error;
  bool ok = mongoc_bulk_operation_replace_one_with_opts(part_for(true), filter, replacement, &opts, &error);
  bson_destroy(&opts);
  check_appended(ok, error, "a replacement");
}

void BulkWriter::delete_one(const bson_t* filter) {
  bson_error_t error;
  check_appended(mongoc_bulk_operation_remove_one_with_opts(part_for(true), filter, nullptr, &error), error,
                 "a delete");
}

BulkResult BulkWriter::execute() {
  if (executed_) throw std::logic_error("BulkWriter::execute called twice on " + ns_);
  executed_ = true;
  BulkResult result;
  for (Part& part : parts_) {
    bson_t reply;
    bson_error_t error;
    uint32_t server_id = mongoc_bulk_operation_execute(part.bulk, &reply, &error);
    View v(&reply);
    result.inserted += v.integer("nInserted").value_or(0);
    result.matched += v.integer("nMatched").value_or(0);
    result.modified += v.integer("nModified").value_or(0);
    result.upserted += v.integer("nUpserted").value_or(0);
    result.deleted += v.integer("nRemoved").value_or(0);
    size_t errors_before = result.write_errors.size();
    bson_iter_t it, child;
    if (v.find("writeErrors", &it) && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &child)) {
      while (bson_iter_next(&child)) {
        if (!BSON_ITER_HOLDS_DOCUMENT(&child)) continue;
        uint32_t len = 0;
        const uint8_t* data = nullptr;
        bson_iter_document(&child, &len, &data);
        View e(data, len);
        result.write_errors.push_back({static_cast<uint32_t>(part.first + e.integer("index").value_or(0)),
                                       static_cast<int32_t>(e.integer("code").value_or(0)),
                                       std::string(e.string("errmsg").value_or(""))});
      }
    }
    if (auto wce = v.array("writeConcernErrors"); wce && bson_count_keys(wce->get()) > 0) {
      result.write_concern_error = to_json(wce->get());
    }
    bson_destroy(&reply);
    if (server_id == 0 && result.write_errors.size() == errors_before && result.write_concern_error.empty()) {
      throw MongoError("bulk write of " + std::to_string(count_) + " operations to " + ns_, error);
    }
    if (ordered_ && result.write_errors.size() > errors_before) break;
  }
  return result;
}

Collection::Collection(mongoc_collection_t* collection, std::string ns)
    : collection_(collection), ns_(std::move(ns)) {}

Collection::Collection(Collection&& other) noexcept
    : collection_(std::exchange(other.collection_, nullptr)), ns_(std::move(other.ns_)) {}

Collection::~Collection() {
  if (collection_) mongoc_collection_destroy(collection_);
}

Cursor Collection::find(const bson_t* filter, const bson_t* opts) {
  return Cursor(mongoc_collection_find_with_opts(collection_, filter, opts, nullptr), ns_);
}

std::optional<Bson> Collection::find_one(const bson_t* filter, const bson_t* opts) {
  Builder o;
  if (opts) bson_concat(o.get(), opts);
  if (!opts || !bson_has_field(opts, "limit")) o.append("limit", int64_t{1});
  Bson built = o.extract();
  Cursor c = find(filter, built.get());
  if (const bson_t* doc = c.next()) return Bson::copy_of(doc);
  return std::nullopt;
}

int64_t Collection::count(const bson_t* filter) {
  bson_error_t error;
  int64_t n = mongoc_collection_count_documents(collection_, filter, nullptr, nullptr, nullptr, &error);
  if (n < 0) throw MongoError("counting documents in " + ns_, error);
  return n;
}

int64_t Collection::stats_count() {
  Builder p;
  p.array("pipeline", [](ArrayBuilder& stages) {
    stages.document([](Builder& s) {
      s.document("$collStats", [](Builder& c) { c.document("count", [](Builder&) {}); });
    });
  });
  Bson pipeline = p.extract();
  Builder o;
  o.document("readConcern", [](Builder& rc) { rc.append("level", "local"); });
  Bson opts = o.extract();
  Cursor cursor = aggregate(pipeline.get(), opts.get());
  int64_t n = 0;
  while (const bson_t* doc = cursor.next()) n += View(doc).integer("count").value_or(0);
  return n;
}

void Collection::insert_one(const bson_t* doc) {
  bson_error_t error;
  check(mongoc_collection_insert_one(collection_, doc, nullptr, nullptr, &error), error,
        "inserting into " + ns_);
}

BulkWriter Collection::bulk(bool ordered) { return BulkWriter(collection_, ns_, ordered); }

Cursor Collection::aggregate(const bson_t* pipeline, const bson_t* opts) {
  return Cursor(mongoc_collection_aggregate(collection_, MONGOC_QUERY_NONE, pipeline, opts, nullptr), ns_);
}

std::vector<Bson> Collection::list_indexes() {
  std::vector<Bson> out;
  Cursor c(mongoc_collection_find_indexes_with_opts(collection_, nullptr), ns_);
  while (const bson_t* doc = c.next()) out.push_back(Bson::copy_of(doc));
  return out;
}

void Collection::create_indexes(const bson_t* indexes) {
  bson_t cmd;
  bson_init(&cmd);
  BSON_APPEND_UTF8(&cmd, "createIndexes", mongoc_collection_get_name(collection_));
  BSON_APPEND_ARRAY(&cmd, "indexes", indexes);
  bson_error_t error;
  bool ok = mongoc_collection_write_command_with_opts(collection_, &cmd, nullptr, nullptr, &error);
  bson_destroy(&cmd);
  check(ok, error, "creating indexes on " + ns_);
}

void Collection::drop() {
  bson_error_t error;
  if (!mongoc_collection_drop_with_opts(collection_, nullptr, &error)) {
    // Dropping a collection that does not exist is not a failure.
    if (error.code == 26 || std::string(error.message).find("ns not found") != std::string::npos) return;
    throw MongoError("dropping " + ns_, error);
  }
}

}  // namespace fhirshift::mongo
