// `fhirshift serve`: a FHIR R4 REST server (JSON) over an entry collection in the legacy or the
// current schema, with the health and admin endpoints the cut-over drives (docs/cutover.md):
//   GET /healthz                 200 while the process serves
//   GET /readyz                  200 when the database answers a ping, else 503
//   POST /admin/fence            hold new writes; answers once writes in progress finished:
//                                {"fenced":true,"heldWrites":n,"inFlightWrites":0}
//   POST /admin/release[?forward=URL]  let held writes proceed, or forward them and every later
//                                write to URL: {"released":n}
//   GET /admin/status            {"fenced":bool,"forwardTo":"URL or empty","heldWrites":n,...}
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "server/store.h"
#include "server/write_gate.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace fhirshift::server {

struct ServerOptions {
  Schema schema = Schema::kCurrent;
  std::string connection_string;
  std::string collection = "vonkentries";
  std::string host = "0.0.0.0";
  int port = 8080;  // 0: any free port (see FhirServer::port())
  int threads = 64;
  bool read_only = false;
  // No /admin/* endpoints (each answers 404): a plain FHIR server, as the cut-over needs nothing
  // else (its fence is in HAProxy); the endpoints remain for tests of held writes.
  bool no_admin = false;
  // Bodies above this are refused with 413: with its entry fields and `idx` a larger body would
  // not fit MongoDB's 16 MiB document (the migrator quarantines such entries for the same reason).
  size_t max_body_bytes = 15 * 1024 * 1024;
  std::chrono::milliseconds hold_timeout{30000};
  // Search parameter definitions for the current schema's indexer ("" = the build's default).
  std::string search_parameters;
};

class FhirServer {
 public:
  // Connects (lazily: an unreachable database makes /readyz fail, not the constructor) and loads
  // the indexer. Throws when the store is of the other schema.
  explicit FhirServer(ServerOptions options);
  ~FhirServer();
  FhirServer(const FhirServer&) = delete;
  FhirServer& operator=(const FhirServer&) = delete;

  // Binds (to a free port when options.port is 0); throws when the port is taken.
  void bind();
  int port() const { return port_; }
  // Serves until stop(); call bind() first.
  void serve();
  void stop();

  Store& store() { return *store_; }
  WriteGate& gate() { return gate_; }

 private:
  void routes();
  void handle_write(const httplib::Request& req, httplib::Response& res,
                    const std::function<void()>& apply);
  void forward(const httplib::Request& req, httplib::Response& res, const std::string& target);
  void create(const httplib::Request& req, httplib::Response& res, const std::string& type);
  void update(const httplib::Request& req, httplib::Response& res, const std::string& type,
              const std::string& id);
  void remove(const httplib::Request& req, httplib::Response& res, const std::string& type,
              const std::string& id);
  void read(const httplib::Request& req, httplib::Response& res, const std::string& type,
            const std::string& id);
  void vread(const httplib::Request& req, httplib::Response& res, const std::string& type,
             const std::string& id, const std::string& version);
  void history(const httplib::Request& req, httplib::Response& res, const std::string& type,
               const std::optional<std::string>& id);
  void search(const httplib::Request& req, httplib::Response& res, const std::string& type);
  void answer_version(const httplib::Request& req, httplib::Response& res, int status,
                      const StoredVersion& v);

  ServerOptions options_;
  std::unique_ptr<httplib::Server> http_;
  std::shared_ptr<mongo::ClientPool> pool_;
  std::unique_ptr<Store> store_;
  WriteGate gate_;
  std::string capability_statement_;
  int port_ = 0;
};

}  // namespace fhirshift::server
