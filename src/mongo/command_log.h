// The command audit log: with FHIRSHIFT_COMMAND_LOG=<file> in the environment, every command a
// client pool sends is appended to <file> as one JSON line (libmongoc's command monitoring, the
// "started" event), so that a test can check the shape of every command fhirshift sends
// (tests/support/command_audit.h, docs/testing.md). Off when the variable is unset: no callback.
//
// Lines:
//   {"event":"pool","pool":<app name>,"hosts":...,"retryWrites":true,"writeConcern":{...},"readConcern":"majority"}
//   {"event":"command","pool":<app name>,"command":"update","db":"vonkdata","collection":"vonkentries","doc":{...}}
// `doc` is the command as sent, with strings over 200 characters cut (FHIR bodies), arrays over
// 50 elements cut to their first 50, and `lsid`/`$clusterTime` left out.
#pragma once

#include <mongoc/mongoc.h>

#include <string>

namespace fhirshift::mongo {

class Uri;

class CommandLog {
 public:
  static constexpr const char* kEnvironmentVariable = "FHIRSHIFT_COMMAND_LOG";
  // Installs the callbacks on `pool` and writes its "pool" line when the variable is set. Call
  // before the first client is popped. Throws std::runtime_error when the file cannot be opened.
  static void attach_from_environment(mongoc_client_pool_t* pool, const std::string& pool_name, const Uri& uri);
};

}  // namespace fhirshift::mongo
