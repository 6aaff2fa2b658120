#include "switch_options.h"

#include <iostream>

namespace fhirshift::cli {

const CLI::Validator kDuration(
    [](std::string& v) {
      try {
        cutover::parse_duration(v);
        return std::string();
      } catch (const std::exception& e) {
        return std::string(e.what());
      }
    },
    "DURATION", "duration");

void add_switch_limits(CLI::App* sub, SwitchOptions& o, cutover::SwitchConfig& config,
                       const std::string& migrator) {
  sub->add_option("--max-lag", o.max_lag, "Largest " + migrator + " lag accepted before fencing")
      ->check(kDuration)->capture_default_str();
  sub->add_option("--catch-up-wait", o.catch_up_wait,
                  "How long to wait for the " + migrator + " to be caught up before fencing")
      ->check(kDuration)->capture_default_str();
  sub->add_option("--max-pause", o.max_pause,
                  "Longest write pause allowed before the switch; over it the switch aborts and "
                  "writes proceed where they were (keep it under the servers' 30 s hold)")
      ->check(kDuration)->capture_default_str();
  sub->add_option("--drain-timeout", o.drain_timeout,
                  "How long to wait for the " + migrator + " to copy the last writes after the fence")
      ->check(kDuration)->capture_default_str();
  sub->add_option("--switch-timeout", o.switch_timeout,
                  "How long HAProxy may take to report the server UP")
      ->check(kDuration)->capture_default_str();
  sub->add_option("--verify-margin", o.verify_margin,
                  "The verify before the fence covers entries since its start minus this margin")
      ->check(kDuration)->capture_default_str();
  sub->add_option("--verify-overlap", o.verify_overlap,
                  "The final verify (writes fenced) covers entries since the mark the verify "
                  "before the fence reached (the source's newest lu then) minus this overlap")
      ->check(kDuration)->capture_default_str();
  sub->add_option("--poll-interval", o.poll_interval, "How often /progress is read while waiting")
      ->check(kDuration)->capture_default_str();
  sub->add_option("--final-verify-mode", config.final_verify_mode,
                  "Mode of the final verify (full or sample)")
      ->check(CLI::IsMember({"full", "sample", "counts"}, CLI::ignore_case))
      ->capture_default_str();
}

void add_verify_connection(CLI::App* sub, SwitchOptions& o, const std::string& legacy_help,
                           const std::string& current_help) {
  sub->add_option("--srcMongoConnectionString,--srcMongoConnectionstring", o.src_uri, legacy_help);
  sub->add_option("--srcMongoCollection", o.src_collection, "Legacy collection")
      ->capture_default_str();
  sub->add_option("--mongoConnectionstring,--mongoConnectionString", o.dst_uri, current_help);
  sub->add_option("--mongoCollection", o.dst_collection, "Current-schema collection")
      ->capture_default_str();
  sub->add_flag("--no-verify", o.no_verify,
                "Switch without the verify steps (not recommended: nothing proves the stores equal)");
}

void apply_switch_limits(const SwitchOptions& o, cutover::SwitchConfig& config) {
  config.max_lag = cutover::parse_duration(o.max_lag);
  config.catch_up_wait = cutover::parse_duration(o.catch_up_wait);
  config.max_pause = cutover::parse_duration(o.max_pause);
  config.drain_timeout = cutover::parse_duration(o.drain_timeout);
  config.switch_timeout = cutover::parse_duration(o.switch_timeout);
  config.verify_margin = cutover::parse_duration(o.verify_margin);
  config.verify_overlap = cutover::parse_duration(o.verify_overlap);
  config.poll_interval = cutover::parse_duration(o.poll_interval);
}

std::optional<std::vector<std::string>> verify_connection_args(const SwitchOptions& o,
                                                               const std::string& command) {
  if (o.no_verify) return std::vector<std::string>{};
  if (o.src_uri.empty() || o.dst_uri.empty()) {
    std::cerr << "fhirshift " << command
              << ": the verify steps need --srcMongoConnectionString (legacy store) and "
                 "--mongoConnectionstring (current-schema store); pass --no-verify to switch "
                 "without proving the stores equal\n";
    return std::nullopt;
  }
  return std::vector<std::string>{"--srcMongoConnectionString", o.src_uri, "--srcMongoCollection",
                                  o.src_collection, "--mongoConnectionstring", o.dst_uri,
                                  "--mongoCollection", o.dst_collection};
}

}  // namespace fhirshift::cli
