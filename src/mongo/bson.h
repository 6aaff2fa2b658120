// Small RAII and convenience types over libbson. `Bson` owns a document, `Builder` appends to one
// (nested documents and arrays through callbacks, so begin/end can never be unbalanced), and
// `View` reads typed fields of a document it does not own.
#pragma once

#include <bson/bson.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fhirshift::mongo {

class Bson {
 public:
  Bson();  // an empty document
  ~Bson();
  Bson(Bson&& other) noexcept;
  Bson& operator=(Bson&& other) noexcept;
  Bson(const Bson&) = delete;
  Bson& operator=(const Bson&) = delete;

  // Takes ownership of a heap document (from bson_new / bson_copy / a driver that hands one over).
  static Bson adopt(bson_t* doc);
  static Bson copy_of(const bson_t* doc);
  // Canonical or relaxed extended JSON; throws std::invalid_argument with libbson's message.
  static Bson from_json(std::string_view json);

  Bson clone() const { return copy_of(doc_); }
  bson_t* get() { return doc_; }
  const bson_t* get() const { return doc_; }
  const uint8_t* data() const { return bson_get_data(doc_); }
  uint32_t size() const { return doc_->len; }
  bool empty() const { return bson_empty(doc_); }
  // Relaxed extended JSON, for messages and reports.
  std::string to_json() const;

 private:
  explicit Bson(bson_t* doc) : doc_(doc) {}
  bson_t* doc_;
};

std::string to_json(const bson_t* doc);
std::string oid_to_string(const bson_oid_t& oid);
// Parses a 24-hex-digit ObjectId; nullopt when it is not one.
std::optional<bson_oid_t> oid_from_string(std::string_view hex);
// The smallest ObjectId of that second: every ObjectId generated at or after it sorts at or above.
bson_oid_t oid_at_seconds(uint32_t seconds_since_epoch);

class ArrayBuilder;

// Appends fields to a document. A Builder made with no argument owns its document (take it with
// `extract()`); one made over a bson_t* appends to that document.
class Builder {
 public:
  Builder();
  explicit Builder(bson_t* target) : doc_(target), owned_(false) {}
  ~Builder();
  Builder(Builder&& other) noexcept;
  Builder(const Builder&) = delete;
  Builder& operator=(const Builder&) = delete;

  Builder& append(std::string_view key, std::string_view value);
  Builder& append(std::string_view key, const char* value) { return append(key, std::string_view(value)); }
  Builder& append(std::string_view key, const std::string& value) { return append(key, std::string_view(value)); }
  Builder& append(std::string_view key, int32_t value);
  Builder& append(std::string_view key, int64_t value);
  Builder& append(std::string_view key, double value);
  Builder& append(std::string_view key, bool value);
  Builder& append(std::string_view key, const bson_oid_t& value);
  Builder& append_date(std::string_view key, int64_t ms_since_epoch);
  Builder& append_null(std::string_view key);
  Builder& append_document(std::string_view key, const bson_t* value);
  Builder& append_array(std::string_view key, const bson_t* value);
  // Copies the value `iter` points at under `key`.
  Builder& append_iter(std::string_view key, const bson_iter_t& iter);

  template <class Fill>
  Builder& document(std::string_view key, Fill&& fill) {
    bson_t child;
    begin_document(key, &child);
    {
      Builder sub(&child);
      fill(sub);
    }
    end_document(&child);
    return *this;
  }
  template <class Fill>
  Builder& array(std::string_view key, Fill&& fill);
  // Appends `$in: [values…]`, the operand of a field's filter document.
  template <class Range>
  Builder& append_in(const Range& values);

  bson_t* get() { return doc_; }
  // The owned document; the Builder is empty afterwards.
  Bson extract();

 private:
  void begin_document(std::string_view key, bson_t* child);
  void end_document(bson_t* child);
  void begin_array(std::string_view key, bson_t* child);
  void end_array(bson_t* child);
  bson_t* doc_;
  bool owned_;
};

// Appends elements with keys "0", "1", … as BSON arrays require.
class ArrayBuilder {
 public:
  explicit ArrayBuilder(bson_t* target) : builder_(target) {}
  template <class T>
  ArrayBuilder& append(const T& value) {
    builder_.append(next_key(), value);
    return *this;
  }
  ArrayBuilder& append_null() { builder_.append_null(next_key()); return *this; }
  ArrayBuilder& append_date(int64_t ms) { builder_.append_date(next_key(), ms); return *this; }
  ArrayBuilder& append_document(const bson_t* value) { builder_.append_document(next_key(), value); return *this; }
  template <class Fill>
  ArrayBuilder& document(Fill&& fill) {
    builder_.document(next_key(), std::forward<Fill>(fill));
    return *this;
  }
  uint32_t size() const { return index_; }

 private:
  std::string_view next_key();
  Builder builder_;
  uint32_t index_ = 0;
  char key_buf_[16];
};

template <class Fill>
Builder& Builder::array(std::string_view key, Fill&& fill) {
  bson_t child;
  begin_array(key, &child);
  {
    ArrayBuilder sub(&child);
    fill(sub);
  }
  end_array(&child);
  return *this;
}

template <class Range>
Builder& Builder::append_in(const Range& values) {
  return array("$in", [&](ArrayBuilder& a) {
    for (const auto& v : values) a.append(v);
  });
}

// Typed, non-owning reads of top-level fields. Each getter returns nullopt when the field is
// absent or has another type; `type_of` tells which (BSON_TYPE_EOD when absent).
class View {
 public:
  explicit View(const bson_t* doc) : doc_(doc) {}
  View(const uint8_t* data, uint32_t len);
  View(const View& other);
  View& operator=(const View& other);

  const bson_t* get() const { return doc_; }
  bool has(std::string_view key) const { return type_of(key) != BSON_TYPE_EOD; }
  bson_type_t type_of(std::string_view key) const;
  std::optional<std::string_view> string(std::string_view key) const;
  std::optional<bool> boolean(std::string_view key) const;
  std::optional<int64_t> date(std::string_view key) const;
  std::optional<bson_oid_t> oid(std::string_view key) const;
  // int32, int64 or a double with an integral value.
  std::optional<int64_t> integer(std::string_view key) const;
  std::optional<double> number(std::string_view key) const;
  // Embedded document or array; the View borrows this document's memory.
  std::optional<View> document(std::string_view key) const;
  std::optional<View> array(std::string_view key) const;
  bool find(std::string_view key, bson_iter_t* iter) const;

 private:
  const bson_t* doc_;
  bson_t storage_{};  // backs doc_ for views made over raw bytes (embedded documents)
};

}  // namespace fhirshift::mongo
