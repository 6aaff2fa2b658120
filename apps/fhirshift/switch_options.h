// The options `cutover` and `rollback --after-cutover` share: the switch's limits and the
// connection strings of its verify steps. Both run the same state machine in opposite directions.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "cutover/command.h"

namespace fhirshift::cli {

// Accepts what cutover::parse_duration reads ("200ms", "5s", "2m").
extern const CLI::Validator kDuration;

struct SwitchOptions {
  std::string max_lag = "5s";
  std::string catch_up_wait = "60s";
  std::string max_pause = "20s";
  std::string drain_timeout = "15s";
  std::string switch_timeout = "5s";
  std::string verify_margin = "60s";
  std::string verify_overlap = "10s";
  std::string poll_interval = "200ms";
  std::string src_uri, src_collection = "vonkentries";
  std::string dst_uri, dst_collection = "vonkentries";
  bool no_verify = false;
};

// Registers the limits on `sub`; `migrator` names the process the operator waits for ("migrator",
// "reverse migrator").
void add_switch_limits(CLI::App* sub, SwitchOptions& o, cutover::SwitchConfig& config,
                       const std::string& migrator);
// Registers the verify connection options and --no-verify; the help texts name their roles.
void add_verify_connection(CLI::App* sub, SwitchOptions& o, const std::string& legacy_help,
                           const std::string& current_help);
// Copies the parsed limits into `config`.
void apply_switch_limits(const SwitchOptions& o, cutover::SwitchConfig& config);
// The verify subprocess's connection arguments; empty (with a message on stderr naming the fix)
// when verify is on but a connection string is missing.
std::optional<std::vector<std::string>> verify_connection_args(const SwitchOptions& o,
                                                               const std::string& command);

}  // namespace fhirshift::cli
