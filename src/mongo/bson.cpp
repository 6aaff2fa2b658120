#include "mongo/bson.h"

#include <cstring>
#include <new>
#include <stdexcept>
#include <utility>

namespace fhirshift::mongo {
namespace {
int key_len(std::string_view key) { return static_cast<int>(key.size()); }
}  // namespace

Bson::Bson() : doc_(bson_new()) {}
Bson::~Bson() {
  if (doc_) bson_destroy(doc_);
}
Bson::Bson(Bson&& other) noexcept : doc_(std::exchange(other.doc_, bson_new())) {}
Bson& Bson::operator=(Bson&& other) noexcept {
  std::swap(doc_, other.doc_);
  return *this;
}
Bson Bson::adopt(bson_t* doc) {
  if (!doc) throw std::invalid_argument("Bson::adopt: null document");
  return Bson(doc);
}
Bson Bson::copy_of(const bson_t* doc) { return Bson(bson_copy(doc)); }

Bson Bson::from_json(std::string_view json) {
  bson_error_t error;
  bson_t* doc = bson_new_from_json(reinterpret_cast<const uint8_t*>(json.data()),
                                   static_cast<ssize_t>(json.size()), &error);
  if (!doc) throw std::invalid_argument(std::string("invalid extended JSON: ") + error.message);
  return Bson(doc);
}

std::string Bson::to_json() const { return mongo::to_json(doc_); }

std::string to_json(const bson_t* doc) {
  size_t len = 0;
  char* s = bson_as_relaxed_extended_json(doc, &len);
  if (!s) return "<invalid BSON>";
  std::string out(s, len);
  bson_free(s);
  return out;
}

std::string oid_to_string(const bson_oid_t& oid) {
  char buf[25];
  bson_oid_to_string(&oid, buf);
  return buf;
}

std::optional<bson_oid_t> oid_from_string(std::string_view hex) {
  if (hex.size() != 24 || !bson_oid_is_valid(hex.data(), hex.size())) return std::nullopt;
  bson_oid_t oid;
  bson_oid_init_from_string(&oid, std::string(hex).c_str());
  return oid;
}

bson_oid_t oid_at_seconds(uint32_t seconds) {
  uint8_t bytes[12] = {};
  bytes[0] = static_cast<uint8_t>(seconds >> 24);
  bytes[1] = static_cast<uint8_t>(seconds >> 16);
  bytes[2] = static_cast<uint8_t>(seconds >> 8);
  bytes[3] = static_cast<uint8_t>(seconds);
  bson_oid_t oid;
  bson_oid_init_from_data(&oid, bytes);
  return oid;
}

Builder::Builder() : doc_(bson_new()), owned_(true) {}
Builder::Builder(Builder&& other) noexcept
    : doc_(std::exchange(other.doc_, nullptr)), owned_(std::exchange(other.owned_, false)) {}

Builder::~Builder() {
  if (owned_ && doc_) bson_destroy(doc_);
}

Builder& Builder::append(std::string_view key, std::string_view value) {
  bson_append_utf8(doc_, key.data(), key_len(key), value.data(), static_cast<int>(value.size()));
  return *this;
}
Builder& Builder::append(std::string_view key, int32_t value) {
  bson_append_int32(doc_, key.data(), key_len(key), value);
  return *this;
}
Builder& Builder::append(std::string_view key, int64_t value) {
  bson_append_int64(doc_, key.data(), key_len(key), value);
  return *this;
}
Builder& Builder::append(std::string_view key, double value) {
  bson_append_double(doc_, key.data(), key_len(key), value);
  return *this;
}
Builder& Builder::append(std::string_view key, bool value) {
  bson_append_bool(doc_, key.data(), key_len(key), value);
  return *this;
}
Builder& Builder::append(std::string_view key, const bson_oid_t& value) {
  bson_append_oid(doc_, key.data(), key_len(key), &value);
  return *this;
}
Builder& Builder::append_date(std::string_view key, int64_t ms) {
  bson_append_date_time(doc_, key.data(), key_len(key), ms);
  return *this;
}
Builder& Builder::append_null(std::string_view key) {
  bson_append_null(doc_, key.data(), key_len(key));
  return *this;
}
Builder& Builder::append_document(std::string_view key, const bson_t* value) {
  bson_append_document(doc_, key.data(), key_len(key), value);
  return *this;
}
Builder& Builder::append_array(std::string_view key, const bson_t* value) {
  bson_append_array(doc_, key.data(), key_len(key), value);
  return *this;
}
Builder& Builder::append_iter(std::string_view key, const bson_iter_t& iter) {
  bson_append_iter(doc_, key.data(), key_len(key), &iter);
  return *this;
}
void Builder::begin_document(std::string_view key, bson_t* child) {
  bson_append_document_begin(doc_, key.data(), key_len(key), child);
}
void Builder::end_document(bson_t* child) { bson_append_document_end(doc_, child); }
void Builder::begin_array(std::string_view key, bson_t* child) {
  bson_append_array_begin(doc_, key.data(), key_len(key), child);
}
void Builder::end_array(bson_t* child) { bson_append_array_end(doc_, child); }

Bson Builder::extract() {
  if (!owned_) throw std::logic_error("Builder::extract on a builder that does not own its document");
  // Not through std::exchange: its return type drops bson_t's alignment attribute, which clang
  // reports as an error (-Walign-mismatch) in the fuzz build.
  bson_t* done = doc_;
  doc_ = bson_new();
  return Bson::adopt(done);
}

std::string_view ArrayBuilder::next_key() {
  const char* key = nullptr;
  size_t len = bson_uint32_to_string(index_++, &key, key_buf_, sizeof key_buf_);
  return {key, len};
}

View::View(const uint8_t* data, uint32_t len) : doc_(&storage_) {
  if (!bson_init_static(&storage_, data, len)) {
    throw std::invalid_argument("corrupt embedded BSON document");
  }
}

// A static bson_t points into itself, so a view over raw bytes re-initialises its own storage
// instead of copying the other's.
View::View(const View& other) : doc_(other.doc_) {
  if (other.doc_ == &other.storage_) {
    bson_init_static(&storage_, bson_get_data(other.doc_), other.doc_->len);
    doc_ = &storage_;
  }
}

View& View::operator=(const View& other) {
  if (this != &other) {
    this->~View();
    new (this) View(other);
  }
  return *this;
}

bool View::find(std::string_view key, bson_iter_t* iter) const {
  return bson_iter_init(iter, doc_) && bson_iter_find_w_len(iter, key.data(), key_len(key));
}

bson_type_t View::type_of(std::string_view key) const {
  bson_iter_t it;
  return find(key, &it) ? bson_iter_type(&it) : BSON_TYPE_EOD;
}

std::optional<std::string_view> View::string(std::string_view key) const {
  bson_iter_t it;
  if (!find(key, &it) || !BSON_ITER_HOLDS_UTF8(&it)) return std::nullopt;
  uint32_t len = 0;
  const char* s = bson_iter_utf8(&it, &len);
  return std::string_view(s, len);
}

std::optional<bool> View::boolean(std::string_view key) const {
  bson_iter_t it;
  if (!find(key, &it) || !BSON_ITER_HOLDS_BOOL(&it)) return std::nullopt;
  return bson_iter_bool(&it);
}

std::optional<int64_t> View::date(std::string_view key) const {
  bson_iter_t it;
  if (!find(key, &it) || !BSON_ITER_HOLDS_DATE_TIME(&it)) return std::nullopt;
  return bson_iter_date_time(&it);
}

std::optional<bson_oid_t> View::oid(std::string_view key) const {
  bson_iter_t it;
  if (!find(key, &it) || !BSON_ITER_HOLDS_OID(&it)) return std::nullopt;
  return *bson_iter_oid(&it);
}

std::optional<int64_t> View::integer(std::string_view key) const {
  bson_iter_t it;
  if (!find(key, &it)) return std::nullopt;
  switch (bson_iter_type(&it)) {
    case BSON_TYPE_INT32:
      return bson_iter_int32(&it);
    case BSON_TYPE_INT64:
      return bson_iter_int64(&it);
    case BSON_TYPE_DOUBLE: {
      double d = bson_iter_double(&it);
      if (d == static_cast<double>(static_cast<int64_t>(d))) return static_cast<int64_t>(d);
      return std::nullopt;
    }
    default:
      return std::nullopt;
  }
}

std::optional<double> View::number(std::string_view key) const {
  bson_iter_t it;
  if (!find(key, &it) || !BSON_ITER_HOLDS_NUMBER(&it)) return std::nullopt;
  return bson_iter_as_double(&it);
}

std::optional<View> View::document(std::string_view key) const {
  bson_iter_t it;
  if (!find(key, &it) || !BSON_ITER_HOLDS_DOCUMENT(&it)) return std::nullopt;
  uint32_t len = 0;
  const uint8_t* data = nullptr;
  bson_iter_document(&it, &len, &data);
  return View(data, len);
}

std::optional<View> View::array(std::string_view key) const {
  bson_iter_t it;
  if (!find(key, &it) || !BSON_ITER_HOLDS_ARRAY(&it)) return std::nullopt;
  uint32_t len = 0;
  const uint8_t* data = nullptr;
  bson_iter_array(&it, &len, &data);
  return View(data, len);
}

}  // namespace fhirshift::mongo
