#include <signal.h>
#include <spdlog/spdlog.h>

#include <iostream>
#include <thread>

#include "commands.h"
#include "common/log.h"
#include "mongo/error.h"
#include "server/server.h"

namespace fhirshift::cli {
namespace {

struct ServeArgs {
  server::ServerOptions options;
  std::string schema;
  bool verbose = false;
};

int run_serve(ServeArgs& a) {
  init_logging(a.verbose);
  // SIGINT/SIGTERM are taken by one thread that stops the listener (requests in progress finish);
  // blocked before any other thread exists so that none of them gets the default action.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  a.options.schema = a.schema == "legacy" ? server::Schema::kLegacy : server::Schema::kCurrent;
  server::FhirServer srv(a.options);
  try {
    for (const auto& w : srv.store().check_layout()) spdlog::warn("{}", w);
  } catch (const mongo::MongoError& e) {
    // Not reachable yet: serve anyway, /readyz tells when the database answers.
    spdlog::warn("{} (serving; /readyz answers 503 until the database answers)", e.what());
  }
  srv.bind();
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&set, &sig);
    spdlog::info("signal {}: stopping", sig);
    srv.stop();
  });
  spdlog::info("fhirshift serve: FHIR R4 over the {} schema ({}{}) listening on {}:{}",
               server::schema_name(a.options.schema), a.options.collection,
               a.options.read_only ? ", read-only" : "", a.options.host, srv.port());
  srv.serve();
  if (waiter.joinable()) {
    pthread_kill(waiter.native_handle(), SIGTERM);
    waiter.join();
  }
  return kExitOk;
}

}  // namespace

void add_serve(CLI::App& app, Action& action) {
  auto a = std::make_shared<ServeArgs>();
  auto* sub = app.add_subcommand(
      "serve",
      "FHIR R4 REST server (JSON) over the legacy or the current schema: CRUD, vread, history, "
      "search (current schema), If-Match.");
  sub->footer(
      "Endpoints besides FHIR: GET /healthz, GET /readyz (database ping), POST /admin/fence,\n"
      "POST /admin/release[?forward=URL], GET /admin/status (none with --no-admin; the cut-over\n"
      "fences writes in HAProxy and uses none of them). See docs/serve.md.");
  sub->add_option("--schema", a->schema, "Storage schema of the collection: legacy or current")
      ->required()
      ->check(CLI::IsMember({"legacy", "current"}, CLI::ignore_case))
      ->transform(CLI::IsMember({"legacy", "current"}, CLI::ignore_case));
  sub->add_option("--mongoConnectionstring,--mongoConnectionString", a->options.connection_string,
                  "MongoDB connection string; the database is its path (default vonkdata)")
      ->required();
  sub->add_option("--mongoCollection", a->options.collection, "Entry collection")
      ->capture_default_str();
  sub->add_option("--host", a->options.host, "Address to listen on")->capture_default_str();
  sub->add_option("--port", a->options.port, "TCP port")->capture_default_str();
  sub->add_option("--threads", a->options.threads,
                  "Request threads (writes held by a fence each keep one; reads keep 8 spare)")
      ->capture_default_str()
      ->check(CLI::Range(4, 4096));
  sub->add_flag("--read-only", a->options.read_only,
                "Answer every write 503 + Retry-After with an OperationOutcome");
  sub->add_flag("--no-admin", a->options.no_admin,
                "No /admin/* endpoints (each answers 404): a plain FHIR server");
  sub->add_option("--search-parameters", a->options.search_parameters,
                  "FHIR R4 search-parameters.json for the current schema's index (default: the "
                  "build's, or $FHIRSHIFT_SEARCH_PARAMETERS)");
  sub->add_flag("-v,--verbose", a->verbose, "Debug logging (one line per request)");
  sub->callback([a, &action] { action = [a] { return run_serve(*a); }; });
}

}  // namespace fhirshift::cli
