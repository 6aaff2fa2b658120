#include <spdlog/spdlog.h>

#include <exception>
#include <iostream>

#include "commands.h"
#include "common/version.h"

namespace cli = fhirshift::cli;

int main(int argc, char** argv) {
  CLI::App app{
      "fhirshift: zero-downtime migration of a FHIR store on MongoDB from the legacy to the current "
      "schema.\n\nExit codes: 0 success, 1 failure (the message says which step and how to fix "
      "it), 2 usage error."};
  app.set_version_flag("--version", std::string("fhirshift ") + fhirshift::kVersion);
  app.require_subcommand(1);
  // The legacy migration tool's option names were case-insensitive; operators paste its runbook lines.
  app.option_defaults()->ignore_case();

  cli::Action action;
  cli::add_provision(app, action);
  cli::add_migrate(app, action);
  cli::add_verify(app, action);
  cli::add_serve(app, action);
  cli::add_load(app, action);
  cli::add_seed(app, action);
  cli::add_cutover(app, action);
  cli::add_rollback(app, action);
  cli::add_quarantine(app, action);
  cli::add_ctl(app, action);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? cli::kExitOk : cli::kExitUsage;
  }
  try {
    return action ? action() : cli::kExitOk;
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return cli::kExitFailure;
  }
}
