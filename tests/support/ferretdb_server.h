// A live FerretDB (MongoDB wire protocol) for integration tests: a fresh instance on a free
// loopback port with its own data directory, stopped and wiped at destruction. Several instances
// side by side are fine (source and target of a migration).
#pragma once

#include <memory>
#include <string>

#include "subprocess.h"
#include "temp_dir.h"

namespace fhirshift::testing {

class FerretDbServer {
 public:
  // SQLite backend in a fresh temporary directory.
  FerretDbServer();
  ~FerretDbServer();

  // "mongodb://127.0.0.1:PORT/" as FerretDB reported it.
  const std::string& base_uri() const { return base_uri_; }
  // The URI with a database path, e.g. "mongodb://127.0.0.1:PORT/vonkdata".
  std::string uri(const std::string& database = "vonkdata") const;
  int port() const { return port_; }

  void stop();
  // SIGKILL: the server is gone at once, its open connections with it (a crash; SIGTERM lets
  // FerretDB serve open connections for about 3 s more). Committed writes survive (SQLite WAL).
  void crash();
  bool running() const { return proc_ && proc_->running(); }
  // Restarts on the same port and data directory (for outage tests).
  void restart();
  // Simulates an outage: SIGSTOP freezes the server so clients see timeouts, not refusals.
  void freeze();
  void thaw();

 private:
  void start(const std::string& listen);
  TempDir dir_;
  std::unique_ptr<Subprocess> proc_;
  std::string base_uri_;
  int port_ = 0;
};

// Sends `ping` until it answers or `timeout_ms` passes.
bool mongo_ping(const std::string& uri, int timeout_ms);

}  // namespace fhirshift::testing
