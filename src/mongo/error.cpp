#include "mongo/error.h"

#include <mongoc/mongoc.h>

namespace fhirshift::mongo {

MongoError::MongoError(const std::string& context, const bson_error_t& error)
    : MongoError(context, error.domain, error.code, error.message) {}

MongoError::MongoError(const std::string& context, uint32_t domain, uint32_t code,
                       const std::string& message)
    : std::runtime_error(context + ": " + message + " (code " + std::to_string(code) + ")"),
      domain_(domain),
      code_(code),
      server_message_(message) {}

MongoError::MongoError(const std::string& context, const MongoError& cause)
    : std::runtime_error(context + ": " + cause.what()),
      domain_(cause.domain_),
      code_(cause.code_),
      server_message_(cause.server_message_) {}

bool MongoError::is_transient() const {
  if (domain_ == MONGOC_ERROR_STREAM || domain_ == MONGOC_ERROR_SERVER_SELECTION) return true;
  if (domain_ == MONGOC_ERROR_CLIENT && code_ == MONGOC_ERROR_CLIENT_AUTHENTICATE) return false;
  switch (code_) {
    case 6:      // HostUnreachable
    case 7:      // HostNotFound
    case 89:     // NetworkTimeout
    case 91:     // ShutdownInProgress
    case 189:    // PrimarySteppedDown
    case 262:    // ExceededTimeLimit
    case 9001:   // SocketException
    case 10107:  // NotWritablePrimary
    case 11600:  // InterruptedAtShutdown
    case 11602:  // InterruptedDueToReplStateChange
    case 13435:  // NotPrimaryNoSecondaryOk
    case 13436:  // NotPrimaryOrSecondary
      return true;
    default:
      return false;
  }
}

}  // namespace fhirshift::mongo
