// Real implementations of the cut-over's interfaces (ports.h): an HTTP readiness GET of the FHIR
// server traffic moves to, the migrator's progress endpoint, the HAProxy runtime API, and `fhirshift verify` run as a child of
// the same binary.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cutover/haproxy_runtime.h"
#include "cutover/http_client.h"
#include "cutover/ports.h"
#include "cutover/process.h"

namespace fhirshift::cutover {

class HttpServerHealth : public ServerHealth {
 public:
  // `path`: what a ready server answers 2xx ("/metadata": any FHIR server's CapabilityStatement).
  HttpServerHealth(const std::string& base_url, std::string path);
  std::string url() const override { return client_.base_url() + path_; }
  ReadyCheck ready() override;

 private:
  HttpClient client_;
  std::string path_;
};

class HttpProgressSource : public ProgressSource {
 public:
  explicit HttpProgressSource(const std::string& url);
  std::string url() const override { return client_.base_url() + "/progress"; }
  Progress progress() override;
  void pause() override;
  void resume() override;
  void poll_now() override;

 private:
  void post(const std::string& path);
  HttpClient client_;
};

class HaproxyProxy : public Proxy {
 public:
  explicit HaproxyProxy(const std::string& socket_path) : runtime_(socket_path) {}
  std::string describe() const override {
    return "HAProxy runtime API at " + runtime_.socket_path();
  }
  ServerState state(const std::string& backend, const std::string& server) override {
    return runtime_.server_state(backend, server);
  }
  void set_state(const std::string& backend, const std::string& server, AdminState s) override {
    runtime_.set_server_state(backend, server, s);
  }
  void set_weight(const std::string& backend, const std::string& server,
                  const std::string& weight) override {
    runtime_.set_weight(backend, server, weight);
  }
  int64_t sessions_total(const std::string& backend, const std::string& server) override;
  FenceStatus fence_status(const std::string& backend) override {
    return runtime_.fence_status(backend);
  }
  FenceStatus set_fence(const std::string& backend, bool on) override {
    return runtime_.set_fence(backend, on);
  }
  const HaproxyRuntime& runtime() const { return runtime_; }

 private:
  HaproxyRuntime runtime_;
};

// Runs `<exe> verify <connection args> --mode M [--since S] --report <tmp>.json`. The connection
// arguments are passed through as the operator gave them (passwords are redacted in describe()).
// A staged verify adds --stdin-stages and writes `source`, then `target`, to its standard input.
class SubprocessVerifier : public Verifier {
 public:
  SubprocessVerifier(std::string exe, std::vector<std::string> connection_args,
                     std::chrono::milliseconds timeout);
  std::string describe(const VerifyRequest& request) const override;
  VerifyOutcome verify(const VerifyRequest& request) override;
  std::unique_ptr<StagedVerify> start(const VerifyRequest& request) override;

 private:
  class Staged;
  std::vector<std::string> argv(const VerifyRequest& request, const std::string& report,
                                bool staged = false) const;
  static std::filesystem::path report_path(const std::string& name);
  // Reads the verdict from the child's output and the rest from its JSON report (then removed).
  static VerifyOutcome outcome(const ProcessResult& r, const std::filesystem::path& report,
                               std::chrono::milliseconds timeout);
  std::string exe_;
  std::vector<std::string> connection_args_;
  std::chrono::milliseconds timeout_;
};

// "mongodb://user:****@host/db": the password of a connection string hidden, for logs.
std::string redact_connection_string(const std::string& s);

}  // namespace fhirshift::cutover
