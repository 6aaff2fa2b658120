// What `fhirshift cutover` and `fhirshift rollback --after-cutover` share: building the real
// adapters from command-line values, running the Switchover, printing the summary and writing the
// JSON report.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "cutover/switchover.h"

namespace fhirshift::cutover {

// "200ms", "5s", "2m", "1h", "00:00:05", or a bare number of seconds ("1.5").
// Throws std::invalid_argument naming the text.
std::chrono::milliseconds parse_duration(const std::string& text);

struct SwitchCommand {
  SwitchConfig config;
  std::string proxy_socket;
  std::string to_url;       // the server traffic goes to
  std::string to_health_path = "/metadata";  // GET <to_url><path> answers 2xx when it is ready
  std::string metrics_url;  // the migrator (or reverse migrator) that feeds `to`'s database
  // Arguments for `fhirshift verify` (connection strings and collections); empty: no verify.
  std::vector<std::string> verify_args;
  std::chrono::milliseconds verify_timeout{std::chrono::minutes(30)};
  std::string report_path;  // JSON summary; "" for none
  int report_port = 0;      // > 0: serve the live page and /report.json on 127.0.0.1:port
};

// Runs the machine; logs steps through spdlog, prints the summary on stdout. Returns the exit code.
int run_switch_command(const SwitchCommand& command);

// The JSON document written by --report (documented in docs/runbook.md).
std::string report_json(const SwitchConfig& config, const SwitchResult& result);

}  // namespace fhirshift::cutover
