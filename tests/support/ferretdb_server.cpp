#include "ferretdb_server.h"

#include <mongoc/mongoc.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <stdexcept>
#include <thread>

namespace fhirshift::testing {
namespace {

std::string ferretdb_bin() {
  const char* env = std::getenv("FHIRSHIFT_FERRETDB");
  return env && *env ? env : FHIRSHIFT_FERRETDB_BIN;
}

struct MongocInit {
  MongocInit() { mongoc_init(); }
};

}  // namespace

bool mongo_ping(const std::string& uri, int timeout_ms) {
  static MongocInit init;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::string with_timeout = uri + (uri.find('?') == std::string::npos ? "?" : "&") +
                             "serverSelectionTimeoutMS=500&connectTimeoutMS=500";
  while (std::chrono::steady_clock::now() < deadline) {
    mongoc_client_t* client = mongoc_client_new(with_timeout.c_str());
    if (client) {
      bson_t* cmd = BCON_NEW("ping", BCON_INT32(1));
      bson_error_t error;
      bool ok = mongoc_client_command_simple(client, "admin", cmd, nullptr, nullptr, &error);
      bson_destroy(cmd);
      mongoc_client_destroy(client);
      if (ok) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

FerretDbServer::FerretDbServer() : dir_("fhirshift-ferretdb") { start("127.0.0.1:0"); }

FerretDbServer::~FerretDbServer() { stop(); }

void FerretDbServer::start(const std::string& listen) {
  auto uri_file = dir_.path() / "uri";
  std::filesystem::remove(uri_file);
  std::vector<std::string> argv{ferretdb_bin(), "--listen", listen, "--uri-file", uri_file.string()};
  argv.insert(argv.end(), {"--sqlite-dir", (dir_.path() / "data").string()});
  proc_ = std::make_unique<Subprocess>(argv, dir_.path(), "ferretdb");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!std::filesystem::exists(uri_file)) {
    if (!proc_->running())
      throw std::runtime_error("FerretDB exited at start: " + proc_->stderr_text());
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("FerretDB did not start within 30 s: " + proc_->stderr_text());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::ifstream in(uri_file);
  std::getline(in, base_uri_);
  auto colon = base_uri_.rfind(':');
  port_ = std::stoi(base_uri_.substr(colon + 1));
  if (!mongo_ping(base_uri_, 30000))
    throw std::runtime_error("FerretDB at " + base_uri_ + " does not answer ping");
}

std::string FerretDbServer::uri(const std::string& database) const { return base_uri_ + database; }

void FerretDbServer::stop() {
  if (proc_) {
    proc_->stop(std::chrono::seconds(10));
    proc_.reset();
  }
}

void FerretDbServer::crash() {
  if (proc_) {
    proc_->kill9();
    proc_.reset();
  }
}

void FerretDbServer::restart() {
  stop();
  start("127.0.0.1:" + std::to_string(port_));
}

void FerretDbServer::freeze() { proc_->signal(SIGSTOP); }
void FerretDbServer::thaw() { proc_->signal(SIGCONT); }

}  // namespace fhirshift::testing
