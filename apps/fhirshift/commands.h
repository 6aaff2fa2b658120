// Each subcommand registers itself on the CLI11 app and, when chosen, stores the action to run.
// One file per subcommand (cmd_<name>.cpp) keeps them independent of each other.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace fhirshift::cli {

// Exit codes, documented in README.md and `fhirshift --help`.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

using Action = std::function<int()>;

void add_provision(CLI::App& app, Action& action);
void add_migrate(CLI::App& app, Action& action);
void add_verify(CLI::App& app, Action& action);
void add_serve(CLI::App& app, Action& action);
void add_load(CLI::App& app, Action& action);
void add_seed(CLI::App& app, Action& action);
void add_cutover(CLI::App& app, Action& action);
void add_rollback(CLI::App& app, Action& action);
void add_quarantine(CLI::App& app, Action& action);
void add_ctl(CLI::App& app, Action& action);

// Parses the legacy tool's boolean spellings: true/false, yes/no, 1/0 (case-insensitive).
bool parse_bool_flag(const std::string& value, const std::string& option_name);

}  // namespace fhirshift::cli
