// In-process `fhirshift serve` instances on free ports over a live FerretDB, for HTTP-level tests.
#pragma once

#include <httplib.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "ferretdb_server.h"
#include "mongo/client.h"
#include "provision/provision.h"
#include "server/server.h"

namespace fhirshift::testing {

class RunningServer {
 public:
  explicit RunningServer(server::ServerOptions o) : server_(std::make_unique<server::FhirServer>(o)) {
    server_->bind();
    thread_ = std::thread([this] { server_->serve(); });
    url_ = "http://127.0.0.1:" + std::to_string(server_->port());
    for (int i = 0; i < 100; ++i) {
      httplib::Client c(url_);
      if (auto r = c.Get("/healthz"); r && r->status == 200) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  ~RunningServer() {
    server_->stop();
    if (thread_.joinable()) thread_.join();
  }
  const std::string& url() const { return url_; }
  server::FhirServer& server() { return *server_; }
  httplib::Client client() const {
    httplib::Client c(url_);
    c.set_read_timeout(std::chrono::seconds(60));
    return c;
  }

 private:
  std::unique_ptr<server::FhirServer> server_;
  std::thread thread_;
  std::string url_;
};

inline server::ServerOptions server_options(server::Schema schema, const std::string& uri) {
  server::ServerOptions o;
  o.schema = schema;
  o.connection_string = uri;
  o.host = "127.0.0.1";
  o.port = 0;
  o.threads = 16;
  return o;
}

// Provisions `database` for the current schema (what `fhirshift provision` does).
inline void provision_current(const std::string& uri) {
  mongo::ClientPool pool(mongo::Uri::parse(uri));
  auto client = pool.acquire();
  provision::provision(client, pool.database(), provision::Options{});
}

inline const char* kFhirJson = "application/fhir+json";

inline nlohmann::json parse(const httplib::Result& r) {
  if (!r) return nullptr;
  return nlohmann::json::parse(r->body, nullptr, false);
}

}  // namespace fhirshift::testing
