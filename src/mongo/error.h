// Errors from the MongoDB driver or server, with the server's code and message kept apart from the
// context fhirshift adds (which operation, which collection, which host).
#pragma once

#include <bson/bson.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace fhirshift::mongo {

class MongoError : public std::runtime_error {
 public:
  // `context` says what fhirshift was doing ("insertMany into vonkdata.vonkentries").
  MongoError(const std::string& context, const bson_error_t& error);
  MongoError(const std::string& context, uint32_t domain, uint32_t code, const std::string& message);
  // `cause` with more context in front, its codes kept: "<context>: <cause.what()>".
  MongoError(const std::string& context, const MongoError& cause);

  uint32_t domain() const { return domain_; }
  uint32_t code() const { return code_; }
  const std::string& server_message() const { return server_message_; }

  // Network errors, server selection timeouts and "not primary" style errors: worth a retry.
  bool is_transient() const;
  // E11000 and friends.
  bool is_duplicate_key() const { return code_ == 11000 || code_ == 11001 || code_ == 12582; }

 private:
  uint32_t domain_;
  uint32_t code_;
  std::string server_message_;
};

// Throws MongoError when `ok` is false.
inline void check(bool ok, const bson_error_t& error, const std::string& context) {
  if (!ok) throw MongoError(context, error);
}

}  // namespace fhirshift::mongo
