#include <iostream>

#include "commands.h"

namespace fhirshift::cli {

// Placeholder until issue #8 lands: the subcommand exists so --help lists it.
void add_rollback(CLI::App& app, Action& action) {
  auto* sub = app.add_subcommand("rollback", "(not implemented yet: issue #8)");
  sub->allow_extras();
  sub->callback([&action] {
    action = [] {
      std::cerr << "fhirshift rollback: not implemented yet (issue #8)\n";
      return kExitFailure;
    };
  });
}

}  // namespace fhirshift::cli
