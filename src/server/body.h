// The body of a create or update: validated against the request, then rewritten with the id and
// meta.versionId/meta.lastUpdated the store assigns. Every other byte of every member value is
// kept as received (FHIR decimals such as 1.50 survive; the body never passes through a double).
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace fhirshift::server {

// A request body the server refuses. `status` is the HTTP status (400, 422), `code` the
// OperationOutcome issue code.
class BodyError : public std::runtime_error {
 public:
  BodyError(int status, std::string code, const std::string& message)
      : std::runtime_error(message), status_(status), code_(std::move(code)) {}
  int status() const { return status_; }
  const std::string& code() const { return code_; }

 private:
  int status_;
  std::string code_;
};

struct BodyTarget {
  std::string_view type;          // the resource type of the URL
  std::string_view id;            // the id to store
  bool id_must_match = false;     // PUT: the body's id must exist and equal `id`; POST: replaced
  std::string_view version;       // meta.versionId
  std::string_view last_updated;  // meta.lastUpdated (FHIR instant)
};

// One element of the body's `contained` array, as its own JSON text (bytes as received).
struct ContainedResource {
  std::string type;
  std::string id;
  std::string json;
};

struct PreparedBody {
  std::string json;
  std::vector<ContainedResource> contained;
};

// Throws BodyError for: not JSON, not an object, no/other resourceType, id mismatch (PUT),
// a meta that is not an object, a contained element without resourceType or a valid id, and
// duplicate contained ids.
PreparedBody prepare_body(std::string_view text, const BodyTarget& target);

}  // namespace fhirshift::server
